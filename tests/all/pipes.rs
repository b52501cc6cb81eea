//! `wasmpool run` in a pipeline: inputs that trickle in through a pipe the
//! test writes itself, each record read back before the next input is
//! written, as a producer that waits for each answer does. A late record
//! fails the test at a deadline rather than hang it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::support::{fib, guest, wasmpool};

/// Generous: a debug build on a busy machine; the point is an answer
/// before the next input, not how soon.
const DEADLINE: Duration = Duration::from_secs(60);

struct Pipeline {
    child: Child,
    stdin: Option<ChildStdin>,
    records: Receiver<String>,
}

impl Pipeline {
    fn start(task: &Path, args: &[&str]) -> Pipeline {
        let mut child = wasmpool()
            .arg("run")
            .arg(task)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (lines, records) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        Pipeline {
            child,
            stdin,
            records,
        }
    }

    fn write(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the pipe is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next record, which must come while the pipe stays quiet.
    fn record(&self) -> Value {
        let line = self
            .records
            .recv_timeout(DEADLINE)
            .expect("a record before the next input is written");
        serde_json::from_str(&line).unwrap()
    }

    /// How the run ended, within the deadline.
    fn exit(mut self) -> ExitStatus {
        let (done, status) = channel();
        let mut child = self.child;
        std::thread::spawn(move || {
            let _ = done.send(child.wait().unwrap());
        });
        let status = status.recv_timeout(DEADLINE).expect("the run ends");
        drop(self.stdin.take());
        status
    }

    /// Ends the input, then waits for the run to end.
    fn close(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.exit()
    }
}

/// fib's inputs one at a time through stdin (JSONL), under `args`.
fn trickle_fib(args: &[&str]) {
    let mut all = vec!["-q", "-j", "2", "--input-file", "-"];
    all.extend(args);
    let mut run = Pipeline::start(&guest("fib"), &all);
    for (index, n) in [10u64, 20, 25].into_iter().enumerate() {
        run.write(&n.to_string());
        let record = run.record();
        assert_eq!(record["index"], index);
        assert_eq!(record["ok"], fib(n));
    }
    assert_eq!(run.close().code(), Some(0));
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
    let mut run = Pipeline::start(&guest("word-count"), &["-q", "--lines", "-"]);
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
    let mut run = Pipeline::start(&guest("fib"), &["-q", "--input-file", "-"]);
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
