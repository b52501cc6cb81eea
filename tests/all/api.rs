//! The library's API: map order, isolation, handles, waiting, async,
//! cancellation, shutdown and load errors.

use std::collections::HashSet;
use std::time::Duration;

use wasmpool::{ErrorKind, LoadErrorKind, Pool, SubmitError, WaitFor};

use crate::support::{fib, guest};

fn pool(workers: usize) -> Pool {
    Pool::builder().workers(workers).build().unwrap()
}

/// A slow first input, then quick ones: fib(32) costs about 7 million
/// calls, fib(1) one.
fn slow_then_quick() -> Vec<String> {
    std::iter::once("32".to_string())
        .chain(std::iter::repeat_n("1".to_string(), 30))
        .collect()
}

#[test]
fn map_yields_in_input_order() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let inputs: Vec<u64> = (0..40).rev().map(|n| n % 27).collect();
    let results: Vec<u64> = pool
        .map(&task, inputs.iter().map(|n| n.to_string()))
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    let expected: Vec<u64> = inputs.iter().map(|&n| fib(n)).collect();
    assert_eq!(results, expected);

    // Order holds with a slow head, too.
    let results: Vec<u64> = pool
        .map(&task, slow_then_quick())
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(results[0], fib(32));
    assert!(results[1..].iter().all(|&value| value == 1));
}

#[test]
fn a_map_of_a_collection_says_how_many_results_are_left() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let inputs: Vec<String> = (0..300).map(|n| (n % 20).to_string()).collect();
    let mut results = pool.map(&task, &inputs);
    assert_eq!(results.size_hint(), (300, Some(300)));
    results.next().unwrap().unwrap();
    // Some are in flight or done ahead of their turn: still 299 to come.
    assert_eq!(results.size_hint(), (299, Some(299)));
    let mut unordered = pool.map_unordered(&task, &inputs);
    unordered.nth(9).unwrap().1.unwrap();
    assert_eq!(unordered.size_hint(), (290, Some(290)));
    assert_eq!(unordered.count(), 290);
    // An endless iterator has no end to count to.
    let endless = pool.map(&task, std::iter::repeat("1"));
    assert_eq!(endless.size_hint(), (usize::MAX, None));
}

#[test]
fn map_unordered_yields_each_index_once_as_tasks_finish() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let inputs = slow_then_quick();
    let results: Vec<(usize, u64)> = pool
        .map_unordered(&task, inputs.clone())
        .map(|(index, result)| (index, result.unwrap().json().unwrap()))
        .collect();
    let indices: HashSet<usize> = results.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices.len(), inputs.len());
    for (index, value) in &results {
        assert_eq!(*value, fib(inputs[*index].parse().unwrap()));
    }
    // While one worker runs fib(32), the other finishes the quick ones.
    assert_ne!(results[0].0, 0, "the slow task came first: {results:?}");
}

#[test]
fn map_reads_an_endless_iterator_lazily() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let endless = (0u64..).map(|n| (n % 20).to_string());
    let first: Vec<u64> = pool
        .map(&task, endless)
        .take(500)
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(first.len(), 500);
    assert_eq!(first[19], fib(19));
}

#[test]
fn no_state_survives_from_one_task_to_the_next() {
    let pool = pool(2);
    let task = pool.load(guest("counter")).unwrap();
    let counts: Vec<u64> = pool
        .map(&task, std::iter::repeat_n("null", 200))
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(counts, vec![1; 200]);
}

#[test]
fn instance_reuse_runs_up_to_k_tasks_per_instance() {
    let pool = Pool::builder()
        .workers(1)
        .reuse_instances(3)
        .build()
        .unwrap();
    let task = pool.load(guest("counter")).unwrap();
    let counts: Vec<u64> = pool
        .map(&task, std::iter::repeat_n("null", 7))
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn a_trapped_instance_is_never_reused() {
    let pool = Pool::builder()
        .workers(1)
        .reuse_instances(100)
        .build()
        .unwrap();
    let counter = pool.load(guest("counter")).unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let count = |pool: &Pool| -> u64 {
        pool.submit(&counter, "null")
            .unwrap()
            .wait()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(count(&pool), 1);
    assert_eq!(count(&pool), 2);
    // Another component takes the worker's instance slot: a fresh counter.
    assert!(pool.submit(&zoo, "\"ok\"").unwrap().wait().is_ok());
    assert!(
        pool.submit(&zoo, "\"unreachable\"")
            .unwrap()
            .wait()
            .is_err()
    );
    assert_eq!(count(&pool), 1);
}

/// With instance reuse, runs of tiny tasks go many to a call of the SDK's
/// `run-batch`; each input still ends exactly as it would in a call of its
/// own: its kind, its message, its output, its time-out.
#[test]
fn batched_inputs_end_as_they_would_one_call_each() {
    let inputs: Vec<&str> = (0..3000)
        .map(|n| match n % 300 {
            _ if n == 1700 => "\"loop\"",
            107 => "\"panic\"",
            137 => "\"unreachable\"",
            167 => "\"error\"",
            197 => "\"exit\"",
            227 => "\"unfinished-line\"",
            257 => "\"memory-bomb\"",
            _ => "\"ok\"",
        })
        .collect();
    let outcomes = |reuse: u32| {
        let pool = Pool::builder()
            .workers(1)
            .reuse_instances(reuse)
            .timeout(Duration::from_millis(300))
            .max_memory(16 << 20)
            .build()
            .unwrap();
        let zoo = pool.load(guest("trap-zoo")).unwrap();
        // Jobs of 50 whatever the machine's speed (the sizer would size
        // them by measured durations, which a loaded machine stretches).
        let ends: Vec<(String, String, String)> = pool
            .map(&zoo, inputs.iter().copied())
            .chunk_size(50)
            .map(|result| match result {
                Ok(output) => (
                    "ok".to_string(),
                    output.json::<String>().unwrap(),
                    output.stdout().to_string_lossy().into_owned(),
                ),
                Err(error) => (
                    error.kind().as_str().to_string(),
                    error.message().to_string(),
                    error.stdout().to_string_lossy().into_owned(),
                ),
            })
            .collect();
        (ends, pool.stats())
    };
    let (alone, stats) = outcomes(1);
    assert_eq!(stats.batched, 0);
    let (batched, stats) = outcomes(100_000);
    assert!(stats.batched > 2000, "{stats:?}");
    assert_eq!(batched, alone);
    let kinds: HashSet<&str> = alone.iter().map(|(kind, _, _)| kind.as_str()).collect();
    for kind in [
        "ok",
        "panic",
        "trap",
        "guest-error",
        "exit",
        "memory-limit",
        "timeout",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    // What a task printed without a newline is its own, not lost.
    assert_eq!(alone[227].2, "no newline");
}

/// A guest built with an earlier SDK finishes each input of a batch with
/// `finish-input` and takes the next with `next-input`, two calls where the
/// SDK now makes one: the host still takes them. A guest that breaks the
/// protocol fails the input it broke it on, and no other.
///
/// Which inputs share a run follows what tasks take, so a breaking input
/// may run alone (through `run`, where the guest fails it with `ran
/// alone`); a map after one of the same task starts from its pace, in
/// runs, so most do not, and each way of breaking is seen in a run.
#[test]
fn a_batch_driven_by_two_calls_an_input_still_ends_as_its_own() {
    let inputs: Vec<String> = (0..3001)
        .map(|n| match n {
            _ if n % 250 == 249 => "\"return\"".to_string(),
            _ if n % 100 == 99 => "\"skip-finish\"".to_string(),
            _ => n.to_string(),
        })
        .collect();
    let pool = Pool::builder()
        .workers(1)
        .reuse_instances(100_000)
        .build()
        .unwrap();
    let protocol = pool.load(guest("batch-protocol")).unwrap();
    let warm_up = (0..1000).map(|n| n.to_string());
    assert!(pool.map(&protocol, warm_up).all(|result| result.is_ok()));
    let results: Vec<_> = pool.map(&protocol, &inputs).collect();
    assert!(pool.stats().batched > 1000, "{:?}", pool.stats());
    let mut broken_in_runs = HashSet::new();
    for (input, result) in inputs.iter().zip(&results) {
        match input.as_str() {
            "\"return\"" | "\"skip-finish\"" => {
                let error = result.as_ref().unwrap_err();
                assert_eq!(error.kind(), ErrorKind::GuestError, "{input}");
                let broken = if input == "\"return\"" {
                    "run-batch returned without finishing this input"
                } else {
                    "run-batch took another input before finishing this one"
                };
                if error.message() != "ran alone" {
                    assert_eq!(error.message(), broken);
                    broken_in_runs.insert(input.as_str());
                }
            }
            _ => assert_eq!(result.as_ref().unwrap().value(), input.as_bytes()),
        }
    }
    assert_eq!(broken_in_runs.len(), 2, "{broken_in_runs:?}");
}

#[test]
fn seeded_random_draws_do_not_depend_on_reuse() {
    let draws = |reuse: u32, workers: usize| -> Vec<serde_json::Value> {
        let pool = Pool::builder()
            .workers(workers)
            .seed(7)
            .reuse_instances(reuse)
            .build()
            .unwrap();
        let probe = pool.load(guest("sandbox-probe")).unwrap();
        pool.map(&probe, std::iter::repeat_n(r#"{"op": "random"}"#, 20))
            .map(|result| result.unwrap().json().unwrap())
            .collect()
    };
    let fresh = draws(1, 2);
    assert_eq!(draws(8, 1), fresh);
    assert_eq!(draws(8, 2), fresh);
}

#[test]
fn handles_wait_report_and_finish() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let handle = pool.submit(&task, "25").unwrap();
    let id = handle.id();
    let output = handle.wait().unwrap();
    assert_eq!(output.json::<u64>().unwrap(), fib(25));
    assert!(output.duration() > Duration::ZERO);

    let next = pool.submit(&task, "3").unwrap();
    assert!(next.id() > id);
    let output = match next.wait_timeout(Duration::from_secs(60)) {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("fib(3) did not finish in a minute"),
    };
    assert_eq!(output.json::<u64>().unwrap(), 2);
}

#[test]
fn a_pending_task_can_be_cancelled() {
    let pool = pool(1);
    let task = pool.load(guest("fib")).unwrap();
    // The one worker is busy with fib(34) while the next task waits.
    let busy = pool.submit(&task, "34").unwrap();
    let queued = pool.submit(&task, "5").unwrap();
    assert!(queued.cancel());
    assert!(queued.is_finished());
    let error = queued.wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert_eq!(error.worker(), None);
    // A running or finished task cannot be cancelled.
    let result = busy.wait();
    assert_eq!(result.unwrap().json::<u64>().unwrap(), fib(34));
}

#[test]
fn as_completed_and_wait_gather_many_handles() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();

    let handles: Vec<_> = (10..20)
        .map(|n| pool.submit(&task, n.to_string()).unwrap())
        .collect();
    let mut values: Vec<u64> = wasmpool::as_completed(handles)
        .map(|handle| {
            assert!(handle.is_finished());
            handle.wait().unwrap().json().unwrap()
        })
        .collect();
    values.sort();
    assert_eq!(values, (10..20).map(fib).collect::<Vec<_>>());

    let handles = vec![
        pool.submit(&task, "20").unwrap(),
        pool.submit(&zoo, "\"panic\"").unwrap(),
    ];
    let waited = wasmpool::wait(handles, WaitFor::FirstError);
    assert!(waited.done.iter().any(|handle| handle.is_failed()));
    assert_eq!(waited.done.len() + waited.pending.len(), 2);

    let handles: Vec<_> = (0..6)
        .map(|n| pool.submit(&task, n.to_string()).unwrap())
        .collect();
    let waited = wasmpool::wait(handles, WaitFor::AllCompleted);
    assert_eq!(waited.done.len(), 6);
    assert!(waited.pending.is_empty());

    let handles: Vec<_> = (0..6)
        .map(|n| pool.submit(&task, n.to_string()).unwrap())
        .collect();
    let waited = wasmpool::wait(handles, WaitFor::FirstCompleted);
    assert!(!waited.done.is_empty());
    assert!(waited.done.iter().all(|handle| handle.is_finished()));
    // A pending task may finish any moment after `wait` returns.
    assert_eq!(waited.done.len() + waited.pending.len(), 6);
}

#[test]
fn handles_are_futures_under_tokio() {
    let pool = std::sync::Arc::new(pool(2));
    let task = pool.load(guest("fib")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let values = runtime.block_on(async {
        let mut joins = Vec::new();
        for n in 0..30u64 {
            let handle = pool.submit(&task, n.to_string()).unwrap();
            joins.push(tokio::spawn(handle));
        }
        let mut values = Vec::new();
        for join in joins {
            values.push(join.await.unwrap().unwrap().json::<u64>().unwrap());
        }
        values
    });
    assert_eq!(values, (0..30).map(fib).collect::<Vec<_>>());
}

#[test]
fn shutdown_hands_inputs_back_and_cancels_pending() {
    let pool = pool(1);
    let task = pool.load(guest("fib")).unwrap();
    let running = pool.submit(&task, "33").unwrap();
    let queued: Vec<_> = (0..5).map(|_| pool.submit(&task, "1").unwrap()).collect();
    while !running.is_running() {
        std::thread::yield_now();
    }
    pool.shutdown(true, true);
    assert!(running.wait().is_ok(), "a running task finishes");
    for handle in queued {
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    let refused = pool.submit(&task, b"7".to_vec()).unwrap_err();
    assert_eq!(refused, SubmitError(b"7".to_vec()));
}

/// A task that computes for ever, or waits in a host call for a minute,
/// with no time-out set: `shutdown_now` still stops both and returns, and
/// the queued input behind them ends cancelled without running.
#[test]
fn shutdown_now_stops_tasks_that_never_end_by_themselves() {
    let pool = pool(2);
    let attacker = pool.load(guest("attacker")).unwrap();
    let spin = pool.submit(&attacker, "\"spin\"").unwrap();
    let sleep = pool.submit(&attacker, "\"sleep\"").unwrap();
    let queued = pool.submit(&attacker, "\"good-1\"").unwrap();
    while !(spin.is_running() && sleep.is_running()) {
        std::thread::yield_now();
    }
    pool.shutdown_now();
    for handle in [spin, sleep, queued] {
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
    }
}

#[test]
fn workers_go_on_after_repeated_faults() {
    let pool = pool(2);
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let kinds: Vec<ErrorKind> = pool
        .map(&zoo, std::iter::repeat_n("\"panic\"", 20))
        .map(|result| result.unwrap_err().kind())
        .collect();
    assert_eq!(kinds, vec![ErrorKind::Panic; 20]);
    let ok: Vec<String> = pool
        .map(&zoo, ["\"ok\"", "\"ok\""])
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(ok, ["ok", "ok"]);
}

#[test]
fn a_file_that_is_not_a_task_gets_an_error_naming_what_is_wrong() {
    let pool = pool(1);
    // A component of another world, neither a task nor a command.
    let other = pool.load(guest("shapes")).unwrap_err();
    assert_eq!(other.kind(), LoadErrorKind::NotATask);
    assert!(
        other.to_string().contains("does not export `run`"),
        "{other}"
    );

    let garbage = pool.load_bytes(b"certainly not wasm").unwrap_err();
    assert_eq!(garbage.kind(), LoadErrorKind::NotWasm);

    let core = pool.load_bytes(b"\0asm\x01\0\0\0").unwrap_err();
    assert_eq!(core.kind(), LoadErrorKind::CoreModule);

    let component = std::fs::read(guest("fib")).unwrap();
    let truncated = pool
        .load_bytes(&component[..component.len() / 2])
        .unwrap_err();
    assert_eq!(truncated.kind(), LoadErrorKind::Invalid);

    let missing = pool.load("/nonexistent/task.wasm").unwrap_err();
    assert_eq!(missing.kind(), LoadErrorKind::Io);
    assert!(
        missing
            .to_string()
            .starts_with("cannot load /nonexistent/task.wasm: ")
    );
}

#[test]
fn stats_count_what_the_pool_did() {
    let pool = pool(1);
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    assert_eq!(pool.stats().submitted, 0);

    // One task runs forever until cancelled, one waits behind it.
    let looping = pool.submit(&zoo, "\"loop\"").unwrap();
    let waiting = pool.submit(&zoo, "\"ok\"").unwrap();
    // The slot says running a moment before the counters do.
    while !looping.is_running() || pool.stats().running == 0 {
        std::thread::yield_now();
    }
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.running, stats.queued), (2, 1, 1));
    assert!(looping.cancel());
    assert!(looping.wait().is_err());
    assert!(waiting.wait().is_ok());

    let faults = ["\"panic\"", "\"panic\"", "\"error\"", "\"ok\""];
    for result in pool.map(&zoo, faults) {
        let _ = result;
    }
    let stats = pool.stats();
    assert_eq!(stats.submitted, 6);
    assert_eq!(stats.finished, 6);
    assert_eq!((stats.queued, stats.running), (0, 0));
    assert_eq!(stats.failed.get(&ErrorKind::Panic), Some(&2));
    assert_eq!(stats.failed.get(&ErrorKind::GuestError), Some(&1));
    assert_eq!(stats.failed.get(&ErrorKind::Cancelled), Some(&1));
    assert_eq!(stats.busy.len(), 1);
    assert!(stats.busy[0] > Duration::ZERO);
}

#[test]
fn each_task_is_a_tracing_span_with_its_outcome() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    // Workers are other threads: the subscriber must be the global one.
    tracing::subscriber::set_global_default(subscriber).expect("the first global subscriber");

    let pool = pool(2);
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    for result in pool.map(&zoo, ["\"ok\"", "\"panic\""]) {
        let _ = result;
    }
    drop(pool);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("wasmpool.task"), "{text}");
    assert!(text.contains("outcome=\"ok\""), "{text}");
    assert!(text.contains("outcome=\"panic\""), "{text}");
    assert!(text.contains("run_us="), "{text}");
    assert!(text.contains("worker="), "{text}");
    assert!(text.contains("index=1"), "the map position: {text}");
}

#[test]
fn cpu_kernels_compute_known_answers() {
    let pool = pool(2);
    let task = pool.load(guest("cpu-kernels")).unwrap();
    let inputs = [
        r#"{"kernel": "sha256", "size": 0}"#,
        r#"{"kernel": "nbody", "steps": 1000}"#,
    ];
    let answers: Vec<String> = pool
        .map(&task, inputs)
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    // SHA-256 of nothing, and the benchmarks game's energy after 1,000 steps.
    assert_eq!(
        answers,
        [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "-0.169087605"
        ]
    );
}

#[test]
fn a_pool_dropped_by_a_panic_stops_its_endless_tasks() {
    let zoo = guest("trap-zoo");
    // Without the stop, dropping the pool would wait for the loop forever
    // and this join would never return.
    let outcome = std::thread::spawn(move || {
        let pool = pool(1);
        let task = pool.load(&zoo).unwrap();
        let looping = pool.submit(&task, "\"loop\"").unwrap();
        while !looping.is_running() {
            std::thread::yield_now();
        }
        panic!("the caller fails while its task loops forever");
    })
    .join();
    assert!(outcome.is_err());
}

#[test]
fn code_written_against_the_executor_trait_runs_on_a_pool() {
    use wasmpool::{Executor, LoadOptions};

    // What an embedding program writes once for a pool or a cluster.
    fn fibs(executor: &impl Executor, task: &std::path::Path) -> Vec<u64> {
        let task = executor.load_with(task, &LoadOptions::new()).unwrap();
        let handle = executor.submit_input(&task, "10".into()).unwrap();
        let mut values: Vec<u64> = executor
            .map(&task, ["1", "2", "3"])
            .map(|result| result.unwrap().json().unwrap())
            .collect();
        values.push(handle.wait().unwrap().json().unwrap());
        assert_eq!(executor.stats().finished, 4);
        assert!(executor.held().is_empty());
        values
    }
    assert_eq!(fibs(&pool(2), &guest("fib")), [1, 1, 2, fib(10)]);
}

/// Feeds `inputs` to a map over a channel one at a time, and checks that
/// each result comes back before the next input is sent: a map whose input
/// iterator blocks must still hand out what has finished. `unordered`
/// picks `map_unordered`. Fails (never hangs) when a result is late.
fn trickle(unordered: bool) {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let (feed, inputs) = std::sync::mpsc::channel::<String>();
    let (out, results) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        // Moved in: dropped if an assertion fails, which ends the map.
        let feed = feed;
        scope.spawn(|| {
            let send = |value: u64| {
                let _ = out.send(value);
            };
            if unordered {
                let map = pool.map_unordered(&task, inputs).background().unwrap();
                map.for_each(|(_, result)| send(result.unwrap().json().unwrap()));
            } else {
                let map = pool.map(&task, inputs).background().unwrap();
                map.for_each(|result| send(result.unwrap().json().unwrap()));
            }
        });
        for n in [10, 20, 25] {
            feed.send(n.to_string()).unwrap();
            let result = results.recv_timeout(Duration::from_secs(60));
            assert_eq!(result, Ok(fib(n)), "the result of input {n}");
        }
    });
    // The inputs ended: so did the map, after its three results.
    assert!(results.try_recv().is_err());
}

#[test]
fn a_map_hands_out_each_result_while_the_next_input_has_not_come() {
    trickle(false);
}

#[test]
fn an_unordered_map_hands_out_each_result_while_the_next_input_has_not_come() {
    trickle(true);
}

#[test]
fn a_background_map_over_inputs_at_hand_gives_every_result_in_order() {
    let pool = pool(2);
    let task = pool.load(guest("fib")).unwrap();
    let inputs: Vec<u64> = (0..2000).map(|n| n % 20).collect();
    let results: Vec<u64> = pool
        .map(&task, inputs.clone().into_iter().map(|n| n.to_string()))
        .background()
        .unwrap()
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(results, inputs.iter().map(|&n| fib(n)).collect::<Vec<_>>());
}

#[test]
fn a_stopped_map_ends_while_its_inputs_keep_it_waiting() {
    let pool = pool(1);
    let task = pool.load(guest("fib")).unwrap();
    // One input, then none, and no end while the map runs.
    let (feed, inputs) = std::sync::mpsc::channel::<String>();
    feed.send("10".to_string()).unwrap();
    let mut map = pool.map(&task, inputs).background().unwrap();
    let stop = map.stopper();
    let (tell, told) = std::sync::mpsc::channel::<()>();
    let (ended, end_seen) = std::sync::mpsc::channel::<()>();
    let stopper = std::thread::spawn(move || {
        told.recv().unwrap();
        stop.stop();
        // Should the stop not end the map, ending its inputs does: the
        // test then fails rather than hangs.
        let in_time = end_seen.recv_timeout(Duration::from_secs(60)).is_ok();
        drop(feed);
        in_time
    });
    assert_eq!(map.next().unwrap().unwrap().json::<u64>().unwrap(), fib(10));
    tell.send(()).unwrap();
    assert!(map.next().is_none());
    ended.send(()).unwrap();
    assert!(stopper.join().unwrap(), "the stop ended the waiting map");
}

#[test]
fn a_woken_map_calls_on_wake_while_its_inputs_keep_it_waiting() {
    let pool = pool(1);
    let task = pool.load(guest("fib")).unwrap();
    let (feed, inputs) = std::sync::mpsc::channel::<String>();
    let (woke, wakes) = std::sync::mpsc::channel::<()>();
    let mut map = pool
        .map(&task, inputs)
        .on_wake(move || {
            let _ = woke.send(());
        })
        .background()
        .unwrap();
    let stop = map.stopper();
    // Wakes the map, which has nothing to run and no input: only its hook
    // can say it woke. Then an input, which the map must still run.
    let waker = std::thread::spawn(move || {
        stop.wake();
        let in_time = wakes.recv_timeout(Duration::from_secs(60)).is_ok();
        feed.send("10".to_string()).unwrap();
        in_time
    });
    assert_eq!(map.next().unwrap().unwrap().json::<u64>().unwrap(), fib(10));
    assert!(waker.join().unwrap(), "on_wake ran for the wake");
    // The feed is gone with its thread: the inputs ended.
    assert!(map.next().is_none());
}

/// The README's example of the library under tokio: one task submitted
/// and waited for, then many gathered as they finish.
#[test]
fn the_readmes_tokio_example_gathers_results_as_they_finish() {
    use std::sync::Arc;
    use wasmpool::TaskResult;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let gathered = runtime.block_on(async {
        let pool = Arc::new(pool(2));
        let task = pool.load(guest("fib")).unwrap();
        let handle = pool.submit(&task, "10").unwrap();
        let result: TaskResult = handle.wait();
        assert_eq!(result.unwrap().json::<u64>().unwrap(), fib(10));

        let mut running = tokio::task::JoinSet::new();
        for n in 20..30u64 {
            running.spawn(pool.submit(&task, n.to_string()).unwrap());
        }
        let mut values = Vec::new();
        while let Some(joined) = running.join_next().await {
            values.push(joined.unwrap().unwrap().json::<u64>().unwrap());
        }
        values
    });
    let mut sorted = gathered.clone();
    sorted.sort();
    assert_eq!(sorted, (20..30).map(fib).collect::<Vec<_>>());
}

#[test]
fn an_ordered_map_runs_past_a_slow_task_as_far_as_its_order_buffer_allows() {
    // The first task ends only once the last has started, 200 inputs past
    // a window of 16 tasks in flight.
    let run = |order_buffer: usize| {
        let dir = crate::support::tempdir(&format!("map-order-buffer-{order_buffer}"));
        let pool = Pool::builder()
            .workers(2)
            .map_window(16)
            .timeout(Duration::from_secs(if order_buffer > 0 { 30 } else { 1 }))
            .dir(&dir, "/data", true)
            .build()
            .unwrap();
        let probe = pool.load(guest("sandbox-probe")).unwrap();
        let inputs = std::iter::once(r#"{"op": "await", "path": "/data/flag"}"#)
            .chain(std::iter::repeat_n(r#"{"op": "random"}"#, 200))
            .chain(std::iter::once(
                r#"{"op": "write", "path": "/data/flag", "text": "go"}"#,
            ));
        let mut results = pool.map(&probe, inputs).order_buffer(order_buffer);
        let first = results.next().unwrap();
        let rest: Vec<_> = results.by_ref().collect();
        assert_eq!(rest.len(), 201);
        assert!(rest.iter().all(Result::is_ok));
        (first, results.order_buffer_filled())
    };
    let (first, filled) = run(wasmpool::DEFAULT_ORDER_BUFFER);
    assert_eq!(first.unwrap().json::<String>().unwrap(), "appeared");
    assert_eq!(filled, 0);
    // Without a buffer, the map keeps to its window: the last input waits
    // for the first result, which times out.
    let (first, filled) = run(0);
    assert_eq!(first.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(filled, 1);
}

/// A program that embeds the library, with the default features off, gets
/// none of the command's dependencies (some, such as rustc-hash, may still
/// come in through wasmtime's own).
#[test]
fn the_library_alone_pulls_in_none_of_the_commands_dependencies() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wasmpool",
            "--edges",
            "normal",
            "--no-default-features",
        ])
        .args(["--depth", "1", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(tree.contains("wasmtime v"), "{tree}");
    let names: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    for command_only in [
        "clap",
        "indicatif",
        "signal-hook",
        "mimalloc",
        "rustc-hash",
        "itoa",
    ] {
        assert!(!names.contains(command_only), "{command_only} in\n{tree}");
    }
}
