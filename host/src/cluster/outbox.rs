//! Messages on their way to another rank. A send returns at once and the
//! message goes while this rank does other work: past MPI's eager size
//! (long chunks, a run's results) a message waits for its receiver to
//! take it in, and a rank waiting on that would hold up its other ranks,
//! or its own results, for as long as the receiver is busy.

use std::time::Duration;

use mpi::Tag;
use mpi::point_to_point::Destination;
use mpi::request::{Request, StaticScope};
use mpi::topology::Process;

/// How long [`Outbox::flush`] sleeps between looks.
const FLUSH_POLL: Duration = Duration::from_micros(200);

/// Sends under way, each with the bytes it owns until MPI is done with
/// them. Not `Send`: one thread makes and tests its requests.
#[derive(Default)]
pub(crate) struct Outbox {
    sending: Vec<(Request<'static, [u8]>, *mut [u8])>,
}

impl Outbox {
    /// Starts sending `bytes` to `process`. Messages from one rank to
    /// another arrive in the order they were sent, as with blocking sends.
    pub(crate) fn send(&mut self, process: &Process<'_>, bytes: Vec<u8>, tag: Tag) {
        let bytes = Box::into_raw(bytes.into_boxed_slice());
        // SAFETY: the allocation behind `bytes` is freed only once its
        // request has completed (in `poll`, or when the outbox is dropped),
        // which is when MPI has stopped reading it; nothing writes to it
        // meanwhile.
        #[allow(unsafe_code)]
        let shared: &'static [u8] = unsafe { &*bytes };
        let request = process.immediate_send_with_tag(StaticScope, shared, tag);
        self.sending.push((request, bytes));
    }

    /// Lets MPI move the messages on and frees those it has sent; true
    /// once none is left.
    pub(crate) fn poll(&mut self) -> bool {
        let mut index = 0;
        while index < self.sending.len() {
            let (request, bytes) = self.sending.swap_remove(index);
            match request.test() {
                // SAFETY: its request has completed.
                #[allow(unsafe_code)]
                Ok(_) => unsafe { free(bytes) },
                Err(request) => {
                    // Back in its place: the order of the rest is kept.
                    self.sending.push((request, bytes));
                    let last = self.sending.len() - 1;
                    self.sending.swap(index, last);
                    index += 1;
                }
            }
        }
        self.sending.is_empty()
    }

    /// Waits until every message has gone: their receiver must be taking
    /// messages in.
    pub(crate) fn flush(&mut self) {
        while !self.poll() {
            std::thread::sleep(FLUSH_POLL);
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        for (request, bytes) in self.sending.drain(..) {
            request.wait();
            // SAFETY: its request has completed.
            #[allow(unsafe_code)]
            unsafe {
                free(bytes)
            };
        }
    }
}

/// Frees the bytes of a send.
///
/// # Safety
///
/// `bytes` must come from [`Outbox::send`], whose request has completed,
/// and be freed once.
#[allow(unsafe_code)]
unsafe fn free(bytes: *mut [u8]) {
    // SAFETY: `send` made `bytes` with `Box::into_raw`, and MPI no longer
    // reads it.
    drop(unsafe { Box::from_raw(bytes) });
}
