//! `wasmpool new NAME`: a ready task project in a new directory, which
//! `wasmpool run NAME` builds and runs from anywhere.
//!
//! The project carries the guest SDK this wasmpool was built with, as a
//! path dependency in `NAME/wasmpool-guest/`, so that it builds without
//! this repository and without a registry release of the SDK.

use std::path::Path;

use anyhow::{Context, bail};

/// The SDK's files, as a new project gets them: (path in the project,
/// contents). The SDK crate is self-contained for this.
const SDK: [(&str, &str); 3] = [
    (
        "wasmpool-guest/Cargo.toml",
        include_str!("../../../guest-tasks/wasmpool-guest/Cargo.toml"),
    ),
    (
        "wasmpool-guest/src/lib.rs",
        include_str!("../../../guest-tasks/wasmpool-guest/src/lib.rs"),
    ),
    (
        "wasmpool-guest/wit/task.wit",
        include_str!("../../../guest-tasks/wasmpool-guest/wit/task.wit"),
    ),
];

/// The example task of a new project.
const EXAMPLE: &str = r#"//! A wasmpool task: one function from an input to an output.
//!
//! `wasmpool run . --inputs '[1, 2, 3]'` builds this crate and runs the
//! function once per input, each call in a fresh sandbox: the input
//! arrives as JSON and is decoded into the parameter's type, the return
//! value goes back as JSON, and what the function prints is captured in
//! its record. A panic, a trap or a time-out fails that input alone.

fn task(n: u64) -> u64 {
    println!("squaring {n}");
    n * n
}

wasmpool_guest::task!(task);
"#;

/// Makes the project `dir` and says how to run it.
pub(crate) fn new_project(dir: &Path) -> anyhow::Result<()> {
    let name = crate_name(dir)?;
    if dir.exists() {
        bail!(
            "{} already exists: give `wasmpool new` a path that does not exist yet",
            dir.display()
        );
    }
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A task is a library compiled to a WebAssembly component.
crate-type = ["cdylib"]

[dependencies]
wasmpool-guest = {{ path = "wasmpool-guest" }}

[profile.release]
# Keep function names: a failed task's wasm backtrace shows them.
strip = "debuginfo"

# A project of its own, even when made inside another Cargo workspace.
[workspace]
"#
    );
    let files = [
        ("Cargo.toml", manifest.as_str()),
        ("src/lib.rs", EXAMPLE),
        (".gitignore", "/target\n"),
    ];
    for (path, contents) in files.into_iter().chain(SDK) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "wasmpool: created the task project {} (the task is in src/lib.rs); run it with:\n  \
         wasmpool run {} --inputs '[1, 2, 3]'",
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// The crate name of a project made at `dir`: its last component, which
/// Cargo must accept as a package name.
fn crate_name(dir: &Path) -> anyhow::Result<String> {
    let Some(name) = dir.file_name().and_then(|name| name.to_str()) else {
        bail!(
            "{} has no name for a project: give a path such as `my-task`",
            dir.display()
        );
    };
    let valid = name.starts_with(|first: char| first.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid || name == "wasmpool-guest" || name == "test" {
        bail!(
            "`{name}` cannot name a Rust crate: use letters, digits, `-` and `_`, \
             starting with a letter (e.g. `my-task`)"
        );
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_named_as_cargo_allows() {
        assert_eq!(crate_name(Path::new("/tmp/x/my-task")).unwrap(), "my-task");
        assert_eq!(crate_name(Path::new("word_count2")).unwrap(), "word_count2");
        for bad in ["2fast", "my task", "é", "wasmpool-guest", "/"] {
            assert!(crate_name(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
