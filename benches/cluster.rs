//! Cluster mode side by side with `mpi4py.futures.MPIPoolExecutor` (the
//! baseline in `../shared/bench/mpi4py_baseline.py`): 10,000 trivial tasks
//! on 3 ranks (1 coordinator, 2 workers), both measured in the same run.
//! wasmpool is timed two ways: the CLI (`wasmpool run --mpi`, inputs read
//! from a file and JSON records written), and the library's
//! `Cluster::map` collecting results in memory, which is what the baseline
//! times of mpi4py.
//!
//! The machine's neighbours make its speed drift by half within minutes, so
//! the cases take turns: each round runs every case once, and each case's
//! best round counts.
//!
//! Needs OpenMPI and, for the baseline, `pip install mpi4py`. Run from the
//! repository root:
//!
//! ```sh
//! cargo bench --features mpi --bench cluster
//! ```

#[path = "../tests/all/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "../tests/cluster/mpirun.rs"]
mod mpirun;

use std::path::{Path, PathBuf};
use std::time::Instant;

use support::guest;

// As in the wasmpool binary: the library row's program is an embedder, and
// its allocator is the embedder's choice (BENCHMARKS.md has the same map
// with the C library's).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TASKS: usize = 10_000;
const RANKS: u32 = 3;
const ROUNDS: usize = 5;
const CHUNKSIZES: [usize; 4] = [1, 10, 100, 1000];

/// In the ranks' environment when this binary runs as the MPI program of
/// the library row: the trivial guest's path.
const RANK_TASK: &str = "WASMPOOL_BENCH_RANK_TASK";

/// How many maps rank 0 times, one after the other (default 1), each
/// printed: to compare two builds' copies of this binary in turns,
/// `mpirun -n 3 -x WASMPOOL_BENCH_RANK_TASK=<trivial.wasm> -x
/// WASMPOOL_BENCH_MAPS=15 <copy>`.
const RANK_MAPS: &str = "WASMPOOL_BENCH_MAPS";

fn main() {
    if let Some(task) = std::env::var_os(RANK_TASK) {
        return library_rank(task.as_ref());
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-cluster");
    std::fs::create_dir_all(&dir).unwrap();
    let inputs = dir.join("trivial.jsonl");
    let lines: String = (0..TASKS).map(|n| format!("{n}\n")).collect();
    std::fs::write(&inputs, lines).unwrap();
    let task = guest("trivial");
    let baseline = baseline();
    if baseline.is_none() {
        eprintln!("(mpi4py or ../shared/bench missing: no baseline rows)");
    }

    // Stateless tasks may share an instance, as mpi4py's chunks share a
    // process.
    let reuse = ["--reuse-instances", "1000"];
    let (mut fresh, mut reused, mut library) = (Best::default(), Best::default(), Best::default());
    let mut python = [None; CHUNKSIZES.len()];
    for round in 1..=ROUNDS {
        fresh.add(wasmpool_seconds(&dir, &inputs, &task, &[]));
        reused.add(wasmpool_seconds(&dir, &inputs, &task, &reuse));
        library.add((library_seconds(&task), None));
        for (best, chunksize) in python.iter_mut().zip(CHUNKSIZES) {
            if let Some(rate) = baseline
                .as_deref()
                .and_then(|script| mpi4py_rate(script, chunksize))
            {
                *best = Some(best.map_or(rate, |best: f64| best.max(rate)));
            }
        }
        eprintln!("round {round} of {ROUNDS} done");
    }
    let fresh = fresh.report("wasmpool --mpi");
    let reused = reused.report("wasmpool --mpi --reuse-instances 1000");
    let library = library.report("wasmpool Cluster::map, reused instances");

    println!("| case | wasmpool on MPI | mpi4py.futures | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut best_python: Option<(usize, f64)> = None;
    for (rate, chunksize) in python.into_iter().zip(CHUNKSIZES) {
        let Some(rate) = rate else { break };
        eprintln!("mpi4py chunksize={chunksize}: {rate:.0} tasks/s");
        if best_python.is_none_or(|(_, best)| rate > best) {
            best_python = Some((chunksize, rate));
        }
        if chunksize == 1 {
            row(
                &format!("{TASKS} trivial tasks, 3 ranks, fresh instance per task vs chunksize 1"),
                fresh,
                rate,
                ">= 10x",
                10.0,
            );
        }
    }
    if let Some((chunksize, rate)) = best_python {
        row(
            &format!(
                "{TASKS} trivial tasks, 3 ranks, CLI, --reuse-instances 1000 vs mpi4py's best \
                 chunksize ({chunksize})"
            ),
            reused,
            rate,
            "> 1x",
            1.0 + f64::EPSILON,
        );
        row(
            &format!(
                "{TASKS} trivial tasks, 3 ranks, `Cluster::map` in memory, reused instances \
                 vs mpi4py's best chunksize ({chunksize})"
            ),
            library,
            rate,
            "> 1x",
            1.0 + f64::EPSILON,
        );
    }
}

/// The best of a case's rounds: the run's own seconds and, beside them, the
/// whole mpirun's.
struct Best {
    run: f64,
    total: Option<f64>,
}

impl Default for Best {
    fn default() -> Best {
        Best {
            run: f64::MAX,
            total: None,
        }
    }
}

impl Best {
    fn add(&mut self, (run, total): (f64, Option<f64>)) {
        self.run = self.run.min(run);
        if let Some(total) = total {
            self.total = Some(self.total.map_or(total, |best| best.min(total)));
        }
    }

    /// Prints the case's best and gives its rate.
    fn report(&self, case: &str) -> f64 {
        let rate = TASKS as f64 / self.run;
        match self.total {
            Some(total) => eprintln!(
                "{case}: {rate:.0} tasks/s ({:.4} s; {total:.2} s with mpirun start-up)",
                self.run
            ),
            None => eprintln!("{case}: {rate:.0} tasks/s ({:.4} s)", self.run),
        }
        rate
    }
}

/// One cluster run of the CLI: the run's own time (the summary's, from the
/// first input read to the last record written), which is what mpi4py's
/// baseline times too, and the whole mpirun's, start-up included.
fn wasmpool_seconds(dir: &Path, inputs: &Path, task: &Path, extra: &[&str]) -> (f64, Option<f64>) {
    let summary = dir.join("summary.json");
    let started = Instant::now();
    let status = mpirun()
        .arg(env!("CARGO_BIN_EXE_wasmpool"))
        .args(["run", "--mpi", "-q", "--input-file"])
        .arg(inputs)
        .arg("-o")
        .arg(dir.join("out.jsonl"))
        .arg("--summary-json")
        .arg(&summary)
        .args(extra)
        .arg(task)
        .status()
        .expect("run mpirun");
    let total = started.elapsed().as_secs_f64();
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(summary["ok"], TASKS);
    (summary["seconds"].as_f64().unwrap(), Some(total))
}

fn row(case: &str, ours: f64, theirs: f64, target: &str, needed: f64) {
    let ratio = ours / theirs;
    println!(
        "| {case} | {ours:.0} tasks/s | {theirs:.0} tasks/s | {ratio:.1}x | {target} | {} |",
        if ratio >= needed { "yes" } else { "**no**" }
    );
}

fn mpirun() -> std::process::Command {
    mpirun::mpirun(RANKS)
}

/// The mpi4py baseline's script, if it and mpi4py are there.
fn baseline() -> Option<PathBuf> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/mpi4py_baseline.py");
    let mpi4py = std::process::Command::new("python3")
        .args(["-c", "import mpi4py.futures"])
        .output()
        .is_ok_and(|output| output.status.success());
    (script.is_file() && mpi4py).then_some(script)
}

/// One run of the mpi4py baseline at `chunksize`: its rate.
fn mpi4py_rate(script: &Path, chunksize: usize) -> Option<f64> {
    let output = mpirun()
        .args(["python3", "-m", "mpi4py.futures"])
        .arg(script)
        .args([TASKS.to_string(), chunksize.to_string()])
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .find_map(|field| field.strip_prefix("tasks_per_s="))?
        .parse()
        .ok()
}

/// The library's `map` on a cluster, timed as mpi4py's baseline times its
/// `map`: the task loaded and the ranks warmed up first, results collected
/// in memory, no file read or written. This binary is the MPI program:
/// mpirun starts it on every rank with [`RANK_TASK`] set.
fn library_seconds(task: &Path) -> f64 {
    let output = mpirun()
        .arg(std::env::current_exe().unwrap())
        .env(RANK_TASK, task)
        .output()
        .expect("run mpirun");
    assert!(output.status.success(), "{}", support::stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_whitespace()
        .filter_map(|field| field.strip_prefix("seconds="))
        .map(|seconds| seconds.parse::<f64>().unwrap())
        .reduce(f64::min)
        .expect("rank 0 prints seconds=")
}

/// One rank of the library row's MPI job.
fn library_rank(task: &Path) {
    use wasmpool::cluster::{self, Role};
    use wasmpool::{Executor, LoadOptions, Pool};
    wasmpool::keep_to_small_pages();
    let builder = Pool::builder().reuse_instances(1000);
    let Role::Coordinator(cluster) = cluster::start(builder).expect("MPI starts") else {
        return;
    };
    let task = cluster
        .load_with(task, &LoadOptions::new())
        .expect("load the task");
    let inputs: Vec<String> = (0..TASKS).map(|n| n.to_string()).collect();
    for result in cluster.map(&task, inputs.iter().take(100)) {
        result.unwrap();
    }
    let maps = std::env::var(RANK_MAPS).map_or(1, |maps| maps.parse().expect("a number of maps"));
    for _ in 0..maps {
        let started = Instant::now();
        let results: Vec<_> = cluster.map(&task, &inputs).collect();
        let seconds = started.elapsed().as_secs_f64();
        assert!(results.iter().all(Result::is_ok));
        println!("seconds={seconds}");
    }
}
