//! `map` and `map_unordered`: run a task over an iterator of inputs with a
//! bounded number in flight, reading inputs only as results are consumed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::completions::{Completions, Listener};
use crate::error::SubmitError;
use crate::error::{ErrorKind, TaskError};
use crate::handle::TaskHandle;
use crate::input::Input;
use crate::task::{Task, TaskResult};

/// What a map submits to: a local pool or a cluster.
pub(crate) trait Submit {
    /// Queues a task; `position` is its place in a map (its default seed
    /// key), `listener` hears of its completion.
    fn submit_with(
        &self,
        task: &Task,
        input: Input,
        position: Option<u64>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, SubmitError<Vec<u8>>>;
}

type OnComplete<'p> = Box<dyn FnMut(usize, &TaskResult) + 'p>;

/// The tasks of one map in flight, fed from the inputs as room frees up.
struct Window<'p, I> {
    pool: &'p dyn Submit,
    task: Task,
    inputs: I,
    next_index: usize,
    limit: usize,
    in_flight: HashMap<usize, TaskHandle>,
    /// Inputs the pool refused because it was shut down.
    refused: Vec<usize>,
    completions: Arc<Completions>,
    /// Announced and not yet handed out, in completion order.
    finished: VecDeque<usize>,
    on_complete: Option<OnComplete<'p>>,
}

impl<'p, I> Window<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    fn new(pool: &'p dyn Submit, task: Task, inputs: I, limit: usize) -> Self {
        Window {
            pool,
            task,
            inputs,
            next_index: 0,
            limit,
            in_flight: HashMap::with_capacity(limit),
            refused: Vec::new(),
            completions: Completions::new(),
            finished: VecDeque::new(),
            on_complete: None,
        }
    }

    /// Submits inputs while fewer than `limit` are in flight and the next
    /// index is below `bound`.
    fn fill(&mut self, bound: usize) {
        while self.in_flight.len() < self.limit && self.next_index < bound {
            let Some(input) = self.inputs.next() else {
                return;
            };
            let index = self.next_index;
            self.next_index += 1;
            let listener = Some((Arc::clone(&self.completions), index));
            let position = Some(index as u64);
            match self
                .pool
                .submit_with(&self.task, input.into(), position, listener)
            {
                Ok(handle) => {
                    self.in_flight.insert(index, handle);
                }
                Err(_) => self.refused.push(index),
            }
        }
    }

    /// The next task to finish among indices below `bound`, in completion
    /// order; `None` when the inputs are exhausted and all have finished.
    fn next_completion(&mut self, bound: usize) -> Option<(usize, TaskResult)> {
        self.fill(bound);
        let (index, result) = if let Some(index) = self.refused.pop() {
            let error = TaskError::new(
                ErrorKind::Cancelled,
                "the pool was shut down before this task was queued",
            );
            (index, Err(error))
        } else if self.in_flight.is_empty() {
            return None;
        } else {
            if self.finished.is_empty() {
                // Half the window at a time: one wake-up for many tasks.
                let batch = self.in_flight.len() / 2;
                self.completions.gather(batch, None, &mut self.finished);
            }
            let index = self
                .finished
                .pop_front()
                .expect("a gather without deadline returns a completion");
            let handle = self
                .in_flight
                .remove(&index)
                .expect("only tasks in flight announce their completion");
            (index, handle.wait())
        };
        if let Some(on_complete) = self.on_complete.as_mut() {
            on_complete(index, &result);
        }
        Some((index, result))
    }
}

impl<I> Drop for Window<'_, I> {
    fn drop(&mut self) {
        for handle in self.in_flight.values() {
            handle.cancel();
        }
    }
}

/// The results of [`Pool::map`], in input order.
pub struct Map<'p, I> {
    window: Window<'p, I>,
    head: usize,
    ready: BTreeMap<usize, TaskResult>,
}

impl<'p, I> Map<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    pub(crate) fn new(pool: &'p dyn Submit, task: Task, inputs: I, limit: usize) -> Self {
        Map {
            window: Window::new(pool, task, inputs, limit),
            head: 0,
            ready: BTreeMap::new(),
        }
    }

    /// Calls `on_complete(index, &result)` for each task as soon as it
    /// finishes, before the results ahead of it in input order are yielded:
    /// to show progress, or a task's output, while keeping the order.
    ///
    /// It runs on the thread that iterates, during `next`.
    pub fn on_complete(mut self, on_complete: impl FnMut(usize, &TaskResult) + 'p) -> Self {
        self.window.on_complete = Some(Box::new(on_complete));
        self
    }
}

impl<I> Iterator for Map<'_, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    type Item = TaskResult;

    fn next(&mut self) -> Option<TaskResult> {
        loop {
            if let Some(result) = self.ready.remove(&self.head) {
                self.head += 1;
                return Some(result);
            }
            // Reading only up to head + limit bounds the results held back
            // behind a slow task, not only the tasks in flight.
            let bound = self.head.saturating_add(self.window.limit);
            let (index, result) = self.window.next_completion(bound)?;
            self.ready.insert(index, result);
        }
    }
}

/// The results of [`Pool::map_unordered`]: `(input index, result)` in the
/// order the tasks finish.
pub struct MapUnordered<'p, I> {
    window: Window<'p, I>,
}

impl<'p, I> MapUnordered<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    pub(crate) fn new(pool: &'p dyn Submit, task: Task, inputs: I, limit: usize) -> Self {
        MapUnordered {
            window: Window::new(pool, task, inputs, limit),
        }
    }
}

impl<I> Iterator for MapUnordered<'_, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    type Item = (usize, TaskResult);

    fn next(&mut self) -> Option<(usize, TaskResult)> {
        self.window.next_completion(usize::MAX)
    }
}
