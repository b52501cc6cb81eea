//! Every way a guest can fail, interleaved with good tasks in one big batch:
//! each failure has the right kind and touches nothing else.

use wasmpool::{ErrorKind, Pool, Trap};

use crate::support::{self, fib, guest};

/// The faults that end on their own, without a time-out or a memory cap.
const FAULTS: &[(&str, ErrorKind)] = support::FAULTS.split_at(7).0;

#[test]
fn every_fault_fails_alone_in_a_batch_of_1200() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let fib_task = pool.load(guest("fib")).unwrap();

    let mut handles = Vec::new();
    for i in 0..1200usize {
        let handle = if i % 3 == 0 {
            let (fault, _) = FAULTS[(i / 3) % FAULTS.len()];
            pool.submit(&zoo, format!("\"{fault}\""))
        } else {
            pool.submit(&fib_task, (i % 25).to_string())
        };
        handles.push(handle.unwrap());
    }

    for (i, handle) in handles.into_iter().enumerate() {
        let result = handle.wait();
        if i % 3 != 0 {
            let output = result.unwrap_or_else(|error| panic!("fib task {i} failed: {error}"));
            assert_eq!(output.json::<u64>().unwrap(), fib((i % 25) as u64));
            continue;
        }
        let (fault, kind) = FAULTS[(i / 3) % FAULTS.len()];
        let error = result.expect_err(fault);
        assert_eq!(error.kind(), kind, "{fault}: {error}");
        assert!(error.worker().is_some_and(|worker| worker < 2));
        match fault {
            "panic" => {
                assert_eq!(error.message(), "the task panicked on purpose");
                assert!(error.stderr().to_string_lossy().contains("panicked at"));
            }
            "unreachable" | "abort" => {
                assert_eq!(error.trap_code(), Some(Trap::UnreachableCodeReached));
                assert!(
                    error
                        .wasm_backtrace()
                        .is_some_and(|trace| trace.contains("trap_zoo"))
                );
            }
            "oob" => assert_eq!(error.trap_code(), Some(Trap::MemoryOutOfBounds)),
            "stack-overflow" => assert_eq!(error.trap_code(), Some(Trap::StackOverflow)),
            // WASIp2's `exit` carries success or failure only: 3 arrives as 1.
            "exit" => assert_eq!(error.exit_code(), Some(1)),
            "error" => assert_eq!(error.message(), "the task returned an error on purpose"),
            _ => unreachable!(),
        }
    }

    // The pool still serves, on the same number of workers.
    assert_eq!(pool.workers(), 2);
    let after: Vec<u64> = pool
        .map(&fib_task, ["10", "20"])
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(after, [fib(10), fib(20)]);
}

#[test]
fn a_task_that_prints_too_much_is_truncated_not_killed() {
    let pool = Pool::builder().workers(1).max_output(1000).build().unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let output = pool.submit(&zoo, "\"chatty\"").unwrap().wait().unwrap();
    assert_eq!(output.json::<String>().unwrap(), "ok");
    assert_eq!(output.stdout().as_bytes().len(), 1000);
    assert!(output.stdout().is_truncated());
    assert!(
        output
            .stdout()
            .to_string_lossy()
            .starts_with("chatty line      0 of 100000\n")
    );
    assert!(!output.stderr().is_truncated());
}

#[test]
fn a_bad_input_is_a_guest_error_with_serdes_message() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let fib_task = pool.load(guest("fib")).unwrap();
    let error = pool
        .submit(&fib_task, "\"ten\"")
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GuestError);
    assert!(
        error
            .message()
            .starts_with("invalid input: invalid type: string \"ten\", expected u64"),
        "{}",
        error.message()
    );
}

/// Checked in code instead of by guard pages, every fault still ends its
/// task alone with the same kind and trap code, memory still stops at its
/// cap, and the same slots serve task after task.
#[test]
fn explicit_bounds_checks_keep_every_fault_typed() {
    let pool = Pool::builder()
        .workers(2)
        .explicit_bounds_checks(true)
        .timeout(std::time::Duration::from_secs(2))
        .max_memory(64 << 20)
        .build()
        .unwrap();
    let zoo = pool.load(guest("trap-zoo")).unwrap();
    let fib_task = pool.load(guest("fib")).unwrap();
    for round in 0..3 {
        for &(fault, kind) in &support::FAULTS {
            let error = pool
                .submit(&zoo, format!("\"{fault}\""))
                .unwrap()
                .wait()
                .expect_err(fault);
            assert_eq!(error.kind(), kind, "{fault} (round {round}): {error}");
            if fault == "oob" {
                assert_eq!(error.trap_code(), Some(Trap::MemoryOutOfBounds));
            }
        }
        let fibs: Vec<u64> = pool
            .map(&fib_task, ["10", "20"])
            .map(|result| result.unwrap().json().unwrap())
            .collect();
        assert_eq!(fibs, [fib(10), fib(20)]);
    }
}
