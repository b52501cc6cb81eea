//! `wasmpool build`: compile a guest crate to a task component with cargo.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const TARGET: &str = "wasm32-wasip2";

/// Builds the crate in `dir` for wasm32-wasip2, in release mode, and
/// returns the path of the component (a task from a cdylib, or a WASI
/// command from a bin). Cargo's own progress and
/// the compiler's errors go to stderr as usual.
pub(crate) fn build_guest(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is not a Rust crate (no Cargo.toml): give a guest crate's directory or a .wasm file",
            dir.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    ensure_target(dir)?;
    let mut child = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo: is the Rust toolchain installed?")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut component = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        if let Some(path) = artifact(&line, &manifest) {
            component = Some(path);
        }
    }
    let status = child.wait().context("cannot wait for cargo")?;
    if !status.success() {
        bail!(
            "cargo could not build {} (the compiler's errors are above)",
            dir.display()
        );
    }
    component.with_context(|| {
        format!(
            "{} built no component: a task crate needs `[lib] crate-type = [\"cdylib\"]` in its Cargo.toml",
            dir.display()
        )
    })
}

/// The .wasm file of a `compiler-artifact` message for the crate at
/// `manifest`, if this line is one.
fn artifact(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let own = message["manifest_path"]
        .as_str()
        .is_some_and(|path| Path::new(path) == manifest);
    // A task is a cdylib; a WASI command program is a bin.
    let component = message["target"]["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib" || kind == "bin"));
    if !(own && component) {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|name| name.as_str())
        .find(|name| name.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Installs the wasm32-wasip2 standard library through rustup when it is
/// missing, as rustup does for a `rust-toolchain.toml` that lists it.
fn ensure_target(dir: &Path) -> anyhow::Result<()> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(dir)
        .output()
        .context("cannot run rustc: is the Rust toolchain installed?")?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    eprintln!("note: installing the {TARGET} target with rustup");
    let installed = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        bail!("the {TARGET} target is not installed: run `rustup target add {TARGET}`");
    }
    Ok(())
}
