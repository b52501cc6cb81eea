//! The host state of one task's `Store`: WASI, the memory guard, what
//! decides whether the task must stop, and the host functions of the
//! `wasmpool:task/host` interface, among them the feeding of a
//! `run-batch` call's inputs one by one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxView, WasiView};

use crate::data::error::{ErrorKind, TaskError};
use crate::data::limits::Limits;
use crate::data::metrics::Metrics;
use crate::data::output::TaskResult;
use crate::data::progress::JobControl;
use crate::wasm::capture::CapturePipe;
use crate::wasm::outcome::{self, Interruption, finished, ran};
use crate::wasm::sandbox::Sandbox;
use crate::wasm::seed::{self, TaskRngs};

/// The types and host traits generated from `wit/task.wit`.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        exports: { default: async },
        // `exit` ends the task: it returns a trap, never a value.
        imports: { "wasmpool:task/host.exit": trappable },
    });
}

/// What decides whether a running task must stop.
#[derive(Clone)]
pub(crate) struct Watch {
    /// The job of the running task: cancelled or not, and where its
    /// progress goes.
    pub(crate) job: Arc<dyn JobControl>,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) worker: usize,
    pub(crate) deadline: Option<Instant>,
}

impl Watch {
    /// The watch of a task that started at `started` on `worker`.
    pub(crate) fn new(
        job: Arc<dyn JobControl>,
        sandbox: &Arc<Sandbox>,
        worker: usize,
        timeout: Option<Duration>,
        started: Instant,
    ) -> Watch {
        Watch {
            job,
            sandbox: Arc::clone(sandbox),
            worker,
            deadline: timeout.and_then(|timeout| started.checked_add(timeout)),
        }
    }

    pub(crate) fn check(&self) -> Option<Interruption> {
        if self.job.is_cancel_requested() || self.sandbox.abort.load(Ordering::Relaxed) {
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

/// Memory growth under a limit, remembering a refusal: a guest whose
/// allocation failed aborts, and the abort alone would not say why.
pub(crate) struct MemoryGuard {
    pub(crate) max: Option<usize>,
    pub(crate) refused: bool,
    /// The largest size granted, for the task's metrics.
    pub(crate) peak: usize,
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
pub(crate) struct HostState {
    /// WASI for components (0.2) and for core modules (preview 1) alike.
    pub(crate) wasi: WasiP1Ctx,
    /// The message the guest's panic hook reported, if it panicked.
    pub(crate) panic: Option<String>,
    /// The guest's account of the error it is about to return.
    pub(crate) traceback: Option<String>,
    pub(crate) memory: MemoryGuard,
    pub(crate) watch: Watch,
    /// The random streams given to WASI, reseeded per task.
    pub(crate) rngs: Option<TaskRngs>,
    /// The running task's seed, in a seeded run.
    pub(crate) task_seed: Option<u64>,
    /// The inputs of the `run-batch` call under way.
    pub(crate) batch: Option<Batch>,
}

impl HostState {
    /// What `error`, which ended a call in this store, means for its task.
    pub(crate) fn classify(&self, error: &wasmtime::Error, limits: &Limits) -> TaskError {
        outcome::classify(
            error,
            limits,
            self.memory.refused,
            self.panic.as_deref(),
            self.watch.sandbox.value_budget(),
        )
    }

    /// Forgets what the task before reported (a panic, a traceback, a
    /// refused growth) and points the random sources at the task of
    /// `key`, in a run seeded with `seed`: a new task in this store.
    pub(crate) fn start_task(&mut self, seed: Option<u64>, key: u64) {
        self.panic = None;
        self.traceback = None;
        self.memory.refused = false;
        self.reseed(seed, key);
    }

    fn reseed(&mut self, seed: Option<u64>, key: u64) {
        self.task_seed = seed.map(|seed| seed::derive(seed, key));
        if let (Some(rngs), Some(task_seed)) = (&self.rngs, self.task_seed) {
            rngs.reseed(task_seed);
        }
    }

    /// The error the guest returned, with its traceback.
    pub(crate) fn returned_error(&mut self, message: String) -> TaskError {
        outcome::returned_error(
            message,
            self.memory.refused,
            self.memory.max,
            &mut self.traceback,
        )
    }
}

/// The inputs of one `run-batch` call and what became of them.
pub(crate) struct Batch {
    /// Not yet handed to the guest.
    pub(crate) waiting: VecDeque<Waiting>,
    /// The input the guest is on: when its run started, and how long the
    /// instance took to make (the first input's share).
    pub(crate) running: Option<Metrics>,
    pub(crate) results: Vec<TaskResult>,
    /// The run's, which a cancellation sets.
    pub(crate) job: Arc<dyn JobControl>,
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) worker: usize,
    /// How long making the instance took, for the first input.
    pub(crate) instantiate: Duration,
    /// When the call started, for the first input.
    pub(crate) started: Option<Instant>,
    /// When the input before ended: the next one's run starts there, with
    /// no clock read of its own.
    pub(crate) last_end: Option<Instant>,
    /// The running input's deadline, for the call's watcher.
    pub(crate) deadline: Arc<Deadline>,
}

/// A deadline one thread moves and another reads, without a lock: the
/// running input's, for the watcher of a `run-batch` call.
pub(crate) struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`; [`Deadline::NONE`] for no deadline.
    nanos: AtomicU64,
}

impl Deadline {
    const NONE: u64 = u64::MAX;

    pub(crate) fn new(base: Instant, deadline: Option<Instant>) -> Deadline {
        let this = Deadline {
            base,
            nanos: AtomicU64::new(Deadline::NONE),
        };
        this.set(deadline);
        this
    }

    pub(crate) fn set(&self, deadline: Option<Instant>) {
        let nanos = deadline.map_or(Deadline::NONE, |deadline| {
            let after = deadline.saturating_duration_since(self.base).as_nanos();
            u64::try_from(after).unwrap_or(Deadline::NONE - 1)
        });
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<Instant> {
        match self.nanos.load(Ordering::Relaxed) {
            Deadline::NONE => None,
            nanos => self.base.checked_add(Duration::from_nanos(nanos)),
        }
    }
}

pub(crate) struct Waiting {
    pub(crate) input: Vec<u8>,
    pub(crate) seed_key: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl bindings::wasmpool::task::host::Host for HostState {
    fn report_progress(&mut self, fraction: f64) {
        self.watch.job.set_progress(fraction);
        let Watch {
            sandbox, worker, ..
        } = &self.watch;
        sandbox.progress.set(*worker, fraction);
    }

    fn report_panic(&mut self, message: String) {
        self.panic = Some(message);
    }

    fn report_traceback(&mut self, traceback: String) {
        self.traceback = Some(traceback);
    }

    fn random_seed(&mut self) -> Vec<u8> {
        match self.task_seed {
            Some(task_seed) => TaskRngs::seed_bytes(task_seed),
            None => {
                let mut bytes = vec![0; 32];
                wasmtime_wasi::thread_rng().fill_bytes(&mut bytes);
                bytes
            }
        }
    }

    fn seeded(&mut self) -> bool {
        self.task_seed.is_some()
    }

    fn exit(&mut self, code: i32) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(I32Exit(code)))
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
            if !batch.job.is_cancel_requested() && !batch.sandbox.abort.load(Ordering::Relaxed) {
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
        batch.sandbox.progress.clear(batch.worker);
        batch.running = Some(Metrics {
            started: Some(started),
            instantiate: std::mem::take(&mut batch.instantiate),
            ..Metrics::default()
        });
        let seed = batch.sandbox.seed;
        self.start_task(seed, next.seed_key);
        Some(next.input)
    }

    fn finish_input(&mut self, outcome: Result<Vec<u8>, String>) {
        let running = self.batch.as_mut().and_then(|batch| batch.running.take());
        let Some(metrics) = running else {
            return;
        };
        let outcome = outcome.map_err(|message| self.returned_error(message));
        let peak = self.memory.peak;
        if let Some(batch) = self.batch.as_mut() {
            let result = ended(outcome, batch, metrics, peak);
            batch.results.push(result);
        }
    }

    fn finish_and_next_input(&mut self, outcome: Result<Vec<u8>, String>) -> Option<Vec<u8>> {
        self.finish_input(outcome);
        self.next_input()
    }
}

/// The result of a batch's input that ended with `outcome`.
pub(crate) fn ended(
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
        &batch.sandbox,
    )
}
