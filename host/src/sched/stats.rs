//! A pool's counters: how many tasks were submitted, wait, run, finished
//! and failed by kind, and how long each worker was busy. Atomics only, so
//! polling them costs next to nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::data::error::ErrorKind;
use crate::data::output::TaskResult;

/// A snapshot of a pool's counters, from [`Pool::stats`](crate::Pool::stats).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks accepted by `submit` (and by maps).
    pub submitted: u64,
    /// Tasks waiting for a worker (cancelled ones count until a worker or a
    /// shutdown takes them off the queue).
    pub queued: u64,
    /// Tasks a worker is running now.
    pub running: u64,
    /// Tasks with a result: succeeded, failed or cancelled.
    pub finished: u64,
    /// Finished tasks that failed, by kind.
    pub failed: BTreeMap<ErrorKind, u64>,
    /// Finished tasks that ran in a batch: one call of a component's
    /// `run-batch` for many inputs, with instance reuse on (on a cluster,
    /// on any of its ranks).
    pub batched: u64,
    /// Time each worker spent running tasks, by worker index.
    pub busy: Vec<Duration>,
    /// By worker index: the progress (0.0 to 1.0) the task the worker runs
    /// now last reported (`report_progress` in the guest SDK), if it runs
    /// one that reported any. On a cluster, as the worker's rank last
    /// passed it on (five times a second while any task reports).
    pub progress: Vec<Option<f64>>,
}

pub(crate) struct Counters {
    submitted: AtomicU64,
    started: AtomicU64,
    /// Finished after running.
    completed: AtomicU64,
    /// Taken off the queue already cancelled.
    skipped: AtomicU64,
    batched: AtomicU64,
    failed: [AtomicU64; ErrorKind::ALL.len()],
    busy_nanos: Vec<AtomicU64>,
}

impl Counters {
    pub(crate) fn new(workers: usize) -> Counters {
        Counters {
            submitted: AtomicU64::new(0),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            failed: std::array::from_fn(|_| AtomicU64::new(0)),
            busy_nanos: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn submitted(&self, tasks: usize) {
        self.submitted.fetch_add(tasks as u64, Ordering::Relaxed);
    }

    pub(crate) fn started(&self, tasks: usize) {
        self.started.fetch_add(tasks as u64, Ordering::Relaxed);
    }

    pub(crate) fn skipped(&self, tasks: usize) {
        self.skipped.fetch_add(tasks as u64, Ordering::Relaxed);
        self.failed_by(ErrorKind::Cancelled, tasks as u64);
    }

    pub(crate) fn completed(&self, worker: usize, busy: Duration, result: &TaskResult) {
        if let Err(error) = result {
            self.failed(error.kind());
        }
        let nanos = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos[worker].fetch_add(nanos, Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts tasks that finished in a batch.
    pub(crate) fn batched(&self, tasks: usize) {
        self.batched.fetch_add(tasks as u64, Ordering::Relaxed);
    }

    fn failed(&self, kind: ErrorKind) {
        self.failed_by(kind, 1);
    }

    fn failed_by(&self, kind: ErrorKind, tasks: u64) {
        let index = ErrorKind::ALL
            .iter()
            .position(|&known| known == kind)
            .expect("ALL lists every kind");
        self.failed[index].fetch_add(tasks, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        // Read the later stages first, so that no count goes negative.
        let completed = self.completed.load(Ordering::Relaxed);
        let skipped = self.skipped.load(Ordering::Relaxed);
        let started = self.started.load(Ordering::Relaxed).max(completed);
        let submitted = self
            .submitted
            .load(Ordering::Relaxed)
            .max(started + skipped);
        Stats {
            submitted,
            queued: submitted - started - skipped,
            running: started - completed,
            finished: completed + skipped,
            failed: ErrorKind::ALL
                .iter()
                .zip(&self.failed)
                .map(|(&kind, count)| (kind, count.load(Ordering::Relaxed)))
                .filter(|&(_, count)| count > 0)
                .collect(),
            batched: self.batched.load(Ordering::Relaxed),
            busy: self
                .busy_nanos
                .iter()
                .map(|nanos| Duration::from_nanos(nanos.load(Ordering::Relaxed)))
                .collect(),
            progress: Vec::new(),
        }
    }
}
