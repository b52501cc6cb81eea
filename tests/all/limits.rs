//! Limits: time-out, cancelling a running task, memory cap, fuel, retries,
//! and per-task overrides.

use std::time::Duration;

use wasmpool::{ErrorKind, Input, Limits, Pool};

use crate::support::{fib, guest};

#[test]
fn a_task_past_its_timeout_is_stopped_and_its_worker_goes_on() {
    let pool = Pool::builder()
        .workers(1)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let error = pool.submit(&zoo, "\"loop\"").unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.worker(), Some(0));
    // The one worker serves the next task.
    let ok = pool.submit(&zoo, "\"ok\"").unwrap().wait().unwrap();
    assert_eq!(ok.json::<String>().unwrap(), "ok");
}

#[test]
fn a_timeout_stops_a_task_blocked_in_a_host_call() {
    // really-hard-task sleeps 2 s in wasi:clocks: no wasm runs meanwhile.
    let pool = Pool::builder()
        .workers(1)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sleeper = pool.load(guest("really-hard-task")).unwrap();
    let error = pool.submit(&sleeper, "1").unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.stdout().is_empty(), "the task never got to print");
}

#[test]
fn cancelling_a_running_task_stops_it() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let looping = pool.submit(&zoo, "\"loop\"").unwrap();
    while !looping.is_running() {
        std::thread::yield_now();
    }
    assert!(looping.cancel());
    let error = looping.wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    assert_eq!(error.worker(), Some(0), "it was running when cancelled");
    let ok = pool.submit(&zoo, "\"ok\"").unwrap().wait().unwrap();
    assert_eq!(ok.json::<String>().unwrap(), "ok");
}

#[test]
fn a_memory_bomb_hits_its_cap_and_fails_alone() {
    let pool = Pool::builder()
        .workers(2)
        .max_memory(32 << 20)
        .build()
        .unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let handles: Vec<_> = ["\"memory-bomb\"", "\"ok\"", "\"memory-bomb\"", "\"ok\""]
        .into_iter()
        .map(|input| pool.submit(&zoo, input).unwrap())
        .collect();
    let kinds: Vec<Option<ErrorKind>> = handles
        .into_iter()
        .map(|handle| handle.wait().err().map(|error| error.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::MemoryLimit),
            None,
            Some(ErrorKind::MemoryLimit),
            None
        ]
    );
}

#[test]
fn fuel_is_a_deterministic_cpu_budget() {
    let pool = Pool::builder().workers(1).fuel(200_000).build().unwrap();
    let task = pool.load(guest("fib")).unwrap();
    let small = pool.submit(&task, "10").unwrap().wait().unwrap();
    assert_eq!(small.json::<u64>().unwrap(), fib(10));
    let error = pool.submit(&task, "30").unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FuelExhausted);
    // The same budget runs out the same way every time.
    let again = pool.submit(&task, "30").unwrap().wait().unwrap_err();
    assert_eq!(again.wasm_backtrace(), error.wasm_backtrace());
}

#[test]
fn the_wasm_stack_limit_is_the_pools_to_choose() {
    let deep = |max_stack: usize| {
        let pool = Pool::builder()
            .workers(1)
            .max_stack(max_stack)
            .build()
            .unwrap();
        let zoo = pool.load(guest("trap-zoo")).unwrap();
        pool.submit(&zoo, "\"deep\"").unwrap().wait()
    };
    let error = deep(64 << 10).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StackOverflow);
    let output = deep(8 << 20).unwrap();
    assert!(output.json::<String>().is_ok());
}

#[test]
fn retries_rerun_traps_but_not_guest_errors() {
    let pool = Pool::builder().workers(2).retries(2).build().unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let trap = pool
        .submit(&zoo, "\"unreachable\"")
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(trap.kind(), ErrorKind::Trap);
    assert_eq!(trap.attempts(), 3);
    let guest_error = pool.submit(&zoo, "\"error\"").unwrap().wait().unwrap_err();
    assert_eq!(guest_error.attempts(), 1);
    let ok = pool.submit(&zoo, "\"ok\"").unwrap().wait().unwrap();
    assert_eq!(ok.attempts(), 1);
}

#[test]
fn one_input_can_carry_its_own_limits() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let input = Input::new("\"loop\"").limits(Limits::new().timeout(Duration::from_millis(100)));
    let error = pool.submit(&zoo, input).unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    let input = Input::new("\"memory-bomb\"").limits(Limits::new().max_memory(16 << 20));
    let error = pool.submit(&zoo, input).unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MemoryLimit);
}

#[test]
fn a_pool_that_cannot_stop_running_wasm_refuses_time_outs_and_still_runs_tasks() {
    let built = Pool::builder()
        .interruptible(false)
        .timeout(Duration::from_secs(1))
        .build();
    let Err(refused) = built else {
        panic!("a time-out in an uninterruptible pool is refused");
    };
    assert!(
        refused.to_string().contains("interruptible(false)"),
        "{refused}"
    );

    let pool = Pool::builder()
        .workers(1)
        .interruptible(false)
        .build()
        .unwrap();
    let task = pool.load(guest("fib")).unwrap();
    let output = pool.submit(&task, "25").unwrap().wait().unwrap();
    assert_eq!(output.json::<u64>().unwrap(), fib(25));
    // A time-out that comes with an input is refused for that task alone.
    let timed = Input::new("25").limits(Limits::new().timeout(Duration::from_secs(1)));
    let error = pool.submit(&task, timed).unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("time-out"), "{error}");
    assert_eq!(
        pool.submit(&task, "20")
            .unwrap()
            .wait()
            .unwrap()
            .json::<u64>()
            .unwrap(),
        fib(20)
    );
}

#[test]
fn an_uninterruptible_pool_compiles_without_epoch_checks() {
    let bytes = std::fs::read(guest("fib")).unwrap();
    let checked = Pool::builder().workers(1).build().unwrap();
    let unchecked = Pool::builder()
        .workers(1)
        .interruptible(false)
        .build()
        .unwrap();
    let with = checked.precompile(&bytes).unwrap();
    let without = unchecked.precompile(&bytes).unwrap();
    assert_ne!(with, without);
    assert!(
        without.len() < with.len(),
        "{} vs {} bytes",
        without.len(),
        with.len()
    );
}

#[test]
fn an_uninterruptible_pool_still_cancels_a_task_waiting_in_a_host_call() {
    // really-hard-task sleeps 2 s in wasi:clocks: no wasm runs meanwhile.
    let pool = Pool::builder()
        .workers(1)
        .interruptible(false)
        .build()
        .unwrap();
    let sleeper = pool.load(guest("really-hard-task")).unwrap();
    let handle = pool.submit(&sleeper, "1").unwrap();
    while !handle.is_running() {
        std::thread::yield_now();
    }
    assert!(handle.cancel());
    let error = handle.wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
}

#[test]
fn a_result_over_max_result_fails_and_a_long_message_is_cut() {
    let pool = Pool::builder()
        .workers(1)
        .max_result(4)
        .max_message(10)
        .reuse_instances(8)
        .build()
        .unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    // `"ok"` is 4 bytes: within the cap; its twin through a batch too.
    assert_eq!(
        pool.submit(&zoo, "\"ok\"").unwrap().wait().unwrap().value(),
        b"\"ok\""
    );
    let attacker = pool.load(guest("attacker")).unwrap();
    let results: Vec<_> = pool
        .map(&attacker, ["\"good-5\"", "\"good-50000\""])
        .collect();
    assert_eq!(results[0].as_ref().unwrap().value(), b"10");
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ResourceLimit);
    assert_eq!(
        error.message(),
        "the task's result of 6 bytes is over the limit of 4 bytes (max_result)"
    );
    let error = pool.submit(&zoo, "\"error\"").unwrap().wait().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GuestError);
    assert_eq!(error.message(), "the task r... [27 more bytes cut]");
}
