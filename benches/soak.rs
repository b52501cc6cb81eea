//! Soak: a long run of the real CLI in which a tenth of the tasks fail in
//! every way a guest can, with fresh and with reused instances. While it
//! runs, the process's resident memory and thread count are sampled from
//! `/proc`; at the end every input must have exactly one record, of the
//! kind its fault makes.
//!
//! ```sh
//! cargo bench --bench soak -- [INPUTS]      # default 1,000,000
//! ```
//!
//! The inputs go to `trap-zoo`: 90% `"ok"`, and each of the other 10% one
//! of its faults in turn (panic, unreachable, out-of-bounds, abort, stack
//! overflow, exit, error). Two faults cost wall time rather than CPU, so
//! they come once in 10,000 inputs: a loop stopped by `--timeout 100ms`,
//! and a memory bomb stopped at `--max-memory 8MiB`.

#[path = "../tests/all/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{guest, tempdir, wasmpool};

/// The common faults and the kind each ends as.
const FAULTS: [(&str, &str); 7] = [
    ("panic", "panic"),
    ("unreachable", "trap"),
    ("oob", "trap"),
    ("abort", "trap"),
    ("stack-overflow", "stack-overflow"),
    ("exit", "exit"),
    ("error", "guest-error"),
];

/// Faults that cost wall time, one each in `RARE` inputs.
const RARE: usize = 10_000;

/// What input `index` asks of the task, and the kind its record must have.
fn input(index: usize) -> (&'static str, Option<&'static str>) {
    if index % RARE == 17 {
        ("loop", Some("timeout"))
    } else if index % RARE == 59 {
        ("memory-bomb", Some("memory-limit"))
    } else if index % 10 == 3 {
        let (fault, kind) = FAULTS[(index / 10) % FAULTS.len()];
        (fault, Some(kind))
    } else {
        ("ok", None)
    }
}

/// One sample of the process: when, its resident memory, its threads.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    threads: u64,
}

fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    Some(Sample {
        at: started.elapsed(),
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

#[derive(serde::Deserialize)]
struct Record {
    index: usize,
    #[serde(default)]
    error: Option<Failure>,
}

#[derive(serde::Deserialize)]
struct Failure {
    kind: String,
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find(|arg| arg != "--bench")
        .map_or(1_000_000, |arg| arg.parse().expect("INPUTS: a number"));
    let dir = tempdir("soak");
    let inputs = dir.join("inputs.jsonl");
    let lines: String = (0..count)
        .map(|i| format!("\"{}\"\n", input(i).0))
        .collect();
    std::fs::write(&inputs, lines).unwrap();
    let zoo = guest("trap-zoo");

    println!(
        "| instances | tasks | seconds | tasks/s | RSS first 10% | RSS last 10% | threads at 10% / end | records |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, extra) in [
        ("fresh", &[][..]),
        ("reused (1000)", &["--reuse-instances", "1000"][..]),
    ] {
        let out = dir.join("records.jsonl");
        let started = Instant::now();
        let mut child = wasmpool()
            .arg("run")
            .arg(&zoo)
            .args([
                "--workers",
                "2",
                "--timeout",
                "100ms",
                "--max-memory",
                "8MiB",
                "-q",
            ])
            .args(extra)
            .arg("--input-file")
            .arg(&inputs)
            .arg("-o")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (samples, done, pid) = (Arc::clone(&samples), Arc::clone(&done), child.id());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(sample) = sample(pid, started) {
                        samples.lock().unwrap().push(sample);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let status = child.wait().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        assert_eq!(status.code(), Some(1), "some tasks fail, so exit 1");
        let samples = samples.lock().unwrap().clone();
        let (first, last, threads) = summary(&samples);
        let exact = check(&out, count);
        println!(
            "| {name} | {count} | {seconds:.1} | {:.0} | {first:.1} MiB | {last:.1} MiB | {threads} | {exact} |",
            count as f64 / seconds
        );
    }
}

/// Mean RSS over the first and the last tenth of the run, and the thread
/// counts a tenth in and at the last sample.
fn summary(samples: &[Sample]) -> (f64, f64, String) {
    let end = samples.last().map_or(Duration::ZERO, |sample| sample.at);
    let mean = |keep: &dyn Fn(&Sample) -> bool| {
        let chosen: Vec<u64> = samples
            .iter()
            .filter(|s| keep(s))
            .map(|s| s.rss_kib)
            .collect();
        chosen.iter().sum::<u64>() as f64 / chosen.len().max(1) as f64 / 1024.0
    };
    let first = mean(&|s: &Sample| s.at <= end / 10);
    let last = mean(&|s: &Sample| s.at >= end - end / 10);
    let tenth = samples
        .iter()
        .find(|s| s.at >= end / 10)
        .map_or(0, |s| s.threads);
    let threads = format!("{tenth} / {}", samples.last().map_or(0, |s| s.threads));
    (first, last, threads)
}

/// Whether every input has exactly one record, of its fault's kind; the
/// count of each kind.
fn check(out: &Path, count: usize) -> String {
    let mut seen = vec![false; count];
    let mut kinds: HashMap<String, usize> = HashMap::new();
    let mut problems = 0;
    for line in BufReader::new(std::fs::File::open(out).unwrap()).lines() {
        let record: Record = serde_json::from_str(&line.unwrap()).unwrap();
        let expected = input(record.index).1;
        let kind = record.error.map(|failure| failure.kind);
        if std::mem::replace(&mut seen[record.index], true) || kind.as_deref() != expected {
            problems += 1;
        }
        *kinds
            .entry(kind.unwrap_or_else(|| "ok".to_string()))
            .or_default() += 1;
    }
    let missing = seen.iter().filter(|seen| !**seen).count();
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    let kinds: Vec<String> = kinds
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    if problems == 0 && missing == 0 {
        format!("each once, kinds exact ({})", kinds.join(", "))
    } else {
        format!(
            "**{problems} wrong, {missing} missing** ({})",
            kinds.join(", ")
        )
    }
}
