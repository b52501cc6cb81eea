//! The pool: the scheduler's worker threads running programs of the wasm
//! side, and the calls a user makes: load, submit, map, shutdown.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::data::error::{BuildError, ErrorKind, LoadError, LoadErrorKind, SubmitError};
use crate::data::input::{Input, QueuedTask};
use crate::data::limits::Limits;
use crate::data::load_options::LoadOptions;
use crate::data::output::TaskResult;
use crate::data::progress::JobControl;
use crate::executor::{self, Executor, Submit};
use crate::sched::completions::Listener;
use crate::sched::handle::TaskHandle;
use crate::sched::job::JobState;
use crate::sched::map::{Map, MapUnordered};
use crate::sched::stats::Stats;
use crate::sched::workers::{Job, Runner, Workers};
use crate::task::Task;
use crate::wasm::batch;
use crate::wasm::call::{self, Attempt};
use crate::wasm::inspect::Inspection;
use crate::wasm::load::{Loader, Program};
use crate::wasm::sandbox::Sandbox;

mod builder;

pub use builder::PoolBuilder;

/// A pool of worker threads that run wasm tasks, each in a fresh sandbox.
///
/// A task that traps, panics or exits fails alone with a typed
/// [`TaskError`](crate::TaskError); the pool and every other task go on.
/// Dropping the pool waits for queued and running tasks to finish, then
/// joins its threads (see [`Pool::shutdown`] to cancel instead).
pub struct Pool {
    threads: Workers,
    loader: Loader,
    sandbox: Arc<Sandbox>,
    limits: Limits,
    window: usize,
    next_id: AtomicU64,
}

impl Pool {
    /// A builder with the defaults: one worker per core, 1 MiB of captured
    /// output per stream, no limits, nothing of the host granted.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// A pool with the defaults.
    pub fn new() -> Result<Pool, BuildError> {
        Pool::builder().build()
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.count()
    }

    /// The pool's counters now: submitted, queued, running, finished, failed
    /// by kind, and each worker's busy time. Cheap enough to poll.
    pub fn stats(&self) -> Stats {
        let mut stats = self.threads.stats();
        stats.progress = self.sandbox.progress.snapshot();
        stats
    }

    /// The default limits of this pool's tasks.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads a task component, or a WASI command program, from a file:
    /// compiles it once and links it against the host, so that each run
    /// only instantiates it.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Task, LoadError> {
        self.load_with(path, &LoadOptions::default())
    }

    /// Loads a file as `options` say: a function of any component to
    /// invoke, or a command program with arguments.
    pub fn load_with(
        &self,
        path: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<Task, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|error| LoadError::new(LoadErrorKind::Io, error.to_string()).at(path))?;
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("task");
        let program = self
            .loader
            .load_program(&bytes, name, options)
            .map_err(|error| error.at(path))?;
        Ok(Task::new(program, name))
    }

    /// Loads a task component (or a WASI command program) from its bytes.
    ///
    /// Bytes made by [`Pool::precompile`] (a `.cwasm`) load without
    /// compiling; wasmtime checks their version and settings but cannot check
    /// their machine code, so load only precompiled files you trust.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Task, LoadError> {
        self.load_bytes_with(bytes, &LoadOptions::default())
    }

    /// [`Pool::load_bytes`] with [`LoadOptions`].
    pub fn load_bytes_with(&self, bytes: &[u8], options: &LoadOptions) -> Result<Task, LoadError> {
        self.load_named(bytes, "task", options)
    }

    /// Loads bytes under the name of the file they came from.
    pub(crate) fn load_named(
        &self,
        bytes: &[u8],
        name: &str,
        options: &LoadOptions,
    ) -> Result<Task, LoadError> {
        let program = self.loader.load_program(bytes, name, options)?;
        Ok(Task::new(program, name))
    }

    /// What a WebAssembly file is (task component, command component, core
    /// module, ...), what it imports and exports, the memories it declares,
    /// and whether this pool can run it as a task.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        self.loader.inspect(bytes)
    }

    /// Compiles a component ahead of time for pools configured like this one;
    /// [`Pool::load`] of the result skips compilation.
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        self.loader.precompile(bytes)
    }

    /// Queues one run of `task` on `input` and returns its handle at once.
    /// The input's bytes reach the task as they are: what they mean, and
    /// whether they are valid, is the task's to say (`"not json"` to a task
    /// that reads JSON fails in the task, as [`ErrorKind::GuestError`]).
    /// The CLI checks its JSON before any task runs; a function called
    /// through [`LoadOptions::invoke`](crate::LoadOptions::invoke) has its
    /// JSON arguments checked here, as [`ErrorKind::InvalidInput`].
    ///
    /// Fails, handing the input back, only once the pool is shut down.
    pub fn submit(
        &self,
        task: &Task,
        input: impl Into<Input>,
    ) -> Result<TaskHandle, SubmitError<Vec<u8>>> {
        self.submit_job(task, vec![(input.into(), None)], None)
            .map_err(|mut inputs| SubmitError(inputs.swap_remove(0)))
    }
}

impl Submit for Pool {
    fn submit_job(
        &self,
        task: &Task,
        mut inputs: Vec<(Input, Option<u64>)>,
        listener: Option<Listener>,
    ) -> Result<TaskHandle, Vec<Vec<u8>>> {
        let tasks = inputs.len();
        let first = self.next_id.fetch_add(tasks as u64, Ordering::Relaxed);
        let limits = inputs
            .first_mut()
            .and_then(|(input, _)| input.limits.take());
        let queued = inputs
            .into_iter()
            .zip(first..)
            .map(|((input, position), id)| QueuedTask {
                id,
                index: position,
                seed_key: input.seed_key_or(position, id),
                input: input.bytes,
            })
            .collect();
        let state = JobState::new(first, tasks, listener);
        let runner = TaskRunner {
            program: Arc::clone(&task.program),
            sandbox: Arc::clone(&self.sandbox),
            limits: limits.unwrap_or_else(|| self.limits.clone()),
        };
        let job = Job {
            tasks: queued,
            state: Arc::clone(&state),
            runner: Box::new(runner),
        };
        match self.threads.send(job) {
            Ok(()) => Ok(TaskHandle::new(state)),
            Err(job) => Err(job.into_inputs()),
        }
    }

    fn workers(&self) -> usize {
        Pool::workers(self)
    }
}

/// What a job of a pool runs: a program in the pool's sandbox, under the
/// job's limits.
struct TaskRunner {
    program: Arc<Program>,
    sandbox: Arc<Sandbox>,
    limits: Limits,
}

impl TaskRunner {
    fn attempt(&self, worker: usize, seed_key: u64) -> Attempt<'_> {
        Attempt {
            program: &self.program,
            sandbox: &self.sandbox,
            limits: &self.limits,
            worker,
            seed_key,
        }
    }
}

impl Runner for TaskRunner {
    fn run(&mut self, worker: usize, task: &QueuedTask, job: &Arc<JobState>) -> TaskResult {
        let attempt = self.attempt(worker, task.seed_key);
        run_with_retries(&attempt, &task.input, job)
    }

    /// Tasks that would share an instance anyway (reuse on) run many to a
    /// call of a component's `run-batch`, where nothing per task needs the
    /// store between them: no fuel to refill, no retry to make.
    fn batches(&self) -> bool {
        self.sandbox.reuse > 1
            && self.limits.fuel.is_none()
            && self.limits.retries == 0
            && (self.limits.timeout.is_none() || self.sandbox.interruptible)
            && matches!(&*self.program, Program::Task(task) if task.batch.is_some())
    }

    fn run_many(
        &mut self,
        worker: usize,
        tasks: &[QueuedTask],
        job: &Arc<JobState>,
    ) -> Vec<TaskResult> {
        let job: Arc<dyn JobControl> = Arc::clone(job) as _;
        // Each task's own seed key is set as the guest takes its input.
        batch::run_batch(&self.attempt(worker, 0), tasks, &job)
    }
}

impl Pool {
    /// Runs `task` on every input and yields the results in input order.
    ///
    /// Inputs are read lazily, with at most the map window of tasks in
    /// flight, so an endless iterator works in flat memory. Dropping the
    /// iterator cancels the tasks it queued that have not finished.
    pub fn map<I>(&self, task: &Task, inputs: I) -> Map<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        executor::map(self, task, inputs.into_iter(), self.window)
    }

    /// Like [`Pool::map`], but yields `(index, result)` as tasks finish.
    pub fn map_unordered<I>(&self, task: &Task, inputs: I) -> MapUnordered<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Input>,
    {
        executor::map_unordered(self, task, inputs.into_iter(), self.window)
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

    /// Stops everything: takes no more tasks, cancels the queued ones and
    /// stops the running ones (they finish as cancelled), then joins the
    /// threads.
    pub fn shutdown_now(&self) {
        self.sandbox.abort.store(true, Ordering::Relaxed);
        self.threads.shutdown(true, true);
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

/// Runs a task, and again after a retryable failure while its limits allow.
fn run_with_retries(attempt: &Attempt<'_>, input: &[u8], job: &Arc<JobState>) -> TaskResult {
    let mut attempts = 1;
    loop {
        let result = call::run_task(attempt, input, Arc::clone(job) as _);
        let retry = match &result {
            Err(error) => {
                error.kind().is_retryable()
                    && attempts <= attempt.limits.retries
                    && !job.is_cancel_requested()
                    && !attempt.sandbox.abort.load(Ordering::Relaxed)
            }
            Ok(_) => false,
        };
        if !retry {
            return match result {
                Ok(mut output) => {
                    output.attempts = attempts;
                    Ok(output)
                }
                Err(mut error) => {
                    // Arguments that do not fit are refused before any run.
                    let runs = if error.kind() == ErrorKind::InvalidInput {
                        0
                    } else {
                        attempts
                    };
                    error.details_mut().attempts = runs;
                    Err(error)
                }
            };
        }
        attempts += 1;
    }
}

impl Drop for Pool {
    /// Waits for the queued and running tasks, as [`Pool::shutdown`] with
    /// `wait` does; but a pool dropped while its thread unwinds from a
    /// panic stops them instead, so that a task that never ends cannot
    /// turn the panic into a hang.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shutdown_now();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
