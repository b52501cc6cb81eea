//! What every task of one pool runs under, besides its limits: how much
//! output is kept, what of the host it sees, its seed, whether instances
//! are reused, and the switches and board the pool shares with its
//! running tasks.

use std::sync::atomic::AtomicBool;

use crate::data::limits::Grants;
use crate::data::progress::ProgressBoard;
use crate::wasm::capture::WRITE_PERMIT;

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

/// The least the host reads of one value a task hands it, whatever
/// `max_result`: a whole write to stdout or stderr, and room for a panic
/// message or an error, which the host cuts to `max_message` once read.
const MIN_VALUE_BUDGET: usize = WRITE_PERMIT;

impl Sandbox {
    /// What the host may allocate to read one value a task hands it (a
    /// result, an error, a host call's argument), as wasmtime counts it in
    /// its store's hostcall fuel: the bytes of strings and lists, and a
    /// whole `Val` for each element of an `--invoke` result. The result's
    /// cap bounds it, so a result cannot cost the host more to read than
    /// it would be allowed to weigh.
    pub(crate) fn value_budget(&self) -> usize {
        self.max_result.max(MIN_VALUE_BUDGET)
    }
}
