//! One run of a task in a store: its instance made (or the kept one
//! taken), its entry point called under its limits and raced against its
//! time-out and cancellation, its outcome classified.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;
use wasmtime_wasi::I32Exit;

use crate::data::error::{ErrorKind, TaskError};
use crate::data::limits::Limits;
use crate::data::metrics::Metrics;
use crate::data::output::TaskResult;
use crate::data::progress::JobControl;
use crate::wasm::engine::{TICK, UNINTERRUPTIBLE_TIMEOUT};
use crate::wasm::instance::{Entry, Instance, instantiate, keep, take_kept};
use crate::wasm::load::Program;
use crate::wasm::outcome::{FuelNotMetered, Interruption, finished, ran};
use crate::wasm::sandbox::Sandbox;
use crate::wasm::state::Watch;
use crate::wasm::values;

thread_local! {
    /// Each worker drives its task's fibre on a runtime of its own.
    static WORKER_RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime builds");
}

/// Everything one run of a task needs besides its input and its job.
pub(crate) struct Attempt<'a> {
    pub(crate) program: &'a Arc<Program>,
    pub(crate) sandbox: &'a Arc<Sandbox>,
    pub(crate) limits: &'a Limits,
    /// The worker that runs it.
    pub(crate) worker: usize,
    /// The key of its random seed.
    pub(crate) seed_key: u64,
}

/// Runs one task on `input`; `job` says whether to stop, and hears the
/// task's progress.
pub(crate) fn run_task(
    attempt: &Attempt<'_>,
    input: &[u8],
    job: Arc<dyn JobControl>,
) -> TaskResult {
    drive(run_async(attempt, input, job))
}

/// Runs a future on this worker's runtime. Most runs finish in their first
/// poll: a task that never waits on the host. Polling once inside the
/// runtime's context skips what `block_on` costs per call; a run that must
/// wait goes on under it.
pub(crate) fn drive<F: Future>(future: F) -> F::Output {
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

async fn run_async(attempt: &Attempt<'_>, input: &[u8], job: Arc<dyn JobControl>) -> TaskResult {
    let Attempt {
        program,
        sandbox,
        limits,
        worker,
        ..
    } = *attempt;
    let started = Instant::now();
    let mut metrics = Metrics {
        started: Some(started),
        ..Metrics::default()
    };
    if limits.timeout.is_some() && !sandbox.interruptible {
        return Err(TaskError::new(
            ErrorKind::InvalidInput,
            UNINTERRUPTIBLE_TIMEOUT,
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
    sandbox.progress.clear(worker);
    let watch = Watch::new(job, sandbox, worker, limits.timeout, started);
    let instance = match take_kept(program, sandbox) {
        Some(instance) => Ok(instance),
        None => {
            let instance = instantiate(program, input, sandbox, limits, &watch).await;
            metrics.instantiate = started.elapsed();
            instance
        }
    };
    let mut instance = match instance {
        Ok(instance) => instance,
        Err(error) => return Err(ran(error, metrics, worker)),
    };
    let outcome = call(&mut instance, input, arguments, attempt, &watch).await;
    sandbox.progress.clear(worker);
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
        Ok(Err(message)) => Err(instance.store.data_mut().returned_error(message)),
        Err(error) => Err(instance.store.data().classify(&error, limits)),
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
        keep(instance, sandbox);
    }
    finished(result, stdout, stderr, metrics, worker, sandbox)
}

/// What a run produced: a value, or (for a command program) its stdout.
enum Returned {
    Value(Vec<u8>),
    Stdout,
}

/// Calls the entry point once under this task's limits, on a fresh or a
/// kept instance.
async fn call(
    instance: &mut Instance,
    input: &[u8],
    arguments: Vec<Val>,
    attempt: &Attempt<'_>,
    watch: &Watch,
) -> wasmtime::Result<Result<Returned, String>> {
    let Attempt {
        sandbox,
        limits,
        seed_key,
        ..
    } = *attempt;
    let state = instance.store.data_mut();
    state.watch = watch.clone();
    // A kept instance's memory stays as big as it grew: its peak carries on.
    state.memory.max = limits.max_memory;
    state.start_task(sandbox.seed, seed_key);
    if let Some(fuel) = limits.fuel {
        instance
            .store
            .set_fuel(fuel)
            .map_err(|_| wasmtime::Error::new(FuelNotMetered))?;
    }
    if sandbox.interruptible {
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

/// Resolves when the task `watch` gives (the running one) must stop; it
/// covers a guest blocked in a host call, where no epoch check runs.
pub(crate) async fn stopped(watch: impl Fn() -> Watch) -> Interruption {
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
