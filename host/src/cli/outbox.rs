//! Records on their way to the output: whole lines, handed to the file or
//! stdout in blocks.
//!
//! One `write` and flush per record cost the thread that also drives the
//! map about a third of its time in the kernel when tasks take a few
//! microseconds. Lines now go out once [`BLOCK`] bytes have gathered, and
//! a thread of the run's flushes the rest every [`FLUSH_EVERY`]: a record
//! reaches the output at most that long after its task ended, and the
//! output only ever receives whole lines.

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a finished record may wait for its block.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Gathered lines worth one write.
const BLOCK: usize = 64 << 10;

pub(crate) struct Outbox {
    inner: Mutex<Inner>,
}

struct Inner {
    sink: Box<dyn Write + Send>,
    lines: Vec<u8>,
    /// A failed write, reported to the next record.
    failed: Option<io::Error>,
}

impl Outbox {
    pub(crate) fn new(sink: Box<dyn Write + Send>) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner {
                sink,
                lines: Vec::with_capacity(BLOCK),
                failed: None,
            }),
        }
    }

    /// Queues one line (without its newline); writes the block once it is
    /// full.
    pub(crate) fn push(&self, line: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(error) = inner.failed.take() {
            return Err(error);
        }
        inner.lines.extend_from_slice(line);
        inner.lines.push(b'\n');
        if inner.lines.len() >= BLOCK {
            inner.write_out()?;
        }
        Ok(())
    }

    /// Writes and flushes whatever lines are waiting.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(error) = inner.failed.take() {
            return Err(error);
        }
        inner.write_out()
    }

    /// [`Outbox::flush`] for the timer: a failure waits for the next record.
    pub(crate) fn flush_in_background(&self) {
        let mut inner = self.lock();
        if inner.failed.is_none()
            && let Err(error) = inner.write_out()
        {
            inner.failed = Some(error);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Outbox {
    /// A run that ends early, on an error, still leaves the lines it had
    /// gathered in the output: each is a finished task's record.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Inner {
    fn write_out(&mut self) -> io::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let written = self
            .sink
            .write_all(&self.lines)
            .and_then(|()| self.sink.flush());
        self.lines.clear();
        written
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A sink that remembers each write it was given.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_go_out_whole_in_blocks() {
        let writes = Writes::default();
        let outbox = Outbox::new(Box::new(writes.clone()));
        let line = vec![b'x'; 1000];
        for _ in 0..200 {
            outbox.push(&line).unwrap();
        }
        outbox.flush().unwrap();
        let writes = writes.0.lock().unwrap();
        // 200 records in a handful of writes, each of whole lines.
        assert!(writes.len() <= 4, "{} writes", writes.len());
        assert_eq!(writes.iter().map(Vec::len).sum::<usize>(), 200 * 1001);
        assert!(writes.iter().all(|block| block.ends_with(b"\n")));
    }

    #[test]
    fn lines_gathered_are_written_when_the_outbox_goes() {
        let writes = Writes::default();
        let outbox = Outbox::new(Box::new(writes.clone()));
        outbox.push(b"{}").unwrap();
        drop(outbox);
        assert_eq!(*writes.0.lock().unwrap(), [b"{}\n".to_vec()]);
    }
}
