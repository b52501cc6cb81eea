//! Bumps a global counter and returns its new value.
//!
//! Every task runs in a fresh instance, so this returns 1 every time; any
//! other number means state leaked from one task into the next.

use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

fn count(_input: serde_json::Value) -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

wasmpool_guest::task!(count);
