//! Hostile and bad input to the real binary: each gets a one-line error and
//! a documented exit code, never a panic or a backtrace.

use crate::support::{assert_refused, guest, records, run, stderr, tempdir, wasmpool};

#[test]
fn files_that_are_not_tasks() {
    let dir = tempdir("hostile-files");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let inputs = ["--inputs", "[1]"];
    assert_refused(
        &run(&write("text.wasm", b"hello"), &inputs),
        "not a WebAssembly file",
    );
    assert_refused(
        &run(&write("core.wasm", b"\0asm\x01\0\0\0"), &inputs),
        "a core module without `_start`: neither a WASI command program nor a task",
    );
    let component = std::fs::read(guest("fib")).unwrap();
    let truncated = write("truncated.wasm", &component[..component.len() / 3]);
    assert_refused(&run(&truncated, &inputs), "not a valid component");
    assert_refused(&run(&guest("shapes"), &inputs), "does not export `run`");
    assert_refused(
        &run(&guest("missing-import"), &inputs),
        "component imports instance `example:elsewhere/clock`",
    );
    assert_refused(&run(&dir.join("absent.wasm"), &inputs), "No such file");
}

#[test]
fn a_guest_crate_that_does_not_compile_shows_the_compilers_error() {
    let dir = tempdir("hostile-broken-crate");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn f() -> u32 { \"not a number\" }\n",
    )
    .unwrap();
    let output = run(&dir, &["--inputs", "[1]"]);
    assert_refused(&output, "cargo could not build");
    assert!(String::from_utf8_lossy(&output.stderr).contains("mismatched types"));
}

#[test]
fn empty_inputs_run_nothing_and_say_so() {
    let fib = guest("fib");
    let output = run(&fib, &["--inputs", "[]"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no inputs: nothing to run"));
    let empty = tempdir("hostile-empty").join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    let output = run(&fib, &["--input-file", empty.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no inputs"));
}

#[test]
fn impossible_flag_values() {
    let fib = guest("fib");
    let with = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["--inputs", "[1]"]);
        run(&fib, &args)
    };
    assert_refused(&with(&["--workers", "0"]), "--workers");
    assert_refused(&with(&["--timeout", "-1"]), "expected a positive duration");
    assert_refused(&with(&["--timeout", "0s"]), "expected a positive duration");
    assert_refused(&with(&["--timeout", "5 fortnights"]), "unknown unit");
    assert_refused(&with(&["--max-memory", "lots"]), "expected a size");
    assert_refused(&with(&["--fuel", "0"]), "--fuel");
    assert_refused(&with(&["--env", "NOVALUE"]), "expected KEY=VALUE");
    assert_refused(&with(&["--dir", "/nonexistent-dir"]), "no such directory");
    assert_refused(&with(&["--resume"]), "--output");
    // A directory opens as a file, then fails every read: it ran for ever,
    // writing a record of that failure per "line".
    let dir = tempdir("hostile-input-dir");
    assert_refused(
        &run(&fib, &["--input-file", dir.to_str().unwrap()]),
        "is a directory: give a file",
    );
}

/// Runs `command` (its output to `/dev/null`), asserts it exits with
/// `code`, and returns its peak resident memory in bytes.
///
/// A process's peak counts the memory of the one that spawned it up to its
/// `exec` (the kernel carries the old address space's high-water mark
/// over), and this test binary, running many tests at once, is large: so a
/// small Python process forks the command and reports what `wait4` says.
fn peak_memory(command: &std::process::Command, code: i32) -> usize {
    const MEASURE: &str = "\
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
";
    let mut measured = std::process::Command::new("python3");
    measured
        .arg("-c")
        .arg(MEASURE)
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(std::process::Stdio::null());
    // What `command` set of its environment and directory, the fork inherits.
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => measured.env(key, value),
            None => measured.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        measured.current_dir(dir);
    }
    let output = measured.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (exit, peak) = stdout.trim().split_once(' ').unwrap();
    assert_eq!(exit.parse::<i32>().unwrap(), code);
    peak.parse().unwrap()
}

/// `guest-tasks/examples/attacker` tries, input by input, every way a task
/// could hurt the host or its neighbours rather than itself, between honest
/// inputs: each attack ends typed (or harmless), every honest result is
/// exact, and the host's memory stays within its caps.
#[test]
fn an_attacking_guest_hurts_only_itself() {
    let dir = tempdir("hostile-attacker");
    let attacks = [
        ("huge-result", Some("resource-limit")),
        ("huge-error", Some("guest-error")),
        ("huge-panic", Some("panic")),
        ("huge-traceback", Some("guest-error")),
        ("progress-flood", None),
        ("output-flood", None),
        ("forge-results", None),
        ("leak-handles", Some("trap")),
        ("poll-many", Some("timeout")),
        ("sleep", Some("timeout")),
        ("spin", Some("timeout")),
    ];
    let mut lines = String::new();
    for (n, (attack, _)) in attacks.iter().enumerate() {
        lines.push_str(&format!("\"good-{n}\"\n\"{attack}\"\n"));
    }
    lines.push_str("\"good-99\"\n");
    let input = dir.join("inputs.jsonl");
    std::fs::write(&input, lines).unwrap();
    let out = dir.join("records.jsonl");
    let max_memory: usize = 160 << 20;
    let mut command = wasmpool();
    command
        .args([
            "run",
            "--workers",
            "2",
            // Long enough that the attacks which must end by themselves
            // do so in a debug build on a busy machine (taking 96 MiB
            // out of a task there takes about 1.6 s).
            "--timeout",
            "6s",
            "--max-memory",
            "160MiB",
            "-q",
        ])
        .arg(guest("attacker"))
        .arg("--input-file")
        .arg(&input)
        .arg("-o")
        .arg(&out);
    let peak = peak_memory(&command, 1);
    // Each worker's task memory, and one value it handed back (read only
    // within the 64 MiB of --max-result), beside the host's own 64 MiB.
    let bound = (64 << 20) + 2 * (max_memory + (64 << 20));
    assert!(peak < bound, "peak RSS {peak} bytes, bound {bound}");

    let records = records(&std::fs::read(&out).unwrap());
    assert_eq!(records.len(), 2 * attacks.len() + 1);
    for (n, (attack, kind)) in attacks.iter().enumerate() {
        assert_eq!(records[2 * n]["ok"], 2 * n as u64, "{}", records[2 * n]);
        let record = &records[2 * n + 1];
        assert_eq!(
            record["error"]["kind"].as_str(),
            *kind,
            "{attack}: {record}"
        );
    }
    assert_eq!(records[2 * attacks.len()]["ok"], 198);

    let of =
        |attack: &str| &records[2 * attacks.iter().position(|(a, _)| *a == attack).unwrap() + 1];
    let message = |attack: &str| of(attack)["error"]["message"].as_str().unwrap().to_string();
    assert!(message("huge-result").contains("over the limit of 67108864 bytes"));
    for attack in ["huge-error", "huge-panic"] {
        let text = message(attack);
        assert!(text.len() < 65 << 10, "{attack}: {} bytes", text.len());
        assert!(text.ends_with("more bytes cut]"), "{attack}");
    }
    let traceback = of("huge-traceback")["error"]["traceback"].as_str().unwrap();
    assert!(traceback.len() < 65 << 10 && traceback.ends_with("more bytes cut]"));
    assert_eq!(of("progress-flood")["ok"], "flooded");
    assert_eq!(of("output-flood")["stdout_truncated"], true);
    assert_eq!(of("output-flood")["stderr_truncated"], true);
    // Outside a batch the host interface has no other input to give or
    // take: the forged outcomes are ignored, the task's own value stands.
    assert_eq!(of("forge-results")["ok"], "own, stole 0");
    // Handles the guest never drops stop at the store's limit, not at the
    // host's memory.
    assert!(message("leak-handles").contains("store handle limit exceeded"));
}

/// An `--invoke` result costs the host no more to read than `--max-result`
/// allows: values cheap for the guest to make and costly to read (4,096
/// lists aliasing one 64 KiB buffer; one list whose every element is a
/// whole value on the host, though its JSON would be under the cap) end as
/// `resource-limit` before the host allocates them, and the honest calls
/// beside them are exact.
#[test]
fn an_invoke_result_costs_the_host_no_more_to_read_than_max_result() {
    let dir = tempdir("hostile-invoke");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-tasks/components/aliased-lists.wat");
    let component = dir.join("aliased-lists.wasm");
    std::fs::write(&component, wat::parse_file(source).unwrap()).unwrap();
    let out = dir.join("records.jsonl");
    let mut command = wasmpool();
    command
        .args(["run", "--invoke", "lists", "--max-result", "1MiB", "-q"])
        .arg(&component)
        .args(["--inputs", "[[0], [1], [0], [2], [0]]", "-o"])
        .arg(&out);
    let peak = peak_memory(&command, 1);
    // Unbounded, the aliased lists alone would take gigabytes.
    let bound = (64 << 20) + 8 * (1 << 20);
    assert!(peak < bound, "peak RSS {peak} bytes, bound {bound}");

    let records = records(&std::fs::read(&out).unwrap());
    assert_eq!(records.len(), 5);
    for honest in [0, 2, 4] {
        assert_eq!(
            records[honest]["ok"],
            serde_json::json!([[1, 2, 3], [1, 2, 3]])
        );
    }
    for costly in [1, 3] {
        let error = &records[costly]["error"];
        assert_eq!(error["kind"], "resource-limit", "{}", records[costly]);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("over the limit of 1048576 bytes (max_result)"),
            "{error}"
        );
    }
}

/// However small `--max-result`, the host reads a whole write to stdout
/// (the 1 MiB a write may carry): a flood of output is truncated as ever,
/// while an error of 24 MiB is refused unread as `resource-limit`.
#[test]
fn a_small_max_result_still_takes_whole_writes_and_refuses_a_huge_error() {
    let output = run(
        &guest("attacker"),
        &[
            "--inputs",
            r#"["output-flood", "huge-error", "good-1"]"#,
            "--max-result",
            "1KiB",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records[0]["ok"], "flooded");
    assert_eq!(records[0]["stdout_truncated"], true);
    assert_eq!(records[1]["error"]["kind"], "resource-limit");
    assert!(
        records[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1048576 bytes (max_result)")
    );
    assert_eq!(records[2]["ok"], 2);
}

/// With `--reuse-instances`, one instance takes many inputs in one
/// `run-batch` call. An input that blocks in a host call or spins past its
/// deadline ends as a timeout; the instance, stopped mid-batch, never gets
/// to finish that input late, and the inputs after it run exact.
#[test]
fn an_input_past_its_deadline_in_a_batch_ends_alone() {
    let inputs =
        r#"["good-1", "sleep", "good-2", "good-3", "spin", "good-4", "poll-many", "good-5"]"#;
    let output = run(
        &guest("attacker"),
        &[
            "--workers",
            "1",
            "--reuse-instances",
            "100",
            "--timeout",
            "1s",
            "--inputs",
            inputs,
        ],
    );
    assert_eq!(output.status.code(), Some(1), "some tasks failed");
    let records = records(&output.stdout);
    let stated: Vec<String> = serde_json::from_str(inputs).unwrap();
    assert_eq!(
        records.len(),
        stated.len(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (record, input) in records.iter().zip(&stated) {
        assert_eq!(record["input"], input.as_str());
        match input.strip_prefix("good-") {
            Some(n) => assert_eq!(record["ok"], 2 * n.parse::<u64>().unwrap(), "{record}"),
            None => assert_eq!(record["error"]["kind"], "timeout", "{record}"),
        }
    }
}
