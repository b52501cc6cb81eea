//! A loaded task component and what one successful run of it returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::capture::Captured;
use crate::error::TaskError;
use crate::execute::TaskState;
use crate::metrics::Metrics;
use crate::sandbox::TaskPre;

/// What a task run ends with: its output, or how it failed.
pub type TaskResult = Result<TaskOutput, TaskError>;

/// A task component, compiled and linked once, ready to run on any number of
/// inputs. Cheap to clone; usable from every thread.
#[derive(Clone)]
pub struct Task {
    pub(crate) pre: Arc<TaskPre<TaskState>>,
    name: Arc<str>,
}

impl Task {
    pub(crate) fn new(pre: TaskPre<TaskState>, name: &str) -> Task {
        Task {
            pre: Arc::new(pre),
            name: name.into(),
        }
    }

    /// The task's name: its file name without the extension, or `task` for
    /// a task loaded from bytes.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

/// What a successful task returned, what it printed, how long it took and
/// which worker ran it.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    pub(crate) value: Vec<u8>,
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
    pub(crate) duration: Duration,
    pub(crate) worker: usize,
    pub(crate) attempts: u32,
    pub(crate) metrics: Metrics,
}

impl TaskOutput {
    /// The bytes `run` returned (JSON, for tasks written with the
    /// wasmpool-guest SDK).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The bytes `run` returned, taken out.
    pub fn into_value(self) -> Vec<u8> {
        self.value
    }

    /// Decodes the returned bytes as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.value)
    }

    /// What the task printed on stdout.
    pub fn stdout(&self) -> &Captured {
        &self.stdout
    }

    /// What the task printed on stderr.
    pub fn stderr(&self) -> &Captured {
        &self.stderr
    }

    /// Wall time from the start of instantiation to the end of `run`.
    pub fn duration(&self) -> Duration {
        self.duration
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
