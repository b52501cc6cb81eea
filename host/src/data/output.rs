//! What a task ends with: its output (the value it returned, what it
//! printed, what it cost), or its error.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::data::captured::Captured;
use crate::data::error::TaskError;
use crate::data::metrics::Metrics;

/// What a task run ends with: its output, or how it failed.
pub type TaskResult = Result<TaskOutput, TaskError>;

/// How long the task of `result` took, whichever way it ended.
pub(crate) fn duration_of(result: &TaskResult) -> Duration {
    match result {
        Ok(output) => output.duration(),
        Err(error) => error.duration(),
    }
}

/// The memory `result` holds, in bytes: what a map counts of the results
/// it keeps back for their turn.
pub(crate) fn held_bytes(result: &TaskResult) -> usize {
    let on_heap = match result {
        Ok(output) => {
            output.value.len()
                + output.streams.as_ref().map_or(0, |streams| {
                    size_of::<Streams>()
                        + streams.stdout.as_bytes().len()
                        + streams.stderr.as_bytes().len()
                })
        }
        Err(error) => error.held_bytes(),
    };
    size_of::<TaskResult>() + on_heap
}

/// What a successful task returned, what it printed, how long it took and
/// which worker ran it.
#[derive(Clone)]
pub struct TaskOutput {
    /// Shared, not copied, with the message it came in on a cluster.
    pub(crate) value: Bytes,
    /// What it printed; `None` for a task that printed nothing, as most
    /// do: results are moved several times on their way to the caller and
    /// collected by the thousand, so they stay small.
    pub(crate) streams: Option<Box<Streams>>,
    pub(crate) worker: usize,
    pub(crate) attempts: u32,
    pub(crate) metrics: Metrics,
}

impl TaskOutput {
    /// The bytes `run` returned (JSON, for tasks written with the
    /// wasmpool-guest SDK); a command program's stdout; an invoked
    /// function's result as JSON.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The bytes `run` returned, taken out.
    pub fn into_value(self) -> Vec<u8> {
        self.value.into()
    }

    /// Decodes the returned bytes as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.value)
    }

    /// What the task printed on stdout.
    pub fn stdout(&self) -> &Captured {
        self.streams
            .as_ref()
            .map_or(&NOTHING, |streams| &streams.stdout)
    }

    /// What the task printed on stderr.
    pub fn stderr(&self) -> &Captured {
        self.streams
            .as_ref()
            .map_or(&NOTHING, |streams| &streams.stderr)
    }

    /// Wall time from the start of instantiation to the end of `run`.
    pub fn duration(&self) -> Duration {
        self.metrics.instantiate + self.metrics.run
    }

    /// The worker that ran the task, from 0 to `workers - 1`.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// How many times the task ran: 1, or more after retries.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the (last) run happened and what it cost.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl fmt::Debug for TaskOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskOutput")
            .field("value", &self.value)
            .field("stdout", self.stdout())
            .field("stderr", self.stderr())
            .field("duration", &self.duration())
            .field("worker", &self.worker)
            .field("attempts", &self.attempts)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// What a task that printed something printed.
#[derive(Clone)]
pub(crate) struct Streams {
    stdout: Captured,
    stderr: Captured,
}

impl Streams {
    /// The streams a result keeps: none if nothing was written to either.
    pub(crate) fn kept(stdout: Captured, stderr: Captured) -> Option<Box<Streams>> {
        if stdout.is_empty() && stderr.is_empty() {
            None
        } else {
            Some(Box::new(Streams { stdout, stderr }))
        }
    }
}

/// What a task that wrote nothing wrote.
static NOTHING: Captured = Captured::EMPTY;

/// A task that succeeded after running for `took`: for the tests of what
/// consumes results.
#[cfg(test)]
pub(crate) fn finished_in(took: Duration) -> TaskResult {
    Ok(TaskOutput {
        value: Bytes::new(),
        streams: None,
        worker: 0,
        attempts: 1,
        metrics: Metrics {
            run: took,
            ..Metrics::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_keeps_what_was_printed_and_stays_small_without_it() {
        let output = |stdout: Captured| TaskOutput {
            value: Bytes::from_static(b"1"),
            streams: Streams::kept(stdout, Captured::EMPTY),
            worker: 0,
            attempts: 1,
            metrics: Metrics::default(),
        };
        let quiet = output(Captured::EMPTY);
        assert!(quiet.streams.is_none());
        assert!(quiet.stdout().is_empty() && quiet.stderr().is_empty());
        // Truncated at a limit of zero: nothing kept, but something written.
        let cut = output(Captured::new(Vec::new(), true));
        assert!(cut.stdout().is_truncated());
        let said = output(Captured::new(b"hi\n".to_vec(), false));
        assert_eq!(said.stdout().as_bytes(), b"hi\n");
        assert!(said.stderr().is_empty());
        // Value, streams, worker, attempts and metrics (the duration is
        // the metrics' instantiation and run): no more.
        assert!(
            size_of::<TaskResult>() <= 128,
            "{}",
            size_of::<TaskResult>()
        );
    }
}
