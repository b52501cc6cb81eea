//! Black-box tests of wasmpool: the public API and the real `wasmpool`
//! binary, against real guest components built from `guest-tasks/` by
//! `wasmpool build`. One module per topic.

mod api;
mod cli;
mod commands;
mod fast_start;
mod faults;
mod hostile;
mod inspect;
mod invoke;
mod limits;
mod new;
mod pipeline;
mod pipes;
mod python;
mod report;
mod sandbox;
mod seed;
mod signals;
mod support;
