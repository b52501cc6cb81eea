//! The end-of-run summary: one line on stderr, and with --summary-json the
//! same numbers in a file for machines.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Summary {
    pub(crate) tasks: usize,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    /// Failed tasks by error kind.
    pub(crate) failed_by_kind: BTreeMap<String, usize>,
    pub(crate) seconds: f64,
    pub(crate) tasks_per_second: f64,
    pub(crate) workers: usize,
    /// Inputs skipped because the output file already had their record.
    pub(crate) resumed_skipped: usize,
    /// Whether SIGINT or SIGTERM ended the run early.
    pub(crate) interrupted: bool,
    /// What the tasks were given to see: for a task that failed to open a
    /// file, where it could have looked.
    pub(crate) grants: Grants,
    /// How many times, in input order, the records held behind a slower
    /// task filled the order buffer, so that workers waited for it.
    pub(crate) order_buffer_filled: usize,
}

/// The directories and variables a run granted its tasks.
#[derive(Serialize, Default)]
pub(crate) struct Grants {
    pub(crate) dirs: Vec<DirGrant>,
    /// The names of the variables given with --env (not their values).
    pub(crate) env: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct DirGrant {
    pub(crate) host: String,
    pub(crate) guest: String,
    pub(crate) writable: bool,
}

impl Summary {
    pub(crate) fn new(
        ok: usize,
        failed_by_kind: BTreeMap<String, usize>,
        seconds: f64,
        workers: usize,
    ) -> Summary {
        let failed = failed_by_kind.values().sum();
        let tasks = ok + failed;
        Summary {
            tasks,
            ok,
            failed,
            failed_by_kind,
            seconds,
            tasks_per_second: if seconds > 0.0 {
                tasks as f64 / seconds
            } else {
                0.0
            },
            workers,
            resumed_skipped: 0,
            interrupted: false,
            grants: Grants::default(),
            order_buffer_filled: 0,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wasmpool: {} {}: {} ok, {} failed in {:.2} s on {} {} ({:.0} tasks/s)",
            self.tasks,
            plural(self.tasks, "task"),
            self.ok,
            self.failed,
            self.seconds,
            self.workers,
            plural(self.workers, "worker"),
            self.tasks_per_second,
        )?;
        if !self.failed_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .failed_by_kind
                .iter()
                .map(|(kind, count)| format!("{kind}: {count}"))
                .collect();
            write!(f, "; failed: {}", kinds.join(", "))?;
        }
        if let Some(note) = self.order_note() {
            write!(f, "\nwasmpool: {note}")?;
        }
        Ok(())
    }
}

impl Summary {
    /// What the order of the records cost, when it cost workers time.
    pub(crate) fn order_note(&self) -> Option<String> {
        let times = match self.order_buffer_filled {
            0 => return None,
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        Some(format!(
            "the records held for their turn behind a slower task filled the order buffer {times}, \
             and workers waited for it: --order-buffer SIZE holds more, --unordered holds none"
        ))
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}
