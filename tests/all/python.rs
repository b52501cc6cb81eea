//! Tasks written in Python with the `wasmpool_task` SDK, built by the real
//! `wasmpool build` (componentize-py) and run by the real binary and the
//! library: every failure typed, the sandbox, seeds, reuse, caching.

use std::collections::HashSet;

use serde_json::{Value, json};
use wasmpool::Pool;

use crate::support::{
    assert_refused, python_dir, python_task, records, run, stderr, tempdir, wasmpool,
};

/// Each fault of trap_zoo.py with the kind and message it must get.
const FAULTS: [(&str, &str, &str); 8] = [
    ("raise", "guest-error", "ValueError: bad value 42"),
    ("exit-3", "exit", "the task exited with code 3"),
    ("loop", "timeout", "ran past its time-out"),
    ("memory", "memory-limit", "past its limit"),
    (
        "recursion",
        "guest-error",
        "RecursionError: maximum recursion depth exceeded",
    ),
    ("read-file", "guest-error", "FileNotFoundError"),
    (
        "import-numpy",
        "guest-error",
        "ModuleNotFoundError: No module named 'numpy'",
    ),
    (
        "bad-result",
        "guest-error",
        "TypeError: Object of type set is not JSON serializable",
    ),
];

#[test]
fn every_failure_of_a_python_task_is_typed_and_the_rest_of_the_batch_is_exact() {
    let zoo = python_task("trap_zoo");
    // 520 inputs: a fault every 20, good numbers around them.
    let inputs: Vec<Value> = (0..520)
        .map(|i| match i % 20 {
            7 => json!(FAULTS[(i / 20) % FAULTS.len()].0),
            _ => json!(i),
        })
        .collect();
    let output = run(
        &zoo,
        &[
            "-q",
            "--workers",
            "2",
            "--timeout",
            "2s",
            "--max-memory",
            "64MiB",
            "--inputs",
            &serde_json::to_string(&inputs).unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let records = records(&output.stdout);
    assert_eq!(records.len(), inputs.len());
    let mut seen = HashSet::new();
    for (record, input) in records.iter().zip(&inputs) {
        assert_eq!(&record["input"], input);
        match input {
            Value::Number(n) => assert_eq!(record["ok"], n.as_i64().unwrap() * 2, "{record}"),
            Value::String(order) => {
                let (_, kind, message) = FAULTS.iter().find(|(o, ..)| o == order).unwrap();
                let error = &record["error"];
                assert_eq!(error["kind"], *kind, "{record}");
                assert!(
                    error["message"].as_str().unwrap().contains(message),
                    "{record}"
                );
                if *kind == "guest-error" {
                    // The traceback starts in the task's own code (or, for
                    // a result JSON cannot carry, in the json module).
                    let traceback = error["traceback"].as_str().unwrap();
                    assert!(traceback.starts_with("Traceback"), "{traceback}");
                    let own = if order == "bad-result" {
                        "json"
                    } else {
                        "trap_zoo.py"
                    };
                    assert!(traceback.contains(own), "{traceback}");
                    assert!(!traceback.contains("wasmpool_task.py"), "{traceback}");
                }
                if *kind == "exit" {
                    assert_eq!(error["exit_code"], 3);
                }
                seen.insert(order.clone());
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(seen.len(), FAULTS.len());
}

#[test]
fn a_python_task_sees_only_what_it_is_granted() {
    let zoo = python_task("trap_zoo");
    let data = tempdir("python-grants");
    std::fs::write(data.join("granted.txt"), "yes").unwrap();
    let grant = format!("{}::/data", data.display());
    let output = run(
        &zoo,
        &[
            "-q",
            "--dir",
            &grant,
            "--env",
            "GREETING=hello",
            "--inputs",
            r#"["read-granted", "environment", "read-file", "import-late"]"#,
        ],
    );
    let granted = records(&output.stdout);
    assert_eq!(granted[0]["ok"], json!(["granted.txt"]));
    assert_eq!(granted[1]["ok"], json!({"GREETING": "hello"}));
    assert_eq!(granted[2]["error"]["kind"], "guest-error");
    // Modules of the standard library imported inside the function, a
    // submodule among them.
    assert_eq!(granted[3]["ok"], json!(["1/2", ["a", "b"], "text/plain"]));
    // Nothing granted: no directory, no variable.
    let bare = run(
        &zoo,
        &["-q", "--inputs", r#"["environment", "read-granted"]"#],
    );
    let bare = records(&bare.stdout);
    assert_eq!(bare[0]["ok"], json!({}));
    let message = bare[1]["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("FileNotFoundError"), "{message}");
}

#[test]
fn the_seeds_scenario_in_python() {
    let output = wasmpool()
        .args(["run", "--workers", "2", "--inputs", "[3, 5, 10, 15]"])
        .arg(python_dir().join("really_hard_task.py"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&output.stdout);
    let mut draws = HashSet::new();
    for (record, parameter) in records.iter().zip([3, 5, 10, 15]) {
        let result = record["ok"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&result));
        assert_eq!(
            record["stdout"],
            format!("finished task crunching {parameter} with result {result:.2}\n")
        );
        draws.insert(result.to_bits());
    }
    // Each task draws anew: the interpreter's random state is not the
    // one it was built with.
    assert_eq!(draws.len(), 4);
    assert!(stderr(&output).contains("4 tasks: 4 ok, 0 failed"));
}

/// The `random` draws of `runs` tasks of trap_zoo.py under `args`.
fn draws(args: &[&str]) -> Vec<f64> {
    let inputs = serde_json::to_string(&vec!["random"; 24]).unwrap();
    let mut all = vec!["-q", "--inputs", &inputs];
    all.extend(args);
    let output = run(&python_task("trap_zoo"), &all);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    records(&output.stdout)
        .iter()
        .map(|record| record["ok"].as_f64().unwrap())
        .collect()
}

#[test]
fn a_seed_repeats_python_draws_across_workers_and_reuse() {
    let one = draws(&["--seed", "7", "--workers", "1"]);
    assert_eq!(draws(&["--seed", "7", "--workers", "2"]), one);
    assert_eq!(draws(&["--seed", "7", "--reuse-instances", "100"]), one);
    assert_ne!(draws(&["--seed", "8"]), one);
    let unseeded: HashSet<u64> = draws(&[]).iter().map(|draw| draw.to_bits()).collect();
    assert_eq!(unseeded.len(), 24);
    // Without a seed, a reused instance seeds `random` at its first task
    // only and goes on drawing: eight instances of three tasks, none
    // starting from the state the interpreter was built with.
    let reused = draws(&["--reuse-instances", "3", "--workers", "2"]);
    let reused: HashSet<u64> = reused.iter().map(|draw| draw.to_bits()).collect();
    assert_eq!(reused.len(), 24);
}

#[test]
fn reused_python_instances_take_many_inputs_in_one_run_batch_call() {
    let pool = Pool::builder()
        .workers(2)
        .reuse_instances(1000)
        .build()
        .unwrap();
    let task = pool.load(python_task("trivial")).unwrap();
    let inputs: Vec<String> = (0..2000).map(|n| n.to_string()).collect();
    let outputs: Vec<i64> = pool
        .map(&task, &inputs)
        .chunk_size(100)
        .map(|result| result.unwrap().json().unwrap())
        .collect();
    assert_eq!(outputs, (0..2000).map(|n| n * 2 + 1).collect::<Vec<_>>());
    // Every job of 100 went to run-batch (one instance serves up to 1000).
    assert_eq!(pool.stats().batched, 2000, "{:?}", pool.stats());
}

#[test]
fn a_package_is_bundled_from_the_python_path_and_arrays_spread_over_parameters() {
    let vendor = python_dir().join("vendor");
    let output = wasmpool()
        .arg("run")
        .arg(python_dir().join("word_stats.py"))
        .arg("--python-path")
        .arg(&vendor)
        .args([
            "-q",
            "--inputs",
            r#"[["The cat, the hat.", 1], "one string"]"#,
        ])
        .output()
        .unwrap();
    let records = records(&output.stdout);
    assert_eq!(records[0]["ok"], json!([["the", 2]]));
    let message = records[1]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("give each input as a JSON array"),
        "{message}"
    );
    // Without the path, the package is not there: the build says so.
    let missing = wasmpool()
        .arg("build")
        .arg(python_dir().join("word_stats.py"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("textstats"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn an_unchanged_python_task_is_not_built_again() {
    let built = python_task("trivial");
    // No componentize-py (no PATH at all): the cached build is all it takes.
    let again = wasmpool()
        .arg("build")
        .arg(python_dir().join("trivial.py"))
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        built.to_str().unwrap()
    );
    assert!(!stderr(&again).contains("building"));
}

#[test]
fn without_componentize_py_the_build_says_how_to_get_it() {
    let cache = tempdir("python-no-tool");
    let output = wasmpool()
        .arg("run")
        .arg(python_dir().join("trivial.py"))
        .args(["--inputs", "[1]"])
        .env("PATH", "")
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    assert_refused(&output, "pip install componentize-py==0.25.1");
    // The test command installs that same version.
    let script = include_str!("../../scripts/test");
    assert!(script.contains("componentize_py=0.25.1"));
}

#[test]
fn a_python_file_that_is_not_a_module_name_is_refused() {
    let dir = tempdir("python-names");
    let file = dir.join("my-task.py");
    std::fs::write(&file, "").unwrap();
    let output = wasmpool().arg("build").arg(&file).output().unwrap();
    assert_refused(&output, "rename it to a Python identifier");
}
