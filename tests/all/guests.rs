//! Guest components for the tests, built once per test run by the real
//! `wasmpool build` command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The `wasmpool` binary under test.
pub fn wasmpool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmpool"))
}

/// The directory of an example guest crate.
pub fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-tasks/examples")
        .join(name)
}

/// The component built from `guest-tasks/examples/NAME`.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // One build at a time: they share the guest workspace's target dir.
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let output = wasmpool()
        .arg("build")
        .arg(example_dir(name))
        .output()
        .expect("run wasmpool build");
    assert!(
        output.status.success(),
        "wasmpool build {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(path.is_file(), "wasmpool build printed {}", path.display());
    built.insert(name.to_string(), path.clone());
    path
}

/// fib(n), the reference for the fib guest.
pub fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}
