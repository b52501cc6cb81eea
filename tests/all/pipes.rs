//! `wasmpool run` in a pipeline: inputs that trickle in through a pipe the
//! test writes itself, each record read back before the next input is
//! written, as a producer that waits for each answer does. A late record
//! fails the test at a deadline rather than hang it.

use std::path::Path;
use std::process::Command;

use crate::pipeline::{Pipeline, answers_each_input_before_the_next};
use crate::support::{fib, guest, wasmpool};

/// `wasmpool run TASK ARGS...`, fed by a pipe.
fn start(task: &Path, args: &[&str]) -> Pipeline {
    let mut command = wasmpool();
    command.arg("run").arg(task).args(args);
    Pipeline::start(command)
}

/// fib's inputs one at a time through stdin (JSONL), under `args`.
fn trickle_fib(args: &[&str]) {
    let mut all = vec!["-q", "-j", "2", "--input-file", "-"];
    all.extend(args);
    answers_each_input_before_the_next(start(&guest("fib"), &all));
}

#[test]
fn each_record_comes_out_before_the_next_input_comes_in() {
    trickle_fib(&[]);
}

#[test]
fn unordered_each_record_comes_out_before_the_next_input_comes_in() {
    trickle_fib(&["--unordered"]);
}

#[test]
fn a_command_programs_lines_trickle_through_too() {
    let mut run = start(&guest("word-count"), &["-q", "--lines", "-"]);
    for (index, line) in ["one two", "three"].into_iter().enumerate() {
        run.write(line);
        let record = run.record();
        assert_eq!(record["index"], index);
        assert!(record.get("ok").is_some(), "{record}");
    }
    assert_eq!(run.close().code(), Some(0));
}

#[test]
fn an_interrupt_while_the_pipe_is_quiet_ends_the_run_at_once() {
    let mut run = start(&guest("fib"), &["-q", "--input-file", "-"]);
    run.write("10");
    assert_eq!(run.record()["ok"], fib(10));
    // Nothing more comes, and the pipe stays open: only the signal can
    // end the run.
    let status = Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(run.exit().code(), Some(130));
}

/// An input that is no JSON has no task to wait for: its record comes
/// while the pipe stays quiet, ordered or not, and the run goes on.
#[test]
fn an_invalid_input_is_answered_before_the_next_input_comes_in() {
    for order in [None, Some("--unordered")] {
        let mut args = vec!["-q", "--input-file", "-"];
        args.extend(order);
        let mut run = start(&guest("fib"), &args);
        run.write("10");
        assert_eq!(run.record()["ok"], fib(10));
        run.write("{not json");
        let refused = run.record();
        assert_eq!(refused["index"], 1);
        assert_eq!(refused["error"]["kind"], "invalid-input", "{refused}");
        run.write("20");
        let record = run.record();
        assert_eq!(record["index"], 2);
        assert_eq!(record["ok"], fib(20));
        assert_eq!(run.close().code(), Some(1), "a refused input fails the run");
    }
}
