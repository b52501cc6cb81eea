//! The pool: worker threads plus the wasm runtime, and the calls a user
//! makes: load, submit, map, shutdown.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BuildError, LoadError, LoadErrorKind, SubmitError};
use crate::handle::{Listener, Slot, TaskHandle};
use crate::map::{Map, MapUnordered};
use crate::sandbox::{self, Runtime, Settings};
use crate::task::Task;
use crate::workers::{Job, Workers};

/// Bytes of stdout, and of stderr, kept per task unless told otherwise.
const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// Host stack of a worker thread; wasm gets its own 512 KiB of it at most.
const WORKER_STACK: usize = 4 << 20;

/// Configures a [`Pool`]. Start from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    workers: Option<usize>,
    max_output: usize,
    window: Option<usize>,
}

impl PoolBuilder {
    /// How many worker threads run tasks. Defaults to the number of cores
    /// this process may use.
    pub fn workers(mut self, workers: usize) -> PoolBuilder {
        self.workers = Some(workers);
        self
    }

    /// How many bytes of stdout, and of stderr, to keep per task (default
    /// 1 MiB each). A task that prints more keeps running; the rest of its
    /// output is dropped and the capture is marked truncated.
    pub fn max_output(mut self, bytes: usize) -> PoolBuilder {
        self.max_output = bytes;
        self
    }

    /// How many tasks [`Pool::map`] and [`Pool::map_unordered`] keep in
    /// flight at once (default: 4 per worker, at least 16). Inputs are read
    /// only as results are consumed, so memory stays flat for any input
    /// count.
    pub fn map_window(mut self, tasks: usize) -> PoolBuilder {
        self.window = Some(tasks);
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> Result<Pool, BuildError> {
        let workers = match self.workers {
            Some(0) => return Err(BuildError::new("a pool needs at least one worker")),
            Some(count) => count,
            None => std::thread::available_parallelism().map_or(1, |count| count.get()),
        };
        let window = match self.window {
            Some(0) => return Err(BuildError::new("the map window must be at least 1")),
            Some(window) => window,
            None => (workers * 4).max(16),
        };
        let runtime = Runtime::new()?;
        let threads = Workers::spawn(workers, WORKER_STACK)
            .map_err(|error| BuildError::new(format!("cannot start a worker thread: {error}")))?;
        Ok(Pool {
            threads,
            runtime,
            settings: Arc::new(Settings {
                max_output: self.max_output,
            }),
            window,
            next_id: AtomicU64::new(0),
        })
    }
}

/// A pool of worker threads that run wasm tasks, each in a fresh sandbox.
///
/// A task that traps, panics or exits fails alone with a typed
/// [`TaskError`](crate::TaskError); the pool and every other task go on.
/// Dropping the pool waits for queued and running tasks to finish, then
/// joins its threads (see [`Pool::shutdown`] to cancel instead).
pub struct Pool {
    threads: Workers,
    runtime: Runtime,
    settings: Arc<Settings>,
    window: usize,
    next_id: AtomicU64,
}

impl Pool {
    /// A builder with the defaults: one worker per core, 1 MiB of captured
    /// output per stream.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            workers: None,
            max_output: DEFAULT_MAX_OUTPUT,
            window: None,
        }
    }

    /// A pool with the defaults.
    pub fn new() -> Result<Pool, BuildError> {
        Pool::builder().build()
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.count()
    }

    /// Loads a task component from a file: compiles it once and links it
    /// against the host, so that each run only instantiates it.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Task, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|error| LoadError::new(LoadErrorKind::Io, error.to_string()).at(path))?;
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("task");
        let pre = self.runtime.load(&bytes).map_err(|error| error.at(path))?;
        Ok(Task::new(pre, name))
    }

    /// Loads a task component from its bytes.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Task, LoadError> {
        Ok(Task::new(self.runtime.load(bytes)?, "task"))
    }

    /// Queues one run of `task` on `input` and returns its handle at once.
    ///
    /// Fails, handing the input back, only once the pool is shut down.
    pub fn submit(
        &self,
        task: &Task,
        input: impl Into<Vec<u8>>,
    ) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        self.submit_with(task, input.into(), None)
    }

    pub(crate) fn submit_with(
        &self,
        task: &Task,
        input: Vec<u8>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        let slot = Slot::new(self.next_id.fetch_add(1, Ordering::Relaxed), listener);
        let work = {
            let (pre, settings, slot) = (
                Arc::clone(&task.pre),
                Arc::clone(&self.settings),
                Arc::clone(&slot),
            );
            Box::new(move |worker, input: &[u8]| sandbox::run(&pre, input, &settings, worker, slot))
        };
        let job = Job {
            slot: Arc::clone(&slot),
            input,
            work,
        };
        match self.threads.send(job) {
            Ok(()) => Ok(TaskHandle::new(slot)),
            Err(job) => Err(SubmitError(job.input)),
        }
    }

    /// Runs `task` on every input and yields the results in input order.
    ///
    /// Inputs are read lazily, with at most the map window of tasks in
    /// flight, so an endless iterator works in flat memory. Dropping the
    /// iterator cancels the tasks it queued that have not started.
    pub fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Vec<u8>>,
    {
        Map::new(self, task.clone(), inputs.into_iter(), self.window)
    }

    /// Like [`Pool::map`], but yields `(index, result)` as tasks finish.
    pub fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Vec<u8>>,
    {
        MapUnordered::new(self, task.clone(), inputs.into_iter(), self.window)
    }

    /// Stops taking tasks: later submissions fail with [`SubmitError`].
    ///
    /// With `cancel_pending`, queued tasks that have not started finish as
    /// cancelled; otherwise they still run. With `wait`, returns once every
    /// running (and, without `cancel_pending`, queued) task has finished and
    /// the threads have exited.
    pub fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.threads.shutdown(wait, cancel_pending);
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}
