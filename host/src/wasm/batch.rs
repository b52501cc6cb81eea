//! A job's tasks in one call of a component's `run-batch` export, on this
//! worker's kept instance: the guest pulls each input through the host's
//! `next-input` (`state.rs`), each task still timed, limited, captured and
//! classified on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data::error::{ErrorKind, TaskError};
use crate::data::input::QueuedTask;
use crate::data::output::TaskResult;
use crate::data::progress::JobControl;
use crate::wasm::call::{Attempt, drive, stopped};
use crate::wasm::instance::{Entry, instantiate, keep, take_kept};
use crate::wasm::state::{Batch, Deadline, Waiting, Watch, ended};

/// Runs tasks from the start of `tasks` in one `run-batch` call on this
/// worker's kept instance (or a new one): one result per task it ran, in
/// order; none if the program has no `run-batch` or no instance could be
/// made, and then the caller runs the first alone (which reports why).
pub(crate) fn run_batch(
    attempt: &Attempt<'_>,
    tasks: &[QueuedTask],
    job: &Arc<dyn JobControl>,
) -> Vec<TaskResult> {
    drive(run_batch_async(attempt, tasks, job))
}

async fn run_batch_async(
    attempt: &Attempt<'_>,
    tasks: &[QueuedTask],
    job: &Arc<dyn JobControl>,
) -> Vec<TaskResult> {
    let Attempt {
        program,
        sandbox,
        limits,
        worker,
        ..
    } = *attempt;
    if tasks.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let watch = Watch::new(Arc::clone(job), sandbox, worker, limits.timeout, started);
    let (mut instance, instantiate) = match take_kept(program, sandbox) {
        Some(instance) => (instance, Duration::ZERO),
        None => match instantiate(program, &[], sandbox, limits, &watch).await {
            Ok(instance) => (instance, started.elapsed()),
            Err(_) => return Vec::new(),
        },
    };
    let Entry::Task(_, Some(run_batch)) = &instance.entry else {
        keep(instance, sandbox);
        return Vec::new();
    };
    let run_batch = *run_batch;
    // No more inputs than the instance has runs left.
    let room = (sandbox.reuse - instance.runs) as usize;
    let deadline = Arc::new(Deadline::new(started, watch.deadline));
    let state = instance.store.data_mut();
    state.watch = watch.clone();
    state.memory.max = limits.max_memory;
    state.batch = Some(Batch {
        waiting: tasks
            .iter()
            .take(room)
            .map(|task| Waiting {
                input: task.input.to_vec(),
                seed_key: task.seed_key,
            })
            .collect(),
        job: Arc::clone(job),
        running: None,
        results: Vec::with_capacity(tasks.len().min(room)),
        stdout: instance.stdout.clone(),
        stderr: instance.stderr.clone(),
        sandbox: Arc::clone(sandbox),
        timeout: limits.timeout,
        worker,
        instantiate,
        started: Some(started),
        last_end: None,
        deadline: Arc::clone(&deadline),
    });
    if sandbox.interruptible {
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
    sandbox.progress.clear(worker);
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
            Err(error) => state.classify(error, limits),
        };
        let result = ended(Err(error), &mut batch, metrics, state.memory.peak);
        batch.results.push(result);
    }
    instance.runs += batch.results.len() as u32;
    if healthy {
        keep(instance, sandbox);
    }
    batch.results
}
