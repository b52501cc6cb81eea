//! Loading a file as a [`Program`]: compiled once for the pool's engine,
//! checked for what it is (a task, a command program, a function to
//! invoke) and pre-linked against the host, so that a run only
//! instantiates it. Also what a file is (`inspect`) and compiling ahead of
//! time.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, InstancePre, Linker, Type};
use wasmtime::{Engine, Module};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::data::error::{BuildError, LoadError, LoadErrorKind};
use crate::data::load_options::LoadOptions;
use crate::wasm::code_cache::CodeCache;
use crate::wasm::engine::{self, EngineConfig, Ticker};
use crate::wasm::inspect::{self, Inspection};
use crate::wasm::state::{HostState, bindings};
use crate::wasm::values;

/// A component of the task world, linked.
pub(crate) struct TaskProgram {
    pub(crate) pre: InstancePre<HostState>,
    /// Where `run` is in an instance.
    pub(crate) indices: bindings::TaskIndices,
    /// `run-batch`, which components built with the SDK export: many
    /// inputs in one call.
    pub(crate) batch: Option<ComponentExportIndex>,
}

/// What a loaded file runs as.
pub(crate) enum Program {
    /// A component of the task world: `run(input) -> result`.
    Task(TaskProgram),
    /// A WASI command program: the input on stdin or in its arguments, its
    /// stdout as the output.
    Command(Command),
    /// An exported function of any component, called with JSON arguments.
    Invoke(Invoke),
}

impl Program {
    /// The engine it was compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Program::Task(task) => task.pre.engine(),
            Program::Invoke(invoke) => invoke.pre.engine(),
            Program::Command(command) => match &command.entry {
                CommandEntry::Module(pre) => pre.module().engine(),
                CommandEntry::Component(pre) => pre.engine(),
            },
        }
    }
}

/// A WASI command program and the arguments each run gets.
pub(crate) struct Command {
    pub(crate) entry: CommandEntry,
    /// argv[0], then (with a template) the template's words.
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
    pub(crate) args_template: Option<Vec<String>>,
}

pub(crate) enum CommandEntry {
    /// A core module exporting `_start` (WASI preview 1).
    Module(wasmtime::InstancePre<HostState>),
    /// A component exporting `wasi:cli/run`.
    Component(CommandPre<HostState>),
}

/// One exported function of a component and its signature.
pub(crate) struct Invoke {
    pub(crate) pre: wasmtime::component::InstancePre<HostState>,
    pub(crate) export: ComponentExportIndex,
    pub(crate) params: Vec<(String, Type)>,
    /// How many values it returns.
    pub(crate) results: usize,
}

/// Loads programs for one pool: its engine, the host functions every task
/// is linked against, and the thread that advances the engine's epoch.
pub(crate) struct Loader {
    engine: Engine,
    linker: Linker<HostState>,
    /// For WASI preview 1 command modules.
    module_linker: wasmtime::Linker<HostState>,
    /// Dropped with the loader, which stops it.
    _ticker: Option<Ticker>,
    /// Where compiled code is kept between runs, if anywhere.
    code_cache: Option<CodeCache>,
}

impl Loader {
    pub(crate) fn new(options: &EngineConfig) -> Result<Loader, BuildError> {
        let engine = engine::build(options)?;
        let code_cache = match &options.cache_dir {
            None => None,
            Some(dir) => Some(CodeCache::new(dir, &engine).map_err(|error| {
                BuildError::new(format!(
                    "cannot use {} as the compiled-code cache: {error}",
                    dir.display()
                ))
            })?),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| bindings::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|error| BuildError::new(format!("cannot link the host: {error:#}")))?;
        let mut module_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module_linker, |state: &mut HostState| {
            &mut state.wasi
        })
        .map_err(|error| BuildError::new(format!("cannot link WASI preview 1: {error:#}")))?;
        let ticker = if options.interruptible {
            let ticker = Ticker::start(engine.clone()).map_err(|error| {
                BuildError::new(format!("cannot start the epoch ticker: {error}"))
            })?;
            Some(ticker)
        } else {
            None
        };
        Ok(Loader {
            engine,
            linker,
            module_linker,
            _ticker: ticker,
            code_cache,
        })
    }

    /// Compiles `bytes` and links them as `options` say: the function to
    /// invoke, else a task, else a WASI command.
    pub(crate) fn load_program(
        &self,
        bytes: &[u8],
        name: &str,
        options: &LoadOptions,
    ) -> Result<Program, LoadError> {
        let program = if !bytes.starts_with(PRECOMPILED) && is_core_module(bytes) {
            if options.invoke.is_some() {
                return Err(LoadError::new(
                    LoadErrorKind::CoreModule,
                    "--invoke calls a function of a component; this is a core module",
                ));
            }
            Program::Command(self.command_module(bytes, name, options)?)
        } else {
            let component = self.compile(bytes)?;
            if let Some(function) = &options.invoke {
                Program::Invoke(self.invoke(&component, function)?)
            } else if inspect::exports_run(&self.engine, &component) {
                Program::Task(self.prepare(&component)?)
            } else if inspect::exports_cli_run(&self.engine, &component) {
                let pre = self.link(&component)?;
                let entry = CommandPre::new(pre).map_err(|error| {
                    LoadError::new(LoadErrorKind::NotATask, format!("{error:#}"))
                })?;
                Program::Command(command(CommandEntry::Component(entry), name, options))
            } else {
                let functions = inspect::exported_functions(&self.engine, &component);
                let mut message = NO_RUN.to_string();
                if !functions.is_empty() {
                    message.push_str(&format!(
                        "; to call one of its functions, use --invoke NAME (it exports: {})",
                        functions.join(", ")
                    ));
                }
                return Err(LoadError::new(LoadErrorKind::NotATask, message));
            }
        };
        let is_command = matches!(program, Program::Command(_));
        if !is_command && (!options.args.is_empty() || options.args_template.is_some()) {
            return Err(LoadError::new(
                LoadErrorKind::NotATask,
                "arguments (--arg, --args-template) are for WASI command programs; \
                 this is a component with a typed entry point: its input is its argument",
            ));
        }
        Ok(program)
    }

    /// A core module with `_start`, linked against WASI preview 1.
    fn command_module(
        &self,
        bytes: &[u8],
        name: &str,
        options: &LoadOptions,
    ) -> Result<Command, LoadError> {
        let module = self.cached(
            bytes,
            |engine, bytes| Module::new(engine, bytes),
            Module::serialize,
            |path| {
                // SAFETY: see `Loader::cached`.
                #[allow(unsafe_code)]
                unsafe {
                    Module::deserialize_file(&self.engine, path)
                }
            },
        );
        let module = module.map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid module: {error:#}"),
            )
        })?;
        if !module.exports().any(|export| export.name() == "_start") {
            return Err(LoadError::new(
                LoadErrorKind::CoreModule,
                "a core module without `_start`: neither a WASI command program nor \
                 a task (build a task for wasm32-wasip2 with the wasmpool-guest SDK)",
            ));
        }
        let pre = self
            .module_linker
            .instantiate_pre(&module)
            .map_err(|error| {
                LoadError::new(
                    LoadErrorKind::MissingImport,
                    format!("{error:#} (the host provides WASI preview 1 to core modules)"),
                )
            })?;
        Ok(command(CommandEntry::Module(pre), name, options))
    }

    /// The exported function `function` of `component`: `name`, or
    /// `interface#name` for a function of an exported interface. The
    /// interface may be given without its version or package
    /// (`geometry#area`), and a function name alone finds the one function
    /// of that name in any exported interface.
    fn invoke(&self, component: &Component, function: &str) -> Result<Invoke, LoadError> {
        let functions = inspect::exported_functions(&self.engine, component);
        let matches: Vec<&String> = functions
            .iter()
            .filter(|candidate| names_function(candidate, function))
            .collect();
        let full_name = match matches.as_slice() {
            [one] => one.as_str(),
            [] => {
                return Err(LoadError::new(
                    LoadErrorKind::NotATask,
                    format!(
                        "no exported function `{function}`; the component exports: {}",
                        if functions.is_empty() {
                            "no functions".to_string()
                        } else {
                            functions.join(", ")
                        }
                    ),
                ));
            }
            many => {
                let names: Vec<&str> = many.iter().map(|name| name.as_str()).collect();
                return Err(LoadError::new(
                    LoadErrorKind::NotATask,
                    format!(
                        "`{function}` names more than one exported function: {}; give the \
                         interface too",
                        names.join(", ")
                    ),
                ));
            }
        };
        let (instance, func) = match full_name.rsplit_once('#') {
            Some((interface, func)) => (
                component
                    .get_export(None, interface)
                    .map(|(_, index)| index),
                func,
            ),
            None => (None, full_name),
        };
        let Some((ComponentItem::ComponentFunc(ty), export)) =
            component.get_export(instance.as_ref(), func)
        else {
            return Err(LoadError::new(
                LoadErrorKind::NotATask,
                format!("cannot find the exported function `{full_name}`"),
            ));
        };
        let params: Vec<(String, Type)> = ty
            .params()
            .map(|(name, ty)| (name.to_string(), ty))
            .collect();
        let unusable = params
            .iter()
            .map(|(_, ty)| ty.clone())
            .chain(ty.results())
            .find(|ty| !values::expressible(ty));
        if let Some(ty) = unusable {
            return Err(LoadError::new(
                LoadErrorKind::NotATask,
                format!(
                    "`{function}` takes or returns a {}, which has no JSON form",
                    values::describe(&ty)
                ),
            ));
        }
        Ok(Invoke {
            pre: self.link(component)?,
            export,
            params,
            results: ty.results().len(),
        })
    }

    fn link(
        &self,
        component: &Component,
    ) -> Result<wasmtime::component::InstancePre<HostState>, LoadError> {
        self.linker.instantiate_pre(component).map_err(|error| {
            LoadError::new(
                LoadErrorKind::MissingImport,
                format!("{error:#} (the host provides WASI 0.2 and wasmpool:task/host only)"),
            )
        })
    }

    /// Compiles a component (or loads a precompiled one).
    fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        if bytes.starts_with(PRECOMPILED) {
            return self.deserialize(bytes);
        }
        check_header(bytes)?;
        let component = self.cached(
            bytes,
            |engine, bytes| Component::new(engine, bytes),
            Component::serialize,
            |path| {
                // SAFETY: see `Loader::cached`.
                #[allow(unsafe_code)]
                unsafe {
                    Component::deserialize_file(&self.engine, path)
                }
            },
        );
        component.map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid component: {error:#}"),
            )
        })
    }

    /// `bytes` compiled by `compile`, through the code cache if there is
    /// one.
    ///
    /// Loading compiled code is unsafe in wasmtime because its machine code
    /// cannot be checked: the cache directory is as trusted as the binary
    /// (wasmtime's own cache is, too). Each file is named by the digest of
    /// the bytes it was compiled from and by the engine's settings, and
    /// wasmtime checks its header, version and settings on load.
    fn cached<T>(
        &self,
        bytes: &[u8],
        compile: impl FnOnce(&Engine, &[u8]) -> wasmtime::Result<T>,
        serialize: impl FnOnce(&T) -> wasmtime::Result<Vec<u8>>,
        deserialize: impl FnOnce(&std::path::Path) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<T> {
        let compile = || compile(&self.engine, bytes);
        match &self.code_cache {
            Some(cache) => cache.get_or_compile(bytes, compile, serialize, deserialize),
            None => compile(),
        }
    }

    /// Checks that `component` is of the task world and links it.
    fn prepare(&self, component: &Component) -> Result<TaskProgram, LoadError> {
        if !inspect::exports_run(&self.engine, component) {
            return Err(LoadError::new(LoadErrorKind::NotATask, NO_RUN));
        }
        let pre = self.link(component)?;
        let indices = bindings::TaskIndices::new(&pre).map_err(|error| {
            LoadError::new(
                LoadErrorKind::NotATask,
                format!(
                    "`run` does not have the type of the wasmpool:task world, \
                     func(input: list<u8>) -> result<list<u8>, string>: {error:#}"
                ),
            )
        })?;
        let batch = component.get_export_index(None, "run-batch");
        Ok(TaskProgram {
            pre,
            indices,
            batch,
        })
    }
}

/// Why a component that is neither a task nor a command does not load.
const NO_RUN: &str = "the component does not export `run`: it is not a task of the \
                      wasmpool:task world (write it with the wasmpool-guest SDK)";

/// Precompiled components (`wasmpool compile`, `.cwasm`) are ELF files.
const PRECOMPILED: &[u8] = b"\x7fELF";

impl Loader {
    /// What `bytes` are, and whether they load as a task here.
    pub(crate) fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        if bytes.starts_with(PRECOMPILED) {
            return Err(LoadError::new(
                LoadErrorKind::Invalid,
                "a precompiled component: inspect the .wasm it was compiled from",
            ));
        }
        check_wasm(bytes)?;
        if wasmparser::Parser::is_core_wasm(bytes) {
            // `check_header` says why a core module is not a task.
            return inspect::module(&self.engine, bytes, check_header(bytes));
        }
        // Compiled once: for the task check and for the component's types.
        let component = self.compile(bytes)?;
        let task = self.prepare(&component).map(|_| ());
        inspect::component(&self.engine, bytes, &component, task)
    }

    /// Compiles a component ahead of time for engines configured like this
    /// one (`wasmpool compile`).
    pub(crate) fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        check_header(bytes)?;
        self.engine.precompile_component(bytes).map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid component: {error:#}"),
            )
        })
    }

    /// Loads a component compiled ahead of time.
    fn deserialize(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        // SAFETY: wasmtime checks the artifact's header, its wasmtime version
        // and the engine settings it was compiled for, but it cannot check
        // the machine code itself: a precompiled file must come from
        // `wasmpool compile` (or wasmtime) on a machine one trusts. The docs
        // of `wasmpool compile` and `Pool::load` say so.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, bytes) };
        component.map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!(
                    "a precompiled component this wasmpool cannot use \
                     (compile it again with `wasmpool compile`): {error:#}"
                ),
            )
        })
    }
}

/// Whether `wanted` names the exported function `full` (`interface#name`
/// or `name`): in full, with the interface's version or package left out,
/// or by the function's name alone.
fn names_function(full: &str, wanted: &str) -> bool {
    if full == wanted {
        return true;
    }
    let Some((interface, func)) = full.rsplit_once('#') else {
        return false;
    };
    match wanted.rsplit_once('#') {
        None => func == wanted,
        Some((wanted_interface, wanted_func)) => {
            let unversioned = interface.split('@').next().unwrap_or(interface);
            let short = unversioned.rsplit('/').next().unwrap_or(unversioned);
            wanted_func == func && (wanted_interface == unversioned || wanted_interface == short)
        }
    }
}

fn command(entry: CommandEntry, name: &str, options: &LoadOptions) -> Command {
    Command {
        entry,
        name: name.to_string(),
        args: options.args.clone(),
        args_template: options.args_template.clone(),
    }
}

/// Whether `bytes` are a core module (layer 0), not a component.
fn is_core_module(bytes: &[u8]) -> bool {
    check_wasm(bytes).is_ok() && bytes[6..8] == [0, 0]
}

/// Refuses what is not WebAssembly at all, saying so.
fn check_wasm(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::new(
            LoadErrorKind::NotWasm,
            "not a WebAssembly file (it does not start with the `\\0asm` magic bytes)",
        ));
    }
    Ok(())
}

/// Tells a component from a core module or from something else entirely,
/// so that the error says what the file is instead of a parser message.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    check_wasm(bytes)?;
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::new(
            LoadErrorKind::CoreModule,
            "a core WebAssembly module, not a component: build the task for \
             wasm32-wasip2 with the wasmpool-guest SDK",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_function_by_its_full_or_short_name() {
        let full = "example:shapes/geometry@0.1.0#area";
        for wanted in [
            full,
            "example:shapes/geometry#area",
            "geometry#area",
            "area",
        ] {
            assert!(names_function(full, wanted), "{wanted}");
        }
        for wanted in ["geometry#volume", "shapes#area", "are", "geometry"] {
            assert!(!names_function(full, wanted), "{wanted}");
        }
        assert!(names_function("describe", "describe"));
        assert!(!names_function("describe", "x#describe"));
    }

    #[test]
    fn tells_what_a_file_is_from_its_header() {
        let kind = |bytes: &[u8]| check_header(bytes).err().map(|error| error.kind());
        assert_eq!(kind(b"hello world"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0as"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0asm\x01\0\0\0"), Some(LoadErrorKind::CoreModule));
        assert_eq!(kind(b"\0asm\x0d\0\x01\0"), None);
    }
}
