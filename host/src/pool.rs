//! The pool: the scheduler's worker threads running programs of the wasm
//! side, and the calls a user makes: load, submit, map, shutdown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::data::error::{BuildError, ErrorKind, LoadError, LoadErrorKind, SubmitError};
use crate::data::input::{Input, QueuedTask};
use crate::data::limits::{DirGrant, Grants, Limits};
use crate::data::load_options::LoadOptions;
use crate::data::output::TaskResult;
use crate::data::progress::{JobControl, ProgressBoard};
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
use crate::wasm::engine::{EngineConfig, UNINTERRUPTIBLE_TIMEOUT};
use crate::wasm::inspect::Inspection;
use crate::wasm::load::{Loader, Program};
use crate::wasm::sandbox::Sandbox;

/// Bytes of stdout, and of stderr, kept per task unless told otherwise.
const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// wasm stack per task unless told otherwise (wasmtime's default).
const DEFAULT_MAX_STACK: usize = 512 << 10;

/// Host stack of a worker thread; wasm runs on fibres of its own.
const WORKER_STACK: usize = 2 << 20;

/// Configures a [`Pool`]. Start from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    workers: Option<usize>,
    max_output: usize,
    max_stack: usize,
    window: Option<usize>,
    limits: Limits,
    grants: Grants,
    seed: Option<u64>,
    reuse: u32,
    interruptible: bool,
    cache_dir: Option<PathBuf>,
    explicit_bounds_checks: bool,
}

impl PoolBuilder {
    /// The limits every task gets unless its input says otherwise.
    #[cfg(feature = "mpi")]
    pub(crate) fn default_limits(&self) -> Limits {
        self.limits.clone()
    }

    /// The map window, if one was set.
    #[cfg(feature = "mpi")]
    pub(crate) fn window_hint(&self) -> Option<usize> {
        self.window
    }

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

    /// The wasm stack of each task (default 512 KiB); a deeper recursion
    /// fails as [`ErrorKind::StackOverflow`](crate::ErrorKind::StackOverflow).
    pub fn max_stack(mut self, bytes: usize) -> PoolBuilder {
        self.max_stack = bytes;
        self
    }

    /// How many tasks [`Pool::map`] and [`Pool::map_unordered`] keep in
    /// flight at once (default: 64 per worker, at least 256: tiny tasks
    /// need that many queued to keep the workers busy). Inputs are read
    /// only as results are consumed, so memory stays flat for any input
    /// count.
    pub fn map_window(mut self, tasks: usize) -> PoolBuilder {
        self.window = Some(tasks);
        self
    }

    /// The default limits of every task ([`Input::limits`] overrides them).
    pub fn limits(mut self, limits: Limits) -> PoolBuilder {
        self.limits = limits;
        self
    }

    /// Stops a task after `timeout` of wall time: [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> PoolBuilder {
        self.limits.timeout = Some(timeout);
        self
    }

    /// Caps a task's linear memory: [`Limits::max_memory`].
    pub fn max_memory(mut self, bytes: usize) -> PoolBuilder {
        self.limits.max_memory = Some(bytes);
        self
    }

    /// Meters fuel and gives each task `fuel` units: [`Limits::fuel`].
    /// Metering costs some speed, so it is on only in pools built with it.
    pub fn fuel(mut self, fuel: u64) -> PoolBuilder {
        self.limits.fuel = Some(fuel);
        self
    }

    /// Runs a task that failed with a `trap`, `timeout` or `memory-limit`
    /// again, up to `retries` times: [`Limits::retries`].
    pub fn retries(mut self, retries: u32) -> PoolBuilder {
        self.limits.retries = retries;
        self
    }

    /// Lets every task see the host directory `host` at `guest`, read-only,
    /// or read-write with `writable`. Tasks see no file otherwise.
    pub fn dir(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        writable: bool,
    ) -> PoolBuilder {
        self.grants.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            writable,
        });
        self
    }

    /// Gives every task the environment variable `key=value`. Tasks see no
    /// variable of the host otherwise.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> PoolBuilder {
        self.grants.env.push((key.into(), value.into()));
        self
    }

    /// Seeds every task's random source from (`seed`, the task's key), so
    /// that a run repeats exactly. Without a seed, each task draws from the
    /// host's secure random source.
    pub fn seed(mut self, seed: u64) -> PoolBuilder {
        self.seed = Some(seed);
        self
    }

    /// Lets a worker run up to `runs` tasks in one instance of a component
    /// before it makes a fresh one (default 1: a fresh instance per task).
    ///
    /// Only for tasks known to keep no state between calls: whatever one
    /// task leaves in the instance's memory or globals, the next one sees.
    /// An instance that trapped or was stopped is never reused. A seeded run
    /// reseeds the random source for each task, so results still depend on
    /// (seed, key) alone.
    pub fn reuse_instances(mut self, runs: u32) -> PoolBuilder {
        self.reuse = runs.max(1);
        self
    }

    /// Whether running wasm can be stopped; on by default.
    ///
    /// Time-outs, [`TaskHandle::cancel`] of a running task and
    /// [`Pool::shutdown_now`] stop wasm at epoch checks compiled into every
    /// loop and function entry, which cost CPU-bound code about 20-30%. A
    /// pool built with `interruptible(false)` compiles without them: such
    /// code runs close to native speed, but a task runs to its end once its
    /// wasm is running (a task waiting in a host call is still stopped).
    /// Such a pool refuses a time-out: at build time, or as an
    /// `invalid-input` failure of a task whose input carries one.
    pub fn interruptible(mut self, interruptible: bool) -> PoolBuilder {
        self.interruptible = interruptible;
        self
    }

    /// Checks every memory access in the compiled code instead of relying
    /// on guard pages and signals; off by default.
    ///
    /// With guard pages, a task whose memory grew leaves its slot larger
    /// than the next instance's memory, and the slot is shrunk back with
    /// `mprotect` before it is reused, then grown again: two changes of the
    /// page tables per task, each of which stops every other core running
    /// a worker to flush its TLB. Tasks that allocate (C and Rust programs
    /// whose `malloc` grows memory, command programs above all) then stop
    /// scaling with workers. With explicit checks the slot is never shrunk:
    /// a C command program ran 3.5x as fast on 2 workers, but CPU-bound
    /// kernels ran 30-60% slower and a trivial Rust task 15-40% slower
    /// (BENCHMARKS.md): measure your own tasks both ways.
    pub fn explicit_bounds_checks(mut self, explicit: bool) -> PoolBuilder {
        self.explicit_bounds_checks = explicit;
        self
    }

    /// Caches compiled code in `dir`, one uncompressed `.cwasm` file per
    /// component or module and engine settings, named by a digest of its
    /// bytes: loading it a second time maps the file instead of compiling.
    /// Off by default. The directory must be as trusted as the program:
    /// compiled code cannot be checked when it is loaded.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> PoolBuilder {
        self.cache_dir = Some(dir.into());
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
            None => (workers * 64).max(256),
        };
        if self.limits.timeout == Some(Duration::ZERO) {
            return Err(BuildError::new("the time-out must be longer than zero"));
        }
        for dir in &self.grants.dirs {
            if !dir.host.is_dir() {
                return Err(BuildError::new(format!(
                    "cannot grant {}: no such directory",
                    dir.host.display()
                )));
            }
        }
        if !self.interruptible && self.limits.timeout.is_some() {
            return Err(BuildError::new(UNINTERRUPTIBLE_TIMEOUT));
        }
        let loader = Loader::new(&EngineConfig {
            fuel: self.limits.fuel.is_some(),
            interruptible: self.interruptible,
            max_stack: self.max_stack,
            concurrency: u32::try_from(workers).unwrap_or(u32::MAX),
            cache_dir: self.cache_dir,
            explicit_bounds_checks: self.explicit_bounds_checks,
        })?;
        let threads = Workers::spawn(workers, WORKER_STACK)
            .map_err(|error| BuildError::new(format!("cannot start a worker thread: {error}")))?;
        Ok(Pool {
            threads,
            loader,
            sandbox: Arc::new(Sandbox {
                max_output: self.max_output,
                grants: self.grants,
                seed: self.seed,
                abort: AtomicBool::new(false),
                reuse: self.reuse,
                interruptible: self.interruptible,
                progress: ProgressBoard::new(workers),
            }),
            limits: self.limits,
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
        PoolBuilder {
            workers: None,
            max_output: DEFAULT_MAX_OUTPUT,
            max_stack: DEFAULT_MAX_STACK,
            window: None,
            limits: Limits::default(),
            grants: Grants::default(),
            seed: None,
            reuse: 1,
            interruptible: true,
            cache_dir: None,
            explicit_bounds_checks: false,
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
