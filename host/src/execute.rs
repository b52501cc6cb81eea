//! One run of a task: a store under the task's limits and grants, the call
//! raced against its time-out and cancellation, and the outcome classified.
//!
//! By default every task gets a fresh store and instance. With instance
//! reuse a worker keeps the store and instance of a task that ended well for
//! the next run of the same component, up to a number of runs; a run of
//! tasks then goes to a component's `run-batch` in one call, where it has
//! one, each task still timed, limited and classified on its own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{TypedFunc as ComponentFunc, Val};
use wasmtime::{ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capture::CapturePipe;
use crate::error::{ErrorKind, TaskError};
use crate::handle::Slot;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::sandbox::{Command, CommandEntry, Program, Settings, TICK, bindings};
use crate::seed::{self, TaskRngs};
use crate::task::{Streams, TaskOutput, TaskResult};
use crate::values;
use crate::workers::Item;

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
    worker: usize,
    deadline: Option<Instant>,
}

impl Watch {
    /// The watch of a task that started at `started` on `worker`.
    fn new(
        slot: Arc<Slot>,
        settings: &Arc<Settings>,
        worker: usize,
        timeout: Option<Duration>,
        started: Instant,
    ) -> Watch {
        Watch {
            slot,
            settings: Arc::clone(settings),
            worker,
            deadline: timeout.and_then(|timeout| started.checked_add(timeout)),
        }
    }

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
}

/// Resolves when the task `watch` gives (the running one) must stop; it
/// covers a guest blocked in a host call, where no epoch check runs.
async fn stopped(watch: impl Fn() -> Watch) -> Interruption {
    loop {
        let watch = watch();
        if let Some(why) = watch.check() {
            return why;
        }
        let mut pause = TICK * 2;
        if let Some(deadline) = watch.deadline {
            pause = pause.min(deadline.saturating_duration_since(Instant::now()));
        }
        tokio::time::sleep(pause).await;
    }
}

/// A task given a fuel limit in a pool that does not meter fuel.
#[derive(Debug)]
struct FuelNotMetered;

impl fmt::Display for FuelNotMetered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fuel limit needs a pool that meters fuel (PoolBuilder::fuel, or --fuel)")
    }
}

impl std::error::Error for FuelNotMetered {}

/// Memory growth under a limit, remembering a refusal: a guest whose
/// allocation failed aborts, and the abort alone would not say why.
struct MemoryGuard {
    max: Option<usize>,
    refused: bool,
    /// The largest size granted, for the task's metrics.
    peak: usize,
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
        self.peak = self.peak.max(desired);
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
    /// WASI for components (0.2) and for core modules (preview 1) alike.
    pub(crate) wasi: WasiP1Ctx,
    /// The message the guest's panic hook reported, if it panicked.
    panic: Option<String>,
    memory: MemoryGuard,
    watch: Watch,
    /// The random streams given to WASI, reseeded per task.
    rngs: Option<TaskRngs>,
    /// The inputs of the `run-batch` call under way.
    batch: Option<Batch>,
}

/// The inputs of one `run-batch` call and what became of them.
struct Batch {
    /// Not yet handed to the guest.
    waiting: VecDeque<Waiting>,
    /// The input the guest is on: when its run started, and how long the
    /// instance took to make (the first input's share).
    running: Option<Metrics>,
    results: Vec<TaskResult>,
    /// The run's, which a cancellation sets.
    slot: Arc<Slot>,
    stdout: CapturePipe,
    stderr: CapturePipe,
    settings: Arc<Settings>,
    timeout: Option<Duration>,
    worker: usize,
    /// How long making the instance took, for the first input.
    instantiate: Duration,
    /// When the call started, for the first input.
    started: Option<Instant>,
    /// When the input before ended: the next one's run starts there, with
    /// no clock read of its own.
    last_end: Option<Instant>,
    /// The running input's deadline, for the call's watcher.
    deadline: Arc<Deadline>,
}

/// A deadline one thread moves and another reads, without a lock: the
/// running input's, for the watcher of a `run-batch` call.
struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`; [`Deadline::NONE`] for no deadline.
    nanos: AtomicU64,
}

impl Deadline {
    const NONE: u64 = u64::MAX;

    fn new(base: Instant, deadline: Option<Instant>) -> Deadline {
        let this = Deadline {
            base,
            nanos: AtomicU64::new(Deadline::NONE),
        };
        this.set(deadline);
        this
    }

    fn set(&self, deadline: Option<Instant>) {
        let nanos = deadline.map_or(Deadline::NONE, |deadline| {
            let after = deadline.saturating_duration_since(self.base).as_nanos();
            u64::try_from(after).unwrap_or(Deadline::NONE - 1)
        });
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Instant> {
        match self.nanos.load(Ordering::Relaxed) {
            Deadline::NONE => None,
            nanos => self.base.checked_add(Duration::from_nanos(nanos)),
        }
    }
}

struct Waiting {
    input: Vec<u8>,
    seed_key: u64,
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl bindings::wasmpool::task::host::Host for TaskState {
    fn report_progress(&mut self, fraction: f64) {
        self.watch.slot.set_progress(fraction);
        let Watch {
            settings, worker, ..
        } = &self.watch;
        settings.progress.set(*worker, fraction);
    }

    fn report_panic(&mut self, message: String) {
        self.panic = Some(message);
    }

    fn next_input(&mut self) -> Option<Vec<u8>> {
        let batch = self.batch.as_mut()?;
        if let Some(metrics) = batch.running.take() {
            let error = TaskError::new(
                ErrorKind::GuestError,
                "run-batch took another input before finishing this one",
            );
            let result = ended(Err(error), batch, metrics, self.memory.peak);
            batch.results.push(result);
        }
        let next = loop {
            let next = batch.waiting.pop_front()?;
            if !batch.slot.is_cancel_requested() && !batch.settings.abort.load(Ordering::Relaxed) {
                break next;
            }
            let cancelled = ran(TaskError::cancelled(), Metrics::default(), batch.worker);
            batch.results.push(Err(cancelled));
        };
        // The first input's run counts from the call's start, and the
        // instance's making, if it was made for the call, is its. The next
        // starts where the one before ended.
        let started = batch
            .started
            .take()
            .or(batch.last_end.take())
            .unwrap_or_else(Instant::now);
        // The call's watch is the run's: only the deadline moves.
        let deadline = batch
            .timeout
            .and_then(|timeout| started.checked_add(timeout));
        batch.deadline.set(deadline);
        self.watch.deadline = deadline;
        self.panic = None;
        self.memory.refused = false;
        if let (Some(rngs), Some(seed)) = (&self.rngs, batch.settings.seed) {
            rngs.reseed(seed::derive(seed, next.seed_key));
        }
        batch.settings.progress.clear(batch.worker);
        batch.running = Some(Metrics {
            started: Some(started),
            instantiate: std::mem::take(&mut batch.instantiate),
            ..Metrics::default()
        });
        Some(next.input)
    }

    fn finish_input(&mut self, outcome: Result<Vec<u8>, String>) {
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        let Some(metrics) = batch.running.take() else {
            return;
        };
        let outcome = outcome.map_err(|message| TaskError::new(ErrorKind::GuestError, message));
        let result = ended(outcome, batch, metrics, self.memory.peak);
        batch.results.push(result);
    }

    fn finish_and_next_input(&mut self, outcome: Result<Vec<u8>, String>) -> Option<Vec<u8>> {
        self.finish_input(outcome);
        self.next_input()
    }
}

/// The result of a batch's input that ended with `outcome`.
fn ended(
    outcome: Result<Vec<u8>, TaskError>,
    batch: &mut Batch,
    mut metrics: Metrics,
    peak_memory: usize,
) -> TaskResult {
    metrics.peak_memory = peak_memory;
    let now = Instant::now();
    batch.last_end = Some(now);
    let duration = metrics.started.map_or(Duration::ZERO, |started| {
        now.saturating_duration_since(started)
    });
    metrics.run = duration.saturating_sub(metrics.instantiate);
    finished(
        outcome,
        batch.stdout.take(),
        batch.stderr.take(),
        metrics,
        batch.worker,
    )
}

/// A run's result from its outcome, its output and its metrics.
fn finished(
    outcome: Result<Vec<u8>, TaskError>,
    stdout: crate::Captured,
    stderr: crate::Captured,
    metrics: Metrics,
    worker: usize,
) -> TaskResult {
    match outcome {
        Ok(value) => Ok(TaskOutput {
            value: value.into(),
            streams: Streams::kept(stdout, stderr),
            worker,
            attempts: 1,
            metrics,
        }),
        Err(mut error) => {
            let details = error.details_mut();
            details.stdout = stdout;
            details.stderr = stderr;
            Err(ran(error, metrics, worker))
        }
    }
}

thread_local! {
    /// Each worker drives its task's fibre on a runtime of its own.
    static WORKER_RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime builds");

    /// The instance this worker keeps for its next task, with reuse on.
    static KEPT: RefCell<Option<Instance>> = const { RefCell::new(None) };
}

/// A live store and instance of one program, with its output pipes.
struct Instance {
    program: Arc<Program>,
    store: Store<TaskState>,
    entry: Entry,
    stdout: CapturePipe,
    stderr: CapturePipe,
    runs: u32,
}

/// What a run calls in an instance.
enum Entry {
    /// A task's `run`, and its `run-batch` when it has one and the instance
    /// may be reused.
    Task(bindings::Task, Option<ComponentFunc<(), ()>>),
    /// A function to invoke and how many values it returns.
    Func(wasmtime::component::Func, usize),
    Start(TypedFunc<(), ()>),
    Command(wasmtime_wasi::p2::bindings::Command),
}

/// What a run produced: a value, or (for a command program) its stdout.
enum Returned {
    Value(Vec<u8>),
    Stdout,
}

/// A command program's stdin and arguments for one input.
struct CommandIo {
    stdin: Vec<u8>,
    args: Vec<String>,
}

impl CommandIo {
    fn new(command: &Command, input: &[u8]) -> CommandIo {
        let mut args = vec![command.name.clone()];
        let stdin = match &command.args_template {
            Some(words) => {
                let text = String::from_utf8_lossy(input);
                args.extend(words.iter().map(|word| word.replace("{}", &text)));
                Vec::new()
            }
            None => input.to_vec(),
        };
        args.extend(command.args.iter().cloned());
        CommandIo { stdin, args }
    }
}

/// Who runs a task, and the key of its random seed.
#[derive(Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) worker: usize,
    pub(crate) seed_key: u64,
}

/// Everything one run of a task needs besides its input.
pub(crate) struct Attempt<'a> {
    pub(crate) program: &'a Arc<Program>,
    pub(crate) settings: &'a Arc<Settings>,
    pub(crate) limits: &'a Limits,
    pub(crate) placement: Placement,
}

/// Runs one task on `input`.
pub(crate) fn run(attempt: &Attempt<'_>, input: &[u8], slot: Arc<Slot>) -> TaskResult {
    drive(run_async(attempt, input, slot))
}

/// Runs tasks from the start of `items` in one `run-batch` call on this
/// worker's kept instance (or a new one): one result per task it ran, in
/// order; none if the program has no `run-batch` or no instance could be
/// made, and then the caller runs the first alone (which reports why).
pub(crate) fn run_batch(
    attempt: &Attempt<'_>,
    items: &[Item],
    slot: &Arc<Slot>,
) -> Vec<TaskResult> {
    drive(run_batch_async(attempt, items, slot))
}

/// Runs a future on this worker's runtime. Most runs finish in their first
/// poll: a task that never waits on the host. Polling once inside the
/// runtime's context skips what `block_on` costs per call; a run that must
/// wait goes on under it.
fn drive<F: Future>(future: F) -> F::Output {
    WORKER_RUNTIME.with(|runtime| {
        let _context = runtime.enter();
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => runtime.block_on(future),
        }
    })
}

async fn run_async(attempt: &Attempt<'_>, input: &[u8], slot: Arc<Slot>) -> TaskResult {
    let Attempt {
        program,
        settings,
        limits,
        placement,
    } = *attempt;
    let started = Instant::now();
    let mut metrics = Metrics {
        started: Some(started),
        ..Metrics::default()
    };
    if limits.timeout.is_some() && !settings.interruptible {
        return Err(TaskError::new(
            ErrorKind::InvalidInput,
            crate::pool::UNINTERRUPTIBLE_TIMEOUT,
        ));
    }
    // The arguments of an invoked function are checked before it runs.
    let arguments = match &**program {
        Program::Invoke(invoke) => match values::arguments(input, &invoke.params) {
            Ok(arguments) => arguments,
            Err(why) => {
                // Nothing ran: no worker, no timings, like an input the CLI
                // could not read.
                return Err(TaskError::new(ErrorKind::InvalidInput, why));
            }
        },
        _ => Vec::new(),
    };
    settings.progress.clear(placement.worker);
    let watch = Watch::new(slot, settings, placement.worker, limits.timeout, started);
    let instance = match take_kept(program, settings) {
        Some(instance) => Ok(instance),
        None => {
            let instance = instantiate(program, input, settings, limits, &watch).await;
            metrics.instantiate = started.elapsed();
            instance
        }
    };
    let mut instance = match instance {
        Ok(instance) => instance,
        Err(error) => return Err(ran(error, metrics, placement.worker)),
    };
    let outcome = call(
        &mut instance,
        input,
        arguments,
        settings,
        limits,
        &placement,
        &watch,
    )
    .await;
    settings.progress.clear(placement.worker);
    let stdout = instance.stdout.take();
    let stderr = instance.stderr.take();
    let duration = started.elapsed();
    metrics.run = duration.saturating_sub(metrics.instantiate);
    metrics.peak_memory = instance.store.data().memory.peak;
    metrics.fuel_consumed = limits.fuel.and_then(|budget| {
        let left = instance.store.get_fuel().ok()?;
        Some(budget.saturating_sub(left))
    });
    let result = match outcome {
        Ok(Ok(Returned::Value(value))) => Ok(value),
        Ok(Ok(Returned::Stdout)) => Ok(stdout.as_bytes().to_vec()),
        Ok(Err(message)) => Err(TaskError::new(ErrorKind::GuestError, message)),
        Err(error) => Err(classify(&error, instance.store.data(), limits)),
    };
    // A trap or a stop leaves an instance in no state to run again; a
    // command program runs once.
    let healthy = match &result {
        _ if matches!(instance.entry, Entry::Start(_) | Entry::Command(_)) => false,
        Ok(_) => true,
        Err(error) => error.kind() == ErrorKind::GuestError,
    };
    instance.runs += 1;
    if healthy {
        keep(instance, settings);
    }
    finished(result, stdout, stderr, metrics, placement.worker)
}

async fn run_batch_async(
    attempt: &Attempt<'_>,
    items: &[Item],
    slot: &Arc<Slot>,
) -> Vec<TaskResult> {
    let Attempt {
        program,
        settings,
        limits,
        placement,
    } = *attempt;
    if items.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let watch = Watch::new(
        Arc::clone(slot),
        settings,
        placement.worker,
        limits.timeout,
        started,
    );
    let (mut instance, instantiate) = match take_kept(program, settings) {
        Some(instance) => (instance, Duration::ZERO),
        None => match instantiate(program, &[], settings, limits, &watch).await {
            Ok(instance) => (instance, started.elapsed()),
            Err(_) => return Vec::new(),
        },
    };
    let Entry::Task(_, Some(run_batch)) = &instance.entry else {
        keep(instance, settings);
        return Vec::new();
    };
    let run_batch = *run_batch;
    // No more inputs than the instance has runs left.
    let room = (settings.reuse - instance.runs) as usize;
    let deadline = Arc::new(Deadline::new(started, watch.deadline));
    let state = instance.store.data_mut();
    state.watch = watch.clone();
    state.memory.max = limits.max_memory;
    state.batch = Some(Batch {
        waiting: items
            .iter()
            .take(room)
            .map(|item| Waiting {
                input: item.input.to_vec(),
                seed_key: item.seed_key,
            })
            .collect(),
        slot: Arc::clone(slot),
        running: None,
        results: Vec::with_capacity(items.len().min(room)),
        stdout: instance.stdout.clone(),
        stderr: instance.stderr.clone(),
        settings: Arc::clone(settings),
        timeout: limits.timeout,
        worker: placement.worker,
        instantiate,
        started: Some(started),
        last_end: None,
        deadline: Arc::clone(&deadline),
    });
    if settings.interruptible {
        instance.store.set_epoch_deadline(1);
    }
    let outcome = tokio::select! {
        biased;
        outcome = run_batch.call_async(&mut instance.store, ()) => outcome,
        why = stopped(|| Watch {
            deadline: deadline.get(),
            ..watch.clone()
        }) => Err(why.into()),
    };
    settings.progress.clear(placement.worker);
    let state = instance.store.data_mut();
    let mut batch = state.batch.take().expect("the batch was set above");
    let healthy = outcome.is_ok();
    if let Some(metrics) = batch.running.take() {
        // The input that was running when the call ended ends with it.
        let error = match &outcome {
            Ok(()) => TaskError::new(
                ErrorKind::GuestError,
                "run-batch returned without finishing this input",
            ),
            Err(error) => classify(error, state, limits),
        };
        let result = ended(Err(error), &mut batch, metrics, state.memory.peak);
        batch.results.push(result);
    }
    instance.runs += batch.results.len() as u32;
    if healthy {
        keep(instance, settings);
    }
    batch.results
}

/// This worker's kept instance, when it is one of `program` with runs left
/// (with reuse on; a kept instance of another program is dropped).
fn take_kept(program: &Arc<Program>, settings: &Settings) -> Option<Instance> {
    if settings.reuse <= 1 {
        return None;
    }
    KEPT.with(|kept| kept.borrow_mut().take())
        .filter(|kept| Arc::ptr_eq(&kept.program, program) && kept.runs < settings.reuse)
}

/// Keeps a healthy `instance` for this worker's next run, if it has runs
/// left.
fn keep(instance: Instance, settings: &Settings) {
    if instance.runs < settings.reuse {
        KEPT.with(|kept| *kept.borrow_mut() = Some(instance));
    }
}

/// Fills in what every failure of a run carries.
fn ran(mut error: TaskError, metrics: Metrics, worker: usize) -> TaskError {
    let details = error.details_mut();
    details.duration = metrics
        .started
        .map_or(Duration::ZERO, |started| started.elapsed());
    details.metrics = metrics;
    details.worker = Some(worker);
    details.attempts = 1;
    error
}

/// A new store and instance: capture pipes, the granted directories and
/// variables, a seedable random source if the run has a seed, and for a
/// command program its stdin and arguments.
async fn instantiate(
    program: &Arc<Program>,
    input: &[u8],
    settings: &Settings,
    limits: &Limits,
    watch: &Watch,
) -> Result<Instance, TaskError> {
    let stdout = CapturePipe::new(settings.max_output);
    let stderr = CapturePipe::new(settings.max_output);
    let rngs = settings.seed.map(TaskRngs::new);
    let io = match &**program {
        Program::Command(command) => Some(CommandIo::new(command, input)),
        _ => None,
    };
    let wasi = wasi_context(settings, &stdout, &stderr, rngs.as_ref(), io)?;
    let state = TaskState {
        wasi,
        panic: None,
        memory: MemoryGuard {
            max: limits.max_memory,
            refused: false,
            peak: 0,
        },
        watch: watch.clone(),
        rngs,
        batch: None,
    };
    let mut store = Store::new(program.engine(), state);
    store.limiter(|state| &mut state.memory);
    if let Some(fuel) = limits.fuel {
        // Instantiation runs the component's start code: it burns fuel too.
        if store.set_fuel(fuel).is_err() {
            return Err(classify(
                &wasmtime::Error::new(FuelNotMetered),
                store.data(),
                limits,
            ));
        }
    }
    if settings.interruptible {
        store.epoch_deadline_callback(|context| match context.data().watch.check() {
            Some(why) => Err(why.into()),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        store.set_epoch_deadline(1);
    }
    match entry(program, &mut store, settings.reuse > 1).await {
        Ok(entry) => Ok(Instance {
            program: Arc::clone(program),
            store,
            entry,
            stdout,
            stderr,
            runs: 0,
        }),
        Err(error) => Err(classify(&error, store.data(), limits)),
    }
}

/// Instantiates `program` in `store` and finds what a run calls (with
/// `reusable`, a task's `run-batch` too).
async fn entry(
    program: &Program,
    store: &mut Store<TaskState>,
    reusable: bool,
) -> wasmtime::Result<Entry> {
    Ok(match program {
        Program::Task(task) => {
            let instance = task.pre.instantiate_async(&mut *store).await?;
            let run = task.indices.load(&mut *store, &instance)?;
            let batch = match &task.batch {
                Some(index) if reusable => instance.get_typed_func(&mut *store, index).ok(),
                _ => None,
            };
            Entry::Task(run, batch)
        }
        Program::Invoke(invoke) => {
            let instance = invoke.pre.instantiate_async(&mut *store).await?;
            let func = instance
                .get_func(&mut *store, invoke.export)
                .ok_or_else(|| wasmtime::format_err!("the invoked function is not exported"))?;
            Entry::Func(func, invoke.results)
        }
        Program::Command(command) => match &command.entry {
            CommandEntry::Module(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                Entry::Start(instance.get_typed_func::<(), ()>(&mut *store, "_start")?)
            }
            CommandEntry::Component(pre) => {
                Entry::Command(pre.instantiate_async(&mut *store).await?)
            }
        },
    })
}

fn wasi_context(
    settings: &Settings,
    stdout: &CapturePipe,
    stderr: &CapturePipe,
    rngs: Option<&TaskRngs>,
    io: Option<CommandIo>,
) -> Result<WasiP1Ctx, TaskError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_blocking_current_thread(true);
    if let Some(io) = io {
        wasi.stdin(MemoryInputPipe::new(io.stdin)).args(&io.args);
    }
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
    if let Some(rngs) = rngs {
        wasi.secure_random(rngs.secure.clone())
            .insecure_random(rngs.insecure.clone())
            .insecure_random_seed(rngs.insecure_seed);
    }
    Ok(wasi.build_p1())
}

/// Calls the entry point once under this task's limits, on a fresh or a
/// kept instance.
async fn call(
    instance: &mut Instance,
    input: &[u8],
    arguments: Vec<Val>,
    settings: &Settings,
    limits: &Limits,
    placement: &Placement,
    watch: &Watch,
) -> wasmtime::Result<Result<Returned, String>> {
    let state = instance.store.data_mut();
    state.watch = watch.clone();
    state.panic = None;
    // A kept instance's memory stays as big as it grew: its peak carries on.
    state.memory.max = limits.max_memory;
    state.memory.refused = false;
    if let (Some(rngs), Some(seed)) = (&state.rngs, settings.seed) {
        rngs.reseed(seed::derive(seed, placement.seed_key));
    }
    if let Some(fuel) = limits.fuel {
        instance
            .store
            .set_fuel(fuel)
            .map_err(|_| wasmtime::Error::new(FuelNotMetered))?;
    }
    if settings.interruptible {
        instance.store.set_epoch_deadline(1);
    }
    let store = &mut instance.store;
    let run = async {
        match &instance.entry {
            Entry::Task(task, _) => Ok(task
                .call_run(&mut *store, input)
                .await?
                .map(Returned::Value)),
            Entry::Func(func, returns) => {
                let mut results = vec![Val::Bool(false); *returns];
                func.call_async(&mut *store, &arguments, &mut results)
                    .await?;
                let value = match results.as_slice() {
                    [] => serde_json::Value::Null,
                    [one] => values::to_json(one),
                    many => many.iter().map(values::to_json).collect(),
                };
                Ok(Ok(Returned::Value(value.to_string().into_bytes())))
            }
            Entry::Start(start) => exited(start.call_async(&mut *store, ()).await),
            Entry::Command(command) => {
                match command.wasi_cli_run().call_run(&mut *store).await {
                    // `run` returning an error is how a 0.2 program exits
                    // with a failure.
                    Ok(Err(())) => Err(wasmtime::Error::new(I32Exit(1))),
                    other => exited(other.map(|_| ())),
                }
            }
        }
    };
    tokio::select! {
        biased;
        outcome = run => outcome,
        why = stopped(|| watch.clone()) => Err(why.into()),
    }
}

/// A command program's end: returning from `_start`, or exiting with 0, is
/// success; its stdout is the output.
fn exited(outcome: wasmtime::Result<()>) -> wasmtime::Result<Result<Returned, String>> {
    match outcome {
        Ok(()) => Ok(Ok(Returned::Stdout)),
        Err(error)
            if error
                .downcast_ref::<I32Exit>()
                .is_some_and(|exit| exit.0 == 0) =>
        {
            Ok(Ok(Returned::Stdout))
        }
        Err(error) => Err(error),
    }
}

/// Turns what wasmtime returned into the kind a caller matches on.
fn classify(error: &wasmtime::Error, state: &TaskState, limits: &Limits) -> TaskError {
    let trap_code = error.downcast_ref::<Trap>().copied();
    let mut failure = if let Some(misuse) = error.downcast_ref::<FuelNotMetered>() {
        TaskError::new(ErrorKind::Internal, misuse.to_string())
    } else if let Some(why) = error.downcast_ref::<Interruption>() {
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
            format!("the task exited with code {}", exit.0),
        );
        failure.details_mut().exit_code = Some(exit.0);
        failure
    } else {
        match (trap_code, state.panic.clone()) {
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
    // An exit is no fault: where it was called from is noise.
    if details.kind == ErrorKind::Exit {
        return failure;
    }
    details.backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    failure
}
