//! The HTML report of a real run, rendered by headless Chromium and read
//! the way a person would: lanes, bars, the error table, the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::support::{guest, tempdir, wasmpool};

/// The page as Chromium sees it once loaded.
fn render_in_chromium(page: &Path) -> String {
    // A profile of its own for each page: Chromium locks its profile.
    static PAGES: AtomicUsize = AtomicUsize::new(0);
    let profile = tempdir(&format!(
        "report-chromium-profile-{}",
        PAGES.fetch_add(1, Ordering::Relaxed)
    ));
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium: install Debian's `chromium` package (.ci/run does)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_real_runs_report_shows_lanes_bars_and_errors_in_a_browser() {
    let dir = tempdir("report");
    let (records_path, page) = (dir.join("results.jsonl"), dir.join("report.html"));
    let mut inputs = vec!["ok"; 20];
    inputs.extend(["panic"; 5]);
    inputs.extend(["error"; 3]);
    inputs.extend(["unreachable"; 2]);
    let status = wasmpool()
        .arg("run")
        .arg(guest("trap-zoo"))
        .args([
            "-q",
            "-j",
            "2",
            "--inputs",
            &serde_json::to_string(&inputs).unwrap(),
        ])
        .arg("--output")
        .arg(&records_path)
        .arg("--report")
        .arg(&page)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "some tasks fail on purpose");

    let records: Vec<Value> = std::fs::read_to_string(&records_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let workers: BTreeSet<u64> = records
        .iter()
        .filter_map(|r| r["worker"].as_u64())
        .collect();

    let dom = render_in_chromium(&page);
    assert_eq!(
        dom.matches("class=\"lane\"").count(),
        workers.len(),
        "one lane per worker"
    );
    assert_eq!(dom.matches("class=\"bar ").count(), 30, "one bar per task");
    assert_eq!(dom.matches("class=\"bar failed\"").count(), 10);
    assert!(dom.contains("<dd id=\"tasks\">30</dd>"));
    assert!(dom.contains("<dd id=\"failed\">10</dd>"));
    let mut counts = BTreeMap::new();
    for (kind, count) in [("panic", 5), ("guest-error", 3), ("trap", 2)] {
        let row = format!("data-kind=\"{kind}\"><td>{kind}</td><td class=\"count\">{count}</td>");
        counts.insert(kind, dom.contains(&row));
    }
    assert!(
        counts.values().all(|&found| found),
        "error table: {counts:?}"
    );

    // `wasmpool report` makes the same page from the records file.
    let again = dir.join("again.html");
    let status = wasmpool()
        .arg("report")
        .arg(&records_path)
        .arg("-o")
        .arg(&again)
        .status()
        .unwrap();
    assert!(status.success());
    let dom = render_in_chromium(&again);
    assert_eq!(dom.matches("class=\"bar ").count(), 30);
}

/// 5,000 tasks, more than the timeline draws: a slow one among tiny ones,
/// failures of one kind with two messages, an input that never ran.
#[test]
fn a_large_runs_report_keeps_what_explains_it_and_counts_every_input() {
    let dir = tempdir("report-large");
    let (inputs, page) = (dir.join("inputs.jsonl"), dir.join("report.html"));
    let mut lines = vec!["1"; 5000];
    lines[2500] = "32";
    lines[100] = "\"x\"";
    lines[200] = "\"x\"";
    lines[300] = "[1]";
    lines[400] = "{oops";
    std::fs::write(&inputs, lines.join("\n")).unwrap();
    let status = wasmpool()
        .arg("run")
        .arg(guest("fib"))
        .args(["-q", "-j", "2", "--output", "/dev/null", "--input-file"])
        .arg(&inputs)
        .arg("--report")
        .arg(&page)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "some inputs fail on purpose");

    let dom = render_in_chromium(&page);
    assert!(
        dom.contains("<dd id=\"tasks\">5000</dd>"),
        "every input counted"
    );
    assert!(dom.contains("<dd id=\"ran\">4999</dd>"));
    assert!(dom.contains("<dd id=\"never-ran\">1 (invalid-input: 1)</dd>"));
    // Sampled, yet every failure that ran and the slow task are drawn.
    assert!(dom.contains("4999 tasks ran: the timeline draws every failed one (3)"));
    assert_eq!(dom.matches("class=\"bar failed\"").count(), 3);
    assert!(
        dom.contains("task 2500: input 32,"),
        "the slowest task is drawn"
    );
    // A log scale: the tiny tasks spread over bins, the slow one apart.
    let filled = dom.matches("class=\"bin\" data-count=\"").count()
        - dom.matches("class=\"bin\" data-count=\"0\"").count();
    assert!(filled >= 3, "{filled} bins hold tasks");
    for name in ["p50", "p90", "p99", "max"] {
        assert!(dom.contains(&format!("<dd id=\"{name}\">")), "{name}");
    }
    // One kind, two messages, each with its count and its inputs.
    assert!(dom.contains(
        "data-kind=\"guest-error\"><td>guest-error</td><td class=\"count\">3</td>\
         <td colspan=\"2\">2 distinct messages</td>"
    ));
    assert!(dom.contains(
        "<td class=\"count\">2</td><td class=\"message\">invalid input: invalid type: string"
    ));
    assert!(dom.contains(
        "<td class=\"count\">1</td><td class=\"message\">invalid input: invalid type: sequence"
    ));
}

#[test]
fn a_file_that_is_not_records_is_refused() {
    let dir = tempdir("report-bad");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"index\": 0}\nnot json\n").unwrap();
    let output = wasmpool()
        .arg("report")
        .arg(&bad)
        .arg("-o")
        .arg(dir.join("out.html"))
        .output()
        .unwrap();
    crate::support::assert_refused(&output, "line 2 of");
}
