//! The pipe a guest's stdout or stderr writes into: it keeps the first
//! `limit` bytes and quietly drops the rest.
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

use crate::data::captured::Captured;

/// The most a guest may write to stdout or stderr in one call; the host
/// reads at least this much of any value a task hands it.
pub(crate) const WRITE_PERMIT: usize = 1 << 20;

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
        crate::data::lock(&self.buffer)
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let limit = buffer.limit;
        buffer.captured.append_within(bytes, limit);
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
        // Always ready: what does not fit is dropped.
        Ok(WRITE_PERMIT)
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
