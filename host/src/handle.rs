//! A submitted task's shared state ([`Slot`]) and the caller's end of it
//! ([`TaskHandle`]): wait for the result, poll it as a future, or cancel it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::completions::Listener;
use crate::error::TaskError;
use crate::task::TaskResult;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;

/// No progress reported yet; any NaN would do, this one is never produced
/// by `f64::clamp`.
const NO_PROGRESS: u64 = u64::MAX;

/// A reported fraction, clamped to [0, 1], as stored.
fn progress_bits(fraction: f64) -> u64 {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    fraction.to_bits()
}

fn read_progress(cell: &AtomicU64) -> Option<f64> {
    match cell.load(Ordering::Relaxed) {
        NO_PROGRESS => None,
        bits => Some(f64::from_bits(bits)),
    }
}

/// The progress the running task of each worker last reported: what a
/// progress display shows for long tasks.
pub(crate) struct ProgressBoard {
    workers: Vec<AtomicU64>,
}

impl ProgressBoard {
    pub(crate) fn new(workers: usize) -> ProgressBoard {
        ProgressBoard {
            workers: (0..workers).map(|_| AtomicU64::new(NO_PROGRESS)).collect(),
        }
    }

    pub(crate) fn set(&self, worker: usize, fraction: f64) {
        if let Some(cell) = self.workers.get(worker) {
            cell.store(progress_bits(fraction), Ordering::Relaxed);
        }
    }

    pub(crate) fn clear(&self, worker: usize) {
        if let Some(cell) = self.workers.get(worker) {
            cell.store(NO_PROGRESS, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<Option<f64>> {
        self.workers.iter().map(read_progress).collect()
    }
}

/// The state one submitted task shares between its worker and its handle.
pub(crate) struct Slot {
    id: u64,
    state: AtomicU8,
    /// Asks the sandbox to stop the task while it runs.
    cancel_requested: AtomicBool,
    progress: AtomicU64,
    inner: Mutex<Inner>,
    finished: Condvar,
}

#[derive(Default)]
struct Inner {
    result: Option<TaskResult>,
    waker: Option<Waker>,
    /// Most tasks have one listener (their map's): kept inline, so that a
    /// slot costs no second allocation.
    listener: Option<Listener>,
    more_listeners: Vec<Listener>,
    /// Threads blocked in `take`: only they need the condition variable,
    /// whose wake-up is a system call even when nobody waits.
    waiting: usize,
}

impl Slot {
    pub(crate) fn new(id: u64, listener: Option<Listener>) -> Arc<Slot> {
        Arc::new(Slot {
            id,
            state: AtomicU8::new(PENDING),
            cancel_requested: AtomicBool::new(false),
            progress: AtomicU64::new(NO_PROGRESS),
            inner: Mutex::new(Inner {
                listener,
                ..Inner::default()
            }),
            finished: Condvar::new(),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Claims the task for a worker; false if it was cancelled meanwhile.
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Cancels the task: one not claimed yet finishes now, a running one is
    /// asked to stop. False if it had finished already.
    pub(crate) fn cancel(&self) -> bool {
        self.cancel_requested.store(true, Ordering::Relaxed);
        // Claimed like a worker would, so that nobody else runs it.
        if self.start() {
            self.finish(Err(TaskError::cancelled()));
            return true;
        }
        self.state.load(Ordering::Acquire) == RUNNING
    }

    pub(crate) fn is_cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }

    /// Stores the result of a claimed task and wakes whoever waits for it.
    pub(crate) fn finish(&self, result: TaskResult) {
        let (first, more) = self.settle(result);
        for (completions, tag) in first.into_iter().chain(more) {
            completions.push(tag);
        }
    }

    /// [`finish`](Slot::finish), with the completion announced to
    /// listeners when `announce` is dropped, together with the others it
    /// holds: one lock of a map's completion list for a batch of results.
    pub(crate) fn finish_announcing(&self, result: TaskResult, announce: &mut Announce) {
        let (first, more) = self.settle(result);
        announce.0.extend(first);
        announce.0.extend(more);
    }

    /// Stores the result, wakes a waiting thread or future, and hands back
    /// the listeners still to hear of it.
    fn settle(&self, result: TaskResult) -> (Option<Listener>, Vec<Listener>) {
        let (waker, waiting, listeners) = {
            let mut inner = self.lock();
            inner.result = Some(result);
            // Under the lock: whoever sees FINISHED finds the result there.
            self.state.store(FINISHED, Ordering::Release);
            let listeners = (
                inner.listener.take(),
                std::mem::take(&mut inner.more_listeners),
            );
            (inner.waker.take(), inner.waiting > 0, listeners)
        };
        if waiting {
            self.finished.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        listeners
    }

    /// Announces the completion on `listener`, now if it already happened.
    pub(crate) fn listen(&self, listener: Listener) {
        let mut inner = self.lock();
        if self.state.load(Ordering::Acquire) == FINISHED {
            drop(inner);
            listener.0.push(listener.1);
        } else if inner.listener.is_none() {
            inner.listener = Some(listener);
        } else {
            inner.more_listeners.push(listener);
        }
    }

    pub(crate) fn set_progress(&self, fraction: f64) {
        self.progress
            .store(progress_bits(fraction), Ordering::Relaxed);
    }

    fn progress(&self) -> Option<f64> {
        read_progress(&self.progress)
    }

    fn is_failed(&self) -> bool {
        matches!(self.lock().result, Some(Err(_)))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock(&self.inner)
    }

    /// Takes the result once it is there, waiting at most until `deadline`.
    fn take(&self, deadline: Option<Instant>) -> Option<TaskResult> {
        let mut inner = self.lock();
        loop {
            if let Some(result) = inner.result.take() {
                return Some(result);
            }
            inner.waiting += 1;
            inner = match deadline {
                None => self
                    .finished
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        inner.waiting -= 1;
                        return None;
                    };
                    self.finished
                        .wait_timeout(inner, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            inner.waiting -= 1;
        }
    }
}

/// Completions to announce to their listeners, at the latest when this is
/// dropped; those of the same list (a map's, one per task of a batch of
/// results) go in one lock.
#[derive(Default)]
pub(crate) struct Announce(Vec<Listener>);

impl Drop for Announce {
    fn drop(&mut self) {
        let mut rest = &self.0[..];
        while let Some((completions, _)) = rest.first() {
            let same = rest
                .iter()
                .take_while(|(other, _)| Arc::ptr_eq(other, completions))
                .count();
            completions.push_all(rest[..same].iter().map(|(_, tag)| *tag));
            rest = &rest[same..];
        }
    }
}

/// The caller's end of a submitted task.
///
/// Wait for the result with [`wait`](TaskHandle::wait), or `.await` the
/// handle: it is a [`Future`] that any async runtime can poll. Dropping the
/// handle does not cancel the task; [`cancel`](TaskHandle::cancel) does, if
/// it has not started.
pub struct TaskHandle {
    slot: Arc<Slot>,
}

impl TaskHandle {
    pub(crate) fn new(slot: Arc<Slot>) -> TaskHandle {
        TaskHandle { slot }
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// The task's number, unique within its pool, in submission order.
    pub fn id(&self) -> u64 {
        self.slot.id
    }

    /// Whether the result is ready (the task succeeded, failed or was
    /// cancelled).
    pub fn is_finished(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) == FINISHED
    }

    /// Whether a worker is running the task now.
    pub fn is_running(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) == RUNNING
    }

    /// Whether the task has finished with an error.
    pub fn is_failed(&self) -> bool {
        self.is_finished() && self.slot.is_failed()
    }

    /// The last progress the guest reported, from 0.0 to 1.0, if any.
    pub fn progress(&self) -> Option<f64> {
        self.slot.progress()
    }

    /// Cancels the task: one not started yet finishes at once as
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled); a running one
    /// is stopped within a few milliseconds, even while it waits in a host
    /// call, and finishes as cancelled unless it completed first. Returns
    /// false if the task had already finished.
    pub fn cancel(&self) -> bool {
        self.slot.cancel()
    }

    /// Blocks until the task has finished and returns its result.
    pub fn wait(self) -> TaskResult {
        self.slot
            .take(None)
            .expect("a wait without deadline returns a result")
    }

    /// Blocks at most `timeout` for the result; on time-out the handle is
    /// handed back to wait again.
    pub fn wait_timeout(self, timeout: Duration) -> Result<TaskResult, TaskHandle> {
        let deadline = Instant::now().checked_add(timeout);
        match self.slot.take(deadline) {
            Some(result) => Ok(result),
            None if deadline.is_none() => Ok(self.wait()),
            None => Err(self),
        }
    }
}

impl Future for TaskHandle {
    type Output = TaskResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskResult> {
        let mut inner = self.slot.lock();
        match inner.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                inner.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::completions::Completions;

    #[test]
    fn completions_finished_together_are_announced_together() {
        let completions = Completions::new();
        let other = Completions::new();
        let slots = [
            Slot::new(0, Some((Arc::clone(&completions), 10))),
            Slot::new(1, Some((Arc::clone(&other), 11))),
            Slot::new(2, Some((Arc::clone(&completions), 12))),
        ];
        let mut announce = Announce::default();
        for slot in &slots {
            assert!(slot.start());
            slot.finish_announcing(Err(TaskError::cancelled()), &mut announce);
        }
        // Finished, and not yet announced.
        assert!(
            slots
                .iter()
                .all(|slot| slot.state.load(Ordering::Acquire) == FINISHED)
        );
        let mut heard = VecDeque::new();
        let soon = Instant::now() + Duration::from_millis(1);
        assert!(!completions.gather(1, Some(soon), &mut heard));
        drop(announce);
        assert!(completions.gather(2, None, &mut heard));
        assert_eq!(heard, [10, 12]);
        heard.clear();
        assert!(other.gather(1, None, &mut heard));
        assert_eq!(heard, [11]);
    }

    #[test]
    fn a_second_listener_hears_too() {
        let first = Completions::new();
        let second = Completions::new();
        let slot = Slot::new(0, Some((Arc::clone(&first), 1)));
        slot.listen((Arc::clone(&second), 2));
        assert!(slot.start());
        slot.finish(Err(TaskError::cancelled()));
        let mut heard = VecDeque::new();
        assert!(first.gather(1, None, &mut heard));
        assert!(second.gather(1, None, &mut heard));
        assert_eq!(heard, [1, 2]);
    }
}
