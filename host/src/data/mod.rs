//! The first layer: plain data that both sides of the pool hand each
//! other (inputs, limits, outputs, errors, metrics, progress). Nothing
//! here imports from the layers above (`wasm`, `sched`, the glue).

pub(crate) mod captured;
pub(crate) mod error;
pub(crate) mod ids;
pub(crate) mod input;
pub(crate) mod limits;
pub(crate) mod load_options;
pub(crate) mod metrics;
pub(crate) mod output;
pub(crate) mod progress;
/// The cluster's messages between ranks (and what the fuzz targets decode).
#[cfg(any(feature = "mpi", feature = "fuzzing"))]
pub(crate) mod wire;

/// Locks `mutex`, taking a poisoned one as it is, as the crate's locks all
/// do: a panic while a lock is held is caught as a task's failure, and
/// what the lock guards stays valid.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
