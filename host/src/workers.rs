//! The worker threads: one named OS thread per worker, all pulling jobs from
//! one queue. Knows nothing about wasm: a job is its work, its tasks and
//! the slot they share, claimed together, run one by one or, where the work
//! can, several at a time, and finished together.

use std::any::Any;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use bytes::Bytes;

use crossbeam_channel::{Receiver, Sender};

use std::time::Instant;

use crate::error::{ErrorKind, TaskError};
use crate::handle::Slot;
use crate::lock;
use crate::stats::{Counters, Stats};
use crate::task::{TaskResult, duration_of};

/// What runs the tasks of one job, on the worker numbered `worker`; `slot`
/// is the job's, which a cancellation sets and a task's progress goes to.
pub(crate) trait Work: Send {
    /// Runs one task.
    fn run(&mut self, worker: usize, item: &Item, slot: &Arc<Slot>) -> TaskResult;

    /// Whether [`Work::run_many`] may take several tasks at once.
    fn batches(&self) -> bool {
        false
    }

    /// Runs tasks from the start of `items` back to back as one, if it can:
    /// one result per task it ran, in order. None means it could not, and
    /// [`Work::run`] runs the first.
    fn run_many(&mut self, _worker: usize, _items: &[Item], _slot: &Arc<Slot>) -> Vec<TaskResult> {
        Vec::new()
    }
}

/// One task of a job. The input stays apart from the work so that a refused
/// job can hand it back.
pub(crate) struct Item {
    /// The task's number in its pool.
    pub(crate) id: u64,
    /// The task's position in its map, if a map submitted it.
    pub(crate) index: Option<u64>,
    pub(crate) input: Bytes,
    /// The key of the task's random seed.
    pub(crate) seed_key: u64,
}

/// What a worker takes from the queue at a time: one task, or a run of
/// tiny tasks of one map sharing one queue entry and one slot, run back to
/// back.
pub(crate) struct Job {
    pub(crate) items: Vec<Item>,
    pub(crate) slot: Arc<Slot>,
    pub(crate) work: Box<dyn Work>,
}

impl Job {
    /// The inputs of a job that was not queued.
    pub(crate) fn into_inputs(self) -> Vec<Vec<u8>> {
        self.items
            .into_iter()
            .map(|item| Vec::from(item.input))
            .collect()
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
                job.slot.cancel();
                self.counters.skipped(job.slot.tasks());
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
        let tasks = job.slot.tasks();
        if !job.slot.start() {
            counters.skipped(tasks); // cancelled while queued
            continue;
        }
        counters.started(tasks);
        let mut results = Vec::with_capacity(tasks);
        let work = job.work.as_mut();
        if tasks > 1 && work.batches() {
            run_batched(index, &job.items, &job.slot, work, counters, &mut results);
        } else {
            for item in &job.items {
                results.push(run_one(index, item, &job.slot, work, counters));
            }
        }
        job.slot.finish(results);
    }
}

/// Runs one task of a claimed job alone; one whose job was cancelled
/// meanwhile ends at once.
fn run_one(
    index: usize,
    item: &Item,
    slot: &Arc<Slot>,
    work: &mut dyn Work,
    counters: &Counters,
) -> TaskResult {
    let span = task_span(index, item);
    let started = Instant::now();
    let result = if slot.is_cancel_requested() {
        let mut error = TaskError::cancelled();
        error.details_mut().worker = Some(index);
        Err(error)
    } else {
        span.in_scope(|| {
            catch_unwind(AssertUnwindSafe(|| work.run(index, item, slot)))
                .unwrap_or_else(|panic| Err(host_panic(index, panic.as_ref())))
        })
    };
    counted(index, &span, &result, started.elapsed(), counters);
    result
}

/// The tasks of a job run as one where the work can: as many at a time as
/// the work takes; one the work cannot take runs alone.
fn run_batched(
    index: usize,
    items: &[Item],
    slot: &Arc<Slot>,
    work: &mut dyn Work,
    counters: &Counters,
    results: &mut Vec<TaskResult>,
) {
    let mut rest = items;
    while let Some(first) = rest.first() {
        let ran = catch_unwind(AssertUnwindSafe(|| work.run_many(index, rest, slot)))
            .unwrap_or_else(|panic| vec![Err(host_panic(index, panic.as_ref()))]);
        if ran.is_empty() {
            results.push(run_one(index, first, slot, work, counters));
            rest = &rest[1..];
            continue;
        }
        counters.batched(ran.len());
        let (done, after) = rest.split_at(ran.len().min(rest.len()));
        for (item, result) in done.iter().zip(ran) {
            let span = task_span(index, item);
            counted(index, &span, &result, duration_of(&result), counters);
            results.push(result);
        }
        rest = after;
    }
}

fn task_span(index: usize, item: &Item) -> tracing::Span {
    tracing::info_span!(
        "wasmpool.task",
        task = item.id,
        index = item.index,
        worker = index,
        outcome = tracing::field::Empty,
        instantiate_us = tracing::field::Empty,
        run_us = tracing::field::Empty,
        attempts = tracing::field::Empty,
    )
}

/// Counts a task's end: its result, and how long the worker was busy with
/// it.
fn counted(
    index: usize,
    span: &tracing::Span,
    result: &TaskResult,
    busy: std::time::Duration,
    counters: &Counters,
) {
    record_outcome(span, result);
    counters.completed(index, busy, result);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::TaskHandle;
    use crate::task::TaskOutput;

    /// Succeeds, and cancels the job it runs in after its first task.
    struct CancelsItsJob;

    impl Work for CancelsItsJob {
        fn run(&mut self, worker: usize, _item: &Item, slot: &Arc<Slot>) -> TaskResult {
            slot.cancel();
            Ok(TaskOutput {
                value: Default::default(),
                streams: None,
                worker,
                attempts: 1,
                metrics: Default::default(),
            })
        }
    }

    #[test]
    fn a_job_cancelled_while_it_runs_ends_its_other_tasks_unrun() {
        let workers = Workers::spawn(1, 1 << 20).unwrap();
        let slot = Slot::new(0, 3, None);
        let items = (0..3)
            .map(|id| Item {
                id,
                index: Some(id),
                input: Bytes::new(),
                seed_key: id,
            })
            .collect();
        let job = Job {
            items,
            slot: Arc::clone(&slot),
            work: Box::new(CancelsItsJob),
        };
        assert!(workers.send(job).is_ok());
        let results = TaskHandle::new(slot).wait_all();
        assert!(results[0].is_ok());
        for result in &results[1..] {
            let error = result.as_ref().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Cancelled);
            assert_eq!(error.worker(), Some(0));
        }
        let stats = workers.stats();
        assert_eq!((stats.submitted, stats.finished), (3, 3));
        assert_eq!(stats.failed.get(&ErrorKind::Cancelled), Some(&2));
    }
}
