//! A loaded task component and what one successful run of it returns.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::capture::Captured;
use crate::error::TaskError;
use crate::metrics::Metrics;
use crate::sandbox::Program;

/// What a task run ends with: its output, or how it failed.
pub type TaskResult = Result<TaskOutput, TaskError>;

/// How long the task of `result` took, whichever way it ended.
pub(crate) fn duration_of(result: &TaskResult) -> Duration {
    match result {
        Ok(output) => output.duration(),
        Err(error) => error.duration(),
    }
}

/// A loaded program, compiled and linked once, ready to run on any number of
/// inputs: a task component, a WASI command program, or a function of a
/// component to invoke. Cheap to clone; usable from every thread.
#[derive(Clone)]
pub struct Task {
    pub(crate) program: Arc<Program>,
    name: Arc<str>,
    pub(crate) pace: Arc<Pace>,
}

/// How long a task's runs took lately, by the running average of its last
/// map: where its next map starts, rather than from nothing.
pub(crate) struct Pace(AtomicU64);

/// No average yet.
const NO_PACE: u64 = u64::MAX;

impl Pace {
    /// The average, in seconds, if a map has taken one.
    pub(crate) fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            NO_PACE => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    pub(crate) fn set(&self, seconds: f64) {
        self.0.store(seconds.to_bits(), Ordering::Relaxed);
    }
}

/// How a [`Task`] turns an input into an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    /// A component of the `wasmpool:task` world: the input is `run`'s
    /// argument, the output what it returns.
    Task,
    /// A WASI command program (a core module with `_start`, or a component
    /// exporting `wasi:cli/run`): the input is its stdin (or, with an
    /// arguments template, goes into its arguments); the output is its
    /// stdout when it exits with 0, and any other exit code fails the task
    /// as [`ErrorKind::Exit`](crate::ErrorKind::Exit).
    Command,
    /// An exported function of a component ([`LoadOptions::invoke`]): the
    /// input is a JSON array of its arguments, the output its result as JSON.
    Invoke,
}

/// How to load a file: which function to call, and for WASI command
/// programs, their arguments. The default loads a task component, or a
/// command program with no arguments.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub(crate) invoke: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) args_template: Option<Vec<String>>,
}

impl LoadOptions {
    /// Options that load a task component or a command program as it is.
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Calls the exported function `name` of a component (of any world):
    /// `name` for a function the component exports itself,
    /// `interface#name` for one of an exported interface (e.g.
    /// `example:shapes/geometry#area`).
    pub fn invoke(mut self, name: impl Into<String>) -> LoadOptions {
        self.invoke = Some(name.into());
        self
    }

    /// Appends an argument that every run of a command program gets, after
    /// those of the template.
    pub fn arg(mut self, arg: impl Into<String>) -> LoadOptions {
        self.args.push(arg.into());
        self
    }

    /// Passes each input to a command program as arguments instead of on
    /// stdin: every `{}` in these words is replaced by the input's text.
    pub fn args_template<I, S>(mut self, words: I) -> LoadOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args_template = Some(words.into_iter().map(Into::into).collect());
        self
    }
}

impl Task {
    pub(crate) fn new(program: Program, name: &str) -> Task {
        Task {
            program: Arc::new(program),
            name: name.into(),
            pace: Arc::new(Pace(AtomicU64::new(NO_PACE))),
        }
    }

    /// The task's name: its file name without the extension, or `task` for
    /// a task loaded from bytes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it turns an input into an output.
    pub fn kind(&self) -> TaskKind {
        match *self.program {
            Program::Task(_) => TaskKind::Task,
            Program::Command(_) => TaskKind::Command,
            Program::Invoke(_) => TaskKind::Invoke,
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .finish()
    }
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
