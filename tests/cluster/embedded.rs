//! The library over MPI: code written against `wasmpool::Executor` runs on
//! a `Cluster` as on a local `Pool`, with the same results. This test's
//! own binary is the MPI program: the test starts it under `mpirun -n 3`,
//! where each rank runs only this test, as a rank.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmpool::cluster::{self, Role};
use wasmpool::{
    Executor, Input, Limits, LoadOptions, Pool, PoolBuilder, Stats, WaitFor, as_completed, wait,
};

use crate::mpirun;
use crate::support::{guest, stderr};

/// In the ranks' environment: the guests' paths (rank 0 loads them; the
/// other ranks get their bytes from it).
const FIB: &str = "WASMPOOL_TEST_RANK_FIB";
const ZOO: &str = "WASMPOOL_TEST_RANK_ZOO";
const SLOW: &str = "WASMPOOL_TEST_RANK_SLOW";

/// What rank 0 prints when the cluster and the pool agreed.
const AGREED: &str = "rank 0: the cluster's results are the pool's";

/// Everything an embedding program sees of a run, timings and worker
/// numbers aside.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The map of trap-zoo inputs: each input's kind and output or message.
    ends: Vec<(String, String)>,
    /// fib over map_unordered, put back in input order.
    unordered: Vec<u64>,
    /// fib over submitted handles, by handle order, taken as completed.
    completed: Vec<u64>,
    /// A handle awaited in an async runtime.
    awaited: u64,
    /// How many of a `wait(AllCompleted)` were done.
    waited: usize,
    /// What a running task reported with `report_progress`, as its handle
    /// and the stats showed it.
    progress: (bool, bool),
}

#[test]
fn code_written_against_the_executor_trait_runs_on_a_cluster_as_on_a_pool() {
    if let (Some(fib), Some(zoo), Some(slow)) = (
        std::env::var_os(FIB),
        std::env::var_os(ZOO),
        std::env::var_os(SLOW),
    ) {
        return as_a_rank(&Guests {
            fib: fib.into(),
            zoo: zoo.into(),
            slow: slow.into(),
        });
    }
    let name = format!(
        "{}::code_written_against_the_executor_trait_runs_on_a_cluster_as_on_a_pool",
        module_path!()
            .split_once("::")
            .expect("a module of the test crate")
            .1
    );
    let output = mpirun::mpirun(3)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(FIB, guest("fib"))
        .env(ZOO, guest("trap-zoo"))
        .env(SLOW, guest("really-hard-task"))
        .output()
        .expect("run mpirun (apt-get install openmpi-bin)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", stderr(&output));
    // Each rank ran the test; rank 0 compared the cluster with the pool.
    assert_eq!(stdout.matches("1 passed").count(), 3, "{stdout}");
    assert_eq!(stdout.matches(AGREED).count(), 1, "{stdout}");
}

/// The guests the embedding code loads.
struct Guests {
    fib: PathBuf,
    zoo: PathBuf,
    /// Two seconds long, reporting its progress every half second.
    slow: PathBuf,
}

/// One rank of the test's MPI job.
fn as_a_rank(guests: &Guests) {
    let builder = || -> PoolBuilder {
        Pool::builder()
            .workers(1)
            .reuse_instances(100_000)
            .timeout(Duration::from_millis(300))
            .max_memory(16 << 20)
    };
    let began = Instant::now();
    let cluster = match cluster::start(builder()).expect("MPI starts") {
        Role::Worker => return,
        Role::Coordinator(cluster) => cluster,
    };
    assert_eq!(cluster.workers(), 2, "two worker ranks of one worker each");
    let (on_cluster, cluster_stats) = embedding(&*cluster, guests);
    // A worker is busy while it runs a task, not while the task waits.
    let lasted = began.elapsed();
    assert!(
        cluster_stats.busy.iter().all(|busy| *busy <= lasted),
        "busy {:?} in {lasted:?}",
        cluster_stats.busy
    );
    let pool = builder().build().unwrap();
    let (on_pool, pool_stats) = embedding(&pool, guests);
    assert_eq!(on_cluster, on_pool);
    assert_eq!(cluster_stats.finished, pool_stats.finished);
    assert_eq!(cluster_stats.failed, pool_stats.failed);
    // The worker ranks ran runs of tiny tasks in batches, and said so.
    assert!(cluster_stats.batched > 0, "{cluster_stats:?}");
    assert!(cluster_stats.batched <= cluster_stats.finished);
    println!("{AGREED}");
}

/// What an embedding program writes once, for a pool or a cluster.
fn embedding(executor: &impl Executor, guests: &Guests) -> (Seen, Stats) {
    let fib = executor
        .load_with(&guests.fib, &LoadOptions::new())
        .unwrap();
    let zoo = executor
        .load_with(&guests.zoo, &LoadOptions::new())
        .unwrap();
    let slow = executor
        .load_with(&guests.slow, &LoadOptions::new())
        .unwrap();

    // Faults among many tiny tasks each fail alone, batched or not.
    let inputs: Vec<&str> = (0..1000)
        .map(|n| match n % 200 {
            _ if n == 700 => "\"loop\"",
            107 => "\"panic\"",
            137 => "\"unreachable\"",
            167 => "\"error\"",
            197 => "\"exit\"",
            157 => "\"memory-bomb\"",
            _ => "\"ok\"",
        })
        .collect();
    let ends = executor
        .map(&zoo, inputs)
        .map(|result| match result {
            Ok(output) => ("ok".to_string(), output.json::<String>().unwrap()),
            Err(error) => (error.kind().as_str().to_string(), error.message().into()),
        })
        .collect();

    let mut unordered: Vec<(usize, u64)> = executor
        .map_unordered(&fib, (1..=25).map(|n| n.to_string()))
        .map(|(index, result)| (index, result.unwrap().json().unwrap()))
        .collect();
    unordered.sort_unstable();

    let handles: Vec<_> = (1..=20)
        .map(|n| executor.submit_input(&fib, n.to_string().into()).unwrap())
        .collect();
    let ids: Vec<u64> = handles.iter().map(|handle| handle.id()).collect();
    let mut completed: Vec<(usize, u64)> = as_completed(handles)
        .map(|handle| {
            let place = ids.iter().position(|&id| id == handle.id()).unwrap();
            (place, handle.wait().unwrap().json().unwrap())
        })
        .collect();
    completed.sort_unstable();

    let handle = executor.submit_input(&fib, "25".into()).unwrap();
    let awaited = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(handle)
        .unwrap()
        .json()
        .unwrap();

    let handles = (1..=5).map(|n| executor.submit_input(&fib, n.to_string().into()).unwrap());
    let waited = wait(handles, WaitFor::AllCompleted).done.len();

    // A long task's progress shows on its handle and in the stats while it
    // runs (on a cluster, as its rank passes it on).
    let long = Input::new("1").limits(Limits::new().timeout(Duration::from_secs(60)));
    let handle = executor.submit_input(&slow, long).unwrap();
    let mut progress = (false, false);
    while !handle.is_finished() {
        if handle.progress().is_some() {
            let stats = executor.stats();
            progress = (true, stats.progress.iter().any(Option::is_some));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.wait().unwrap();
    assert_eq!(progress, (true, true), "progress while the task ran");

    assert!(
        executor.held().is_empty(),
        "nothing is held once all is done"
    );
    let seen = Seen {
        ends,
        unordered: unordered.into_iter().map(|(_, value)| value).collect(),
        completed: completed.into_iter().map(|(_, value)| value).collect(),
        awaited,
        waited,
        progress,
    };
    (seen, executor.stats())
}
