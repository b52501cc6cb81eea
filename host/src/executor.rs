//! One API over a local pool and a cluster: code written against
//! [`Executor`] runs on either without change.

use std::path::Path;
use std::sync::Arc;

use crate::data::error::{LoadError, SubmitError};
use crate::data::input::Input;
use crate::data::load_options::LoadOptions;
use crate::sched::completions::Listener;
use crate::sched::handle::TaskHandle;
use crate::sched::map::{JobQueue, Map, MapUnordered};
use crate::sched::sizer::AverageDuration;
use crate::sched::stats::Stats;
use crate::task::Task;

/// What runs tasks: a [`Pool`](crate::Pool) on this machine, or a `cluster::Cluster`
/// over MPI ranks (feature `mpi`).
///
/// ```no_run
/// use wasmpool::{Executor, LoadOptions, Pool};
///
/// fn squares(executor: &impl Executor) -> Vec<u64> {
///     let task = executor.load_with("square.wasm".as_ref(), &LoadOptions::new()).unwrap();
///     executor
///         .map(&task, ["1", "2", "3"])
///         .map(|result| result.unwrap().json().unwrap())
///         .collect()
/// }
/// # fn main() -> Result<(), wasmpool::BuildError> {
/// println!("{:?}", squares(&Pool::new()?));
/// # Ok(()) }
/// ```
pub trait Executor {
    /// Loads a task, a command program or a function to invoke (see
    /// [`Pool::load_with`](crate::Pool::load_with)).
    fn load_with(&self, path: &Path, options: &LoadOptions) -> Result<Task, LoadError>;

    /// Queues one run of `task` on `input` (see [`Pool::submit`](crate::Pool::submit)).
    fn submit_input(&self, task: &Task, input: Input) -> Result<TaskHandle, SubmitError<Vec<u8>>>;

    /// Results in input order, inputs read lazily (see [`Pool::map`](crate::Pool::map)).
    fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>;

    /// `(index, result)` as tasks finish (see [`Pool::map_unordered`](crate::Pool::map_unordered)).
    fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>;

    /// How many tasks can run at once.
    fn workers(&self) -> usize;

    /// Counters of what was submitted, runs and finished.
    fn stats(&self) -> Stats;

    /// Stops taking tasks (see [`Pool::shutdown`](crate::Pool::shutdown)).
    fn shutdown(&self, wait: bool, cancel_pending: bool);

    /// Stops taking tasks and cancels the queued ones; a local pool also
    /// stops the running ones (see [`Pool::shutdown_now`](crate::Pool::shutdown_now)).
    fn shutdown_now(&self);

    /// For a cluster: each worker rank and the seed keys (by default, the
    /// positions in their map) of the tasks it holds now, for saying what a
    /// rank that died took with it. Empty for a local pool.
    fn held(&self) -> Vec<(i32, Vec<u64>)> {
        Vec::new()
    }
}

/// How a pool or a cluster queues a job of `task`: what its maps submit
/// through.
pub(crate) trait Submit {
    /// Queues `inputs` as one job of `task` (see [`JobQueue::submit_job`]).
    fn submit_job(
        &self,
        task: &Task,
        inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>>;

    /// How many tasks run at once.
    fn workers(&self) -> usize;
}

/// One task's queue on a pool or a cluster: what a map of it submits to.
struct TaskQueue<'p> {
    executor: &'p dyn Submit,
    task: Task,
}

impl JobQueue for TaskQueue<'_> {
    fn submit_job(
        &self,
        inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>> {
        self.executor.submit_job(&self.task, inputs, listener)
    }

    fn workers(&self) -> usize {
        self.executor.workers()
    }
}

/// What a map of `task` on `executor` needs: the queue it submits to, and
/// the task's average duration, where it starts and what it leaves the
/// next map.
fn queue_of<'p>(
    executor: &'p dyn Submit,
    task: &Task,
) -> (Box<dyn JobQueue + 'p>, Arc<AverageDuration>) {
    let queue = TaskQueue {
        executor,
        task: task.clone(),
    };
    (Box::new(queue), Arc::clone(&task.pace))
}

/// A map of `task` over `inputs` on `executor`, at most `window` tasks in
/// flight: where [`Executor::map`] starts.
pub(crate) fn map<'p, I: Iterator>(
    executor: &'p dyn Submit,
    task: &Task,
    inputs: I,
    window: usize,
) -> Map<'p, I>
where
    I::Item: Into<Input>,
{
    let (queue, pace) = queue_of(executor, task);
    Map::new(queue, pace, inputs, window)
}

/// [`map`], yielding results as they finish: [`Executor::map_unordered`].
pub(crate) fn map_unordered<'p, I: Iterator>(
    executor: &'p dyn Submit,
    task: &Task,
    inputs: I,
    window: usize,
) -> MapUnordered<'p, I>
where
    I::Item: Into<Input>,
{
    let (queue, pace) = queue_of(executor, task);
    MapUnordered::new(queue, pace, inputs, window)
}
