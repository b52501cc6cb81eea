//! The wasm side: one shared `Engine` and `Linker`, its epoch ticker, and
//! components checked and pre-linked once (`execute` runs them).
//!
//! Nothing here knows about queues or threads.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, InstancePre, Linker, Type};
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy, Module,
    PoolingAllocationConfig,
};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::error::{BuildError, LoadError, LoadErrorKind};
use crate::execute::TaskState;
use crate::handle::ProgressBoard;
use crate::inspect::{self, Inspection};
use crate::limits::Grants;
use crate::task::LoadOptions;
use crate::values;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        exports: { default: async },
    });
}

/// A component of the task world, linked.
pub(crate) struct TaskProgram {
    pub(crate) pre: InstancePre<TaskState>,
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
    Module(wasmtime::InstancePre<TaskState>),
    /// A component exporting `wasi:cli/run`.
    Component(CommandPre<TaskState>),
}

/// One exported function of a component and its signature.
pub(crate) struct Invoke {
    pub(crate) pre: wasmtime::component::InstancePre<TaskState>,
    pub(crate) export: ComponentExportIndex,
    pub(crate) params: Vec<(String, Type)>,
    /// How many values it returns.
    pub(crate) results: usize,
}

/// How often the engine's epoch advances: the granularity of time-outs and
/// of cancelling a running task.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// What every run of every task in one pool shares.
pub(crate) struct Settings {
    /// Bytes of stdout, and of stderr, kept per task.
    pub(crate) max_output: usize,
    pub(crate) grants: Grants,
    /// The run's seed: each task's random source is derived from it.
    pub(crate) seed: Option<u64>,
    /// Set to stop every running task at once (a shutdown that cancels).
    pub(crate) abort: AtomicBool,
    /// Runs per instance: 1 for a fresh instance every task.
    pub(crate) reuse: u32,
    /// Whether running wasm can be stopped (the engine has epoch checks).
    pub(crate) interruptible: bool,
    /// What each worker's running task last reported.
    pub(crate) progress: ProgressBoard,
}

/// The engine and the host functions every task is linked against, and the
/// thread that advances the engine's epoch.
pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<TaskState>,
    /// For WASI preview 1 command modules.
    module_linker: wasmtime::Linker<TaskState>,
    ticker: Option<Ticker>,
}

/// The engine settings a pool chooses.
pub(crate) struct EngineOptions {
    pub(crate) fuel: bool,
    /// Compile epoch checks into the code, so that running wasm can be
    /// stopped (time-outs, cancel, `shutdown_now`).
    pub(crate) interruptible: bool,
    pub(crate) max_stack: usize,
    /// Tasks that may run at once (the worker count): sizes the pools of
    /// pre-reserved memories, tables and fibre stacks.
    pub(crate) concurrency: u32,
    /// Where compiled code is cached between runs, if anywhere.
    pub(crate) cache_dir: Option<PathBuf>,
}

fn config(options: &EngineOptions, pooled: bool, cache: Option<Cache>) -> Config {
    let mut config = Config::new();
    // Compiled code is cached by wasmtime, keyed by the component's bytes and
    // every engine setting that changes the code.
    config.cache(cache);
    if pooled {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(
            options.concurrency,
        )));
    }
    config.wasm_component_model(true);
    // Time-outs and cancellation interrupt running wasm at epoch checks,
    // compiled into every loop and function entry.
    config.epoch_interruption(options.interruptible);
    config.consume_fuel(options.fuel);
    config.max_wasm_stack(options.max_stack);
    // Tasks run on fibres (async calls, so that a time-out also stops a task
    // blocked in a host call); the fibre holds the wasm stack.
    config.async_stack_size(options.max_stack + (1 << 20));
    config
}

/// The pooling allocator: memories, tables and fibre stacks are reserved
/// once and reused, so a fresh instance costs microseconds instead of a
/// round of mmap/munmap (which also serialises threads on the mm lock).
fn pooling(concurrency: u32) -> PoolingAllocationConfig {
    // A store lives only while its task runs; room for twice the workers
    // covers a retry or a cancel overlapping the next task.
    let instances = concurrency * 2 + 4;
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(instances)
        // A component holds a few core instances (its code and adapters).
        .total_core_instances(instances * 16)
        .total_memories(instances * 4)
        .total_tables(instances * 16)
        .total_stacks(instances)
        .max_memory_size(4 << 30)
        // Only the pages a task dirtied are reset (where the kernel has
        // PAGEMAP_SCAN), and small regions are zeroed in place rather than
        // given back to the kernel: both measured in BENCHMARKS.md.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    pooling
}

impl Runtime {
    pub(crate) fn new(options: &EngineOptions) -> Result<Runtime, BuildError> {
        let cache = match &options.cache_dir {
            None => None,
            Some(dir) => {
                let mut settings = CacheConfig::new();
                settings.with_directory(dir);
                Some(Cache::new(settings).map_err(|error| {
                    BuildError::new(format!(
                        "cannot use {} as the compiled-code cache: {error:#}",
                        dir.display()
                    ))
                })?)
            }
        };
        // Where the address space for the pools cannot be reserved (a tight
        // `ulimit -v`, say), fall back to allocating on demand.
        let engine = Engine::new(&config(options, true, cache.clone()))
            .or_else(|_| Engine::new(&config(options, false, cache)))
            .map_err(|error| BuildError::new(format!("{error:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| bindings::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|error| BuildError::new(format!("cannot link the host: {error:#}")))?;
        let mut module_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module_linker, |state: &mut TaskState| {
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
        Ok(Runtime {
            engine,
            linker,
            module_linker,
            ticker,
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
        let module = Module::new(&self.engine, bytes).map_err(|error| {
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
    ) -> Result<wasmtime::component::InstancePre<TaskState>, LoadError> {
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
        Component::new(&self.engine, bytes).map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid component: {error:#}"),
            )
        })
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

impl Runtime {
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

/// Advances the engine's epoch every [`TICK`] while the pool lives.
struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasmpool-ticker".to_string())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped = crate::lock(stopped);
                while !*stopped {
                    engine.increment_epoch();
                    stopped = wake
                        .wait_timeout(stopped, TICK)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *crate::lock(stopped) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.take();
    }
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
