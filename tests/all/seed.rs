//! The seed's scenario: really_hard_task over [3, 5, 10, 15] on 2 workers.

use wasmpool::Pool;

use crate::support::{guest, wasmpool};

fn check_line(stdout: &str, parameter: i64, result: f64) {
    assert_eq!(
        stdout,
        format!("finished task crunching {parameter} with result {result:.2}\n")
    );
}

#[test]
fn the_seed_runs_through_the_library() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let task = pool.load(guest("really-hard-task")).unwrap();
    let parameters = [3i64, 5, 10, 15];
    let inputs = parameters.map(|n| n.to_string());
    let outputs: Vec<_> = pool.map(&task, inputs).map(Result::unwrap).collect();
    assert_eq!(outputs.len(), 4);
    for (output, parameter) in outputs.iter().zip(parameters) {
        let result: f64 = output.json().unwrap();
        assert!((0.0..1.0).contains(&result), "{result} is not in [0, 1)");
        check_line(&output.stdout().to_string_lossy(), parameter, result);
        assert!(output.worker() < 2);
    }
    // Both workers took part: two tasks at a time, not one.
    let workers: std::collections::HashSet<_> = outputs.iter().map(|o| o.worker()).collect();
    assert_eq!(workers.len(), 2);
}

#[test]
fn the_seed_runs_through_the_cli() {
    let output = wasmpool()
        .args(["run", "--workers", "2", "--inputs", "[3, 5, 10, 15]"])
        .arg(crate::support::example_dir("really-hard-task"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    for (index, (record, parameter)) in records.iter().zip([3i64, 5, 10, 15]).enumerate() {
        assert_eq!(record["index"], index);
        assert_eq!(record["input"], parameter);
        let result = record["ok"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&result));
        check_line(record["stdout"].as_str().unwrap(), parameter, result);
        assert!(record["duration_ms"].as_f64().unwrap() > 0.0);
        assert!(record["worker"].as_u64().unwrap() < 2);
    }
    assert!(stderr.contains("4 tasks: 4 ok, 0 failed"), "{stderr}");
}
