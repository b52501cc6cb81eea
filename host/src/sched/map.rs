//! `map` and `map_unordered`: job a task over an iterator of inputs with a
//! bounded number in flight, reading inputs only as results are consumed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::data::error::{ErrorKind, TaskError};
use crate::data::ids::IdMap;
use crate::data::input::Input;
use crate::data::output::{TaskResult, held_bytes};
use crate::sched::completions::{Completions, Listener};
use crate::sched::handle::TaskHandle;
use crate::sched::sizer::{AverageDuration, JobSizer};
use crate::sched::source::Source;

/// Where a map queues its jobs: its task's queue on a local pool or a
/// cluster.
pub(crate) trait JobQueue {
    /// Queues tasks as one job, claimed, job and finished together: its
    /// handle's job holds one result per input, in order, and `listener`
    /// hears when all are in. Each input comes with its position in a map,
    /// if any (its default seed key). The job jobs under the first input's
    /// limits or the pool's: a map queues an input with limits of its own
    /// alone. Hands the inputs back if the pool is shut down.
    fn submit_job(
        &self,
        inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>>;

    /// How many tasks job at once.
    fn workers(&self) -> usize;
}

impl<Q: JobQueue + ?Sized> JobQueue for &Q {
    fn submit_job(
        &self,
        inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>> {
        (**self).submit_job(inputs, listener)
    }

    fn workers(&self) -> usize {
        (**self).workers()
    }
}

type OnComplete<'p> = Box<dyn FnMut(usize, &TaskResult) + 'p>;

type OnWake<'p> = Box<dyn FnMut() + 'p>;

/// A finished job's results, each moved out only when its turn comes.
type Results = std::vec::IntoIter<TaskResult>;

/// A finished job, as [`Window::next_job`] hands it out.
struct Done {
    /// The index of its first input.
    first: usize,
    results: Results,
    /// The bytes of its inputs, which the caller may keep until their
    /// results are handed out (the CLI does, for their records).
    input_bytes: usize,
}

/// How much memory [`Map`] lets the results it holds for their turn take
/// by default: see [`Map::order_buffer`].
pub const DEFAULT_ORDER_BUFFER: usize = 64 << 20;

/// The tasks of one map in flight, fed from the inputs as room frees up.
struct Window<'p, I: Iterator> {
    queue: Box<dyn JobQueue + 'p>,
    /// The task's average duration: where this map starts, and what it
    /// leaves the next.
    pace: Arc<AverageDuration>,
    inputs: Source<I>,
    next_index: usize,
    limit: usize,
    /// The jobs in flight, by the index of their first input, with the
    /// bytes of their inputs.
    in_flight: IdMap<usize, (TaskHandle, usize)>,
    /// How many tasks those jobs hold.
    tasks_in_flight: usize,
    /// How many tasks have finished.
    completed: usize,
    /// Whether the sizer started from the task's last map.
    paced: bool,
    /// Whether reading an input never waits for long.
    read_ahead: bool,
    /// Tasks per job, when the caller chose ([`Map::chunk_size`]).
    chunk_size: Option<usize>,
    /// An input with limits of its own, read while a job was being made:
    /// it goes next, alone.
    held_back: Option<(usize, Input)>,
    /// Inputs the pool refused because it was shut down.
    refused: Vec<usize>,
    completions: Arc<Completions>,
    /// Jobs announced and not yet taken, by the index of their first input.
    announced: VecDeque<usize>,
    /// Set by a [`MapStop`]: no more inputs are read.
    stopped: Arc<AtomicBool>,
    on_complete: Option<OnComplete<'p>>,
    on_wake: Option<OnWake<'p>>,
    sizer: JobSizer,
}

impl<'p, I> Window<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    fn new(
        queue: Box<dyn JobQueue + 'p>,
        pace: Arc<AverageDuration>,
        inputs: I,
        limit: usize,
    ) -> Self {
        let start = pace.get();
        Window {
            queue,
            pace,
            inputs: Source::Here(inputs),
            next_index: 0,
            limit,
            in_flight: IdMap::default(),
            tasks_in_flight: 0,
            completed: 0,
            held_back: None,
            refused: Vec::new(),
            completions: Completions::new(),
            announced: VecDeque::new(),
            stopped: Arc::default(),
            on_complete: None,
            on_wake: None,
            sizer: JobSizer::starting_at(start),
            paced: start.is_some(),
            read_ahead: false,
            chunk_size: None,
        }
    }

    fn stopper(&self) -> MapStop {
        MapStop {
            stopped: Arc::clone(&self.stopped),
            completions: Arc::clone(&self.completions),
        }
    }

    fn read_in_background(&mut self) -> std::io::Result<()>
    where
        I: Send + 'static,
        I::Item: Send + 'static,
    {
        self.inputs
            .read_in_background(self.limit, &self.completions)
    }

    /// How many inputs to queue as one job: see [`JobSizer`]; at most an
    /// eighth of the window, so that every worker keeps some. Inputs that
    /// trickle in go out one by one, as soon as they come: longer jobs only
    /// while the workers are behind (each with 32 tasks waiting, or half
    /// the window in flight), or when the inputs are at hand: they say so
    /// ([`Map::read_ahead`]), or their size hint promises that many (exact
    /// for a collection).
    fn job_length(&self) -> usize {
        if let Some(size) = self.chunk_size {
            return size;
        }
        let length = self.sizer.length(self.limit / 8);
        let behind = (self.limit / 2).min(32 * self.queue.workers());
        if self.read_ahead || self.tasks_in_flight >= behind {
            length
        } else {
            length.min(self.inputs.size_hint().0).max(1)
        }
    }

    /// How many more tasks may be in flight. The first map of a task does
    /// not know whether it takes microseconds or minutes: it starts with
    /// two tasks a worker, which keeps every worker busy while their results
    /// say which, and lets four more in per task finished, so that the jobs
    /// made meanwhile follow the average as it settles (the first jobs, of
    /// one task each, take longer a task than jobs do) rather than fill
    /// the window at its first value. A map after it starts from where the
    /// last ended.
    fn room(&self) -> usize {
        let limit = if self.paced || self.chunk_size.is_some() {
            self.limit
        } else {
            self.limit
                .min(2 * self.queue.workers() + 4 * self.completed)
        };
        limit.saturating_sub(self.tasks_in_flight)
    }

    /// Submits inputs while fewer than `limit` are in flight and the next
    /// index is below `bound`, a job at a time.
    fn fill(&mut self, bound: usize) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        loop {
            let room = self.room().min(bound.saturating_sub(self.next_index));
            let length = self.job_length();
            // Waiting for room for a whole job is safe while a task is in
            // flight: its completion makes more.
            if room == 0 || (room < length && !self.in_flight.is_empty()) {
                return;
            }
            let length = length.min(room);
            let first = self.next_index;
            let mut job = Vec::with_capacity(length);
            // The inputs ended, or none is at hand for now.
            let mut stop = false;
            if let Some((index, input)) = self.held_back.take() {
                // Limits of its own: alone.
                self.next_index = index + 1;
                job.push((input, Some(index as u64)));
            } else {
                while job.len() < length {
                    let Some(input) = self.inputs.fetch() else {
                        stop = true;
                        break;
                    };
                    let input: Input = input.into();
                    let index = self.next_index;
                    let own_limits = input.limits.is_some();
                    if own_limits && !job.is_empty() {
                        // Limits of its own: a job of its own, next.
                        self.held_back = Some((index, input));
                        break;
                    }
                    self.next_index += 1;
                    job.push((input, Some(index as u64)));
                    if own_limits {
                        break;
                    }
                }
            }
            if !job.is_empty() {
                let tasks = job.len();
                let input_bytes = job.iter().map(|(input, _)| input.bytes.len()).sum();
                let listener = (Arc::clone(&self.completions), first);
                match self.queue.submit_job(job, Some(listener)) {
                    Ok(handle) => {
                        self.in_flight.insert(first, (handle, input_bytes));
                        self.tasks_in_flight += tasks;
                    }
                    Err(_) => self.refused.extend(first..first + tasks),
                }
            }
            if stop {
                return;
            }
        }
    }

    /// How many results are still to come from this window and the
    /// `taken` results of its jobs not yet handed out: one per input not
    /// yet read, and one per task read and not yet handed out.
    fn size_hint(&self, taken: usize) -> (usize, Option<usize>) {
        let read = self.tasks_in_flight
            + self.refused.len()
            + usize::from(self.held_back.is_some())
            + taken;
        let (lower, upper) = self.inputs.size_hint();
        (
            lower.saturating_add(read),
            upper.and_then(|upper| upper.checked_add(read)),
        )
    }

    /// After a wake-up without a completion: an input came in the
    /// background, the inputs ended, or a [`MapStop`] woke the map.
    fn woken(&mut self) {
        if let Some(on_wake) = self.on_wake.as_mut() {
            on_wake();
        }
    }

    /// The next job to finish among indices below `bound`, in completion
    /// order, with the index of its first input; `None` when the inputs are
    /// exhausted and all have finished. Its results stay in the job's
    /// vector until each is handed out: a job taken ahead of its turn is
    /// held whole, not copied result by result.
    fn next_job(&mut self, bound: usize) -> Option<Done> {
        let (first, results, input_bytes) = loop {
            self.fill(bound);
            if let Some(index) = self.refused.pop() {
                let error = TaskError::new(
                    ErrorKind::Cancelled,
                    "the pool was shut down before this task was queued",
                );
                break (index, vec![Err(error)], 0);
            }
            if self.in_flight.is_empty() {
                if !self.inputs.may_come() || self.stopped.load(Ordering::SeqCst) {
                    return None;
                }
                // Nothing in flight and no input at hand: sleep until one
                // comes (or the inputs end), which pokes.
                self.completions.gather(1, None, &mut self.announced);
                self.woken();
                continue;
            }
            if self.announced.is_empty() {
                // Half the jobs at a time: one wake-up for many.
                let batch = self.in_flight.len() / 2;
                self.completions.gather(batch, None, &mut self.announced);
            }
            // Without a completion, the gather was woken by an input.
            let Some(first) = self.announced.pop_front() else {
                self.woken();
                continue;
            };
            let (handle, input_bytes) = self
                .in_flight
                .remove(&first)
                .expect("only jobs in flight announce their completion");
            let results = handle.wait_all();
            self.tasks_in_flight -= results.len();
            self.completed += results.len();
            self.sizer.observe_running(&results);
            if let Some(average) = self.sizer.for_next_map() {
                self.pace.set(average);
            }
            break (first, results, input_bytes);
        };
        if let Some(on_complete) = self.on_complete.as_mut() {
            for (offset, result) in results.iter().enumerate() {
                on_complete(first + offset, result);
            }
        }
        Some(Done {
            first,
            results: results.into_iter(),
            input_bytes,
        })
    }
}

impl<I: Iterator> Drop for Window<'_, I> {
    fn drop(&mut self) {
        for (handle, _) in self.in_flight.values() {
            handle.cancel();
        }
    }
}

/// Stops a map from another thread ([`Map::stopper`]): it reads no more
/// inputs, and ends once the tasks it has in flight have finished, even
/// while its inputs, read in the background, keep it waiting for the next.
#[derive(Clone)]
pub struct MapStop {
    stopped: Arc<AtomicBool>,
    completions: Arc<Completions>,
}

impl MapStop {
    /// Stops the map; its iterator wakes if it waits.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.completions.poke();
    }

    /// Wakes the map's iterator, at once if it waits, else the next time
    /// it would, to call its [`Map::on_wake`] hook: for news the hook
    /// hands out that is not a task's result.
    pub fn wake(&self) {
        self.completions.poke();
    }
}

/// The results of [`Executor::map`](crate::Executor::map), in input order.
pub struct Map<'p, I: Iterator> {
    window: Window<'p, I>,
    /// The index of the next result to yield.
    head: usize,
    /// What is left of the job `head` is in.
    current: Results,
    /// Jobs finished ahead of their turn, by the index of their first
    /// input, with the memory each holds (its results and its inputs).
    ready: IdMap<usize, (Results, usize)>,
    /// The memory the jobs in `ready` hold.
    held: usize,
    /// How much they may hold before the map stops reading past the window
    /// ahead of `head`.
    order_buffer: usize,
    /// Whether the map stops reading for now because `ready` is full.
    buffer_full: bool,
    /// How many times it stopped so.
    buffer_filled: usize,
}

impl<'p, I> Map<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    pub(crate) fn new(
        queue: Box<dyn JobQueue + 'p>,
        pace: Arc<AverageDuration>,
        inputs: I,
        limit: usize,
    ) -> Self {
        Map {
            window: Window::new(queue, pace, inputs, limit),
            head: 0,
            current: Vec::new().into_iter(),
            ready: IdMap::default(),
            held: 0,
            order_buffer: DEFAULT_ORDER_BUFFER,
            buffer_full: false,
            buffer_filled: 0,
        }
    }

    /// How much memory, in bytes, the results that finished ahead of their
    /// turn may hold while they wait for it (counted with the inputs they
    /// came from; default [`DEFAULT_ORDER_BUFFER`], 64 MiB). Below it the
    /// map keeps reading inputs and running tasks past one that is slow,
    /// as far as it has room in flight, so that a slow task costs its own
    /// time, not every worker's; once the held results fill it, it reads
    /// only inputs within the window of the one awaited (the window
    /// [`PoolBuilder::map_window`](crate::PoolBuilder::map_window) sets)
    /// until that result is handed out. 0 keeps to the window always.
    pub fn order_buffer(mut self, bytes: usize) -> Self {
        self.order_buffer = bytes;
        self
    }

    /// How many times the held results filled the order buffer, so that
    /// the map stopped running ahead of a slow task: some workers may have
    /// waited. 0 if they never did.
    pub fn order_buffer_filled(&self) -> usize {
        self.buffer_filled
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

    /// Calls `on_wake()` each time the map, waiting in `next`, wakes
    /// without a result: when an input read in the background comes, when
    /// the inputs end, and on [`MapStop::wake`]. The CLI writes there the
    /// record of an input it refused, which has no task to wait for.
    ///
    /// It runs on the thread that iterates, during `next`.
    pub fn on_wake(mut self, on_wake: impl FnMut() + 'p) -> Self {
        self.window.on_wake = Some(Box::new(on_wake));
        self
    }

    /// Says that reading an input never keeps the map waiting for long
    /// (the lines of a file, not of a pipe): the map then queues tiny
    /// tasks in jobs from the start. Without it, it does so only for
    /// inputs whose size hint promises them (a collection), or once the
    /// workers fall behind: a job waits for its last input, which is no
    /// good for inputs that come one at a time.
    pub fn read_ahead(mut self) -> Self {
        self.window.read_ahead = true;
        self
    }

    /// A handle that stops this map from another thread: on Ctrl-C, say,
    /// while the map waits for an input that may never come.
    pub fn stopper(&self) -> MapStop {
        self.window.stopper()
    }

    /// Reads the inputs on a thread of their own, for inputs whose `next`
    /// may wait (the lines of a pipe, requests from a socket): a result is
    /// then handed out as soon as it is ready (in input order, as soon as
    /// every earlier one is), whether or not the next input has come. The
    /// thread reads ahead at most as many inputs as the map keeps in
    /// flight, and ends with the inputs, or at the first one it reads
    /// after the map is dropped. Fails only if the thread cannot start.
    pub fn background(mut self) -> std::io::Result<Self>
    where
        I: Send + 'static,
        I::Item: Send + 'static,
    {
        self.window.read_in_background()?;
        Ok(self)
    }

    /// Queues the inputs in jobs of `tasks` (at least 1) instead of sizing
    /// jobs by how long tasks take, as `ProcessPoolExecutor.map`'s
    /// `chunksize` does: a job's tasks run back to back on one worker,
    /// and, with instances reused, in one call of a component's
    /// `run-batch`. Each task still succeeds or fails on its own.
    pub fn chunk_size(mut self, tasks: usize) -> Self {
        self.window.chunk_size = Some(tasks.max(1));
        self
    }
}

impl<I: Iterator> Map<'_, I> {
    /// The index below which inputs may be read now: any while the results
    /// held for their turn fit the order buffer, else only those within
    /// the window of the one awaited, which bounds the results held behind
    /// a slow task, not only the tasks in flight.
    fn read_bound(&mut self) -> usize {
        if self.held < self.order_buffer {
            self.buffer_full = false;
            return usize::MAX;
        }
        let bound = self.head.saturating_add(self.window.limit);
        if !self.buffer_full && self.window.next_index >= bound {
            self.buffer_full = true;
            self.buffer_filled += 1;
        }
        bound
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
            if let Some(result) = self.current.next() {
                self.head += 1;
                return Some(result);
            }
            // Jobs cover the indices one after another: the next starts
            // at `head`.
            if let Some((job, held)) = self.ready.remove(&self.head) {
                self.held -= held;
                self.current = job;
                continue;
            }
            let bound = self.read_bound();
            let done = self.window.next_job(bound)?;
            if done.first == self.head {
                self.current = done.results;
            } else {
                let held = done.input_bytes
                    + done
                        .results
                        .as_slice()
                        .iter()
                        .map(held_bytes)
                        .sum::<usize>();
                self.held += held;
                self.ready.insert(done.first, (done.results, held));
            }
        }
    }

    /// Exact when the inputs' own hint is: one result per input.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let waiting = self.current.len()
            + (self.ready.values())
                .map(|(results, _)| results.len())
                .sum::<usize>();
        self.window.size_hint(waiting)
    }
}

/// The results of [`Executor::map_unordered`](crate::Executor::map_unordered):
/// `(input index, result)` in the
/// order the tasks finish.
pub struct MapUnordered<'p, I: Iterator> {
    window: Window<'p, I>,
    /// What is left of the last job taken, with the index of the next
    /// result's input.
    current: (usize, Results),
}

impl<'p, I> MapUnordered<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    pub(crate) fn new(
        queue: Box<dyn JobQueue + 'p>,
        pace: Arc<AverageDuration>,
        inputs: I,
        limit: usize,
    ) -> Self {
        MapUnordered {
            window: Window::new(queue, pace, inputs, limit),
            current: (0, Vec::new().into_iter()),
        }
    }

    /// As [`Map::on_wake`].
    pub fn on_wake(mut self, on_wake: impl FnMut() + 'p) -> Self {
        self.window.on_wake = Some(Box::new(on_wake));
        self
    }

    /// As [`Map::read_ahead`].
    pub fn read_ahead(mut self) -> Self {
        self.window.read_ahead = true;
        self
    }

    /// As [`Map::stopper`].
    pub fn stopper(&self) -> MapStop {
        self.window.stopper()
    }

    /// As [`Map::background`].
    pub fn background(mut self) -> std::io::Result<Self>
    where
        I: Send + 'static,
        I::Item: Send + 'static,
    {
        self.window.read_in_background()?;
        Ok(self)
    }

    /// As [`Map::chunk_size`].
    pub fn chunk_size(mut self, tasks: usize) -> Self {
        self.window.chunk_size = Some(tasks.max(1));
        self
    }
}

impl<I> Iterator for MapUnordered<'_, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    type Item = (usize, TaskResult);

    fn next(&mut self) -> Option<(usize, TaskResult)> {
        loop {
            let (index, results) = &mut self.current;
            if let Some(result) = results.next() {
                *index += 1;
                return Some((*index - 1, result));
            }
            let done = self.window.next_job(usize::MAX)?;
            self.current = (done.first, done.results);
        }
    }

    /// Exact when the inputs' own hint is: one result per input.
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.window.size_hint(self.current.1.len())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;
    use crate::data::output::finished_in;
    use crate::sched::job::JobState;

    /// Finishes every task as it is queued, as if it took `took`, and
    /// records the length of each job queued.
    struct Immediate {
        took: Duration,
        jobs: RefCell<Vec<usize>>,
    }

    impl JobQueue for Immediate {
        fn submit_job(
            &self,
            inputs: Vec<(Input, Option<u64>)>,
            listener: Option<Listener>,
        ) -> Result<TaskHandle, Vec<Vec<u8>>> {
            self.jobs.borrow_mut().push(inputs.len());
            let state = JobState::new(0, inputs.len(), listener);
            assert!(state.start());
            state.finish(inputs.iter().map(|_| finished_in(self.took)).collect());
            Ok(TaskHandle::new(state))
        }

        fn workers(&self) -> usize {
            2
        }
    }

    fn jobs_of(took: Duration) -> Vec<usize> {
        let submit = Immediate {
            took,
            jobs: RefCell::new(Vec::new()),
        };
        let inputs = (0..5000).map(|n| n.to_string());
        let results = Map::new(Box::new(&submit), Arc::default(), inputs, 256);
        assert_eq!(results.count(), 5000);
        submit.jobs.into_inner()
    }

    #[test]
    fn tiny_tasks_go_out_in_jobs_and_long_ones_alone() {
        let tiny = jobs_of(Duration::from_micros(1));
        assert_eq!(tiny.iter().sum::<usize>(), 5000);
        // One by one until a duration is known, then an eighth of the window.
        assert_eq!(tiny[0], 1);
        assert_eq!(tiny.iter().max(), Some(&32));
        assert!(tiny.len() < 500, "{} jobs", tiny.len());

        let long = jobs_of(Duration::from_millis(1));
        assert_eq!(long.len(), 5000);
        assert!(long.iter().all(|&length| length == 1));
    }

    /// Queues jobs and leaves them queued: the test finishes them.
    #[derive(Default)]
    struct Queued {
        jobs: RefCell<Vec<Arc<JobState>>>,
    }

    impl JobQueue for Queued {
        fn submit_job(
            &self,
            inputs: Vec<(Input, Option<u64>)>,
            listener: Option<Listener>,
        ) -> Result<TaskHandle, Vec<Vec<u8>>> {
            let state = JobState::new(0, inputs.len(), listener);
            self.jobs.borrow_mut().push(Arc::clone(&state));
            Ok(TaskHandle::new(state))
        }

        fn workers(&self) -> usize {
            2
        }
    }

    impl Queued {
        /// The lengths of the jobs queued so far.
        fn lengths(&self) -> Vec<usize> {
            self.jobs
                .borrow()
                .iter()
                .map(|state| state.tasks())
                .collect()
        }

        /// Finishes every job queued so far, each task as if it took `took`.
        fn finish(&self, took: Duration) {
            for state in self.jobs.borrow().iter() {
                if state.start() {
                    state.finish((0..state.tasks()).map(|_| finished_in(took)).collect());
                }
            }
        }
    }

    /// The pace of a task whose tasks took `seconds` in its last map.
    fn paced(seconds: f64) -> Arc<AverageDuration> {
        let pace = Arc::<AverageDuration>::default();
        pace.set(seconds);
        pace
    }

    fn numbers(count: usize) -> impl Iterator<Item = String> {
        (0..count).map(|n| n.to_string())
    }

    #[test]
    fn a_first_map_starts_small_and_the_next_where_the_last_ended() {
        let pace = Arc::<AverageDuration>::default();
        let queued = Queued::default();
        let mut window = Window::new(Box::new(&queued), Arc::clone(&pace), numbers(10_000), 1024);
        window.fill(usize::MAX);
        // Two tasks a worker, one by one: nothing says yet how long they take.
        assert_eq!(queued.lengths(), [1, 1, 1, 1]);
        queued.finish(Duration::from_micros(1));
        for _ in 0..4 {
            let mut results = window.next_job(usize::MAX).unwrap().results;
            results.next().unwrap().unwrap();
        }
        // Four more a task finished, now as one job of tiny tasks.
        window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [1, 1, 1, 1, 20]);
        assert_eq!(window.tasks_in_flight, 20);

        // The next map of the task knows: jobs of a hundred microseconds
        // of work from the start, as many as the window holds whole.
        let next = Queued::default();
        let mut window = Window::new(Box::new(&next), pace, numbers(10_000), 1024);
        window.fill(usize::MAX);
        assert_eq!(next.lengths(), [100; 10]);
    }

    #[test]
    fn jobs_that_finish_out_of_turn_are_handed_out_in_input_order() {
        let queued = Queued::default();
        let seen = RefCell::new(Vec::new());
        let mut map = Map::new(Box::new(&queued), paced(1e-6), numbers(1000), 1024)
            .on_complete(|index, _| seen.borrow_mut().push(index));
        map.window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [100; 10]);
        // The last job finishes first, the first last; each result says
        // which input it is for.
        for (job, state) in queued.jobs.borrow().iter().enumerate().rev() {
            assert!(state.start());
            let results = (0..100).map(|offset| {
                let mut result = finished_in(Duration::from_micros(1));
                if let Ok(output) = &mut result {
                    output.value = (job * 100 + offset).to_string().into();
                }
                result
            });
            state.finish(results.collect());
        }
        let value = |result: TaskResult| -> usize {
            String::from_utf8(result.unwrap().into_value())
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(value(map.next().unwrap()), 0);
        // The jobs ahead of their turn are held, whole, and counted.
        assert_eq!(map.size_hint(), (999, Some(999)));
        let rest: Vec<usize> = map.map(value).collect();
        assert_eq!(rest, (1..1000).collect::<Vec<_>>());
        // Each result was told as its job was taken, in the order the
        // jobs finished.
        let seen = seen.into_inner();
        assert_eq!(seen[..100], (900..1000).collect::<Vec<_>>());
        assert_eq!(seen[900..], (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn inputs_without_a_size_hint_go_one_by_one_unless_they_are_at_hand() {
        // No size hint: the iterator might wait for each input.
        let trickling = || numbers(10_000).filter(|_| true);
        let queued = Queued::default();
        let mut window = Window::new(Box::new(&queued), paced(1e-6), trickling(), 1024);
        window.fill(usize::MAX);
        // Alone until the workers fall behind (32 tasks each waiting).
        let lengths = queued.lengths();
        assert_eq!(lengths[..64], [1; 64]);
        assert_eq!(lengths[64], 100);

        let queued = Queued::default();
        let mut window = Window::new(Box::new(&queued), paced(1e-6), trickling(), 1024);
        window.read_ahead = true;
        window.fill(usize::MAX);
        assert_eq!(queued.lengths()[0], 100);
    }

    #[test]
    fn an_input_with_limits_of_its_own_goes_alone() {
        let limits = crate::data::limits::Limits::new().fuel(1000);
        let inputs = (0..300).map(|n| match n {
            4 | 5 => Input::new("x").limits(limits.clone()),
            _ => Input::new(n.to_string()),
        });
        let queued = Queued::default();
        let mut window = Window::new(Box::new(&queued), paced(1e-6), inputs, 1024);
        window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [4, 1, 1, 100, 100, 94]);
        let jobs = queued.jobs.borrow();
        assert!(jobs.iter().all(|state| state.tasks() > 0));
        assert_eq!(window.in_flight.keys().copied().max(), Some(206));
    }

    #[test]
    fn a_chosen_chunk_size_makes_every_job_but_the_last_that_long() {
        let queued = Queued::default();
        let map = Map::new(Box::new(&queued), Arc::default(), numbers(1000), 2048).chunk_size(300);
        let mut window = map.window;
        window.fill(usize::MAX);
        // From the first job on, whatever the task's pace.
        assert_eq!(queued.lengths(), [300, 300, 300, 100]);
    }
}
