//! How a run ended, as the caller sees it: what wasmtime returned turned
//! into a typed [`TaskError`], and a run's result put together from its
//! outcome, its captured output and its metrics.

use std::fmt;
use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::data::captured::Captured;
use crate::data::error::{ErrorKind, TaskError};
use crate::data::limits::Limits;
use crate::data::metrics::Metrics;
use crate::data::output::{Streams, TaskOutput, TaskResult};
use crate::wasm::sandbox::Sandbox;

/// Why a running task was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    Timeout,
    Cancelled,
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interruption::Timeout => "the task ran past its time-out",
            Interruption::Cancelled => "the task was cancelled while it ran",
        })
    }
}

impl std::error::Error for Interruption {}

/// A task given a fuel limit in a pool that does not meter fuel.
#[derive(Debug)]
pub(crate) struct FuelNotMetered;

impl fmt::Display for FuelNotMetered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fuel limit needs a pool that meters fuel (PoolBuilder::fuel, or --fuel)")
    }
}

impl std::error::Error for FuelNotMetered {}

/// Turns what wasmtime returned into the kind a caller matches on;
/// `value_budget` is what the host reads of one value the task hands it.
pub(crate) fn classify(
    error: &wasmtime::Error,
    limits: &Limits,
    memory_refused: bool,
    panic: Option<&str>,
    value_budget: usize,
) -> TaskError {
    let trap_code = error.downcast_ref::<Trap>().copied();
    let mut failure = if let Some(misuse) = error.downcast_ref::<FuelNotMetered>() {
        TaskError::new(ErrorKind::Internal, misuse.to_string())
    } else if let Some(why) = error.downcast_ref::<Interruption>() {
        match why {
            Interruption::Timeout => TaskError::new(
                ErrorKind::Timeout,
                format!(
                    "the task ran past its time-out of {:?} and was stopped",
                    limits.timeout.unwrap_or_default()
                ),
            ),
            Interruption::Cancelled => {
                TaskError::new(ErrorKind::Cancelled, "the task was cancelled while it ran")
            }
        }
    } else if memory_refused {
        TaskError::new(ErrorKind::MemoryLimit, memory_limit(limits.max_memory))
    } else if over_value_budget(error) {
        TaskError::new(
            ErrorKind::ResourceLimit,
            format!(
                "the task handed the host a value over the limit of {value_budget} bytes \
                 (max_result): its result, an error or a host call's argument, counted as \
                 the host would hold it"
            ),
        )
    } else if let Some(exit) = error.downcast_ref::<I32Exit>() {
        let mut failure = TaskError::new(
            ErrorKind::Exit,
            format!("the task exited with code {}", exit.0),
        );
        failure.details_mut().exit_code = Some(exit.0);
        failure
    } else {
        match (trap_code, panic) {
            (Some(Trap::StackOverflow), _) => TaskError::new(
                ErrorKind::StackOverflow,
                "the task ran out of wasm stack (unbounded recursion?)",
            ),
            (Some(Trap::OutOfFuel), _) => TaskError::new(
                ErrorKind::FuelExhausted,
                format!(
                    "the task used up its fuel budget of {}",
                    limits.fuel.unwrap_or_default()
                ),
            ),
            (_, Some(message)) => TaskError::new(ErrorKind::Panic, message.to_string()),
            (Some(code), None) => TaskError::new(ErrorKind::Trap, code.to_string()),
            (None, None) => TaskError::new(ErrorKind::Trap, format!("{error:#}")),
        }
    };
    let details = failure.details_mut();
    details.trap_code = trap_code;
    // An exit is no fault: where it was called from is noise.
    if details.kind == ErrorKind::Exit {
        return failure;
    }
    details.backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    failure
}

/// Whether wasmtime refused to read a value the task handed the host
/// because it would take more than the store's hostcall fuel. Its error
/// type is private, so its message is matched (a test pins it).
fn over_value_budget(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.to_string().contains("fuel allocated for hostcalls"))
}

/// Why a task whose memory growth was refused failed.
fn memory_limit(max_memory: Option<usize>) -> String {
    format!(
        "the task tried to grow its memory past its limit of {} bytes",
        max_memory.unwrap_or_default()
    )
}

/// The error a guest returned with `message` (and the `traceback` it
/// reported, taken): a `guest-error`, unless a memory growth was refused
/// first. Then the task failed for want of memory, however it said so (a
/// Python `MemoryError` caught by its SDK, say): `memory-limit`.
pub(crate) fn returned_error(
    message: String,
    memory_refused: bool,
    max_memory: Option<usize>,
    traceback: &mut Option<String>,
) -> TaskError {
    let mut error = if memory_refused {
        let why = memory_limit(max_memory);
        TaskError::new(ErrorKind::MemoryLimit, format!("{why} ({message})"))
    } else {
        TaskError::new(ErrorKind::GuestError, message)
    };
    error.details_mut().traceback = traceback.take();
    error
}

/// A run's result from its outcome, its output and its metrics, within
/// the sandbox's caps.
pub(crate) fn finished(
    outcome: Result<Vec<u8>, TaskError>,
    stdout: Captured,
    stderr: Captured,
    metrics: Metrics,
    worker: usize,
    sandbox: &Sandbox,
) -> TaskResult {
    match capped(outcome, sandbox) {
        Ok(value) => Ok(TaskOutput {
            value: value.into(),
            streams: Streams::kept(stdout, stderr),
            worker,
            attempts: 1,
            metrics,
        }),
        Err(mut error) => {
            let details = error.details_mut();
            details.stdout = stdout;
            details.stderr = stderr;
            Err(ran(error, metrics, worker))
        }
    }
}

/// What the host keeps of what a task handed back: a result no larger than
/// `max_result` (a larger one fails the task, and is dropped here), and a
/// failure's message, traceback and backtrace cut to `max_message`.
fn capped(outcome: Result<Vec<u8>, TaskError>, sandbox: &Sandbox) -> Result<Vec<u8>, TaskError> {
    match outcome {
        Ok(value) if value.len() > sandbox.max_result => Err(TaskError::new(
            ErrorKind::ResourceLimit,
            format!(
                "the task's result of {} bytes is over the limit of {} bytes (max_result)",
                value.len(),
                sandbox.max_result
            ),
        )),
        Ok(value) => Ok(value),
        Err(mut error) => {
            let details = error.details_mut();
            let texts = [&mut details.backtrace, &mut details.traceback];
            cut(&mut details.message, sandbox.max_message);
            for text in texts.into_iter().flatten() {
                cut(text, sandbox.max_message);
            }
            Err(error)
        }
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), saying
/// how many were cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.shrink_to_fit();
    text.push_str(&format!("... [{dropped} more bytes cut]"));
}

/// Fills in what every failure of a run carries.
pub(crate) fn ran(mut error: TaskError, metrics: Metrics, worker: usize) -> TaskError {
    let details = error.details_mut();
    details.duration = metrics
        .started
        .map_or(Duration::ZERO, |started| started.elapsed());
    details.metrics = metrics;
    details.worker = Some(worker);
    details.attempts = 1;
    error
}
