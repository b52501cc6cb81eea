//! Interrupting a run with real signals, and resuming it: one record per
//! input, nothing lost, nothing twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{fib, guest, wasmpool};

const INPUTS: u64 = 200;
/// fib(27) is a few hundred thousand calls: 200 of them keep two workers
/// busy long enough to be interrupted part-way, even on a fast machine.
const N: u64 = 27;

fn start(output: &Path, resume: bool) -> Child {
    let inputs = serde_json::to_string(&vec![N; INPUTS as usize]).unwrap();
    let mut command = wasmpool();
    command
        .arg("run")
        .arg(guest("fib"))
        .args(["-j", "2", "--inputs", &inputs, "--output"])
        .arg(output)
        .stderr(Stdio::piped());
    if resume {
        command.arg("--resume");
    }
    command.spawn().unwrap()
}

fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a half line: {text:?}"
    );
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Waits until the run has written `count` records.
fn wait_for_records(path: &Path, count: usize) {
    loop {
        let written = std::fs::read_to_string(path).map_or(0, |text| text.lines().count());
        if written >= count {
            return;
        }
        std::thread::yield_now();
    }
}

/// Sends `signal` (`-INT`, `-TERM`) to `child` with the real `kill`.
fn send(signal: &str, child: &Child) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn interrupt_then_resume(signal: &str) {
    let output: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("signals-{}-{signal}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&output);
    let child = start(&output, false);
    wait_for_records(&output, 3);
    send(signal, &child);
    let interrupted = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&interrupted.stderr);
    assert_eq!(interrupted.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let partial = records(&output);
    assert!(partial.len() >= 3);
    assert!(
        (partial.len() as u64) < INPUTS,
        "the run finished before the signal"
    );
    // What --resume will run, counted: every input without a record.
    let without = format!(
        "{} of the {INPUTS} inputs have no record",
        INPUTS as usize - partial.len()
    );
    assert!(stderr.contains(&without), "{stderr}");
    assert!(partial.iter().all(|record| record["ok"] == fib(N)));

    let resumed = start(&output, true).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("inputs already had a record"), "{stderr}");
    let all = records(&output);
    let mut indices: Vec<u64> = all.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    indices.sort();
    assert_eq!(
        indices,
        (0..INPUTS).collect::<Vec<_>>(),
        "one record per input"
    );
    assert!(all.iter().all(|record| record["ok"] == fib(N)));
}

#[test]
fn sigint_then_resume_loses_nothing_and_repeats_nothing() {
    interrupt_then_resume("-INT");
}

#[test]
fn sigterm_then_resume_loses_nothing_and_repeats_nothing() {
    interrupt_then_resume("-TERM");
}

#[test]
fn without_interruption_a_second_sigint_quits_while_a_task_spins() {
    use std::io::{BufRead, BufReader};

    let output: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("signals-{}-no-interrupt.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&output);
    let mut child = wasmpool()
        .arg("run")
        .arg(guest("trap-zoo"))
        .args([
            "-j",
            "1",
            "--no-interrupt",
            "--inputs",
            r#"["ok", "loop"]"#,
            "-o",
        ])
        .arg(&output)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // "ok" is recorded; "loop" spins in wasm, where nothing can stop it.
    wait_for_records(&output, 1);
    send("-INT", &child);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("cannot be stopped") {
        assert!(stderr.read_line(&mut said).unwrap() > 0, "{said}");
    }
    send("-INT", &child);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{said}{rest}");
    assert!(rest.contains("interrupted again"), "{rest}");
    let written = records(&output);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["ok"], "ok");
}
