//! What one run of a task cost: when it ran, how its time split between
//! instantiating and running, its peak memory and the fuel it burnt.

use std::time::{Duration, Instant};

/// Measurements of one task's (last) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// When the run began (its instantiation), `None` for a task that never
    /// ran.
    pub started: Option<Instant>,
    /// Time spent making the instance (zero when a kept instance was reused).
    pub instantiate: Duration,
    /// Time spent in the call to `run`.
    pub run: Duration,
    /// The largest linear memory the task had, in bytes.
    pub peak_memory: usize,
    /// Fuel units the task burnt, in a pool that meters fuel.
    pub fuel_consumed: Option<u64>,
}
