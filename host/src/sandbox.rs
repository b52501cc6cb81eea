//! The wasm side: one shared `Engine` and `Linker`, components checked and
//! pre-linked once, and one run of a task in a fresh `Store` and instance.
//!
//! Nothing here knows about queues or threads; a worker calls [`run`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capture::CapturePipe;
use crate::error::{BuildError, ErrorKind, LoadError, LoadErrorKind, TaskError};
use crate::handle::Slot;
use crate::limits::{Grants, Limits};
use crate::seed;
use crate::task::{TaskOutput, TaskResult};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        exports: { default: async },
    });
}

pub(crate) use bindings::TaskPre;

/// How often the engine's epoch advances: the granularity of time-outs and
/// of cancelling a running task.
const TICK: Duration = Duration::from_millis(5);

/// What every run of every task in one pool shares.
pub(crate) struct Settings {
    /// Bytes of stdout, and of stderr, kept per task.
    pub(crate) max_output: usize,
    pub(crate) grants: Grants,
    /// The run's seed: each task's random source is derived from it.
    pub(crate) seed: Option<u64>,
    /// Set to stop every running task at once (a shutdown that cancels).
    pub(crate) abort: AtomicBool,
}

/// The engine and the host functions every task is linked against, and the
/// thread that advances the engine's epoch.
pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<TaskState>,
    ticker: Option<Ticker>,
}

/// The engine settings a pool chooses.
pub(crate) struct EngineOptions {
    pub(crate) fuel: bool,
    pub(crate) max_stack: usize,
}

impl Runtime {
    pub(crate) fn new(options: &EngineOptions) -> Result<Runtime, BuildError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Time-outs and cancellation interrupt running wasm at epoch checks.
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        config.max_wasm_stack(options.max_stack);
        // Tasks run on fibres (async calls, so that a time-out also stops a
        // task blocked in a host call); the fibre holds the wasm stack.
        config.async_stack_size(options.max_stack + (1 << 20));
        let engine = Engine::new(&config).map_err(|error| BuildError::new(format!("{error:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| bindings::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|error| BuildError::new(format!("cannot link the host: {error:#}")))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|error| BuildError::new(format!("cannot start the epoch ticker: {error}")))?;
        Ok(Runtime {
            engine,
            linker,
            ticker: Some(ticker),
        })
    }

    /// Compiles `bytes` and checks that they are a component of the `task`
    /// world whose imports the host provides.
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<TaskPre<TaskState>, LoadError> {
        check_header(bytes)?;
        let component = Component::new(&self.engine, bytes).map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid component: {error:#}"),
            )
        })?;
        let exports_run = component
            .component_type()
            .exports(&self.engine)
            .any(|(name, item)| {
                name == "run" && matches!(item.ty, ComponentItem::ComponentFunc(_))
            });
        if !exports_run {
            return Err(LoadError::new(
                LoadErrorKind::NotATask,
                "the component does not export `run`: it is not a task of the \
                 wasmpool:task world (write it with the wasmpool-guest SDK)",
            ));
        }
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| {
            LoadError::new(
                LoadErrorKind::MissingImport,
                format!("{error:#} (the host provides WASI 0.2 and wasmpool:task/host only)"),
            )
        })?;
        TaskPre::new(instance_pre).map_err(|error| {
            LoadError::new(
                LoadErrorKind::NotATask,
                format!(
                    "`run` does not have the type of the wasmpool:task world, \
                     func(input: list<u8>) -> result<list<u8>, string>: {error:#}"
                ),
            )
        })
    }
}

/// Tells a component from a core module or from something else entirely,
/// so that the error says what the file is instead of a parser message.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::new(
            LoadErrorKind::NotWasm,
            "not a WebAssembly file (it does not start with the `\\0asm` magic bytes)",
        ));
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::new(
            LoadErrorKind::CoreModule,
            "a core WebAssembly module, not a component: build the task for \
             wasm32-wasip2 with the wasmpool-guest SDK",
        ));
    }
    Ok(())
}

/// Advances the engine's epoch every [`TICK`] while the pool lives.
struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasmpool-ticker".to_string())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                while !*stopped {
                    engine.increment_epoch();
                    stopped = wake
                        .wait_timeout(stopped, TICK)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.take();
    }
}

/// Why a running task was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    Timeout,
    Cancelled,
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interruption::Timeout => "the task ran past its time-out",
            Interruption::Cancelled => "the task was cancelled while it ran",
        })
    }
}

impl std::error::Error for Interruption {}

/// What decides whether a running task must stop.
#[derive(Clone)]
struct Watch {
    slot: Arc<Slot>,
    settings: Arc<Settings>,
    deadline: Option<Instant>,
}

impl Watch {
    fn check(&self) -> Option<Interruption> {
        if self.slot.is_cancel_requested() || self.settings.abort.load(Ordering::Relaxed) {
            Some(Interruption::Cancelled)
        } else if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            Some(Interruption::Timeout)
        } else {
            None
        }
    }

    /// Resolves when the task must stop; it covers a guest blocked in a
    /// host call, where no epoch check runs.
    async fn stopped(&self) -> Interruption {
        loop {
            if let Some(why) = self.check() {
                return why;
            }
            let mut pause = TICK * 2;
            if let Some(deadline) = self.deadline {
                pause = pause.min(deadline.saturating_duration_since(Instant::now()));
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// Memory growth under a limit, remembering a refusal: a guest whose
/// allocation failed aborts, and the abort alone would not say why.
struct MemoryGuard {
    max: Option<usize>,
    refused: bool,
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.max.is_some_and(|max| desired > max) {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The host state of one task's `Store`.
pub(crate) struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The message the guest's panic hook reported, if it panicked.
    panic: Option<String>,
    memory: MemoryGuard,
    watch: Watch,
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::wasmpool::task::host::Host for TaskState {
    fn report_progress(&mut self, fraction: f64) {
        self.watch.slot.set_progress(fraction);
    }

    fn report_panic(&mut self, message: String) {
        self.panic = Some(message);
    }
}

thread_local! {
    /// Each worker drives its task's fibre on a runtime of its own.
    static WORKER_RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime builds");
}

/// Who runs a task, and the key of its random seed.
pub(crate) struct Placement {
    pub(crate) worker: usize,
    pub(crate) seed_key: u64,
}

/// Runs one task on `input` in a fresh store and instance.
pub(crate) fn run(
    pre: &TaskPre<TaskState>,
    input: &[u8],
    settings: &Arc<Settings>,
    limits: &Limits,
    placement: &Placement,
    slot: Arc<Slot>,
) -> TaskResult {
    WORKER_RUNTIME
        .with(|runtime| runtime.block_on(run_async(pre, input, settings, limits, placement, slot)))
}

async fn run_async(
    pre: &TaskPre<TaskState>,
    input: &[u8],
    settings: &Arc<Settings>,
    limits: &Limits,
    placement: &Placement,
    slot: Arc<Slot>,
) -> TaskResult {
    let started = Instant::now();
    let stdout = CapturePipe::new(settings.max_output);
    let stderr = CapturePipe::new(settings.max_output);
    let watch = Watch {
        slot,
        settings: Arc::clone(settings),
        deadline: limits
            .timeout
            .and_then(|timeout| started.checked_add(timeout)),
    };
    let outcome = match wasi_context(settings, placement, &stdout, &stderr) {
        Err(error) => Err(error),
        Ok(wasi) => {
            let state = TaskState {
                wasi,
                table: ResourceTable::new(),
                panic: None,
                memory: MemoryGuard {
                    max: limits.max_memory,
                    refused: false,
                },
                watch: watch.clone(),
            };
            call(pre, input, limits, state, &watch).await
        }
    };
    let duration = started.elapsed();
    let (stdout, stderr) = (stdout.take(), stderr.take());
    let mut error = match outcome {
        Ok(value) => {
            return Ok(TaskOutput {
                value,
                stdout,
                stderr,
                duration,
                worker: placement.worker,
                attempts: 1,
            });
        }
        Err(error) => error,
    };
    let details = error.details_mut();
    details.stdout = stdout;
    details.stderr = stderr;
    details.duration = duration;
    details.worker = Some(placement.worker);
    details.attempts = 1;
    Err(error)
}

/// A fresh WASI context: the capture pipes, the granted directories and
/// environment, and a random source seeded from the run's seed if any.
fn wasi_context(
    settings: &Settings,
    placement: &Placement,
    stdout: &CapturePipe,
    stderr: &CapturePipe,
) -> Result<WasiCtx, TaskError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_blocking_current_thread(true);
    for (key, value) in &settings.grants.env {
        wasi.env(key, value);
    }
    for dir in &settings.grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| {
                TaskError::new(
                    ErrorKind::Internal,
                    format!(
                        "cannot open the granted directory {}: {error:#}",
                        dir.host.display()
                    ),
                )
            })?;
    }
    if let Some(seed) = settings.seed {
        let task_seed = seed::derive(seed, placement.seed_key);
        wasi.secure_random(seed::rng(task_seed, 0))
            .insecure_random(seed::rng(task_seed, 1))
            .insecure_random_seed(seed::derive_u128(task_seed));
    }
    Ok(wasi.build())
}

/// Instantiates and calls `run` under the task's limits.
async fn call(
    pre: &TaskPre<TaskState>,
    input: &[u8],
    limits: &Limits,
    state: TaskState,
    watch: &Watch,
) -> Result<Vec<u8>, TaskError> {
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|state| &mut state.memory);
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(|_| {
            TaskError::new(
                ErrorKind::Internal,
                "a fuel limit needs a pool that meters fuel (PoolBuilder::fuel, or --fuel)",
            )
        })?;
    }
    store.epoch_deadline_callback(|context| match context.data().watch.check() {
        Some(why) => Err(why.into()),
        None => Ok(UpdateDeadline::Continue(1)),
    });
    store.set_epoch_deadline(1);
    let outcome = {
        let run = async {
            let task = pre.instantiate_async(&mut store).await?;
            task.call_run(&mut store, input).await
        };
        tokio::select! {
            biased;
            outcome = run => outcome,
            why = watch.stopped() => Err(why.into()),
        }
    };
    let state = store.into_data();
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(TaskError::new(ErrorKind::GuestError, message)),
        Err(error) => Err(classify(&error, state, limits)),
    }
}

/// Turns what wasmtime returned into the kind a caller matches on.
fn classify(error: &wasmtime::Error, state: TaskState, limits: &Limits) -> TaskError {
    let trap_code = error.downcast_ref::<Trap>().copied();
    let mut failure = if let Some(why) = error.downcast_ref::<Interruption>() {
        match why {
            Interruption::Timeout => TaskError::new(
                ErrorKind::Timeout,
                format!(
                    "the task ran past its time-out of {:?} and was stopped",
                    limits.timeout.unwrap_or_default()
                ),
            ),
            Interruption::Cancelled => {
                TaskError::new(ErrorKind::Cancelled, "the task was cancelled while it ran")
            }
        }
    } else if state.memory.refused {
        TaskError::new(
            ErrorKind::MemoryLimit,
            format!(
                "the task tried to grow its memory past its limit of {} bytes",
                limits.max_memory.unwrap_or_default()
            ),
        )
    } else if let Some(exit) = error.downcast_ref::<I32Exit>() {
        let mut failure = TaskError::new(
            ErrorKind::Exit,
            format!(
                "the task exited with code {} before returning a result",
                exit.0
            ),
        );
        failure.details_mut().exit_code = Some(exit.0);
        failure
    } else {
        match (trap_code, state.panic) {
            (Some(Trap::StackOverflow), _) => TaskError::new(
                ErrorKind::StackOverflow,
                "the task ran out of wasm stack (unbounded recursion?)",
            ),
            (Some(Trap::OutOfFuel), _) => TaskError::new(
                ErrorKind::FuelExhausted,
                format!(
                    "the task used up its fuel budget of {}",
                    limits.fuel.unwrap_or_default()
                ),
            ),
            (_, Some(message)) => TaskError::new(ErrorKind::Panic, message),
            (Some(code), None) => TaskError::new(ErrorKind::Trap, code.to_string()),
            (None, None) => TaskError::new(ErrorKind::Trap, format!("{error:#}")),
        }
    };
    let details = failure.details_mut();
    details.trap_code = trap_code;
    details.backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_what_a_file_is_from_its_header() {
        let kind = |bytes: &[u8]| check_header(bytes).err().map(|error| error.kind());
        assert_eq!(kind(b"hello world"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0as"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0asm\x01\0\0\0"), Some(LoadErrorKind::CoreModule));
        assert_eq!(kind(b"\0asm\x0d\0\x01\0"), None);
    }
}
