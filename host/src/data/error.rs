//! The errors a caller can match on: how a task failed, why a component did
//! not load, why a submission or a pool build was refused.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::data::captured::Captured;
use crate::data::metrics::Metrics;

/// How a task failed. Each kind is also a stable, kebab-case name
/// ([`ErrorKind::as_str`]) used in the CLI's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The guest panicked; the message is the panic's message.
    Panic,
    /// The guest trapped (`unreachable`, an out-of-bounds access, an abort,
    /// a division by zero, ...). [`TaskError::trap_code`] says which.
    Trap,
    /// The guest ran out of wasm stack.
    StackOverflow,
    /// The guest called `exit` before returning a result, or a command
    /// program exited with a code other than 0. [`TaskError::exit_code`]
    /// holds the code.
    Exit,
    /// The guest returned `Err(message)` from `run`.
    GuestError,
    /// The task ran past its time-out and was stopped.
    Timeout,
    /// The task tried to grow its memory past its limit.
    MemoryLimit,
    /// The task used up its fuel budget.
    FuelExhausted,
    /// The task handed the host more than a cap allows: a result (or an
    /// error, or a host call's argument) over
    /// [`PoolBuilder::max_result`](crate::PoolBuilder::max_result).
    ResourceLimit,
    /// The task was cancelled: before it ran, or while it ran.
    Cancelled,
    /// The input does not fit the invoked function's parameters (see
    /// [`LoadOptions::invoke`](crate::LoadOptions::invoke)); the task did
    /// not run.
    InvalidInput,
    /// The host failed while running the task: a bug in wasmpool, reported
    /// on this task alone.
    Internal,
}

impl ErrorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Panic,
        ErrorKind::Trap,
        ErrorKind::StackOverflow,
        ErrorKind::Exit,
        ErrorKind::GuestError,
        ErrorKind::Timeout,
        ErrorKind::MemoryLimit,
        ErrorKind::FuelExhausted,
        ErrorKind::ResourceLimit,
        ErrorKind::Cancelled,
        ErrorKind::InvalidInput,
        ErrorKind::Internal,
    ];

    /// The kind's name as the CLI writes it: `panic`, `trap`,
    /// `stack-overflow`, `exit`, `guest-error`, `timeout`, `memory-limit`,
    /// `fuel-exhausted`, `resource-limit`, `cancelled`, `invalid-input`,
    /// `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Panic => "panic",
            ErrorKind::Trap => "trap",
            ErrorKind::StackOverflow => "stack-overflow",
            ErrorKind::Exit => "exit",
            ErrorKind::GuestError => "guest-error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MemoryLimit => "memory-limit",
            ErrorKind::FuelExhausted => "fuel-exhausted",
            ErrorKind::ResourceLimit => "resource-limit",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Internal => "internal",
        }
    }
}

impl ErrorKind {
    /// The kind named `name` ([`ErrorKind::as_str`]'s inverse).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether a task that failed so may succeed when run again: a `trap`
    /// (a flaky guest), a `timeout` or a `memory-limit` (a loaded host).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Trap | ErrorKind::Timeout | ErrorKind::MemoryLimit
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one task failed, with everything known about its run.
///
/// The failure of one task never affects another task or the pool.
#[derive(Debug, Clone)]
pub struct TaskError {
    // Boxed: a `Result<TaskOutput, TaskError>` stays small on the hot path.
    details: Box<Details>,
}

#[derive(Debug, Clone)]
pub(crate) struct Details {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) trap_code: Option<wasmtime::Trap>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) backtrace: Option<String>,
    /// The guest's own account of its failure (`report-traceback`).
    pub(crate) traceback: Option<String>,
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
    pub(crate) duration: Duration,
    pub(crate) worker: Option<usize>,
    pub(crate) attempts: u32,
    pub(crate) metrics: Metrics,
}

impl TaskError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> TaskError {
        let details = Details {
            kind,
            message: message.into(),
            trap_code: None,
            exit_code: None,
            backtrace: None,
            traceback: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
            duration: Duration::ZERO,
            worker: None,
            attempts: 0,
            metrics: Metrics::default(),
        };
        TaskError {
            details: Box::new(details),
        }
    }

    /// The memory its details take, in bytes.
    pub(crate) fn held_bytes(&self) -> usize {
        let details = &self.details;
        let text = |text: &Option<String>| text.as_ref().map_or(0, String::len);
        size_of::<Details>()
            + details.message.len()
            + text(&details.backtrace)
            + text(&details.traceback)
            + details.stdout.as_bytes().len()
            + details.stderr.as_bytes().len()
    }

    pub(crate) fn details_mut(&mut self) -> &mut Details {
        &mut self.details
    }

    pub(crate) fn cancelled() -> TaskError {
        TaskError::new(ErrorKind::Cancelled, "the task was cancelled before it ran")
    }

    /// What kind of failure this was.
    pub fn kind(&self) -> ErrorKind {
        self.details.kind
    }

    /// A one-line description: the panic message, the trap, the guest's own
    /// error message, ...
    pub fn message(&self) -> &str {
        &self.details.message
    }

    /// The trap code, for [`ErrorKind::Trap`] and [`ErrorKind::StackOverflow`]
    /// (and for a [`ErrorKind::Panic`], which ends in a trap).
    pub fn trap_code(&self) -> Option<wasmtime::Trap> {
        self.details.trap_code
    }

    /// The exit code, for [`ErrorKind::Exit`].
    pub fn exit_code(&self) -> Option<i32> {
        self.details.exit_code
    }

    /// The wasm backtrace of a trap, one frame a line, when wasmtime
    /// captured one.
    pub fn wasm_backtrace(&self) -> Option<&str> {
        self.details.backtrace.as_deref()
    }

    /// The guest's own account of its failure, when it gave one: the
    /// traceback of a Python task's uncaught exception.
    pub fn traceback(&self) -> Option<&str> {
        self.details.traceback.as_deref()
    }

    /// What the task printed on stdout before it failed.
    pub fn stdout(&self) -> &Captured {
        &self.details.stdout
    }

    /// What the task printed on stderr before it failed (a panicking task's
    /// `panicked at` line is here).
    pub fn stderr(&self) -> &Captured {
        &self.details.stderr
    }

    /// How long the task ran before it failed (zero if it never ran).
    pub fn duration(&self) -> Duration {
        self.details.duration
    }

    /// The worker that ran the task, `None` if it never ran.
    pub fn worker(&self) -> Option<usize> {
        self.details.worker
    }

    /// How many times the task ran (more than 1 after retries; 0 if it never
    /// ran).
    pub fn attempts(&self) -> u32 {
        self.details.attempts
    }

    /// When the (last) run happened and what it cost, as far as it got.
    pub fn metrics(&self) -> &Metrics {
        &self.details.metrics
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.details.kind, self.details.message)
    }
}

impl std::error::Error for TaskError {}

/// What was wrong with a component given to [`Pool::load`](crate::Pool::load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io,
    /// The bytes are not WebAssembly at all.
    NotWasm,
    /// A core module where a component is needed.
    CoreModule,
    /// The component is malformed or does not validate.
    Invalid,
    /// A valid component, but not of the `wasmpool:task` world: `run` is
    /// missing or has another type.
    NotATask,
    /// The component imports something the host does not provide.
    MissingImport,
}

/// Why a component could not be loaded as a task.
#[derive(Debug, Clone)]
pub struct LoadError {
    kind: LoadErrorKind,
    path: Option<PathBuf>,
    message: String,
}

impl LoadError {
    pub(crate) fn new(kind: LoadErrorKind, message: impl Into<String>) -> LoadError {
        LoadError {
            kind,
            path: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, path: &Path) -> LoadError {
        self.path = Some(path.to_path_buf());
        self
    }

    /// What was wrong.
    pub fn kind(&self) -> LoadErrorKind {
        self.kind
    }

    /// The file that was loaded, when the task came from a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The reason, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "cannot load {}: {}", path.display(), self.message),
            None => write!(f, "cannot load the task: {}", self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// A submission refused because the pool is shut down; the input is handed
/// back, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitError<T>(pub T);

impl<T> fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is shut down and takes no more tasks")
    }
}

impl<T: fmt::Debug> std::error::Error for SubmitError<T> {}

/// Why a [`Pool`](crate::Pool) could not be built.
#[derive(Debug)]
pub struct BuildError {
    message: String,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> BuildError {
        BuildError {
            message: message.into(),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot build the pool: {}", self.message)
    }
}

impl std::error::Error for BuildError {}
