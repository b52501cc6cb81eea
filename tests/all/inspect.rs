//! `wasmpool inspect`: what a file is, what it needs, whether it is a task.

use std::path::Path;

use serde_json::Value;

use crate::support::{assert_refused, guest, json_stdout, tempdir, wasmpool};

fn inspect(file: &Path) -> Value {
    let output = wasmpool()
        .arg("inspect")
        .arg(file)
        .arg("--json")
        .output()
        .unwrap();
    json_stdout(&output)
}

fn has(list: &Value, wanted: &str) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .any(|item| item.as_str().is_some_and(|item| item.starts_with(wanted)))
}

#[test]
fn tells_tasks_commands_and_modules_apart() {
    let task = inspect(&guest("fib"));
    assert_eq!(task["kind"], "task component");
    assert_eq!(task["fits_task_world"], true);
    assert!(task["runs_as"].as_str().unwrap().starts_with("a task"));
    assert!(has(&task["imports"], "wasmpool:task/host@0.1.0"));
    assert!(has(&task["imports"], "wasi:cli/stdout@"));
    assert_eq!(task["exports"], serde_json::json!(["run-batch", "run"]));
    let memory = &task["memories"][0];
    assert!(memory["minimum"].as_u64().unwrap() >= 65536, "{task}");

    let command = inspect(&guest("word-count"));
    assert_eq!(command["kind"], "WASI command component");
    assert_eq!(command["fits_task_world"], false);
    assert!(
        command["why_not"]
            .as_str()
            .unwrap()
            .contains("does not export `run`")
    );
    assert!(has(&command["exports"], "wasi:cli/run@"));
    assert!(
        command["runs_as"]
            .as_str()
            .unwrap()
            .starts_with("a WASI command")
    );

    let other = inspect(&guest("shapes"));
    assert_eq!(other["kind"], "component");
    assert!(other["runs_as"].as_str().unwrap().contains("--invoke"));
    assert!(has(&other["functions"], "describe"));
    assert!(has(
        &other["functions"],
        "example:shapes/geometry@0.1.0#area"
    ));

    let missing = inspect(&guest("missing-import"));
    assert_eq!(missing["kind"], "task component");
    assert_eq!(missing["fits_task_world"], false);
    assert!(has(&missing["imports"], "example:elsewhere/clock"));

    let dir = tempdir("inspect");
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let module = inspect(&core);
    assert_eq!(module["kind"], "core module");
    assert_eq!(module["fits_task_world"], false);

    let text = dir.join("text.wasm");
    std::fs::write(&text, "hello").unwrap();
    let output = wasmpool().arg("inspect").arg(&text).output().unwrap();
    assert_refused(&output, "not a WebAssembly file");
}

/// `inspect` says what a file may reach for under `wasmpool run`, and
/// where a path outside the grants goes.
#[test]
fn says_what_a_task_can_see() {
    let probe = inspect(&guest("sandbox-probe"));
    assert_eq!(probe["opens_files"], true, "{probe}");
    assert_eq!(probe["uses_sockets"], true, "{probe}");
    let fib = inspect(&guest("fib"));
    assert_eq!(
        (fib["opens_files"].clone(), fib["uses_sockets"].clone()),
        (false.into(), false.into())
    );

    let output = wasmpool()
        .arg("inspect")
        .arg(guest("sandbox-probe"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("what it sees under wasmpool run:"), "{text}");
    assert!(
        text.contains("only the directories given with --dir"),
        "{text}"
    );
    assert!(
        text.contains("\"No such file or directory\" for an absolute one"),
        "{text}"
    );
}
