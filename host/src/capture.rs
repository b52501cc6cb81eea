//! Captured stdout and stderr: a pipe that keeps the first `limit` bytes a
//! guest writes and quietly drops the rest.
//!
//! wasmtime-wasi's `MemoryOutputPipe` closes the stream once full, and a Rust
//! guest's `println!` then panics: a noisy task would fail because of its
//! output. This pipe keeps accepting writes past the limit, so the task runs
//! to its end, and marks the capture as truncated.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// What a task wrote to one output stream, up to the pool's capture limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    /// Nothing written.
    pub(crate) const EMPTY: Captured = Captured {
        bytes: Vec::new(),
        truncated: false,
    };

    #[cfg(any(feature = "mpi", test))]
    pub(crate) fn new(bytes: Vec<u8>, truncated: bool) -> Captured {
        Captured { bytes, truncated }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes kept, as text (invalid UTF-8 is replaced).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// Whether the task wrote more than the limit and the rest was dropped.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.truncated
    }
}

/// The host's end of a guest's stdout or stderr.
#[derive(Clone)]
pub(crate) struct CapturePipe {
    buffer: Arc<Mutex<Buffer>>,
}

struct Buffer {
    captured: Captured,
    limit: usize,
}

impl CapturePipe {
    pub(crate) fn new(limit: usize) -> CapturePipe {
        CapturePipe {
            buffer: Arc::new(Mutex::new(Buffer {
                captured: Captured::default(),
                limit,
            })),
        }
    }

    /// Takes what was captured, leaving the pipe empty.
    pub(crate) fn take(&self) -> Captured {
        std::mem::take(&mut self.lock().captured)
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned buffer still holds valid bytes.
        crate::lock(&self.buffer)
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = buffer.limit.saturating_sub(buffer.captured.bytes.len());
        let kept = bytes.len().min(room);
        buffer.captured.bytes.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            buffer.captured.truncated = true;
        }
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready, for any amount: what does not fit is dropped.
        Ok(1 << 20)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_marks_the_rest_dropped() {
        let pipe = CapturePipe::new(5);
        pipe.append(b"abc");
        assert!(!pipe.lock().captured.is_truncated());
        pipe.append(b"defg");
        let captured = pipe.take();
        assert_eq!(captured.as_bytes(), b"abcde");
        assert!(captured.is_truncated());
    }

    #[test]
    fn an_empty_capture_is_empty() {
        let pipe = CapturePipe::new(5);
        assert!(pipe.take().is_empty());
    }
}
