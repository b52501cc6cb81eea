//! The real `wasmpool` binary: records, order, exit codes and errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{assert_refused, fib, guest, records, run, stderr, tempdir, wasmpool};

#[test]
fn records_come_in_input_order_and_failures_exit_1() {
    let zoo = guest("trap-zoo");
    let output = run(
        &zoo,
        &[
            "--workers",
            "2",
            "--inputs",
            r#"["ok", "panic", "ok", "exit", "error"]"#,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records = records(&output.stdout);
    let kinds: Vec<Option<&str>> = records
        .iter()
        .map(|record| record["error"]["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [None, Some("panic"), None, Some("exit"), Some("guest-error")]
    );
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record["index"], index);
        assert!(record["worker"].as_u64().is_some());
        assert!(record["duration_ms"].is_number());
    }
    assert_eq!(records[0]["ok"], "ok");
    assert_eq!(
        records[1]["error"]["message"],
        "the task panicked on purpose"
    );
    assert!(
        records[1]["stderr"]
            .as_str()
            .unwrap()
            .contains("panicked at")
    );
    assert_eq!(records[3]["error"]["exit_code"], 1);
    assert!(records.iter().all(|record| record["attempts"] == 1));
    assert!(stderr(&output).contains("5 tasks: 2 ok, 3 failed"));
}

#[test]
fn records_count_the_attempts_of_retried_tasks() {
    let output = run(
        &guest("trap-zoo"),
        &["--retries", "2", "--inputs", r#"["unreachable", "ok"]"#],
    );
    assert_eq!(output.status.code(), Some(1));
    let records = records(&output.stdout);
    assert_eq!(records[0]["error"]["kind"], "trap");
    assert_eq!(records[0]["attempts"], 3);
    assert_eq!(records[1]["attempts"], 1);
}

#[test]
fn unordered_writes_every_record_once() {
    let fib = guest("fib");
    let inputs: Vec<u32> = std::iter::once(32)
        .chain(std::iter::repeat_n(1, 20))
        .collect();
    let output = run(
        &fib,
        &[
            "--unordered",
            "-j",
            "2",
            "--inputs",
            &serde_json::to_string(&inputs).unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    let mut indices: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_ne!(indices[0], 0, "fib(32) finished before 20 fib(1)s");
    indices.sort();
    assert_eq!(indices, (0..21).collect::<Vec<_>>());
}

#[test]
fn input_file_and_output_file() {
    let dir = tempdir("cli");
    let input = dir.join("inputs.jsonl");
    std::fs::write(&input, "10\n\n20\nnot json\n30\n").unwrap();
    let out = dir.join("results.jsonl");
    let output = run(
        &guest("fib"),
        &[
            "--input-file",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    let records = records(&std::fs::read(&out).unwrap());
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["ok"], 55);
    assert_eq!(records[1]["ok"], 6765);
    assert_eq!(records[2]["error"]["kind"], "invalid-input");
    assert_eq!(records[2]["line"], 4);
    assert_eq!(records[2]["input"], "not json");
    assert_eq!(records[3]["ok"], 832040);
    assert_eq!(records[3]["index"], 3);
    assert_eq!(records[3]["line"], 5);
}

/// An input goes to the task, and into its record, as its line spells it:
/// a number too big for a double is not rounded on the way.
#[test]
fn inputs_keep_their_json_text() {
    let dir = tempdir("cli-json-text");
    let input = dir.join("inputs.jsonl");
    std::fs::write(&input, "  10  \n123456789012345678901234567890\n").unwrap();
    let output = run(&guest("fib"), &["--input-file", input.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(r#"{"index":0,"line":1,"input":10,"ok":55,"#));
    assert!(
        lines[1].contains(r#""input":123456789012345678901234567890,"#),
        "{}",
        lines[1]
    );
    let records = records(text.as_bytes());
    assert_eq!(records[1]["error"]["kind"], "guest-error");

    // The same for the elements of --inputs.
    let output = run(
        &guest("fib"),
        &["--inputs", "[ 10 , 123456789012345678901234567890]"],
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(r#""input":123456789012345678901234567890,"#),
        "{text}"
    );
}

/// Found by the `cli_inputs` fuzz target: a number beyond a double's range
/// is valid JSON text and runs, and its record keeps it as written; the
/// records file must still resume.
#[test]
fn a_run_whose_inputs_are_beyond_a_double_resumes() {
    let dir = tempdir("cli-resume-huge-number");
    let input = dir.join("inputs.jsonl");
    std::fs::write(&input, "1212.1055E602\n10\n").unwrap();
    let out = dir.join("results.jsonl");
    let args = [
        "--input-file",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let first = run(&guest("fib"), &args);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains(r#""input":1212.1055E602,"#), "{written}");

    let resumed = run(&guest("fib"), &[&args[..], &["--resume"]].concat());
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
}

/// A records file holds each input as its record's `input`: resuming it
/// with other inputs (another file, an edited one) is refused, naming the
/// first index that differs, and the file is left as it was; the same
/// inputs, an invalid line and more inputs among them, resume.
#[test]
fn resuming_with_other_inputs_is_refused_naming_the_first_that_differs() {
    let dir = tempdir("cli-resume-other-inputs");
    let out = dir.join("results.jsonl");
    let run_on = |name: &str, lines: &str| {
        let input = dir.join(name);
        std::fs::write(&input, lines).unwrap();
        let args = ["-q", "--input-file", input.to_str().unwrap()];
        run(
            &guest("fib"),
            &[&args[..], &["-o", out.to_str().unwrap(), "--resume"]].concat(),
        )
    };
    let first = run_on("first.jsonl", "1\n2\n{oops\n3\n");
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let written = std::fs::read_to_string(&out).unwrap();

    let other = run_on("other.jsonl", "1\n2\n{oops\n4\n5\n");
    assert_refused(
        &other,
        "input 3 (line 4) is not the input recorded for index 3",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
    let edited = run_on("edited.jsonl", "1\n2\n{oops!\n3\n");
    assert_refused(
        &edited,
        "input 2 (line 3) is not the input recorded for index 2",
    );

    let more = run_on("more.jsonl", "1\n2\n{oops\n3\n4\n");
    assert_eq!(more.status.code(), Some(0), "{}", stderr(&more));
    let records = records(std::fs::read(&out).unwrap().as_slice());
    let indices: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    assert_eq!(records[4]["ok"], fib(4));
}

/// A flaky night: two inputs fail for want of a file, one times out.
/// `--retry-failed=guest-error` runs the first two again, then a bare
/// `--retry-failed` the rest; the records file keeps one line per input.
#[test]
fn retrying_failures_replaces_their_records_and_keeps_one_per_input() {
    let dir = tempdir("cli-retry-failed");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (inputs, out) = (dir.join("inputs.jsonl"), dir.join("results.jsonl"));
    std::fs::write(
        &inputs,
        [
            r#"{"op": "read", "path": "/data/a"}"#,
            r#"{"op": "random"}"#,
            r#"{"op": "read", "path": "/data/b"}"#,
            r#"{"op": "await", "path": "/data/late"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let grant = format!("{}::/data", data.display());
    let run_with = |extra: &[&str]| {
        let args = [
            "-j",
            "2",
            "--timeout",
            "1s",
            "--dir",
            &grant,
            "--input-file",
            inputs.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        run(&guest("sandbox-probe"), &[&args[..], extra].concat())
    };
    let by_index = || {
        let mut records = records(&std::fs::read(&out).unwrap());
        records.sort_by_key(|record| record["index"].as_u64());
        let indices: Vec<u64> = records
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indices, [0, 1, 2, 3], "one record per input");
        records
    };
    let night = run_with(&[]);
    assert_eq!(night.status.code(), Some(1), "{}", stderr(&night));
    let kinds: Vec<Option<String>> = (by_index().iter())
        .map(|r| r["error"]["kind"].as_str().map(str::to_string))
        .collect();
    let expected = [
        Some("guest-error"),
        None,
        Some("guest-error"),
        Some("timeout"),
    ];
    assert_eq!(kinds, expected.map(|kind| kind.map(str::to_string)));
    let random = by_index()[1]["ok"].clone();

    std::fs::write(data.join("a"), "A").unwrap();
    std::fs::write(data.join("b"), "B").unwrap();
    let morning = run_with(&["--retry-failed=guest-error"]);
    assert_eq!(morning.status.code(), Some(0), "{}", stderr(&morning));
    assert!(
        stderr(&morning).contains("retrying 2 failed inputs"),
        "{}",
        stderr(&morning)
    );
    assert!(
        stderr(&morning).contains("2 tasks: 2 ok"),
        "{}",
        stderr(&morning)
    );
    let records = by_index();
    assert_eq!(
        (&records[0]["ok"], &records[2]["ok"]),
        (&Value::from("A"), &Value::from("B"))
    );
    assert_eq!(records[1]["ok"], random, "a success is kept, not run again");
    assert_eq!(
        records[3]["error"]["kind"], "timeout",
        "not a kind asked for"
    );

    std::fs::write(data.join("late"), "").unwrap();
    let again = run_with(&["--retry-failed"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("1 task: 1 ok"),
        "{}",
        stderr(&again)
    );
    assert!(by_index().iter().all(|record| record["error"].is_null()));

    let unknown = run_with(&["--retry-failed=timeout,oops"]);
    assert_refused(&unknown, "unknown error kind `oops`");
    let missing = run(
        &guest("sandbox-probe"),
        &[
            "--inputs",
            "[1]",
            "-o",
            dir.join("none.jsonl").to_str().unwrap(),
            "--retry-failed",
        ],
    );
    assert_refused(&missing, "--retry-failed: cannot read the records");
}

/// `wasmpool run ... | head -1`: once the reader has gone, the run ends
/// quietly with 0, as Unix filters do, not with a write error.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let dir = tempdir("cli-closed-pipe");
    let input = dir.join("inputs.jsonl");
    // Far more records than a pipe holds: the run must write after the
    // reader has gone.
    let lines: String = (0..20_000).map(|n| format!("{}\n", n % 20)).collect();
    std::fs::write(&input, lines).unwrap();
    let child = started_run(
        wasmpool()
            .args(["run", "-q", "--input-file"])
            .arg(&input)
            .arg(guest("fib")),
    );
    // The reader (and the pipe) is gone now.
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

/// mimalloc asks for transparent huge pages for the binary's heap; a run
/// turns them off for itself (faulting them in stalled runs of tiny
/// tasks for milliseconds at a time).
#[cfg(target_os = "linux")]
#[test]
fn a_run_keeps_its_heap_on_small_pages() {
    // The first task's record says the run is under way; the second task
    // keeps it there until it is killed.
    let mut child = started_run(
        wasmpool()
            .args(["run", "-q", "-j", "1", "--inputs", r#"["ok", "loop"]"#])
            .arg(guest("trap-zoo")),
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(thp.trim(), "0");
}

/// Starts `run` and reads its first record, input 0's, off its stdout,
/// then closes that end.
fn started_run(run: &mut std::process::Command) -> std::process::Child {
    let mut child = run
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(r#"{"index":0,"#), "{first}");
    child
}

#[test]
fn bad_usage_and_bad_tasks_get_one_line_errors_and_exit_2() {
    let fib = guest("fib");
    assert_refused(
        &run(&fib, &["--inputs", "{\"a\": 1}"]),
        "--inputs must be a JSON array",
    );
    assert_refused(
        &run(&fib, &["--inputs", "[1,"]),
        "--inputs is not valid JSON",
    );
    assert_refused(
        &run(&fib, &["--workers", "0", "--inputs", "[1]"]),
        "--workers",
    );
    assert_refused(&run(&fib, &[]), "--inputs");
    assert_refused(
        &run(&fib, &["--input-file", "/nonexistent.jsonl"]),
        "cannot open the input file /nonexistent.jsonl",
    );
    assert_refused(
        &run(Path::new("/nonexistent.wasm"), &["--inputs", "[1]"]),
        "cannot load /nonexistent.wasm",
    );
    assert_refused(
        &run(&guest("shapes"), &["--inputs", "[1]"]),
        "does not export `run`",
    );
    let not_wasm = tempdir("cli").join("not.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    assert_refused(
        &run(&not_wasm, &["--inputs", "[1]"]),
        "not a WebAssembly file",
    );
}

#[test]
fn build_fails_cleanly_on_a_directory_without_a_crate() {
    let output = wasmpool()
        .arg("build")
        .arg(tempdir("cli"))
        .output()
        .unwrap();
    assert_refused(&output, "is not a Rust crate (no Cargo.toml)");
}

/// What a person sees of `BEFORE wasmpool run really-hard-task ARGS` in a
/// shell on a terminal (`script` gives the command a pseudo-terminal), once
/// it has succeeded.
fn on_a_terminal(before: &str, args: &str) -> String {
    let command = format!(
        "{before} '{}' run '{}' {args}",
        env!("CARGO_BIN_EXE_wasmpool"),
        guest("really-hard-task").display(),
    );
    let on_terminal = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("run script(1)");
    let shown = String::from_utf8_lossy(&on_terminal.stdout).into_owned();
    assert!(on_terminal.status.success(), "{shown}");
    shown
}

#[test]
fn on_a_terminal_each_tasks_output_and_progress_show_as_it_runs() {
    let out = tempdir("cli-tty").join("records.jsonl");
    let shown = on_a_terminal("", &format!("--inputs '[7]' --output '{}'", out.display()));
    assert!(
        shown.contains("finished task crunching 7 with result"),
        "{shown}"
    );
    assert!(shown.contains("1 task: 1 ok"), "{shown}");
    // The task reports its progress every half second; the bar shows it.
    assert!(shown.contains("1 running (50%)"), "{shown}");

    // Not on a terminal: the output is in the record only, and no bar.
    let piped = run(&guest("really-hard-task"), &["--inputs", "[7]"]);
    assert!(!stderr(&piped).contains("finished task crunching"));
    assert!(!stderr(&piped).contains(" done, "));
    assert!(String::from_utf8_lossy(&piped.stdout).contains("finished task crunching 7"));
}

#[test]
fn on_a_terminal_inputs_from_a_pipe_show_a_bar_without_a_total() {
    let out = tempdir("cli-tty-pipe").join("records.jsonl");
    let shown = on_a_terminal(
        "echo 7 |",
        &format!("--input-file - --output '{}'", out.display()),
    );
    // A pipe's inputs cannot be counted up front: done so far, failed,
    // running and the rate, with no total and no time left.
    assert!(
        shown.contains(" done, 0 failed, 1 running (50%)"),
        "{shown}"
    );
    assert!(
        !shown.contains("/1 done") && !shown.contains("ETA"),
        "{shown}"
    );
    assert!(shown.contains("1 task: 1 ok"), "{shown}");
}

#[test]
fn on_a_terminal_a_files_inputs_are_counted_and_the_bar_can_show_alone() {
    let dir = tempdir("cli-tty-file");
    let inputs = dir.join("inputs.jsonl");
    // Blank lines are no inputs: two in all.
    std::fs::write(&inputs, "7\n\n3\n").unwrap();
    let shown = on_a_terminal(
        "",
        &format!(
            "-j 2 --input-file '{}' --output '{}' --no-echo",
            inputs.display(),
            dir.join("records.jsonl").display()
        ),
    );
    assert!(
        shown.contains("/2 done, 0 failed, 2 running (50% 50%)"),
        "{shown}"
    );
    assert!(shown.contains("ETA"), "{shown}");
    // --no-echo: the bar alone, the tasks' output in the records only.
    assert!(!shown.contains("finished task crunching"), "{shown}");
    let records = std::fs::read_to_string(dir.join("records.jsonl")).unwrap();
    assert!(records.contains("finished task crunching 3"));
    assert!(shown.contains("2 tasks: 2 ok"), "{shown}");
}

#[test]
fn records_carry_each_tasks_metrics() {
    let fib = guest("fib");
    let run_fib = || {
        let output = run(
            &fib,
            &["-j", "2", "--fuel", "100000000", "--inputs", "[15, 24, 1]"],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        records(&output.stdout)
    };
    let first = run_fib();
    for record in &first {
        let number = |key: &str| {
            record[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: {record}"))
        };
        assert!(number("start_ms") <= number("end_ms"), "{record}");
        let parts = number("instantiate_ms") + number("run_ms");
        assert!((parts - number("duration_ms")).abs() < 0.01, "{record}");
        assert!(number("peak_memory") >= 65536.0, "{record}");
        assert!(number("fuel_consumed") > 0.0, "{record}");
    }
    // fib(24) does more work than fib(15); fuel counts it exactly.
    assert!(first[1]["fuel_consumed"].as_u64() > first[0]["fuel_consumed"].as_u64());
    let fuel = |records: &[Value]| -> Vec<Value> {
        records
            .iter()
            .map(|record| record["fuel_consumed"].clone())
            .collect()
    };
    assert_eq!(fuel(&first), fuel(&run_fib()), "the same fuel every run");
    // Without --fuel there is no fuel to report.
    let unmetered = run(&fib, &["--inputs", "[3]"]);
    assert!(records(&unmetered.stdout)[0].get("fuel_consumed").is_none());
}

#[test]
fn the_summary_counts_each_kind_and_can_be_written_as_json() {
    let path = tempdir("cli-summary").join("summary.json");
    let output = run(
        &guest("trap-zoo"),
        &[
            "--inputs",
            r#"["ok", "panic", "panic", "error", "ok"]"#,
            "--summary-json",
            path.to_str().unwrap(),
            "--dir",
            "/tmp::/scratch",
            "--env",
            "LANG=C",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let line = stderr(&output);
    assert!(line.contains("5 tasks: 2 ok, 3 failed"), "{line}");
    assert!(line.contains("failed: guest-error: 1, panic: 2"), "{line}");
    assert!(line.contains("tasks/s"), "{line}");
    let summary: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(summary["tasks"], 5);
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["failed"], 3);
    assert_eq!(summary["failed_by_kind"]["panic"], 2);
    assert_eq!(summary["failed_by_kind"]["guest-error"], 1);
    assert!(summary["tasks_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["interrupted"], false);
    // What the tasks could see: for a task that failed to open a file.
    assert_eq!(
        summary["grants"],
        serde_json::json!({
            "dirs": [{"host": "/tmp", "guest": "/scratch", "writable": false}],
            "env": ["LANG"],
        })
    );
}

#[test]
fn help_walks_a_newcomer_through_every_subcommand_and_option() {
    let help = |args: &[&str]| {
        let output = wasmpool().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    let top = help(&["--help"]);
    for subcommand in ["build", "run", "compile", "inspect", "report"] {
        assert!(top.contains(&format!("  {subcommand}")), "{top}");
    }
    assert!(top.contains("Exit codes: 0"), "{top}");
    let run = help(&["run", "--help"]);
    for part in [
        "Examples:",
        "--lines",
        "--invoke",
        "--args-template",
        "--mpi",
        "Limits:",
        "Sandbox:",
        "Programs:",
        "Cluster:",
    ] {
        assert!(run.contains(part), "{part} missing from run --help:\n{run}");
    }
}

#[test]
fn no_interrupt_refuses_a_timeout_and_runs_as_usual() {
    let fib_task = guest("fib");
    let refused = run(
        &fib_task,
        &["--no-interrupt", "--timeout", "1s", "--inputs", "[20]"],
    );
    assert_refused(&refused, "--no-interrupt");
    let output = run(&fib_task, &["--no-interrupt", "--inputs", "[20, 25]"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let oks: Vec<_> = records(&output.stdout)
        .iter()
        .map(|r| r["ok"].clone())
        .collect();
    assert_eq!(oks, [fib(20), fib(25)]);
}

/// The sandbox probe on 2 workers in input order, its first input waiting
/// for a flag file that only its last writes, with 1,000 quick ones between
/// them (more than the map keeps in flight): the run's output, and its
/// summary as JSON. Its report goes to `dir/report.html`.
fn waiting_for_the_last(dir: &Path, args: &[&str]) -> (std::process::Output, Value) {
    let mut lines = vec![r#"{"op": "await", "path": "/data/flag"}"#.to_string()];
    lines.extend((0..1000).map(|_| r#"{"op": "random"}"#.to_string()));
    lines.push(r#"{"op": "write", "path": "/data/flag", "text": "go"}"#.to_string());
    let inputs = dir.join("inputs.jsonl");
    std::fs::write(&inputs, lines.join("\n")).unwrap();
    let (summary, report) = (dir.join("summary.json"), dir.join("report.html"));
    let data = format!("{}::/data", dir.display());
    let output = run(
        &guest("sandbox-probe"),
        &[
            &[
                "--workers",
                "2",
                "--dir-rw",
                &data,
                "--input-file",
                inputs.to_str().unwrap(),
                "--summary-json",
                summary.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ],
            args,
        ]
        .concat(),
    );
    let summary = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    (output, summary)
}

#[test]
fn in_input_order_the_workers_run_on_past_a_slow_task() {
    // The first task can finish only once the last has started: without
    // running ahead of it (past the 256 tasks a map keeps in flight), the
    // last never starts and the first times out.
    let dir = tempdir("order-run-ahead");
    let (output, summary) = waiting_for_the_last(&dir, &["--timeout", "30s"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records[0]["ok"], "appeared", "{}", records[0]);
    let indices: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, (0..1002).collect::<Vec<_>>());
    assert_eq!(summary["order_buffer_filled"], 0);
    assert!(!stderr(&output).contains("order buffer"));
}

#[test]
fn a_full_order_buffer_makes_the_workers_wait_and_the_run_says_so() {
    let dir = tempdir("order-buffer-full");
    let (output, summary) =
        waiting_for_the_last(&dir, &["--timeout", "1s", "--order-buffer", "1KiB"]);
    // The last task starts only once the first has timed out.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records.len(), 1002);
    assert_eq!(records[0]["error"]["kind"], "timeout", "{}", records[0]);
    assert_eq!(records[1001]["ok"], "written");
    assert!(
        summary["order_buffer_filled"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert!(
        stderr(&output).contains("filled the order buffer"),
        "{}",
        stderr(&output)
    );
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(page.contains("filled the order buffer"));
}

#[test]
fn an_order_buffer_with_unordered_output_is_refused() {
    let output = run(
        &guest("trivial"),
        &["--unordered", "--order-buffer", "1MiB", "--inputs", "[1]"],
    );
    assert_refused(&output, "--order-buffer");
}
