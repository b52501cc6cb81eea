//! The worker threads: one named OS thread per worker, all pulling jobs from
//! one queue. Knows nothing about wasm: a job is its work and the slots of
//! its tasks, run one by one or, where the work can, several at a time.

use std::any::Any;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

use std::time::Instant;

use crate::error::{ErrorKind, TaskError};
use crate::handle::{Announce, Slot};
use crate::lock;
use crate::stats::{Counters, Stats};
use crate::task::{TaskResult, duration_of};

/// What runs the tasks of one job, on the worker numbered `worker`.
pub(crate) trait Work: Send {
    /// Runs one task.
    fn run(&mut self, worker: usize, item: &Item) -> TaskResult;

    /// Whether [`Work::run_many`] may take several tasks at once.
    fn batches(&self) -> bool {
        false
    }

    /// Runs tasks from the start of `items` back to back as one, if it can:
    /// one result per task it ran, in order. None means it could not, and
    /// [`Work::run`] runs the first.
    fn run_many(&mut self, _worker: usize, _items: &[&Item]) -> Vec<TaskResult> {
        Vec::new()
    }
}

/// One task of a job. The input stays apart from the work so that a refused
/// job can hand it back.
pub(crate) struct Item {
    pub(crate) slot: Arc<Slot>,
    /// The task's position in its map, if a map submitted it.
    pub(crate) index: Option<u64>,
    pub(crate) input: Vec<u8>,
    /// The key of the task's random seed.
    pub(crate) seed_key: u64,
}

/// What a worker takes from the queue at a time: one task, or a run of
/// tiny tasks of one map sharing one queue entry, run back to back.
pub(crate) struct Job {
    pub(crate) items: Vec<Item>,
    pub(crate) work: Box<dyn Work>,
}

impl Job {
    /// The inputs of a job that was not queued.
    pub(crate) fn into_inputs(self) -> Vec<Vec<u8>> {
        self.items.into_iter().map(|item| item.input).collect()
    }
}

/// The threads and the queue that feeds them.
pub(crate) struct Workers {
    /// `None` once shut down: nothing more is queued.
    sender: Mutex<Option<Sender<Job>>>,
    receiver: Receiver<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    count: usize,
    counters: Arc<Counters>,
}

impl Workers {
    pub(crate) fn spawn(count: usize, stack_size: usize) -> io::Result<Workers> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let workers = Workers {
            sender: Mutex::new(Some(sender)),
            receiver,
            threads: Mutex::new(Vec::with_capacity(count)),
            count,
            counters: Arc::new(Counters::new(count)),
        };
        for index in 0..count {
            let receiver = workers.receiver.clone();
            let counters = Arc::clone(&workers.counters);
            let thread = thread::Builder::new()
                .name(format!("wasmpool-worker-{index}"))
                .stack_size(stack_size)
                .spawn(move || work_loop(index, &receiver, &counters));
            match thread {
                Ok(thread) => lock(&workers.threads).push(thread),
                Err(error) => {
                    workers.shutdown(true, true);
                    return Err(error);
                }
            }
        }
        Ok(workers)
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Queues a job; hands it back if the pool is shut down.
    pub(crate) fn send(&self, job: Job) -> Result<(), Job> {
        match lock(&self.sender).as_ref() {
            Some(sender) => {
                let tasks = job.items.len();
                sender.send(job).map_err(|error| error.0)?;
                self.counters.submitted(tasks);
                Ok(())
            }
            None => Err(job),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Stops taking jobs. Queued jobs still run unless `cancel_pending`;
    /// with `wait`, returns once every worker thread has exited.
    pub(crate) fn shutdown(&self, wait: bool, cancel_pending: bool) {
        // Dropping the sender ends each worker's loop once the queue is empty.
        lock(&self.sender).take();
        if cancel_pending {
            for job in self.receiver.try_iter() {
                for item in job.items {
                    item.slot.cancel();
                    self.counters.skipped();
                }
            }
        }
        if wait {
            let threads = std::mem::take(&mut *lock(&self.threads));
            for thread in threads {
                // A worker never unwinds: each job runs under catch_unwind.
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

fn work_loop(index: usize, receiver: &Receiver<Job>, counters: &Counters) {
    for mut job in receiver {
        if job.items.len() > 1 && job.work.batches() {
            run_batched(index, &job.items, job.work.as_mut(), counters);
            continue;
        }
        for item in &job.items {
            run_item(index, item, job.work.as_mut(), counters);
        }
    }
}

fn run_item(index: usize, item: &Item, work: &mut dyn Work, counters: &Counters) {
    if !item.slot.start() {
        counters.skipped(); // cancelled while queued
        return;
    }
    counters.started();
    run_claimed(index, item, work, counters);
}

/// Runs a task whose slot this worker has claimed, alone.
fn run_claimed(index: usize, item: &Item, work: &mut dyn Work, counters: &Counters) {
    let span = task_span(index, item);
    let started = Instant::now();
    let result = span.in_scope(|| {
        catch_unwind(AssertUnwindSafe(|| work.run(index, item)))
            .unwrap_or_else(|panic| Err(host_panic(index, panic.as_ref())))
    });
    finish(
        index,
        item,
        &span,
        result,
        started.elapsed(),
        None,
        counters,
    );
}

/// The tasks of a job run as one where the work can: claimed together,
/// then as many at a time as the work takes, each finished as it comes
/// back; one the work cannot take runs alone.
fn run_batched(index: usize, items: &[Item], work: &mut dyn Work, counters: &Counters) {
    let mut claimed = Vec::with_capacity(items.len());
    for item in items {
        if item.slot.start() {
            counters.started();
            claimed.push(item);
        } else {
            counters.skipped(); // cancelled while queued
        }
    }
    let mut rest = &claimed[..];
    while let Some(&first) = rest.first() {
        let results = catch_unwind(AssertUnwindSafe(|| work.run_many(index, rest)))
            .unwrap_or_else(|panic| vec![Err(host_panic(index, panic.as_ref()))]);
        if results.is_empty() {
            run_claimed(index, first, work, counters);
            rest = &rest[1..];
            continue;
        }
        let ran = results.len();
        counters.batched(ran);
        // Came back together: their map hears of them together.
        let mut announce = Announce::default();
        for (&item, result) in rest.iter().zip(results) {
            let busy = duration_of(&result);
            let span = task_span(index, item);
            let announce = Some(&mut announce);
            finish(index, item, &span, result, busy, announce, counters);
        }
        rest = &rest[ran..];
    }
}

fn task_span(index: usize, item: &Item) -> tracing::Span {
    tracing::info_span!(
        "wasmpool.task",
        task = item.slot.id(),
        index = item.index,
        worker = index,
        outcome = tracing::field::Empty,
        instantiate_us = tracing::field::Empty,
        run_us = tracing::field::Empty,
        attempts = tracing::field::Empty,
    )
}

/// Counts a task's end (its result, and how long the worker was busy with
/// it) and hands its result to whoever waits; its listeners hear of it
/// at once, or through `announce` with the others of its batch.
fn finish(
    index: usize,
    item: &Item,
    span: &tracing::Span,
    result: TaskResult,
    busy: std::time::Duration,
    announce: Option<&mut Announce>,
    counters: &Counters,
) {
    record_outcome(span, &result);
    counters.completed(index, busy, &result);
    match announce {
        Some(announce) => item.slot.finish_announcing(result, announce),
        None => item.slot.finish(result),
    }
}

/// Puts how the task ended on its span, for an embedder's tracing set-up.
fn record_outcome(span: &tracing::Span, result: &TaskResult) {
    let (outcome, metrics, attempts) = match result {
        Ok(output) => ("ok", output.metrics(), output.attempts()),
        Err(error) => (error.kind().as_str(), error.metrics(), error.attempts()),
    };
    span.record("outcome", outcome);
    span.record("instantiate_us", metrics.instantiate.as_micros() as u64);
    span.record("run_us", metrics.run.as_micros() as u64);
    span.record("attempts", attempts);
}

/// A panic in the host while running a task is a wasmpool bug; it fails that
/// task alone, loudly, and the worker goes on with fresh state.
fn host_panic(worker: usize, panic: &(dyn Any + Send)) -> TaskError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    let mut error = TaskError::new(
        ErrorKind::Internal,
        format!("wasmpool itself panicked while running this task (please report it): {message}"),
    );
    error.details_mut().worker = Some(worker);
    error
}
