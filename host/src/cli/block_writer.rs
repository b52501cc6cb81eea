//! Records on their way to the output: whole lines, handed to the file or
//! stdout in blocks, by a thread of their own.
//!
//! One `write` and flush per record cost the thread that also drives the
//! map about a third of its time in the kernel when tasks take a few
//! microseconds. Lines now go out once [`BLOCK`] bytes have gathered, and
//! a thread of the run's flushes the rest every [`FLUSH_EVERY`]: a record
//! reaches the output at most that long after its task ended, and the
//! output only ever receives whole lines. The writes themselves happen on
//! the writer's own thread, so that the thread driving the map (on a
//! cluster, the busiest of rank 0) spends no time in the kernel for them;
//! at most [`BLOCKS_AHEAD`] blocks wait for it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

/// How long a finished record may wait for its block.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Gathered lines worth one write.
const BLOCK: usize = 64 << 10;

/// Blocks handed to the writing thread and not yet written, at most: past
/// that, the records wait for the output.
const BLOCKS_AHEAD: usize = 4;

pub(crate) struct BlockWriter {
    lines: Mutex<Vec<u8>>,
    /// A failed write, reported to the next record.
    failed: Arc<Mutex<Option<io::Error>>>,
    /// Whether `failed` holds one: what each record checks.
    has_failed: Arc<AtomicBool>,
    blocks: Option<Sender<ToWrite>>,
    writer: Option<JoinHandle<()>>,
}

enum ToWrite {
    Block(Vec<u8>),
    /// Everything before has been written (or has failed): say so.
    Done(Sender<()>),
}

impl BlockWriter {
    pub(crate) fn new(mut sink: Box<dyn Write + Send>) -> BlockWriter {
        let (blocks, to_write) = bounded::<ToWrite>(BLOCKS_AHEAD);
        let failed = Arc::new(Mutex::new(None));
        let has_failed = Arc::new(AtomicBool::new(false));
        let writer_failed = Arc::clone(&failed);
        let writer_has_failed = Arc::clone(&has_failed);
        let writer = std::thread::Builder::new()
            .name("wasmpool-output".to_string())
            .spawn(move || {
                for message in to_write {
                    match message {
                        ToWrite::Block(block) => {
                            let mut failed = lock(&writer_failed);
                            // After a failure, what follows would leave a gap.
                            if failed.is_none()
                                && let Err(error) =
                                    sink.write_all(&block).and_then(|()| sink.flush())
                            {
                                *failed = Some(error);
                                writer_has_failed.store(true, Ordering::Relaxed);
                            }
                        }
                        ToWrite::Done(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("spawn the output thread");
        BlockWriter {
            lines: Mutex::new(Vec::with_capacity(BLOCK)),
            failed,
            has_failed,
            blocks: Some(blocks),
            writer: Some(writer),
        }
    }

    /// Queues one line (without its newline); hands the block on once it
    /// is full.
    #[cfg(test)]
    pub(crate) fn push(&self, line: &[u8]) -> io::Result<()> {
        self.push_with(|lines| lines.extend_from_slice(line))
    }

    /// Queues the line `write` appends (without its newline) straight to
    /// the block; hands the block on once it is full.
    pub(crate) fn push_with(&self, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.push_bytes_with(|lines| {
            write(lines);
            lines.push(b'\n');
        })
    }

    /// Queues what `write` appends, as it is: text that need not be whole
    /// lines (a task's own output).
    pub(crate) fn push_bytes_with(&self, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut lines = lock(&self.lines);
        if self.has_failed.load(Ordering::Relaxed)
            && let Some(error) = lock(&self.failed).take()
        {
            self.has_failed.store(false, Ordering::Relaxed);
            return Err(error);
        }
        write(&mut lines);
        if lines.len() >= BLOCK {
            self.hand_on(&mut lines);
        }
        Ok(())
    }

    /// Writes and flushes whatever lines are waiting, and waits for them.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let (done, written) = bounded(1);
        {
            let mut lines = lock(&self.lines);
            self.hand_on(&mut lines);
            self.send(ToWrite::Done(done));
        }
        let _ = written.recv();
        self.has_failed.store(false, Ordering::Relaxed);
        match lock(&self.failed).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Hands on whatever lines are waiting, for the timer: a failure waits
    /// for the next record.
    pub(crate) fn flush_in_background(&self) {
        let mut lines = lock(&self.lines);
        self.hand_on(&mut lines);
    }

    /// Sends the lines gathered to the writing thread, under the lines'
    /// lock: blocks go out in the order their lines came.
    fn hand_on(&self, lines: &mut Vec<u8>) {
        if !lines.is_empty() {
            let block = std::mem::replace(lines, Vec::with_capacity(BLOCK));
            self.send(ToWrite::Block(block));
        }
    }

    fn send(&self, message: ToWrite) {
        if let Some(blocks) = &self.blocks {
            // The writing thread lives as long as the sender.
            let _ = blocks.send(message);
        }
    }
}

impl Drop for BlockWriter {
    /// A run that ends early, on an error, still leaves the lines it had
    /// gathered in the output: each is a finished task's record.
    fn drop(&mut self) {
        let _ = self.flush();
        drop(self.blocks.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock still holds whole lines, or an error.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        let outbox = BlockWriter::new(Box::new(writes.clone()));
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

    /// A sink that fails every write.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_reported_once() {
        let outbox = BlockWriter::new(Box::new(Broken));
        outbox.push(b"{}").unwrap();
        let error = outbox.flush().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        // Told once; a full block written in the background fails the
        // record after it.
        assert!(outbox.flush().is_ok());
        let line = vec![b'x'; BLOCK];
        outbox.push(&line).unwrap();
        outbox.flush_in_background();
        let (done, written) = bounded(1);
        outbox.send(ToWrite::Done(done));
        written.recv().unwrap();
        assert_eq!(
            outbox.push(b"{}").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn lines_gathered_are_written_when_the_outbox_goes() {
        let writes = Writes::default();
        let outbox = BlockWriter::new(Box::new(writes.clone()));
        outbox.push(b"{}").unwrap();
        drop(outbox);
        assert_eq!(*writes.0.lock().unwrap(), [b"{}\n".to_vec()]);
    }
}
