//! `PoolBuilder`: how a pool is configured, and the pool it starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use super::Pool;
use crate::data::error::BuildError;
use crate::data::limits::{DirGrant, Grants, Limits};
use crate::data::progress::ProgressBoard;
use crate::sched::workers::Workers;
use crate::wasm::engine::{EngineConfig, UNINTERRUPTIBLE_TIMEOUT};
use crate::wasm::load::Loader;
use crate::wasm::sandbox::Sandbox;

/// Bytes of stdout, and of stderr, kept per task unless told otherwise.
const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// Bytes of a task's result the host takes unless told otherwise.
const DEFAULT_MAX_RESULT: usize = 64 << 20;

/// Bytes kept of a failure's message, traceback and backtrace each,
/// unless told otherwise.
const DEFAULT_MAX_MESSAGE: usize = 64 << 10;

/// wasm stack per task unless told otherwise (wasmtime's default).
const DEFAULT_MAX_STACK: usize = 512 << 10;

/// Host stack of a worker thread; wasm runs on fibres of its own.
const WORKER_STACK: usize = 2 << 20;

/// Configures a [`Pool`]. Start from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    workers: Option<usize>,
    max_output: usize,
    max_result: usize,
    max_message: usize,
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
    pub(super) fn new() -> PoolBuilder {
        PoolBuilder {
            workers: None,
            max_output: DEFAULT_MAX_OUTPUT,
            max_result: DEFAULT_MAX_RESULT,
            max_message: DEFAULT_MAX_MESSAGE,
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

    /// How many bytes of a task's result the host takes (default 64 MiB):
    /// a task that returns more fails as
    /// [`ErrorKind::ResourceLimit`](crate::ErrorKind::ResourceLimit), and
    /// its result is dropped at once. It also bounds what the host reads of
    /// any one value a task hands it (a result, an error, a host call's
    /// argument; at least 1 MiB whatever the cap): wasmtime refuses to read
    /// past it before allocating, counting a whole value per element of an
    /// `invoke` result, so a value cheap for the guest to make (lists
    /// aliasing one buffer) cannot cost the host more. An ordered map
    /// holds, behind a slow task, results up to its order buffer
    /// ([`Map::order_buffer`](crate::Map::order_buffer)) or a window of
    /// them.
    pub fn max_result(mut self, bytes: usize) -> PoolBuilder {
        self.max_result = bytes;
        self
    }

    /// How many bytes of a failure's message, of its traceback and of its
    /// backtrace the host keeps (default 64 KiB each): what is past it is
    /// cut, and the text says how much was.
    pub fn max_message(mut self, bytes: usize) -> PoolBuilder {
        self.max_message = bytes;
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
    /// count: [`Pool::map`] also runs ahead of a slow task, holding the
    /// results that finish before it up to its order buffer
    /// ([`Map::order_buffer`](crate::Map::order_buffer), 64 MiB), then at
    /// most a window of them.
    pub fn map_window(mut self, tasks: usize) -> PoolBuilder {
        self.window = Some(tasks);
        self
    }

    /// The default limits of every task ([`Input::limits`](crate::Input::limits) overrides them).
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
    /// Time-outs, [`TaskHandle::cancel`](crate::TaskHandle::cancel) of a running task and
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
                max_result: self.max_result,
                max_message: self.max_message,
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
