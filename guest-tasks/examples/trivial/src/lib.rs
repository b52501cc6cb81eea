//! The smallest useful task, for measuring what a task costs the pool:
//! the same `x * 2 + 1` as the Python baselines in the benchmarks.

fn trivial(x: i64) -> i64 {
    x * 2 + 1
}

wasmpool_guest::task!(trivial);
