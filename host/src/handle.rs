//! A submitted task's shared state ([`Slot`]) and the caller's end of it
//! ([`TaskHandle`]): wait for the result, poll it as a future, or cancel it.
//!
//! A map's tasks share one slot per run: the tasks it queued together are
//! claimed, run and announced together, so that a task of a microsecond
//! costs no slot, handle and wake-up of its own.

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

/// The state a run of tasks (one, for a submitted task) shares between
/// its worker and its handle.
pub(crate) struct Slot {
    /// The id of the run's first task.
    id: u64,
    /// How many tasks the run has.
    tasks: usize,
    state: AtomicU8,
    /// Asks the sandbox to stop the task while it runs.
    cancel_requested: AtomicBool,
    progress: AtomicU64,
    inner: Mutex<Inner>,
    finished: Condvar,
}

#[derive(Default)]
struct Inner {
    /// One per task, in order, once the run has finished.
    results: Option<Vec<TaskResult>>,
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
    /// The slot of a run of `tasks` tasks, the first numbered `id`.
    pub(crate) fn new(id: u64, tasks: usize, listener: Option<Listener>) -> Arc<Slot> {
        Arc::new(Slot {
            id,
            tasks,
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

    pub(crate) fn tasks(&self) -> usize {
        self.tasks
    }

    /// Claims the run for a worker; false if it was cancelled meanwhile.
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Cancels the run: one not claimed yet finishes now, a running one is
    /// asked to stop (its tasks not yet started finish as cancelled). False
    /// if it had finished already.
    pub(crate) fn cancel(&self) -> bool {
        self.cancel_requested.store(true, Ordering::Relaxed);
        // Claimed like a worker would, so that nobody else runs it.
        if self.start() {
            self.finish(cancelled(self.tasks));
            return true;
        }
        self.state.load(Ordering::Acquire) == RUNNING
    }

    pub(crate) fn is_cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }

    /// Stores the results of a claimed run, one per task in order, and
    /// wakes whoever waits for them.
    pub(crate) fn finish(&self, results: Vec<TaskResult>) {
        debug_assert_eq!(results.len(), self.tasks, "one result per task of the run");
        let (waker, waiting, first, more) = {
            let mut inner = self.lock();
            inner.results = Some(results);
            // Under the lock: whoever sees FINISHED finds the result there.
            self.state.store(FINISHED, Ordering::Release);
            (
                inner.waker.take(),
                inner.waiting > 0,
                inner.listener.take(),
                std::mem::take(&mut inner.more_listeners),
            )
        };
        if waiting {
            self.finished.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        for (completions, tag) in first.into_iter().chain(more) {
            completions.push(tag);
        }
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
        self.lock()
            .results
            .as_ref()
            .is_some_and(|results| results.iter().any(Result::is_err))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock(&self.inner)
    }

    /// Takes the results once they are there, waiting at most until
    /// `deadline`.
    fn take(&self, deadline: Option<Instant>) -> Option<Vec<TaskResult>> {
        let mut inner = self.lock();
        loop {
            if let Some(results) = inner.results.take() {
                return Some(results);
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

/// `tasks` results of tasks cancelled before they ran.
pub(crate) fn cancelled(tasks: usize) -> Vec<TaskResult> {
    (0..tasks).map(|_| Err(TaskError::cancelled())).collect()
}

/// The one result of a run of one task.
fn only(results: Vec<TaskResult>) -> TaskResult {
    results
        .into_iter()
        .next()
        .expect("a submitted task's run has one result")
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
        only(self.wait_all())
    }

    /// Blocks until the run has finished and returns its results, one per
    /// task in order.
    pub(crate) fn wait_all(self) -> Vec<TaskResult> {
        self.slot
            .take(None)
            .expect("a wait without deadline returns a result")
    }

    /// Blocks at most `timeout` for the result; on time-out the handle is
    /// handed back to wait again.
    pub fn wait_timeout(self, timeout: Duration) -> Result<TaskResult, TaskHandle> {
        let deadline = Instant::now().checked_add(timeout);
        match self.slot.take(deadline) {
            Some(results) => Ok(only(results)),
            None if deadline.is_none() => Ok(self.wait()),
            None => Err(self),
        }
    }
}

impl Future for TaskHandle {
    type Output = TaskResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskResult> {
        let mut inner = self.slot.lock();
        match inner.results.take() {
            Some(results) => Poll::Ready(only(results)),
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

    use super::*;
    use crate::completions::Completions;

    #[test]
    fn a_run_cancelled_before_it_starts_has_a_result_per_task() {
        let completions = Completions::new();
        let slot = Slot::new(7, 3, Some((Arc::clone(&completions), 7)));
        let handle = TaskHandle::new(Arc::clone(&slot));
        assert!(handle.cancel());
        // A worker that takes it off the queue finds it taken.
        assert!(!slot.start());
        let results = handle.wait_all();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|result| {
            result
                .as_ref()
                .is_err_and(|error| error.kind() == crate::ErrorKind::Cancelled)
        }));
        let mut heard = VecDeque::new();
        assert!(completions.gather(1, None, &mut heard));
        assert_eq!(heard, [7]);
    }

    #[test]
    fn a_second_listener_hears_too() {
        let first = Completions::new();
        let second = Completions::new();
        let slot = Slot::new(0, 1, Some((Arc::clone(&first), 1)));
        slot.listen((Arc::clone(&second), 2));
        assert!(slot.start());
        slot.finish(cancelled(1));
        let mut heard = VecDeque::new();
        assert!(first.gather(1, None, &mut heard));
        assert!(second.gather(1, None, &mut heard));
        assert_eq!(heard, [1, 2]);
    }
}
