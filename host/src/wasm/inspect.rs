//! What a WebAssembly file is and what it needs: the answer to
//! `wasmpool inspect`, from the bytes alone plus a check against the task
//! world.

use wasmparser::{Parser, Payload};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Engine, Module};

use crate::data::error::{LoadError, LoadErrorKind};

/// Bytes of one wasm page.
const PAGE: u64 = 64 << 10;

/// What kind of WebAssembly a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WasmKind {
    /// A component exporting the task world's `run`.
    TaskComponent,
    /// A component exporting `wasi:cli/run`: a WASI command program.
    CommandComponent,
    /// Any other component.
    Component,
    /// A core module exporting `_start`: a WASI (preview 1) command program.
    CommandModule,
    /// Any other core module.
    Module,
}

impl WasmKind {
    /// How `wasmpool run` runs a file of this kind.
    pub fn runs_as(self) -> &'static str {
        match self {
            WasmKind::TaskComponent => "a task: each input is the argument of `run`",
            WasmKind::CommandComponent | WasmKind::CommandModule => {
                "a WASI command: each input on stdin (or in its arguments with \
                 --args-template), its stdout as the output"
            }
            WasmKind::Component => "typed calls with --invoke NAME, one of its functions",
            WasmKind::Module => "nothing: a core module needs `_start` to run as a command",
        }
    }

    /// A short description, as `wasmpool inspect` prints it.
    pub fn describe(self) -> &'static str {
        match self {
            WasmKind::TaskComponent => "task component",
            WasmKind::CommandComponent => "WASI command component",
            WasmKind::Component => "component",
            WasmKind::CommandModule => "WASI command module (core module with _start)",
            WasmKind::Module => "core module",
        }
    }
}

/// A linear memory a module declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDecl {
    /// Bytes at instantiation.
    pub minimum: u64,
    /// Bytes it may grow to, if capped.
    pub maximum: Option<u64>,
}

/// What [`Pool::inspect`](crate::Pool::inspect) found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspection {
    /// What the file is.
    pub kind: WasmKind,
    /// What it imports: interface names for a component, `module::name` for
    /// a core module.
    pub imports: Vec<String>,
    /// What it exports.
    pub exports: Vec<String>,
    /// The functions a component exports, as `--invoke` names them
    /// (`name`, or `interface#name`); empty for a core module.
    pub functions: Vec<String>,
    /// The linear memories its core modules declare.
    pub memories: Vec<MemoryDecl>,
    /// `Ok` if this pool can run it as a task of the `wasmpool:task` world,
    /// else why not.
    pub task: Result<(), LoadError>,
}

/// Whether `component` exports the task world's `run` function.
pub(crate) fn exports_run(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, item)| name == "run" && matches!(item.ty, ComponentItem::ComponentFunc(_)))
}

/// Whether `component` exports `wasi:cli/run`: a WASI command program.
pub(crate) fn exports_cli_run(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:cli/run@"))
}

/// The functions `component` exports, those of its exported interfaces as
/// `interface#name` (the names `--invoke` takes).
pub(crate) fn exported_functions(engine: &Engine, component: &Component) -> Vec<String> {
    let mut functions = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(_) => functions.push(name.to_string()),
            ComponentItem::ComponentInstance(instance) => functions.extend(
                instance
                    .exports(engine)
                    .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(func, _)| format!("{name}#{func}")),
            ),
            _ => {}
        }
    }
    functions
}

/// What the core module in `bytes` is; `task` says why it is not a task.
pub(crate) fn module(
    engine: &Engine,
    bytes: &[u8],
    task: Result<(), LoadError>,
) -> Result<Inspection, LoadError> {
    let module = Module::new(engine, bytes).map_err(|error| {
        LoadError::new(
            LoadErrorKind::Invalid,
            format!("not a valid module: {error:#}"),
        )
    })?;
    let exports: Vec<String> = module
        .exports()
        .map(|export| export.name().to_string())
        .collect();
    let kind = if exports.iter().any(|name| name == "_start") {
        WasmKind::CommandModule
    } else {
        WasmKind::Module
    };
    Ok(Inspection {
        kind,
        imports: module
            .imports()
            .map(|import| format!("{}::{}", import.module(), import.name()))
            .collect(),
        exports,
        functions: Vec::new(),
        memories: memories(bytes)?,
        task,
    })
}

/// What the compiled `component` (from `bytes`) is; `task` is the outcome
/// of linking it as a task.
pub(crate) fn component(
    engine: &Engine,
    bytes: &[u8],
    component: &Component,
    task: Result<(), LoadError>,
) -> Result<Inspection, LoadError> {
    let shape = component.component_type();
    let exports: Vec<String> = shape
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let kind = if exports_run(engine, component) {
        WasmKind::TaskComponent
    } else if exports_cli_run(engine, component) {
        WasmKind::CommandComponent
    } else {
        WasmKind::Component
    };
    Ok(Inspection {
        kind,
        imports: shape
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect(),
        exports,
        functions: exported_functions(engine, component),
        memories: memories(bytes)?,
        task,
    })
}

/// The memories of every core module in `bytes`, nested ones included.
fn memories(bytes: &[u8]) -> Result<Vec<MemoryDecl>, LoadError> {
    let mut memories = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not valid WebAssembly: {error}"),
            )
        })?;
        if let Payload::MemorySection(section) = payload {
            for memory in section {
                let memory = memory.map_err(|error| {
                    LoadError::new(LoadErrorKind::Invalid, format!("a bad memory: {error}"))
                })?;
                let page = memory.page_size_log2.map_or(PAGE, |log2| 1 << log2);
                memories.push(MemoryDecl {
                    minimum: memory.initial.saturating_mul(page),
                    maximum: memory.maximum.map(|pages| pages.saturating_mul(page)),
                });
            }
        }
    }
    Ok(memories)
}
