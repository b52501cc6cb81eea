//! The ProcessPoolExecutor baseline (`../shared/bench/ppe_baseline.py`),
//! run the way every benchmark here runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The baseline script, if the shared benchmarks are beside the
/// repository.
pub fn script() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/ppe_baseline.py");
    script.is_file().then_some(script)
}

/// Runs the baseline with `args` and returns the value of `key` from the
/// one line it prints.
fn value(args: &[&str], key: &str) -> Option<f64> {
    let output = Command::new("python3")
        .arg(script()?)
        .args(args)
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()?
        .split_whitespace()
        .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

/// Tasks per second of a run of the baseline.
pub fn rate(args: &[&str]) -> Option<f64> {
    value(args, "tasks_per_s")
}

/// Seconds a run of the baseline took.
pub fn seconds(args: &[&str]) -> Option<f64> {
    value(args, "seconds")
}
