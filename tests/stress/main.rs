//! The pool under load, in a process of its own so that its memory and
//! threads can be measured: 10,000 tasks on 2 workers, a tenth of them
//! faulty in every way trap-zoo knows, including endless loops (stopped by a
//! time-out) and memory bombs (stopped by a cap).

#[path = "../all/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use wasmpool::Pool;

use support::{FAULTS, fib, guest};

const TASKS: usize = 10_000;
const CHUNK: usize = 500;

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// The kernel ids of this process's worker threads.
fn worker_threads() -> BTreeSet<u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            // Thread names are cut to 15 bytes: "wasmpool-worker".
            name.starts_with("wasmpool-worke")
                .then(|| entry.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// Runs tasks `range` and checks every result; returns how many failed.
fn run_chunk(
    pool: &Pool,
    zoo: &wasmpool::Task,
    fib_task: &wasmpool::Task,
    range: std::ops::Range<usize>,
) -> usize {
    let handles: Vec<_> = range
        .clone()
        .map(|i| {
            if i % 10 == 0 {
                let (fault, _) = FAULTS[(i / 10) % FAULTS.len()];
                pool.submit(zoo, format!("\"{fault}\"")).unwrap()
            } else {
                pool.submit(fib_task, (i % 22).to_string()).unwrap()
            }
        })
        .collect();
    let mut failed = 0;
    for (i, handle) in range.zip(handles) {
        let result = handle.wait();
        if i % 10 == 0 {
            let (fault, kind) = FAULTS[(i / 10) % FAULTS.len()];
            let error = result.expect_err(fault);
            assert_eq!(error.kind(), kind, "task {i} ({fault}): {error}");
            failed += 1;
        } else {
            let output = result.unwrap_or_else(|error| panic!("task {i}: {error}"));
            assert_eq!(
                output.json::<u64>().unwrap(),
                fib((i % 22) as u64),
                "task {i}"
            );
        }
    }
    failed
}

#[test]
fn ten_thousand_tasks_with_a_tenth_faulty() {
    let pool = Pool::builder()
        .workers(2)
        .timeout(Duration::from_millis(100))
        .max_memory(16 << 20)
        .build()
        .unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let fib_task = pool.load(guest("fib")).unwrap();

    // A first chunk warms up allocators and caches before measuring.
    let mut failed = run_chunk(&pool, &zoo, &fib_task, 0..CHUNK);
    let threads_before = worker_threads();
    let resident_before = resident();
    assert_eq!(threads_before.len(), 2, "{threads_before:?}");

    for start in (CHUNK..TASKS).step_by(CHUNK) {
        failed += run_chunk(&pool, &zoo, &fib_task, start..start + CHUNK);
    }

    let resident_after = resident();
    assert_eq!(failed, TASKS / 10);
    assert_eq!(worker_threads(), threads_before, "the same worker threads");
    let grown = resident_after.saturating_sub(resident_before);
    eprintln!(
        "stress: {TASKS} tasks, {failed} faulty; resident {:.1} MiB -> {:.1} MiB (+{:.1} MiB)",
        resident_before as f64 / 1048576.0,
        resident_after as f64 / 1048576.0,
        grown as f64 / 1048576.0
    );
    // Generous: each memory bomb alone maps 16 MiB, and 100 of them ran.
    assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
}
