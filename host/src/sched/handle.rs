//! The caller's end of a submitted task ([`TaskHandle`]): wait for the
//! result, poll it as a future, or cancel it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::data::output::TaskResult;
use crate::sched::job::JobState;

/// The one result of a job of one task.
fn only(results: Vec<TaskResult>) -> TaskResult {
    results
        .into_iter()
        .next()
        .expect("a submitted task's job has one result")
}

/// The caller's end of a submitted task.
///
/// Wait for the result with [`wait`](TaskHandle::wait), or `.await` the
/// handle: it is a [`Future`] that any async runtime can poll. Dropping the
/// handle does not cancel the task; [`cancel`](TaskHandle::cancel) does, if
/// it has not started.
pub struct TaskHandle {
    job: Arc<JobState>,
}

impl TaskHandle {
    pub(crate) fn new(job: Arc<JobState>) -> TaskHandle {
        TaskHandle { job }
    }

    pub(crate) fn job(&self) -> &Arc<JobState> {
        &self.job
    }

    /// The task's number, unique within its pool, in submission order.
    pub fn id(&self) -> u64 {
        self.job.id()
    }

    /// Whether the result is ready (the task succeeded, failed or was
    /// cancelled).
    pub fn is_finished(&self) -> bool {
        self.job.is_finished()
    }

    /// Whether a worker is running the task now.
    pub fn is_running(&self) -> bool {
        self.job.is_running()
    }

    /// Whether the task has finished with an error.
    pub fn is_failed(&self) -> bool {
        self.is_finished() && self.job.is_failed()
    }

    /// The last progress the guest reported, from 0.0 to 1.0, if any.
    pub fn progress(&self) -> Option<f64> {
        self.job.progress()
    }

    /// Cancels the task: one not started yet finishes at once as
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled); a running one
    /// is stopped within a few milliseconds, even while it waits in a host
    /// call, and finishes as cancelled unless it completed first. Returns
    /// false if the task had already finished.
    pub fn cancel(&self) -> bool {
        self.job.cancel()
    }

    /// Blocks until the task has finished and returns its result.
    pub fn wait(self) -> TaskResult {
        only(self.wait_all())
    }

    /// Blocks until the job has finished and returns its results, one per
    /// task in order.
    pub(crate) fn wait_all(self) -> Vec<TaskResult> {
        self.job
            .take(None)
            .expect("a wait without deadline returns a result")
    }

    /// Blocks at most `timeout` for the result; on time-out the handle is
    /// handed back to wait again.
    pub fn wait_timeout(self, timeout: Duration) -> Result<TaskResult, TaskHandle> {
        let deadline = Instant::now().checked_add(timeout);
        match self.job.take(deadline) {
            Some(results) => Ok(only(results)),
            None if deadline.is_none() => Ok(self.wait()),
            None => Err(self),
        }
    }
}

impl Future for TaskHandle {
    type Output = TaskResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskResult> {
        match self.job.poll_results(cx.waker()) {
            Some(results) => Poll::Ready(only(results)),
            None => Poll::Pending,
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
