//! Python tasks: a `.py` file (or a directory holding a Python package)
//! made into a component by componentize-py, cached by what went into it.
//! `wasmpool build FILE.py` and `wasmpool run FILE.py` call [`build`]; so
//! does the Python package's executor, for the runtime its functions run in.
//!
//! The component's entry module is generated here: it imports the whole
//! standard library at build time (only what is imported then is inside
//! the component), then the task's module, and exports the SDK's
//! `WitWorld`. The SDK (`wasmpool_task`) and the WIT contract travel inside
//! this library, so a task builds from anywhere.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The componentize-py release the SDK and the entry module are written
/// against.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The Python SDK, put on every task's path.
const SDK: &str = include_str!("../../guest-tasks/wasmpool-task/wasmpool_task.py");

/// The contract the component is built against.
const WIT: &str = include_str!("../../wit/task.wit");

/// The component's entry module; `{module}` is the task's module.
const ENTRY: &str = r#"# The entry module of a Python task component, made by `wasmpool build`.
import sys

if {module!r} in sys.stdlib_module_names:
    raise ImportError(
        "the task's module is named {module!r}, as a module of Python's standard "
        "library: rename it"
    )

# What is imported now, at build time, is all the component has: the whole
# standard library is, so that a task may import any of it inside its
# function too. Modules that cannot work in WASI fail here and are left out.
_LEFT_OUT = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test",
    "ensurepip", "venv", "lib2to3", "pydoc_data", "__hello__", "__phello__", "_pyrepl",
}


def _import_standard_library():
    import importlib
    import pkgutil

    for name in sorted(sys.stdlib_module_names - _LEFT_OUT):
        try:
            module = importlib.import_module(name)
        except BaseException:
            continue
        for found in pkgutil.walk_packages(
            getattr(module, "__path__", None) or [], name + ".", onerror=lambda _: None
        ):
            parts = set(found.name.split("."))
            if parts & _LEFT_OUT or parts & {"tests", "idle_test", "__main__"}:
                continue
            try:
                importlib.import_module(found.name)
            except BaseException:
                pass


_import_standard_library()

import wasmpool_task
import {module}

if wasmpool_task._task is None:
    raise RuntimeError(
        "{module} defines no task: decorate its function with @task "
        "(from wasmpool_task import task)"
    )

from wasmpool_task import WitWorld
"#;

/// Where and how a Python task is built.
#[derive(Debug, Default, Clone)]
pub struct PythonBuild {
    /// Directories of pure-Python packages to bundle (a virtual
    /// environment stands for its `site-packages`).
    pub paths: Vec<PathBuf>,
    /// Where built components are kept, by what went into them; `None`
    /// builds afresh in a directory of its own and keeps nothing.
    pub cache: Option<PathBuf>,
}

/// Why a Python task could not be built: one line saying what is wrong and
/// what to do (componentize-py's own errors went to stderr before it).
#[derive(Debug)]
pub struct PythonBuildError {
    message: String,
}

impl PythonBuildError {
    fn of(error: anyhow::Error) -> PythonBuildError {
        PythonBuildError {
            message: format!("{error:#}"),
        }
    }
}

impl fmt::Display for PythonBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PythonBuildError {}

/// Whether `path` is a Python task: a `.py` file, or a directory holding a
/// package (`__init__.py`) and no Cargo.toml.
pub fn is_python_task(path: &Path) -> bool {
    if path.is_dir() {
        path.join("__init__.py").is_file() && !path.join("Cargo.toml").is_file()
    } else {
        path.extension().is_some_and(|ext| ext == "py")
    }
}

/// Builds the Python task at `task` (a file, or a package directory) and
/// returns the component's path: from the cache when nothing that goes
/// into it changed.
pub fn build(task: &Path, options: &PythonBuild) -> Result<PathBuf, PythonBuildError> {
    let plan = Plan::new(task, options).map_err(PythonBuildError::of)?;
    if plan.keep && plan.component.is_file() {
        return Ok(plan.component);
    }
    plan.run(task).map_err(PythonBuildError::of)
}

/// The component [`build`] would return without building anything: the
/// cached one, if nothing that goes into it changed.
pub fn cached(task: &Path, options: &PythonBuild) -> Result<Option<PathBuf>, PythonBuildError> {
    let plan = Plan::new(task, options).map_err(PythonBuildError::of)?;
    Ok((plan.keep && plan.component.is_file()).then_some(plan.component))
}

/// What a build of one task takes and makes.
struct Plan {
    home: PathBuf,
    paths: Vec<PathBuf>,
    entry: String,
    key: String,
    dir: PathBuf,
    /// Whether the component is kept in the cache.
    keep: bool,
    component: PathBuf,
}

impl Plan {
    fn new(task: &Path, options: &PythonBuild) -> anyhow::Result<Plan> {
        let (module, home) = module_of(task)?;
        let paths = options
            .paths
            .iter()
            .map(|path| python_path(path))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let entry = ENTRY.replace("{module!r}", &format!("'{module}'"));
        let entry = entry.replace("{module}", &module);
        let key = cache_key(&entry, &home, &paths)?;
        let (dir, keep) = match &options.cache {
            Some(cache) => (cache.join("python"), true),
            None => (
                std::env::temp_dir().join(format!("wasmpool-python-{}", std::process::id())),
                false,
            ),
        };
        let component = dir.join(format!("{module}-{}.wasm", &key[..16]));
        Ok(Plan {
            home,
            paths,
            entry,
            key,
            dir,
            keep,
            component,
        })
    }

    /// Runs componentize-py and puts the component in its place.
    fn run(self, task: &Path) -> anyhow::Result<PathBuf> {
        let Plan {
            home,
            paths,
            entry,
            key,
            dir,
            component,
            ..
        } = self;
        let tool = Componentizer::find()?;
        let work = dir.join(format!("build-{}-{}", &key[..16], std::process::id()));
        std::fs::create_dir_all(work.join("wit"))
            .with_context(|| format!("cannot create {}", work.display()))?;
        std::fs::write(work.join("wit/task.wit"), WIT)?;
        std::fs::write(work.join("wasmpool_task.py"), SDK)?;
        std::fs::write(work.join("wasmpool_task_entry.py"), entry)?;
        eprintln!(
            "wasmpool: building {} with componentize-py {}",
            task.display(),
            tool.version
        );
        let built = work.join("task.wasm");
        let status = tool
            .command()
            .arg("-q")
            .arg("-d")
            .arg(work.join("wit"))
            .args(["-w", "batch-task", "componentize"])
            .arg("-p")
            .arg(&work)
            .arg("-p")
            .arg(&home)
            .args(
                paths
                    .iter()
                    .flat_map(|path| [OsString::from("-p"), path.into()]),
            )
            .arg("wasmpool_task_entry")
            .arg("-o")
            .arg(&built)
            .current_dir(&work)
            // Only the paths given are bundled, not those of an environment
            // that happens to be active.
            .env_remove("VIRTUAL_ENV")
            // Nothing written beside the task's files.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .status()
            .with_context(|| format!("cannot run {}", tool.describe()))?;
        let kept = if status.success() {
            std::fs::rename(&built, &component)
                .with_context(|| format!("cannot write {}", component.display()))
        } else {
            Err(anyhow::anyhow!(
                "componentize-py could not build {} (its errors are above)",
                task.display()
            ))
        };
        let _ = std::fs::remove_dir_all(&work);
        kept.map(|()| component)
    }
}

/// The module a task is imported as, and the directory it is imported
/// from.
fn module_of(task: &Path) -> anyhow::Result<(String, PathBuf)> {
    let task = task
        .canonicalize()
        .with_context(|| format!("cannot read {}", task.display()))?;
    let name = if task.is_dir() {
        task.file_name()
    } else {
        task.file_stem()
    };
    let name = name.and_then(|name| name.to_str()).unwrap_or_default();
    let identifier = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier || matches!(name, "wasmpool_task" | "wasmpool_task_entry" | "wit_world") {
        bail!(
            "{} cannot be imported as a Python module named `{name}`: rename it to a \
             Python identifier (letters, digits and `_`)",
            task.display()
        );
    }
    let home = task.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((name.to_string(), home))
}

/// A directory to bundle from: a virtual environment's `site-packages`, or
/// the directory itself.
fn python_path(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        bail!(
            "--python-path {}: no such directory (give a directory of Python packages, \
             or a virtual environment)",
            path.display()
        );
    }
    let lib = path.join("lib");
    if path.join("pyvenv.cfg").is_file() && lib.is_dir() {
        for entry in std::fs::read_dir(&lib)? {
            let site = entry?.path().join("site-packages");
            if site.is_dir() {
                return Ok(site);
            }
        }
    }
    Ok(path.to_path_buf())
}

/// What a build is cached by: the tool's pinned version, this wasmpool, the SDK,
/// the contract and entry module, every Python file of the task's
/// directory (its own packages included) by content, and the bundled
/// directories' files by name, size and time.
fn cache_key(entry: &str, home: &Path, paths: &[PathBuf]) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    for part in [env!("CARGO_PKG_VERSION"), COMPONENTIZE_PY, SDK, WIT, entry] {
        hash.update(part.len().to_le_bytes());
        hash.update(part);
    }
    let mut files = Vec::new();
    python_files(home, &mut files, true)?;
    files.sort();
    for file in &files {
        hash.update(file.as_os_str().as_encoded_bytes());
        hash.update(
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?,
        );
    }
    for path in paths {
        let mut files = Vec::new();
        python_files(path, &mut files, false)?;
        files.sort();
        for file in &files {
            let meta = std::fs::metadata(file)?;
            hash.update(file.as_os_str().as_encoded_bytes());
            hash.update(meta.len().to_le_bytes());
            if let Ok(modified) = meta.modified() {
                let since = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                hash.update(since.as_nanos().to_le_bytes());
            }
        }
    }
    let mut key = String::with_capacity(64);
    for byte in hash.finalize() {
        let _ = write!(key, "{byte:02x}");
    }
    Ok(key)
}

/// The `.py` files under `dir`: with `packages_only`, those directly in it
/// and in its package directories (with an `__init__.py`), so that a task
/// beside other files costs no walk of them.
fn python_files(dir: &Path, into: &mut Vec<PathBuf>, packages_only: bool) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            let package = path.join("__init__.py").is_file();
            let hidden = path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'));
            if !hidden && (package || !packages_only) {
                python_files(&path, into, false)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "py") {
            into.push(path);
        }
    }
    Ok(())
}

/// componentize-py, as found on this machine.
struct Componentizer {
    /// The program, and the arguments before componentize-py's own.
    program: Vec<OsString>,
    version: String,
}

impl Componentizer {
    /// `componentize-py` on the PATH, else the Python module of that name.
    fn find() -> anyhow::Result<Componentizer> {
        const SCRIPT: &str = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; \
             sys.exit(script())";
        let candidates: [Vec<OsString>; 2] = [
            vec!["componentize-py".into()],
            vec!["python3".into(), "-c".into(), SCRIPT.into()],
        ];
        for program in candidates {
            let tool = Componentizer {
                program,
                version: String::new(),
            };
            let Ok(output) = tool.command().arg("--version").output() else {
                continue;
            };
            if !output.status.success() {
                continue;
            }
            let version = String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_string();
            if version != COMPONENTIZE_PY {
                bail!(
                    "{} is version {version}; wasmpool builds Python tasks with \
                     componentize-py {COMPONENTIZE_PY}: pip install componentize-py=={COMPONENTIZE_PY}",
                    tool.describe()
                );
            }
            return Ok(Componentizer { version, ..tool });
        }
        bail!(
            "componentize-py is not installed, and wasmpool needs it to build Python tasks: \
             pip install componentize-py=={COMPONENTIZE_PY}"
        )
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program[0]);
        command.args(&self.program[1..]);
        command
    }

    fn describe(&self) -> String {
        match self.program.len() {
            1 => "componentize-py".to_string(),
            _ => "the componentize_py Python module".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_task_is_a_py_file_or_a_package_directory() {
        assert!(is_python_task(Path::new("task.py")));
        assert!(!is_python_task(Path::new("task.wasm")));
        let dir = std::env::temp_dir().join(format!("wasmpool-pkg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_python_task(&dir));
        std::fs::write(dir.join("__init__.py"), "").unwrap();
        assert!(is_python_task(&dir));
        std::fs::write(dir.join("Cargo.toml"), "").unwrap();
        assert!(!is_python_task(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_module_name_must_be_a_python_identifier() {
        let dir = std::env::temp_dir().join(format!("wasmpool-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, ok) in [
            ("my_task.py", true),
            ("my-task.py", false),
            ("wit_world.py", false),
        ] {
            std::fs::write(dir.join(file), "").unwrap();
            assert_eq!(module_of(&dir.join(file)).is_ok(), ok, "{file}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
