//! Fast start: the compiled-code cache and `wasmpool compile`.

use std::path::Path;

use crate::support::{assert_refused, guest, json_stdout, tempdir, wasmpool};

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The cache's compiled-code entries with their modification times.
fn compiled_entries(cache: &Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    files_in(cache)
        .into_iter()
        .filter(|file| {
            file.extension()
                .is_some_and(|extension| extension == "cwasm")
        })
        .map(|file| {
            let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
            (file, modified)
        })
        .collect()
}

fn run_fib(cache: &[&str]) -> serde_json::Value {
    run_fib_with_cache_home(cache, &tempdir("xdg-cache-unused"))
}

/// Runs fib(20) with `$XDG_CACHE_HOME` at `home`.
fn run_fib_with_cache_home(cache: &[&str], home: &Path) -> serde_json::Value {
    let output = wasmpool()
        .env("XDG_CACHE_HOME", home)
        .arg("run")
        .arg(guest("fib"))
        .args(cache)
        .args(["--inputs", "[20]"])
        .output()
        .unwrap();
    json_stdout(&output)
}

#[test]
fn the_first_run_fills_the_cache_and_the_next_uses_it() {
    let cache = tempdir("compile-cache");
    let flag = ["--cache-dir", cache.to_str().unwrap()];
    assert_eq!(run_fib(&flag)["ok"], 6765);
    let cached = compiled_entries(&cache);
    assert!(!cached.is_empty(), "the first run cached its compiled code");
    assert_eq!(run_fib(&flag)["ok"], 6765);
    // A hit only reads the entry; a miss would have written it again.
    assert_eq!(compiled_entries(&cache), cached);

    // By default the cache lives under $XDG_CACHE_HOME/wasmpool.
    let home = tempdir("xdg-cache-home");
    assert_eq!(run_fib_with_cache_home(&[], &home)["ok"], 6765);
    assert!(!compiled_entries(&home.join("wasmpool")).is_empty());
    // --no-cache writes nothing there.
    let untouched = tempdir("xdg-cache-off");
    assert_eq!(
        run_fib_with_cache_home(&["--no-cache"], &untouched)["ok"],
        6765
    );
    assert!(files_in(&untouched).is_empty());
}

#[test]
fn a_precompiled_task_runs_and_a_mismatched_one_is_refused() {
    let dir = tempdir("precompiled");
    let cwasm = dir.join("fib.cwasm");
    let status = wasmpool()
        .arg("compile")
        .arg(guest("fib"))
        .arg("-o")
        .arg(&cwasm)
        .status()
        .unwrap();
    assert!(status.success());
    let output = wasmpool()
        .arg("run")
        .arg(&cwasm)
        .args(["--no-cache", "--inputs", "[20, 21]"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("\"ok\":6765") && text.contains("\"ok\":10946"),
        "{text}"
    );

    // Compiled without fuel metering: a run with --fuel cannot use it.
    let output = wasmpool()
        .arg("run")
        .arg(&cwasm)
        .args(["--fuel", "1000", "--inputs", "[20]"])
        .output()
        .unwrap();
    assert_refused(&output, "compile it again with `wasmpool compile`");
}
