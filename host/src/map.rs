//! `map` and `map_unordered`: run a task over an iterator of inputs with a
//! bounded number in flight, reading inputs only as results are consumed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::completions::{Completions, Listener};
use crate::error::SubmitError;
use crate::error::{ErrorKind, TaskError};
use crate::handle::TaskHandle;
use crate::ids::IdMap;
use crate::input::Input;
use crate::task::{Task, TaskResult, duration_of};

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

    /// Queues a run of a map's inputs, each with its position and
    /// listener, pushing one handle (or refusal) per input onto `handles`
    /// in order. A pool may queue them as one job.
    fn submit_run(
        &self,
        task: &Task,
        inputs: Vec<(Input, Option<u64>, Listener)>,
        handles: &mut Vec<Result<TaskHandle, SubmitError<Vec<u8>>>>,
    ) {
        for (input, position, listener) in inputs {
            handles.push(self.submit_with(task, input, position, Some(listener)));
        }
    }
}

/// About how much work one queued run of tiny tasks carries.
const RUN_TIME: Duration = Duration::from_micros(100);

/// How many tasks to queue as one job. Tasks of a few microseconds cost
/// the pool more to hand out one by one (a queue entry, a closure, a
/// wake-up) than to run, so they go out in runs of about [`RUN_TIME`] of
/// work, by a moving average of how long the tasks took; a task of 100 us
/// or more, or one not yet seen, goes alone.
#[derive(Default)]
pub(crate) struct RunSizer {
    /// Seconds.
    mean_duration: Option<f64>,
}

impl RunSizer {
    /// Folds a finished task's duration into the average.
    pub(crate) fn observe(&mut self, result: &TaskResult) {
        let duration = duration_of(result).as_secs_f64();
        self.mean_duration = Some(match self.mean_duration {
            Some(mean) => mean + (duration - mean) / 16.0,
            None => duration,
        });
    }

    /// The run length now, between 1 and `max`.
    pub(crate) fn length(&self, max: usize) -> usize {
        self.tasks_in(RUN_TIME, max)
    }

    /// How many tasks take about `span` one after the other, between 1
    /// and `max`; 1 while no task has been seen.
    pub(crate) fn tasks_in(&self, span: Duration, max: usize) -> usize {
        match self.mean_duration {
            Some(mean) => {
                let tasks = (span.as_secs_f64() / mean.max(1e-9)) as usize;
                tasks.clamp(1, max.max(1))
            }
            None => 1,
        }
    }
}

type OnComplete<'p> = Box<dyn FnMut(usize, &TaskResult) + 'p>;

/// The tasks of one map in flight, fed from the inputs as room frees up.
struct Window<'p, I> {
    pool: &'p dyn Submit,
    task: Task,
    inputs: I,
    next_index: usize,
    limit: usize,
    in_flight: IdMap<usize, TaskHandle>,
    /// Inputs the pool refused because it was shut down.
    refused: Vec<usize>,
    completions: Arc<Completions>,
    /// Announced and not yet handed out, in completion order.
    finished: VecDeque<usize>,
    on_complete: Option<OnComplete<'p>>,
    sizer: RunSizer,
    /// Where each queued run's handles land; kept to reuse its buffer.
    handles: Vec<Result<TaskHandle, SubmitError<Vec<u8>>>>,
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
            in_flight: IdMap::with_capacity_and_hasher(limit, Default::default()),
            refused: Vec::new(),
            completions: Completions::new(),
            finished: VecDeque::new(),
            on_complete: None,
            sizer: RunSizer::default(),
            handles: Vec::new(),
        }
    }

    /// How many inputs to queue as one run: see [`RunSizer`]. Only while
    /// the workers are behind (half the window or more in flight), so that
    /// inputs that trickle in go out one by one, as soon as they come; at
    /// most an eighth of the window, so that every worker keeps some.
    fn run_length(&self) -> usize {
        if self.in_flight.len() >= self.limit / 2 {
            self.sizer.length(self.limit / 8)
        } else {
            1
        }
    }

    /// Submits inputs while fewer than `limit` are in flight and the next
    /// index is below `bound`, a run at a time.
    fn fill(&mut self, bound: usize) {
        loop {
            let room = (self.limit.saturating_sub(self.in_flight.len()))
                .min(bound.saturating_sub(self.next_index));
            let length = self.run_length();
            // Waiting for room for a whole run is safe while a task is in
            // flight: its completion makes more.
            if room == 0 || (room < length && !self.in_flight.is_empty()) {
                return;
            }
            let length = length.min(room);
            let first = self.next_index;
            let mut run = Vec::with_capacity(length);
            while run.len() < length {
                let Some(input) = self.inputs.next() else {
                    break;
                };
                let index = self.next_index;
                self.next_index += 1;
                let listener = (Arc::clone(&self.completions), index);
                run.push((input.into(), Some(index as u64), listener));
            }
            let exhausted = run.len() < length;
            if !run.is_empty() {
                self.pool.submit_run(&self.task, run, &mut self.handles);
            }
            for (index, handle) in (first..).zip(self.handles.drain(..)) {
                match handle {
                    Ok(handle) => {
                        self.in_flight.insert(index, handle);
                    }
                    Err(_) => self.refused.push(index),
                }
            }
            if exhausted {
                return;
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
            let result = handle.wait();
            self.sizer.observe(&result);
            (index, result)
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

/// The results of [`Executor::map`](crate::Executor::map), in input order.
pub struct Map<'p, I> {
    window: Window<'p, I>,
    /// The index of the next result to yield.
    head: usize,
    /// Results finished ahead of their turn, by index from `head`; never
    /// longer than the window, since no input at or past `head + limit` is
    /// read before `head`'s result is yielded.
    ready: VecDeque<Option<TaskResult>>,
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
            ready: VecDeque::new(),
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
            if let Some(Some(_)) = self.ready.front() {
                self.head += 1;
                return self.ready.pop_front().flatten();
            }
            // Reading only up to head + limit bounds the results held back
            // behind a slow task, not only the tasks in flight.
            let bound = self.head.saturating_add(self.window.limit);
            let (index, result) = self.window.next_completion(bound)?;
            let offset = index - self.head;
            if self.ready.len() <= offset {
                self.ready.resize_with(offset + 1, || None);
            }
            self.ready[offset] = Some(result);
        }
    }
}

/// The results of [`Executor::map_unordered`](crate::Executor::map_unordered):
/// `(input index, result)` in the
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;
    use crate::handle::Slot;
    use crate::pool::Pool;
    use crate::task::TaskOutput;

    /// The smallest core module a pool loads: a command whose `_start`
    /// does nothing. It only gives the map a [`Task`] to pass around.
    const EMPTY_COMMAND: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
        0x03, 0x02, 0x01, 0x00, // function 0 of type 0
        0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // body: end
    ];

    /// Finishes every task as it is queued, as if it took `took`, and
    /// records the length of each run queued.
    struct Immediate {
        took: Duration,
        runs: RefCell<Vec<usize>>,
    }

    impl Submit for Immediate {
        fn submit_with(
            &self,
            _task: &Task,
            _input: Input,
            _position: Option<u64>,
            listener: Option<Listener>,
        ) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
            let slot = Slot::new(0, listener);
            assert!(slot.start());
            slot.finish(finished_in(self.took));
            Ok(TaskHandle::new(slot))
        }

        fn submit_run(
            &self,
            task: &Task,
            inputs: Vec<(Input, Option<u64>, Listener)>,
            handles: &mut Vec<Result<TaskHandle, SubmitError<Vec<u8>>>>,
        ) {
            self.runs.borrow_mut().push(inputs.len());
            for (input, position, listener) in inputs {
                handles.push(self.submit_with(task, input, position, Some(listener)));
            }
        }
    }

    /// A task that succeeded after `took`.
    fn finished_in(took: Duration) -> TaskResult {
        Ok(TaskOutput {
            value: Vec::new(),
            stdout: Default::default(),
            stderr: Default::default(),
            duration: took,
            worker: 0,
            attempts: 1,
            metrics: Default::default(),
        })
    }

    fn runs_of(took: Duration) -> Vec<usize> {
        let pool = Pool::builder().workers(1).build().unwrap();
        let task = pool.load_bytes(EMPTY_COMMAND).unwrap();
        let submit = Immediate {
            took,
            runs: RefCell::new(Vec::new()),
        };
        let results = Map::new(&submit, task, (0..5000).map(|n| n.to_string()), 256);
        assert_eq!(results.count(), 5000);
        submit.runs.into_inner()
    }

    #[test]
    fn tiny_tasks_go_out_in_runs_and_long_ones_alone() {
        let tiny = runs_of(Duration::from_micros(1));
        assert_eq!(tiny.iter().sum::<usize>(), 5000);
        // One by one until a duration is known, then an eighth of the window.
        assert_eq!(tiny[0], 1);
        assert_eq!(tiny.iter().max(), Some(&32));
        assert!(tiny.len() < 500, "{} runs", tiny.len());

        let long = runs_of(Duration::from_millis(1));
        assert_eq!(long.len(), 5000);
        assert!(long.iter().all(|&length| length == 1));
    }

    #[test]
    fn a_run_is_about_a_hundred_microseconds_of_work() {
        let mut sizer = RunSizer::default();
        assert_eq!(sizer.length(32), 1);
        let output = |micros| finished_in(Duration::from_micros(micros));
        sizer.observe(&output(10));
        assert_eq!(sizer.length(32), 10);
        assert_eq!(sizer.length(4), 4);
        for _ in 0..200 {
            sizer.observe(&output(500));
        }
        assert_eq!(sizer.length(32), 1);
    }
}
