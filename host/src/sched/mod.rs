//! The second layer, scheduling side: worker threads and what hands them
//! work and gives back results, generic over what a job does (a
//! type-erased [`workers::Runner`]). Knows nothing of wasm; above the data
//! layer only.
//!
//! - `workers`: the threads and their queue;
//! - `job`: the state a job shares between its worker and its handle;
//!   `handle`: the caller's end of it;
//! - `completions`: where finished jobs announce themselves;
//! - `map` and `sizer`: a map's window of jobs, and how many tasks go in
//!   one; `source`: where its inputs are read (on its thread, or on one of
//!   their own); `wait`: `as_completed` and `wait`;
//! - `stats`: the counters.

pub(crate) mod completions;
pub(crate) mod handle;
pub(crate) mod job;
pub(crate) mod map;
pub(crate) mod sizer;
pub(crate) mod source;
pub(crate) mod stats;
pub(crate) mod wait;
pub(crate) mod workers;
