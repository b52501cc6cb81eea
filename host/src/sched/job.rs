//! The state one job shares between the worker that runs it and the
//! handle that waits for it: pending → running → finished, a result per
//! task, the waker, the listeners, the cancel request and the progress.
//!
//! A map's tasks share one job state per job: the tasks it queued
//! together are claimed, run and announced together, so that a task of a
//! microsecond costs no state, handle and wake-up of its own.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Instant;

use crate::data::error::TaskError;
use crate::data::lock;
use crate::data::output::TaskResult;
use crate::data::progress::{JobControl, ProgressCell};
use crate::sched::completions::Listener;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;

/// The state a job (one task, for a submitted task; several of a map's)
/// shares between its worker and its handle.
pub(crate) struct JobState {
    /// The id of the job's first task.
    id: u64,
    /// How many tasks the job has.
    tasks: usize,
    state: AtomicU8,
    /// Asks the sandbox to stop the task while it runs.
    cancel_requested: AtomicBool,
    progress: ProgressCell,
    inner: Mutex<Inner>,
    finished: Condvar,
}

#[derive(Default)]
struct Inner {
    /// One per task, in order, once the job has finished.
    results: Option<Vec<TaskResult>>,
    waker: Option<Waker>,
    /// Most jobs have one listener (their map's): kept inline, so that a
    /// job costs no second allocation.
    listener: Option<Listener>,
    more_listeners: Vec<Listener>,
    /// Threads blocked in `take`: only they need the condition variable,
    /// whose wake-up is a system call even when nobody waits.
    waiting: usize,
}

impl JobState {
    /// The state of a job of `tasks` tasks, the first numbered `id`.
    pub(crate) fn new(id: u64, tasks: usize, listener: Option<Listener>) -> Arc<JobState> {
        Arc::new(JobState {
            id,
            tasks,
            state: AtomicU8::new(PENDING),
            cancel_requested: AtomicBool::new(false),
            progress: ProgressCell::new(),
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

    /// Claims the job for a worker; false if it was cancelled meanwhile.
    pub(crate) fn start(&self) -> bool {
        self.state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Cancels the job: one not claimed yet finishes now, a running one is
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

    /// The id of the job's first task.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) == FINISHED
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Stores the results of a claimed job, one per task in order, and
    /// wakes whoever waits for them.
    pub(crate) fn finish(&self, results: Vec<TaskResult>) {
        debug_assert_eq!(results.len(), self.tasks, "one result per task of the job");
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

    /// The progress its running task last reported.
    pub(crate) fn progress(&self) -> Option<f64> {
        self.progress.get()
    }

    /// Whether it finished with an error among its results.
    pub(crate) fn is_failed(&self) -> bool {
        self.lock()
            .results
            .as_ref()
            .is_some_and(|results| results.iter().any(Result::is_err))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The results if they are there; if not, `waker` is woken when they
    /// are.
    pub(crate) fn poll_results(&self, waker: &Waker) -> Option<Vec<TaskResult>> {
        let mut inner = self.lock();
        let results = inner.results.take();
        if results.is_none() {
            inner.waker = Some(waker.clone());
        }
        results
    }

    /// Takes the results once they are there, waiting at most until
    /// `deadline`.
    pub(crate) fn take(&self, deadline: Option<Instant>) -> Option<Vec<TaskResult>> {
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

impl JobControl for JobState {
    fn is_cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }

    fn set_progress(&self, fraction: f64) {
        self.progress.set(fraction);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::sched::completions::Completions;
    use crate::sched::handle::TaskHandle;

    #[test]
    fn a_job_cancelled_before_it_starts_has_a_result_per_task() {
        let completions = Completions::new();
        let job = JobState::new(7, 3, Some((Arc::clone(&completions), 7)));
        let handle = TaskHandle::new(Arc::clone(&job));
        assert!(handle.cancel());
        // A worker that takes it off the queue finds it taken.
        assert!(!job.start());
        let results = handle.wait_all();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|result| {
            result
                .as_ref()
                .is_err_and(|error| error.kind() == crate::data::error::ErrorKind::Cancelled)
        }));
        let mut heard = VecDeque::new();
        assert!(completions.gather(1, None, &mut heard));
        assert_eq!(heard, [7]);
    }

    #[test]
    fn a_second_listener_hears_too() {
        let first = Completions::new();
        let second = Completions::new();
        let job = JobState::new(0, 1, Some((Arc::clone(&first), 1)));
        job.listen((Arc::clone(&second), 2));
        assert!(job.start());
        job.finish(cancelled(1));
        let mut heard = VecDeque::new();
        assert!(first.gather(1, None, &mut heard));
        assert!(second.gather(1, None, &mut heard));
        assert_eq!(heard, [1, 2]);
    }
}
