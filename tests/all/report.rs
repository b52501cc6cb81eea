//! The HTML report of a real run, rendered by headless Chromium and read
//! the way a person would: lanes, bars, the error table, the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{guest, tempdir, wasmpool};

/// The page as Chromium sees it once loaded.
fn render_in_chromium(page: &Path) -> String {
    let profile = tempdir("report-chromium-profile");
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
