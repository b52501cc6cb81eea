//! What the tests share: guest components built once per test run by the
//! real `wasmpool build`, the binary under test, and common checks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

/// What `build` makes of `name`, built once per test run and one build at
/// a time (builds of a kind share a target directory).
fn built_once(
    cache: &OnceLock<Mutex<HashMap<String, PathBuf>>>,
    name: &str,
    build: impl FnOnce() -> PathBuf,
) -> PathBuf {
    let mut built = cache.get_or_init(Default::default).lock().unwrap();
    built.entry(name.to_string()).or_insert_with(build).clone()
}

/// The component built from `guest-tasks/examples/NAME`.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    built_once(&BUILT, name, || build_guest(name))
}

fn build_guest(name: &str) -> PathBuf {
    built_by_wasmpool(&example_dir(name))
}

/// What `wasmpool build SOURCE` made, by the path it printed.
fn built_by_wasmpool(source: &Path) -> PathBuf {
    let output = wasmpool()
        .arg("build")
        .arg(source)
        .output()
        .expect("run wasmpool build");
    assert!(
        output.status.success(),
        "wasmpool build {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(path.is_file(), "wasmpool build printed {}", path.display());
    path
}

/// The directory of the Python examples.
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tasks/python")
}

/// The component built from `guest-tasks/python/NAME.py` by the real
/// `wasmpool build` (componentize-py), once per test run.
pub fn python_task(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    built_once(&BUILT, name, || {
        built_by_wasmpool(&python_dir().join(format!("{name}.py")))
    })
}

/// fib(n), the reference for the fib guest.
pub fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// The faults of trap-zoo with the kind each must get; the first seven end
/// on their own, the last two need a time-out and a memory cap.
pub const FAULTS: [(&str, wasmpool::ErrorKind); 9] = [
    ("panic", wasmpool::ErrorKind::Panic),
    ("unreachable", wasmpool::ErrorKind::Trap),
    ("oob", wasmpool::ErrorKind::Trap),
    ("abort", wasmpool::ErrorKind::Trap),
    ("stack-overflow", wasmpool::ErrorKind::StackOverflow),
    ("exit", wasmpool::ErrorKind::Exit),
    ("error", wasmpool::ErrorKind::GuestError),
    ("loop", wasmpool::ErrorKind::Timeout),
    ("memory-bomb", wasmpool::ErrorKind::MemoryLimit),
];

/// A fresh directory under cargo's scratch space for tests, left in place
/// for a look after a failure.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A refused run: exit 2, `expected` on stderr, no panic or backtrace, and
/// nothing on stdout.
pub fn assert_refused(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// The JSON a successful run printed on stdout.
pub fn json_stdout(output: &Output) -> serde_json::Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `wasmpool run TASK ARGS...`, waited for.
pub fn run(task: &Path, args: &[&str]) -> Output {
    wasmpool()
        .arg("run")
        .arg(task)
        .args(args)
        .output()
        .expect("run wasmpool")
}

/// The JSON records of a run's stdout.
pub fn records(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `guest-tasks/c/NAME.c` compiled to a WASI preview 1 command module by
/// Zig's C compiler (`pip install ziglang`), once per test run.
pub fn c_program(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    built_once(&BUILT, name, || compile_c(name))
}

fn compile_c(name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-tasks/c")
        .join(format!("{name}.c"));
    let path = tempdir("c-programs").join(format!("{name}.wasm"));
    let output = Command::new("python3")
        .args(["-m", "ziglang", "cc", "--target=wasm32-wasi", "-O2", "-s"])
        .arg(&source)
        .arg("-o")
        .arg(&path)
        .output()
        .expect("run python3 -m ziglang (pip install ziglang)");
    assert!(
        output.status.success(),
        "zig cc {name}.c failed (pip install ziglang):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}
