//! `map` and `map_unordered`: run a task over an iterator of inputs with a
//! bounded number in flight, reading inputs only as results are consumed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::completions::{Completions, Listener};
use crate::error::{ErrorKind, TaskError};
use crate::handle::TaskHandle;
use crate::ids::IdMap;
use crate::input::Input;
use crate::task::{Task, TaskResult, duration_of};

/// What a map submits to: a local pool or a cluster.
pub(crate) trait Submit {
    /// Queues a run of tasks as one job, claimed, run and finished
    /// together: its handle's slot holds one result per input, in order,
    /// and `listener` hears when all are in. Each input comes with its
    /// position in a map, if any (its default seed key). The run runs
    /// under the first input's limits or the pool's: a map queues an input
    /// with limits of its own alone. Hands the inputs back if the pool is
    /// shut down.
    fn submit_run(
        &self,
        task: &Task,
        inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>>;

    /// How many tasks run at once.
    fn workers(&self) -> usize;
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
    /// The same average, of runs of several tasks only.
    in_runs: Option<f64>,
}

impl RunSizer {
    /// A sizer starting from an average of `mean` seconds, if known.
    pub(crate) fn starting_at(mean: Option<f64>) -> RunSizer {
        RunSizer {
            mean_duration: mean,
            in_runs: None,
        }
    }

    /// The average task duration, in seconds, if a task has been seen.
    #[cfg(test)]
    pub(crate) fn mean(&self) -> Option<f64> {
        self.mean_duration
    }

    /// Where the task's next map should start: what its tasks took in runs
    /// of several, if any ran so, else the average. A map's first runs are
    /// of one task each, and a short map may have few others: a task alone
    /// takes several times what it takes in a run, and the next map, with
    /// the inputs at hand, sends runs.
    pub(crate) fn pace(&self) -> Option<f64> {
        self.in_runs.or(self.mean_duration)
    }

    /// Folds a finished run's tasks into the average: what each task adds
    /// to a run.
    ///
    /// The first task of a run pays for starting it (taking the kept
    /// instance, entering the call) and is often ten times its run-mates:
    /// folded in, it would swing the average after every run, and a map's
    /// first runs, of one task each, would leave it several times what its
    /// tasks take in runs, for the next map to start from. So a run of
    /// several counts as the mean of its other tasks, that many times over;
    /// a run of one, as its task.
    #[cfg(any(feature = "mpi", test))]
    pub(crate) fn observe(&mut self, results: &[TaskResult]) {
        self.fold(results, duration_of);
    }

    /// [`RunSizer::observe`], less the making of the run's instance: with
    /// instances kept, a run makes one (if any) for all its tasks, and the
    /// first runs of a map, which make them, would otherwise be sized as
    /// if every task did. (With a fresh instance per task, runs then hold
    /// more than [`RUN_TIME`] of work, by that share: tasks that make
    /// instances are not the tiny ones runs are for.)
    pub(crate) fn observe_running(&mut self, results: &[TaskResult]) {
        self.fold(results, |result| {
            let metrics = match result {
                Ok(output) => output.metrics(),
                Err(error) => error.metrics(),
            };
            duration_of(result).saturating_sub(metrics.instantiate)
        });
    }

    fn fold(&mut self, results: &[TaskResult], duration: impl Fn(&TaskResult) -> Duration) {
        let (results, several) = match results {
            [] => return,
            [one] => (std::slice::from_ref(one), false),
            [_first, rest @ ..] => (rest, true),
        };
        let total: Duration = results.iter().map(duration).sum();
        let run_mean = total.as_secs_f64() / results.len() as f64;
        // Each task moves the average a sixteenth of the way.
        let weight = 1.0 - (15.0f64 / 16.0).powi(results.len().min(1 << 16) as i32);
        let fold = |average: Option<f64>| {
            Some(match average {
                Some(mean) => mean + (run_mean - mean) * weight,
                None => run_mean,
            })
        };
        self.mean_duration = fold(self.mean_duration);
        if several {
            self.in_runs = fold(self.in_runs);
        }
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

/// A finished run's results, each moved out only when its turn comes.
type Results = std::vec::IntoIter<TaskResult>;

/// The tasks of one map in flight, fed from the inputs as room frees up.
struct Window<'p, I> {
    pool: &'p dyn Submit,
    task: Task,
    inputs: I,
    next_index: usize,
    limit: usize,
    /// The runs in flight, by the index of their first input.
    in_flight: IdMap<usize, TaskHandle>,
    /// How many tasks those runs hold.
    tasks_in_flight: usize,
    /// How many tasks have finished.
    completed: usize,
    /// Whether the sizer started from the task's last map.
    paced: bool,
    /// Whether reading an input never waits for long.
    read_ahead: bool,
    /// An input with limits of its own, read while a run was being made:
    /// it goes next, alone.
    held_back: Option<(usize, Input)>,
    /// Inputs the pool refused because it was shut down.
    refused: Vec<usize>,
    completions: Arc<Completions>,
    /// Runs announced and not yet taken, by the index of their first input.
    announced: VecDeque<usize>,
    on_complete: Option<OnComplete<'p>>,
    sizer: RunSizer,
}

impl<'p, I> Window<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    fn new(pool: &'p dyn Submit, task: Task, inputs: I, limit: usize) -> Self {
        let pace = task.pace.get();
        Window {
            pool,
            task,
            inputs,
            next_index: 0,
            limit,
            in_flight: IdMap::default(),
            tasks_in_flight: 0,
            completed: 0,
            held_back: None,
            refused: Vec::new(),
            completions: Completions::new(),
            announced: VecDeque::new(),
            on_complete: None,
            sizer: RunSizer::starting_at(pace),
            paced: pace.is_some(),
            read_ahead: false,
        }
    }

    /// How many inputs to queue as one run: see [`RunSizer`]; at most an
    /// eighth of the window, so that every worker keeps some. Inputs that
    /// trickle in go out one by one, as soon as they come: longer runs only
    /// while the workers are behind (each with 32 tasks waiting, or half
    /// the window in flight), or when the inputs are at hand: they say so
    /// ([`Map::read_ahead`]), or their size hint promises that many (exact
    /// for a collection).
    fn run_length(&self) -> usize {
        let length = self.sizer.length(self.limit / 8);
        let behind = (self.limit / 2).min(32 * self.pool.workers());
        if self.read_ahead || self.tasks_in_flight >= behind {
            length
        } else {
            length.min(self.inputs.size_hint().0).max(1)
        }
    }

    /// How many more tasks may be in flight. The first map of a task does
    /// not know whether it takes microseconds or minutes: it starts with
    /// two tasks a worker, which keeps every worker busy while their results
    /// say which, and lets four more in per task finished, so that the runs
    /// made meanwhile follow the average as it settles (the first runs, of
    /// one task each, take longer a task than runs do) rather than fill
    /// the window at its first value. A map after it starts from where the
    /// last ended.
    fn room(&self) -> usize {
        let limit = if self.paced {
            self.limit
        } else {
            self.limit.min(2 * self.pool.workers() + 4 * self.completed)
        };
        limit.saturating_sub(self.tasks_in_flight)
    }

    /// Submits inputs while fewer than `limit` are in flight and the next
    /// index is below `bound`, a run at a time.
    fn fill(&mut self, bound: usize) {
        loop {
            let room = self.room().min(bound.saturating_sub(self.next_index));
            let length = self.run_length();
            // Waiting for room for a whole run is safe while a task is in
            // flight: its completion makes more.
            if room == 0 || (room < length && !self.in_flight.is_empty()) {
                return;
            }
            let length = length.min(room);
            let first = self.next_index;
            let mut run = Vec::with_capacity(length);
            let mut exhausted = false;
            if let Some((index, input)) = self.held_back.take() {
                // Limits of its own: alone.
                self.next_index = index + 1;
                run.push((input, Some(index as u64)));
            } else {
                while run.len() < length {
                    let Some(input) = self.inputs.next() else {
                        exhausted = true;
                        break;
                    };
                    let input: Input = input.into();
                    let index = self.next_index;
                    let own_limits = input.limits.is_some();
                    if own_limits && !run.is_empty() {
                        // Limits of its own: a job of its own, next.
                        self.held_back = Some((index, input));
                        break;
                    }
                    self.next_index += 1;
                    run.push((input, Some(index as u64)));
                    if own_limits {
                        break;
                    }
                }
            }
            if !run.is_empty() {
                let tasks = run.len();
                let listener = (Arc::clone(&self.completions), first);
                match self.pool.submit_run(&self.task, run, Some(listener)) {
                    Ok(handle) => {
                        self.in_flight.insert(first, handle);
                        self.tasks_in_flight += tasks;
                    }
                    Err(_) => self.refused.extend(first..first + tasks),
                }
            }
            if exhausted {
                return;
            }
        }
    }

    /// How many results are still to come from this window and the
    /// `taken` results of its runs not yet handed out: one per input not
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

    /// The next run to finish among indices below `bound`, in completion
    /// order, with the index of its first input; `None` when the inputs are
    /// exhausted and all have finished. Its results stay in the run's
    /// vector until each is handed out: a run taken ahead of its turn is
    /// held whole, not copied result by result.
    fn next_run(&mut self, bound: usize) -> Option<(usize, Results)> {
        self.fill(bound);
        let (first, results) = if let Some(index) = self.refused.pop() {
            let error = TaskError::new(
                ErrorKind::Cancelled,
                "the pool was shut down before this task was queued",
            );
            (index, vec![Err(error)])
        } else if self.in_flight.is_empty() {
            return None;
        } else {
            if self.announced.is_empty() {
                // Half the runs at a time: one wake-up for many.
                let batch = self.in_flight.len() / 2;
                self.completions.gather(batch, None, &mut self.announced);
            }
            let first = self
                .announced
                .pop_front()
                .expect("a gather without deadline returns a completion");
            let handle = self
                .in_flight
                .remove(&first)
                .expect("only runs in flight announce their completion");
            let results = handle.wait_all();
            self.tasks_in_flight -= results.len();
            self.completed += results.len();
            self.sizer.observe_running(&results);
            if let Some(pace) = self.sizer.pace() {
                self.task.pace.set(pace);
            }
            (first, results)
        };
        if let Some(on_complete) = self.on_complete.as_mut() {
            for (offset, result) in results.iter().enumerate() {
                on_complete(first + offset, result);
            }
        }
        Some((first, results.into_iter()))
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
    /// What is left of the run `head` is in.
    current: Results,
    /// Runs finished ahead of their turn, by the index of their first
    /// input; never more results than the window, since no input at or
    /// past `head + limit` is read before `head`'s result is yielded.
    ready: IdMap<usize, Results>,
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
            current: Vec::new().into_iter(),
            ready: IdMap::default(),
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

    /// Says that reading an input never keeps the map waiting for long
    /// (the lines of a file, not of a pipe): the map then queues tiny
    /// tasks in runs from the start. Without it, it does so only for
    /// inputs whose size hint promises them (a collection), or once the
    /// workers fall behind: a run waits for its last input, which is no
    /// good for inputs that come one at a time.
    pub fn read_ahead(mut self) -> Self {
        self.window.read_ahead = true;
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
            if let Some(result) = self.current.next() {
                self.head += 1;
                return Some(result);
            }
            // Runs cover the indices one after another: the next starts
            // at `head`.
            if let Some(run) = self.ready.remove(&self.head) {
                self.current = run;
                continue;
            }
            // Reading only up to head + limit bounds the results held back
            // behind a slow task, not only the tasks in flight.
            let bound = self.head.saturating_add(self.window.limit);
            let (first, run) = self.window.next_run(bound)?;
            if first == self.head {
                self.current = run;
            } else {
                self.ready.insert(first, run);
            }
        }
    }

    /// Exact when the inputs' own hint is: one result per input.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let waiting = self.current.len() + self.ready.values().map(Results::len).sum::<usize>();
        self.window.size_hint(waiting)
    }
}

/// The results of [`Executor::map_unordered`](crate::Executor::map_unordered):
/// `(input index, result)` in the
/// order the tasks finish.
pub struct MapUnordered<'p, I> {
    window: Window<'p, I>,
    /// What is left of the last run taken, with the index of the next
    /// result's input.
    current: (usize, Results),
}

impl<'p, I> MapUnordered<'p, I>
where
    I: Iterator,
    I::Item: Into<Input>,
{
    pub(crate) fn new(pool: &'p dyn Submit, task: Task, inputs: I, limit: usize) -> Self {
        MapUnordered {
            window: Window::new(pool, task, inputs, limit),
            current: (0, Vec::new().into_iter()),
        }
    }

    /// As [`Map::read_ahead`].
    pub fn read_ahead(mut self) -> Self {
        self.window.read_ahead = true;
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
            self.current = self.window.next_run(usize::MAX)?;
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
    use crate::handle::Slot;
    use crate::metrics::Metrics;
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
        fn submit_run(
            &self,
            _task: &Task,
            inputs: Vec<(Input, Option<u64>)>,
            listener: Option<Listener>,
        ) -> Result<TaskHandle, Vec<Vec<u8>>> {
            self.runs.borrow_mut().push(inputs.len());
            let slot = Slot::new(0, inputs.len(), listener);
            assert!(slot.start());
            slot.finish(inputs.iter().map(|_| finished_in(self.took)).collect());
            Ok(TaskHandle::new(slot))
        }

        fn workers(&self) -> usize {
            2
        }
    }

    /// A task that succeeded after `took`.
    fn finished_in(took: Duration) -> TaskResult {
        Ok(TaskOutput {
            value: Default::default(),
            streams: None,
            worker: 0,
            attempts: 1,
            metrics: Metrics {
                run: took,
                ..Metrics::default()
            },
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

    /// Queues runs and leaves them queued: the test finishes them.
    #[derive(Default)]
    struct Queued {
        runs: RefCell<Vec<Arc<Slot>>>,
    }

    impl Submit for Queued {
        fn submit_run(
            &self,
            _task: &Task,
            inputs: Vec<(Input, Option<u64>)>,
            listener: Option<Listener>,
        ) -> Result<TaskHandle, Vec<Vec<u8>>> {
            let slot = Slot::new(0, inputs.len(), listener);
            self.runs.borrow_mut().push(Arc::clone(&slot));
            Ok(TaskHandle::new(slot))
        }

        fn workers(&self) -> usize {
            2
        }
    }

    impl Queued {
        /// The lengths of the runs queued so far.
        fn lengths(&self) -> Vec<usize> {
            self.runs.borrow().iter().map(|slot| slot.tasks()).collect()
        }

        /// Finishes every run queued so far, each task as if it took `took`.
        fn finish(&self, took: Duration) {
            for slot in self.runs.borrow().iter() {
                if slot.start() {
                    slot.finish((0..slot.tasks()).map(|_| finished_in(took)).collect());
                }
            }
        }
    }

    fn empty_task() -> Task {
        let pool = Pool::builder().workers(1).build().unwrap();
        pool.load_bytes(EMPTY_COMMAND).unwrap()
    }

    fn numbers(count: usize) -> impl Iterator<Item = String> {
        (0..count).map(|n| n.to_string())
    }

    #[test]
    fn a_first_map_starts_small_and_the_next_where_the_last_ended() {
        let task = empty_task();
        let queued = Queued::default();
        let mut window = Window::new(&queued, task.clone(), numbers(10_000), 1024);
        window.fill(usize::MAX);
        // Two tasks a worker, one by one: nothing says yet how long they take.
        assert_eq!(queued.lengths(), [1, 1, 1, 1]);
        queued.finish(Duration::from_micros(1));
        for _ in 0..4 {
            let (_, mut results) = window.next_run(usize::MAX).unwrap();
            results.next().unwrap().unwrap();
        }
        // Four more a task finished, now as one run of tiny tasks.
        window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [1, 1, 1, 1, 20]);
        assert_eq!(window.tasks_in_flight, 20);

        // The next map of the task knows: runs of a hundred microseconds
        // of work from the start, as many as the window holds whole.
        let next = Queued::default();
        let mut window = Window::new(&next, task, numbers(10_000), 1024);
        window.fill(usize::MAX);
        assert_eq!(next.lengths(), [100; 10]);
    }

    #[test]
    fn runs_that_finish_out_of_turn_are_handed_out_in_input_order() {
        let task = empty_task();
        task.pace.set(1e-6);
        let queued = Queued::default();
        let seen = RefCell::new(Vec::new());
        let mut map = Map::new(&queued, task, numbers(1000), 1024)
            .on_complete(|index, _| seen.borrow_mut().push(index));
        map.window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [100; 10]);
        // The last run finishes first, the first last; each result says
        // which input it is for.
        for (run, slot) in queued.runs.borrow().iter().enumerate().rev() {
            assert!(slot.start());
            let results = (0..100).map(|offset| {
                let mut result = finished_in(Duration::from_micros(1));
                if let Ok(output) = &mut result {
                    output.value = (run * 100 + offset).to_string().into();
                }
                result
            });
            slot.finish(results.collect());
        }
        let value = |result: TaskResult| -> usize {
            String::from_utf8(result.unwrap().into_value())
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(value(map.next().unwrap()), 0);
        // The runs ahead of their turn are held, whole, and counted.
        assert_eq!(map.size_hint(), (999, Some(999)));
        let rest: Vec<usize> = map.map(value).collect();
        assert_eq!(rest, (1..1000).collect::<Vec<_>>());
        // Each result was told as its run was taken, in the order the
        // runs finished.
        let seen = seen.into_inner();
        assert_eq!(seen[..100], (900..1000).collect::<Vec<_>>());
        assert_eq!(seen[900..], (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn inputs_without_a_size_hint_go_one_by_one_unless_they_are_at_hand() {
        let task = empty_task();
        task.pace.set(1e-6);
        // No size hint: the iterator might wait for each input.
        let trickling = || numbers(10_000).filter(|_| true);
        let queued = Queued::default();
        let mut window = Window::new(&queued, task.clone(), trickling(), 1024);
        window.fill(usize::MAX);
        // Alone until the workers fall behind (32 tasks each waiting).
        let lengths = queued.lengths();
        assert_eq!(lengths[..64], [1; 64]);
        assert_eq!(lengths[64], 100);

        let queued = Queued::default();
        let mut window = Window::new(&queued, task, trickling(), 1024);
        window.read_ahead = true;
        window.fill(usize::MAX);
        assert_eq!(queued.lengths()[0], 100);
    }

    #[test]
    fn an_input_with_limits_of_its_own_goes_alone() {
        let task = empty_task();
        task.pace.set(1e-6);
        let limits = crate::Limits::new().fuel(1000);
        let inputs = (0..300).map(|n| match n {
            4 | 5 => Input::new("x").limits(limits.clone()),
            _ => Input::new(n.to_string()),
        });
        let queued = Queued::default();
        let mut window = Window::new(&queued, task, inputs, 1024);
        window.fill(usize::MAX);
        assert_eq!(queued.lengths(), [4, 1, 1, 100, 100, 94]);
        let runs = queued.runs.borrow();
        assert!(runs.iter().all(|slot| slot.tasks() > 0));
        assert_eq!(window.in_flight.keys().copied().max(), Some(206));
    }

    #[test]
    fn a_run_is_about_a_hundred_microseconds_of_work() {
        let mut sizer = RunSizer::default();
        assert_eq!(sizer.length(32), 1);
        let output = |micros| finished_in(Duration::from_micros(micros));
        sizer.observe(&[output(10)]);
        assert_eq!(sizer.length(32), 10);
        assert_eq!(sizer.length(4), 4);
        for _ in 0..200 {
            sizer.observe(&[output(500)]);
        }
        assert_eq!(sizer.length(32), 1);

        // Runs are sized by running time: making an instance is not a
        // task's own work when instances are kept.
        let mut sizer = RunSizer::default();
        // 401 us in all, 400 of them making the instance.
        let mut first = finished_in(Duration::from_micros(1));
        if let Ok(output) = &mut first {
            output.metrics.instantiate = Duration::from_micros(400);
        }
        sizer.observe_running(std::slice::from_ref(&first));
        assert_eq!(sizer.length(500), 100);
        sizer.observe(&[first]);
        assert_eq!(sizer.length(500), 3);
    }

    /// The first task of a run pays for starting it: what the others take
    /// moves the average, whichever of them finished last.
    #[test]
    fn a_runs_slow_first_task_does_not_swing_the_average() {
        let output = |micros| finished_in(Duration::from_micros(micros));
        let mut sizer = RunSizer::starting_at(Some(3e-6));
        // 50 us to start the run, then tasks of 1 us; a slow one among
        // them counts as it is.
        let run: Vec<TaskResult> = std::iter::once(output(50))
            .chain((0..98).map(|_| output(1)))
            .chain([output(99)])
            .collect();
        sizer.observe(&run);
        let mean = sizer.mean().unwrap();
        assert!((mean - 1.99e-6).abs() < 0.01e-6, "{mean}");
        assert_eq!(sizer.length(1000), 50);
        // A run of one moves it a sixteenth of the way, as a task did.
        sizer.observe(&[output(50)]);
        let moved = sizer.mean().unwrap();
        assert!(
            (moved - (mean + (50e-6 - mean) / 16.0)).abs() < 1e-12,
            "{moved}"
        );
    }

    /// A short first map runs mostly tasks alone, which take several times
    /// what they take in runs: the next map starts from the runs'.
    #[test]
    fn the_next_map_starts_from_what_tasks_took_in_runs() {
        let output = |micros| finished_in(Duration::from_micros(micros));
        let mut sizer = RunSizer::default();
        assert_eq!(sizer.pace(), None);
        for _ in 0..8 {
            sizer.observe(&[output(5)]);
        }
        assert_eq!(sizer.pace(), sizer.mean());
        let run: Vec<TaskResult> = std::iter::once(output(20))
            .chain((0..20).map(|_| output(1)))
            .collect();
        sizer.observe(&run);
        sizer.observe(&[output(5)]);
        let pace = sizer.pace().unwrap();
        assert!((pace - 1e-6).abs() < 1e-12, "{pace}");
        assert!(sizer.mean().unwrap() > 1.2e-6, "{:?}", sizer.mean());
    }
}
