//! Waiting on many handles at once: [`as_completed`] and [`wait`], after
//! `concurrent.futures`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sched::completions::Completions;
use crate::sched::handle::TaskHandle;

/// Yields the given handles as their tasks finish, each already finished.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = wasmpool::Pool::new()?;
/// let fib = pool.load("fib.wasm")?;
/// let handles = (20..30).map(|n| pool.submit(&fib, n.to_string()));
/// let handles = handles.collect::<Result<Vec<_>, _>>()?;
/// for handle in wasmpool::as_completed(handles) {
///     println!("task {} finished: {:?}", handle.id(), handle.wait());
/// }
/// # Ok(()) }
/// ```
pub fn as_completed(handles: impl IntoIterator<Item = TaskHandle>) -> AsCompleted {
    let completions = Completions::new();
    let handles: Vec<Option<TaskHandle>> = handles.into_iter().map(Some).collect();
    for (tag, handle) in handles.iter().enumerate() {
        if let Some(handle) = handle {
            handle.job().listen((Arc::clone(&completions), tag));
        }
    }
    AsCompleted {
        left: handles.len(),
        handles,
        completions,
        finished: VecDeque::new(),
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted {
    handles: Vec<Option<TaskHandle>>,
    completions: Arc<Completions>,
    finished: VecDeque<usize>,
    left: usize,
}

impl AsCompleted {
    /// The next handle to finish, waiting no later than `deadline`.
    fn next_before(&mut self, deadline: Option<Instant>) -> Option<TaskHandle> {
        if self.left == 0 {
            return None;
        }
        // One at a time: a caller of as_completed wants each as it comes.
        if self.finished.is_empty() && !self.completions.gather(1, deadline, &mut self.finished) {
            return None;
        }
        let tag = self.finished.pop_front()?;
        self.left -= 1;
        self.handles[tag].take()
    }

    /// The handles not yielded yet.
    fn into_rest(self) -> impl Iterator<Item = TaskHandle> {
        self.handles.into_iter().flatten()
    }
}

impl Iterator for AsCompleted {
    type Item = TaskHandle;

    fn next(&mut self) -> Option<TaskHandle> {
        self.next_before(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// When [`wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// As soon as any task finishes.
    FirstCompleted,
    /// As soon as any task fails, or when all have finished.
    FirstError,
    /// When all tasks have finished.
    AllCompleted,
}

/// The handles [`wait`] was given, split by whether their task finished.
#[derive(Debug)]
pub struct Waited {
    /// Finished tasks, first finished first.
    pub done: Vec<TaskHandle>,
    /// Tasks still queued or running.
    pub pending: Vec<TaskHandle>,
}

/// Blocks until the condition `until` holds for the given handles.
pub fn wait(handles: impl IntoIterator<Item = TaskHandle>, until: WaitFor) -> Waited {
    wait_until(handles, until, None)
}

/// Like [`wait`], but returns after `timeout` at the latest, with the
/// unfinished handles in `pending`.
pub fn wait_timeout(
    handles: impl IntoIterator<Item = TaskHandle>,
    until: WaitFor,
    timeout: Duration,
) -> Waited {
    wait_until(handles, until, Instant::now().checked_add(timeout))
}

fn wait_until(
    handles: impl IntoIterator<Item = TaskHandle>,
    until: WaitFor,
    deadline: Option<Instant>,
) -> Waited {
    let mut completed = as_completed(handles);
    let mut done = Vec::new();
    while let Some(handle) = completed.next_before(deadline) {
        let stop = match until {
            WaitFor::FirstCompleted => true,
            WaitFor::FirstError => handle.is_failed(),
            WaitFor::AllCompleted => false,
        };
        done.push(handle);
        if stop {
            break;
        }
    }
    // Tasks that finished meanwhile are done too.
    let (finished, pending): (Vec<_>, Vec<_>) =
        completed.into_rest().partition(TaskHandle::is_finished);
    done.extend(finished);
    Waited { done, pending }
}
