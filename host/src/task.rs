//! A loaded program as callers hold it: compiled and linked once (the
//! wasm side), with what its maps learnt of its pace (the scheduling
//! side).

use std::fmt;
use std::sync::Arc;

use crate::sched::sizer::AverageDuration;
use crate::wasm::load::Program;

/// A loaded program, compiled and linked once, ready to run on any number of
/// inputs: a task component, a WASI command program, or a function of a
/// component to invoke. Cheap to clone; usable from every thread.
#[derive(Clone)]
pub struct Task {
    pub(crate) program: Arc<Program>,
    name: Arc<str>,
    /// How long its tasks took in its last map, where the next starts.
    pub(crate) pace: Arc<AverageDuration>,
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
    /// An exported function of a component ([`LoadOptions::invoke`](crate::LoadOptions::invoke)): the
    /// input is a JSON array of its arguments, the output its result as JSON.
    Invoke,
}

impl Task {
    pub(crate) fn new(program: Program, name: &str) -> Task {
        Task {
            program: Arc::new(program),
            name: name.into(),
            pace: Arc::default(),
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
