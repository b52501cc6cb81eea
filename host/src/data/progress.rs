//! What a running task tells the job it belongs to, and asks of it: how
//! far it has come, and whether it must stop. The wasm side reports
//! through [`JobControl`], which the scheduling side implements, so that
//! neither knows the other.

use std::sync::atomic::{AtomicU64, Ordering};

/// A running task's line to its job: the sandbox polls it to stop a task
/// that was cancelled, and reports the guest's progress through it.
pub(crate) trait JobControl: Send + Sync {
    /// Whether the job was cancelled: its running task stops, its tasks
    /// not yet started end as cancelled.
    fn is_cancel_requested(&self) -> bool;

    /// Records the progress (0.0 to 1.0) the running task reported.
    fn set_progress(&self, fraction: f64);
}

/// A progress fraction in an atomic cell, or none yet.
pub(crate) struct ProgressCell(AtomicU64);

impl ProgressCell {
    /// No progress reported yet; any NaN would do, this one is never
    /// produced by `f64::clamp`.
    const NONE: u64 = u64::MAX;

    /// A cell with no progress reported.
    pub(crate) fn new() -> ProgressCell {
        ProgressCell(AtomicU64::new(ProgressCell::NONE))
    }

    /// Stores `fraction`, clamped to [0, 1] (NaN as 0).
    pub(crate) fn set(&self, fraction: f64) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.0.store(fraction.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        self.0.store(ProgressCell::NONE, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            ProgressCell::NONE => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

/// The progress the running task of each worker last reported: what a
/// progress display shows for long tasks.
pub(crate) struct ProgressBoard {
    workers: Vec<ProgressCell>,
}

impl ProgressBoard {
    pub(crate) fn new(workers: usize) -> ProgressBoard {
        ProgressBoard {
            workers: (0..workers).map(|_| ProgressCell::new()).collect(),
        }
    }

    pub(crate) fn set(&self, worker: usize, fraction: f64) {
        if let Some(cell) = self.workers.get(worker) {
            cell.set(fraction);
        }
    }

    pub(crate) fn clear(&self, worker: usize) {
        if let Some(cell) = self.workers.get(worker) {
            cell.clear();
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<Option<f64>> {
        self.workers.iter().map(ProgressCell::get).collect()
    }
}
