//! The worker threads: one named OS thread per worker, all pulling jobs from
//! one queue. Knows nothing about wasm: a job is its tasks, the state they
//! share and a type-erased [`Runner`] that runs them; its tasks are claimed
//! together, run one by one or, where the runner can, several at a time,
//! and finished together.

use std::any::Any;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::data::error::{ErrorKind, TaskError};
use crate::data::input::QueuedTask;
use crate::data::lock;
use crate::data::output::{TaskResult, duration_of};
use crate::data::progress::JobControl;
use crate::sched::job::JobState;
use crate::sched::stats::{Counters, Stats};

/// What runs the tasks of one job, on the worker numbered `worker`; `state`
/// is the job's, which a cancellation sets and a task's progress goes to.
pub(crate) trait Runner: Send {
    /// Runs one task.
    fn run(&mut self, worker: usize, task: &QueuedTask, state: &Arc<JobState>) -> TaskResult;

    /// Whether [`Runner::run_many`] may take several tasks at once.
    fn batches(&self) -> bool {
        false
    }

    /// Runs tasks from the start of `tasks` back to back as one, if it can:
    /// one result per task it ran, in order. None means it could not, and
    /// [`Runner::run`] runs the first.
    fn run_many(
        &mut self,
        _worker: usize,
        _tasks: &[QueuedTask],
        _state: &Arc<JobState>,
    ) -> Vec<TaskResult> {
        Vec::new()
    }
}

/// What a worker takes from the queue at a time: one task, or several
/// tiny tasks of one map sharing one queue entry and one state, run back
/// to back.
pub(crate) struct Job {
    pub(crate) tasks: Vec<QueuedTask>,
    pub(crate) state: Arc<JobState>,
    pub(crate) runner: Box<dyn Runner>,
}

impl Job {
    /// The inputs of a job that was not queued.
    pub(crate) fn into_inputs(self) -> Vec<Vec<u8>> {
        self.tasks
            .into_iter()
            .map(|task| Vec::from(task.input))
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
                let tasks = job.tasks.len();
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
                job.state.cancel();
                self.counters.skipped(job.state.tasks());
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
        let tasks = job.state.tasks();
        if !job.state.start() {
            counters.skipped(tasks); // cancelled while queued
            continue;
        }
        counters.started(tasks);
        let mut results = Vec::with_capacity(tasks);
        let runner = job.runner.as_mut();
        if tasks > 1 && runner.batches() {
            run_batched(
                index,
                &job.tasks,
                &job.state,
                runner,
                counters,
                &mut results,
            );
        } else {
            for task in &job.tasks {
                results.push(run_one(index, task, &job.state, runner, counters));
            }
        }
        job.state.finish(results);
    }
}

/// Runs one task of a claimed job alone; one whose job was cancelled
/// meanwhile ends at once.
fn run_one(
    index: usize,
    task: &QueuedTask,
    state: &Arc<JobState>,
    runner: &mut dyn Runner,
    counters: &Counters,
) -> TaskResult {
    let span = task_span(index, task);
    let started = Instant::now();
    let result = if state.is_cancel_requested() {
        let mut error = TaskError::cancelled();
        error.details_mut().worker = Some(index);
        Err(error)
    } else {
        span.in_scope(|| {
            catch_unwind(AssertUnwindSafe(|| runner.run(index, task, state)))
                .unwrap_or_else(|panic| Err(host_panic(index, panic.as_ref())))
        })
    };
    counted(index, &span, &result, started.elapsed(), counters);
    result
}

/// The tasks of a job run as one where the runner can: as many at a time as
/// the runner takes; one the runner cannot take runs alone.
fn run_batched(
    index: usize,
    tasks: &[QueuedTask],
    state: &Arc<JobState>,
    runner: &mut dyn Runner,
    counters: &Counters,
    results: &mut Vec<TaskResult>,
) {
    let mut rest = tasks;
    while let Some(first) = rest.first() {
        let ran = catch_unwind(AssertUnwindSafe(|| runner.run_many(index, rest, state)))
            .unwrap_or_else(|panic| vec![Err(host_panic(index, panic.as_ref()))]);
        if ran.is_empty() {
            results.push(run_one(index, first, state, runner, counters));
            rest = &rest[1..];
            continue;
        }
        counters.batched(ran.len());
        let (done, after) = rest.split_at(ran.len().min(rest.len()));
        for (task, result) in done.iter().zip(ran) {
            let span = task_span(index, task);
            counted(index, &span, &result, duration_of(&result), counters);
            results.push(result);
        }
        rest = after;
    }
}

fn task_span(index: usize, task: &QueuedTask) -> tracing::Span {
    tracing::info_span!(
        "wasmpool.task",
        task = task.id,
        index = task.index,
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
    use bytes::Bytes;

    use super::*;
    use crate::data::output::TaskOutput;
    use crate::sched::handle::TaskHandle;

    /// Succeeds, and cancels the job it runs in after its first task.
    struct CancelsItsJob;

    impl Runner for CancelsItsJob {
        fn run(&mut self, worker: usize, _task: &QueuedTask, state: &Arc<JobState>) -> TaskResult {
            state.cancel();
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
        let state = JobState::new(0, 3, None);
        let tasks = (0..3)
            .map(|id| QueuedTask {
                id,
                index: Some(id),
                input: Bytes::new(),
                seed_key: id,
            })
            .collect();
        let job = Job {
            tasks,
            state: Arc::clone(&state),
            runner: Box::new(CancelsItsJob),
        };
        assert!(workers.send(job).is_ok());
        let results = TaskHandle::new(state).wait_all();
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
