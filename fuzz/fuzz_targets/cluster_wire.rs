//! The cluster's messages, as a rank receives them from another: a task to
//! load, a rank's progress, a job, a job's results. Whatever the bytes, a
//! decoder answers (decoded, or malformed) without a panic, and without
//! sizing anything by a count it has not yet found the bytes for.
//!
//! Bound: no single allocation over 1 MiB, when no message here is longer
//! than a few KiB.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpool_fuzz::Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded::new();

fuzz_target!(
    init: ALLOCATOR.set(1 << 20),
    |data: &[u8]| {
        wasmpool::fuzzing::decode_cluster_message(data);
    }
);
