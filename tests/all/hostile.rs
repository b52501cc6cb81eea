//! Hostile and bad input to the real binary: each gets a one-line error and
//! a documented exit code, never a panic or a backtrace.

use crate::support::{assert_refused, guest, run, tempdir};

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
