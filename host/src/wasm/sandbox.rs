//! What every task of one pool runs under, besides its limits: how much
//! output is kept, what of the host it sees, its seed, whether instances
//! are reused, and the switches and board the pool shares with its
//! running tasks.

use std::sync::atomic::AtomicBool;

use crate::data::limits::Grants;
use crate::data::progress::ProgressBoard;

/// The sandbox of one pool's tasks, shared by every run.
pub(crate) struct Sandbox {
    /// Bytes of stdout, and of stderr, kept per task.
    pub(crate) max_output: usize,
    /// Bytes of a result the host takes; a larger one fails the task.
    pub(crate) max_result: usize,
    /// Bytes kept of a failure's message, traceback and backtrace each.
    pub(crate) max_message: usize,
    /// The directories and variables a task sees (nothing else).
    pub(crate) grants: Grants,
    /// The pool's seed: each task's random source is derived from it.
    pub(crate) seed: Option<u64>,
    /// Set to stop every running task at once (a shutdown that cancels).
    pub(crate) abort: AtomicBool,
    /// Tasks per instance: 1 for a fresh instance every task.
    pub(crate) reuse: u32,
    /// Whether running wasm can be stopped (the engine has epoch checks).
    pub(crate) interruptible: bool,
    /// What each worker's running task last reported.
    pub(crate) progress: ProgressBoard,
}
