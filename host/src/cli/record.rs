//! The JSON record written for each input.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use wasmpool::{Captured, TaskResult};

/// One line of `wasmpool run`'s output.
#[derive(Serialize)]
pub(crate) struct Record {
    pub(crate) index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) line: Option<usize>,
    pub(crate) input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ok: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ErrorRecord>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) stdout_truncated: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) stderr_truncated: bool,
    pub(crate) duration_ms: f64,
    pub(crate) worker: Option<usize>,
    /// How many runs the task took (0 for one that never ran).
    pub(crate) attempts: u32,
    /// When the task's (last) run started and ended, from the run's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end_ms: Option<f64>,
    pub(crate) instantiate_ms: f64,
    pub(crate) run_ms: f64,
    pub(crate) peak_memory: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fuel_consumed: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct ErrorRecord {
    pub(crate) kind: String,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backtrace: Option<String>,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl Record {
    pub(crate) fn of_result(
        index: usize,
        line: Option<usize>,
        input: Value,
        result: &TaskResult,
        run_started: Instant,
        text_output: bool,
    ) -> Record {
        let (ok, error, stdout, stderr, duration, worker, attempts, metrics) = match result {
            Ok(output) => (
                Some(if text_output {
                    Value::String(String::from_utf8_lossy(output.value()).into_owned())
                } else {
                    output_value(output.value())
                }),
                None,
                output.stdout(),
                output.stderr(),
                output.duration(),
                Some(output.worker()),
                output.attempts(),
                output.metrics(),
            ),
            Err(failure) => (
                None,
                Some(ErrorRecord {
                    kind: failure.kind().as_str().to_string(),
                    message: failure.message().to_string(),
                    exit_code: failure.exit_code(),
                    backtrace: failure.wasm_backtrace().map(str::to_string),
                }),
                failure.stdout(),
                failure.stderr(),
                failure.duration(),
                failure.worker(),
                failure.attempts(),
                failure.metrics(),
            ),
        };
        Record {
            index,
            line,
            input,
            ok,
            error,
            stdout: text(stdout),
            stderr: text(stderr),
            stdout_truncated: stdout.is_truncated(),
            stderr_truncated: stderr.is_truncated(),
            duration_ms: millis(duration),
            worker,
            attempts,
            start_ms: metrics
                .started
                .map(|started| millis(started.saturating_duration_since(run_started))),
            end_ms: metrics
                .started
                .map(|started| millis(started.saturating_duration_since(run_started) + duration)),
            instantiate_ms: millis(metrics.instantiate),
            run_ms: millis(metrics.run),
            peak_memory: metrics.peak_memory,
            fuel_consumed: metrics.fuel_consumed,
        }
    }

    /// The record of an input that could not be used and never ran.
    pub(crate) fn invalid_input(
        index: usize,
        line: Option<usize>,
        text: String,
        reason: String,
    ) -> Record {
        Record {
            index,
            line,
            input: Value::String(text),
            ok: None,
            error: Some(ErrorRecord {
                kind: "invalid-input".to_string(),
                message: reason,
                exit_code: None,
                backtrace: None,
            }),
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration_ms: 0.0,
            worker: None,
            attempts: 0,
            start_ms: None,
            end_ms: None,
            instantiate_ms: 0.0,
            run_ms: 0.0,
            peak_memory: 0,
            fuel_consumed: None,
        }
    }

    pub(crate) fn error_kind(&self) -> Option<&str> {
        self.error.as_ref().map(|error| error.kind.as_str())
    }
}

/// SDK tasks return JSON; a task that returns other bytes gets them as a
/// string.
fn output_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Milliseconds, to the microsecond.
fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn text(captured: &Captured) -> String {
    captured.to_string_lossy().into_owned()
}
