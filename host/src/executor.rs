//! One API over a local pool and a cluster: code written against
//! [`Executor`] runs on either without change.

use std::path::Path;

use crate::error::{LoadError, SubmitError};
use crate::handle::TaskHandle;
use crate::input::Input;
use crate::map::{Map, MapUnordered};
use crate::pool::Pool;
use crate::stats::Stats;
use crate::task::{LoadOptions, Task};

/// What runs tasks: a [`Pool`] on this machine, or a `cluster::Cluster`
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
    /// [`Pool::load_with`]).
    fn load_with(&self, path: &Path, options: &LoadOptions) -> Result<Task, LoadError>;

    /// Queues one run of `task` on `input` (see [`Pool::submit`]).
    fn submit_input(&self, task: &Task, input: Input) -> Result<TaskHandle, SubmitError<Vec<u8>>>;

    /// Results in input order, inputs read lazily (see [`Pool::map`]).
    fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>;

    /// `(index, result)` as tasks finish (see [`Pool::map_unordered`]).
    fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>;

    /// How many tasks can run at once.
    fn workers(&self) -> usize;

    /// Counters of what was submitted, runs and finished.
    fn stats(&self) -> Stats;

    /// Stops taking tasks (see [`Pool::shutdown`]).
    fn shutdown(&self, wait: bool, cancel_pending: bool);

    /// Stops taking tasks and cancels the queued ones; a local pool also
    /// stops the running ones (see [`Pool::shutdown_now`]).
    fn shutdown_now(&self);

    /// For a cluster: each worker rank and the seed keys (by default, the
    /// positions in their map) of the tasks it holds now, for saying what a
    /// rank that died took with it. Empty for a local pool.
    fn held(&self) -> Vec<(i32, Vec<u64>)> {
        Vec::new()
    }
}

impl Executor for Pool {
    fn load_with(&self, path: &Path, options: &LoadOptions) -> Result<Task, LoadError> {
        Pool::load_with(self, path, options)
    }

    fn submit_input(&self, task: &Task, input: Input) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        Pool::submit(self, task, input)
    }

    fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        Pool::map(self, task, inputs)
    }

    fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        Pool::map_unordered(self, task, inputs)
    }

    fn workers(&self) -> usize {
        Pool::workers(self)
    }

    fn stats(&self) -> Stats {
        Pool::stats(self)
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        Pool::shutdown(self, wait, cancel_pending);
    }

    fn shutdown_now(&self) {
        Pool::shutdown_now(self);
    }
}
