//! One `map` of the trivial task, for comparing two builds: tasks per
//! second and the process's CPU time per task (user + system, from
//! `/proc/self/stat`), which a noisy machine disturbs less than wall time.
//!
//! ```sh
//! cargo bench --bench map_rate -- [REUSE] [WORKERS] [INPUTS]
//! cargo bench --bench map_rate -- 1 2 100000        # fresh instance per task
//! cargo bench --bench map_rate -- 4294967295 1 500000   # one kept instance
//! ```
//!
//! To compare builds, copy `target/release/deps/map_rate-*` aside after each
//! and run the copies in turns.

mod cpu_time;

#[path = "../tests/all/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Instant;

use wasmpool::Pool;

use cpu_time::cpu_seconds;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .map(|arg| arg.parse::<u64>().expect("numbers: REUSE WORKERS INPUTS"));
    let reuse = args.next().unwrap_or(1);
    let workers = args.next().unwrap_or(2);
    let count = args.next().unwrap_or(200_000);
    let pool = Pool::builder()
        .workers(workers as usize)
        .reuse_instances(u32::try_from(reuse).unwrap_or(u32::MAX))
        .build()
        .unwrap();
    // A copy of the guest built elsewhere, to compare SDKs.
    let guest = std::env::var_os("WASMPOOL_BENCH_TASK")
        .map_or_else(|| support::guest("trivial"), std::path::PathBuf::from);
    let task = pool.load(guest).unwrap();
    let inputs: Vec<String> = (0..count).map(|n| n.to_string()).collect();
    for result in pool.map(&task, inputs.iter().take(2000)) {
        result.unwrap();
    }
    let cpu = cpu_seconds();
    let started = Instant::now();
    for result in pool.map(&task, &inputs) {
        result.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "{:.0} tasks/s, {:.2} us of CPU per task (reuse {reuse}, {workers} workers, {count} inputs)",
        count as f64 / seconds,
        cpu * 1e6 / count as f64
    );
}
