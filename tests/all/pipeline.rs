//! A run of the real binary fed through a pipe the test writes itself: an
//! input written, its record read back (or the test fails at a deadline
//! rather than hang), and only then the next input, as a producer that
//! waits for each answer does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::support::fib;

/// Generous: a debug build on a busy machine; the point is an answer
/// before the next input, not how soon.
const DEADLINE: Duration = Duration::from_secs(60);

pub struct Pipeline {
    /// The run's process (`wasmpool`, or `mpirun` around it).
    pub child: Child,
    stdin: Option<ChildStdin>,
    records: Receiver<String>,
}

impl Pipeline {
    /// Starts `command`, its stdin a pipe and its stdout read line by line.
    pub fn start(mut command: Command) -> Pipeline {
        let mut child = command
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

    pub fn write(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the pipe is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next record, which must come while the pipe stays quiet.
    pub fn record(&self) -> Value {
        let line = self
            .records
            .recv_timeout(DEADLINE)
            .expect("a record before the next input is written");
        serde_json::from_str(&line).unwrap()
    }

    /// How the run ended, within the deadline.
    pub fn exit(mut self) -> ExitStatus {
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
    pub fn close(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.exit()
    }
}

/// A run of fib over JSONL from stdin: inputs written one at a time, each
/// record read back before the next input; then the end of the input,
/// which ends the run with exit code 0.
pub fn answers_each_input_before_the_next(mut run: Pipeline) {
    for (index, n) in [10u64, 20, 25].into_iter().enumerate() {
        run.write(&n.to_string());
        let record = run.record();
        assert_eq!(record["index"], index);
        assert_eq!(record["ok"], fib(n));
    }
    assert_eq!(run.close().code(), Some(0));
}
