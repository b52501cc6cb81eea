//! The second layer, wasm side: everything that touches wasmtime, and
//! nothing of queues or threads. Above the data layer only.
//!
//! - `engine`: the engine a pool's tasks are compiled for, and its epoch
//!   ticker; `code_cache`: compiled code kept between runs;
//! - `load`: a file loaded as a `Program` (task, command, function to
//!   invoke), pre-linked; `inspect`, `values` (JSON ↔ component values);
//! - `sandbox`: what every task of a pool runs under;
//! - `state`: one store's host state and the host functions;
//! - `instance`: a fresh instance, or the one a worker kept;
//! - `call`: one run of a task; `batch`: many in one `run-batch` call;
//! - `outcome`: how a run ended, as a typed result;
//! - `capture`, `seed`: the output pipes and the seeded random sources.

pub(crate) mod batch;
pub(crate) mod call;
pub(crate) mod capture;
pub(crate) mod code_cache;
pub(crate) mod engine;
pub(crate) mod inspect;
pub(crate) mod instance;
pub(crate) mod load;
pub(crate) mod outcome;
pub(crate) mod sandbox;
pub(crate) mod seed;
pub(crate) mod state;
pub(crate) mod values;
