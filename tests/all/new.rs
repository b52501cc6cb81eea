//! `wasmpool new`: a task project that builds and runs outside this
//! repository, and the SDK's own copy of the WIT contract.

use std::path::Path;
use std::process::Command;

use crate::support::{assert_refused, records, wasmpool};

/// The repository's root.
fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn a_new_project_builds_and_runs_outside_the_repository() {
    let parent = std::env::temp_dir().join(format!("wasmpool-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(&parent).unwrap();
    let repository = repository().canonicalize().unwrap();
    assert!(!parent.canonicalize().unwrap().starts_with(&repository));
    let project = parent.join("my-task");

    let made = wasmpool().arg("new").arg(&project).output().unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        ".gitignore",
        "wasmpool-guest/wit/task.wit",
    ] {
        assert!(project.join(file).is_file(), "{file}");
    }
    assert!(String::from_utf8_lossy(&made.stderr).contains("wasmpool run"));

    // Built and run by its name, from the directory that holds it.
    let output = wasmpool()
        .current_dir(&parent)
        .args(["run", "my-task", "--inputs", "[1, 3]", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records = records(&output.stdout);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["ok"], 1);
    assert_eq!(records[1]["ok"], 9);
    assert_eq!(records[1]["stdout"], "squaring 3\n");

    // Nothing is made over what exists.
    let again = wasmpool().arg("new").arg(&project).output().unwrap();
    assert_refused(&again, "already exists");
    let bad = wasmpool()
        .arg("new")
        .arg(parent.join("2 fast"))
        .output()
        .unwrap();
    assert_refused(&bad, "cannot name a Rust crate");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn the_sdk_carries_the_repositorys_wit_contract() {
    let contract = std::fs::read(repository().join("wit/task.wit")).unwrap();
    let sdk = repository().join("guest-tasks/wasmpool-guest");
    let copy = std::fs::read(sdk.join("wit/task.wit")).unwrap();
    assert!(
        contract == copy,
        "guest-tasks/wasmpool-guest/wit/task.wit differs from wit/task.wit: copy it over"
    );
    // And the crate, as Cargo packages it, holds its copy.
    let listed = Command::new(env!("CARGO"))
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "--manifest-path",
        ])
        .arg(sdk.join("Cargo.toml"))
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(files.lines().any(|file| file == "wit/task.wit"), "{files}");
    assert!(files.lines().any(|file| file == "src/lib.rs"), "{files}");
}
