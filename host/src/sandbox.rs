//! The wasm side: one shared `Engine` and `Linker`, components checked and
//! pre-linked once, and one run of a task in a fresh `Store` and instance.
//!
//! Nothing here knows about queues or threads; a worker calls [`run`].

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap, WasmBacktrace};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capture::CapturePipe;
use crate::error::{BuildError, ErrorKind, LoadError, LoadErrorKind, TaskError};
use crate::handle::Slot;
use crate::task::{TaskOutput, TaskResult};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
    });
}

pub(crate) use bindings::TaskPre;

/// What every run of every task in one pool shares.
pub(crate) struct Settings {
    /// Bytes of stdout, and of stderr, kept per task.
    pub(crate) max_output: usize,
}

/// The engine and the host functions every task is linked against.
pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<TaskState>,
}

impl Runtime {
    pub(crate) fn new() -> Result<Runtime, BuildError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|error| BuildError::new(format!("{error:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| bindings::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|error| BuildError::new(format!("cannot link the host: {error:#}")))?;
        Ok(Runtime { engine, linker })
    }

    /// Compiles `bytes` and checks that they are a component of the `task`
    /// world whose imports the host provides.
    pub(crate) fn load(&self, bytes: &[u8]) -> Result<TaskPre<TaskState>, LoadError> {
        check_header(bytes)?;
        let component = Component::new(&self.engine, bytes).map_err(|error| {
            LoadError::new(
                LoadErrorKind::Invalid,
                format!("not a valid component: {error:#}"),
            )
        })?;
        let exports_run = component
            .component_type()
            .exports(&self.engine)
            .any(|(name, item)| {
                name == "run" && matches!(item.ty, ComponentItem::ComponentFunc(_))
            });
        if !exports_run {
            return Err(LoadError::new(
                LoadErrorKind::NotATask,
                "the component does not export `run`: it is not a task of the \
                 wasmpool:task world (write it with the wasmpool-guest SDK)",
            ));
        }
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| {
            LoadError::new(
                LoadErrorKind::MissingImport,
                format!("{error:#} (the host provides WASI 0.2 and wasmpool:task/host only)"),
            )
        })?;
        TaskPre::new(instance_pre).map_err(|error| {
            LoadError::new(
                LoadErrorKind::NotATask,
                format!(
                    "`run` does not have the type of the wasmpool:task world, \
                     func(input: list<u8>) -> result<list<u8>, string>: {error:#}"
                ),
            )
        })
    }
}

/// Tells a component from a core module or from something else entirely,
/// so that the error says what the file is instead of a parser message.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::new(
            LoadErrorKind::NotWasm,
            "not a WebAssembly file (it does not start with the `\\0asm` magic bytes)",
        ));
    }
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

/// The host state of one task's `Store`.
pub(crate) struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The message the guest's panic hook reported, if it panicked.
    panic: Option<String>,
    slot: Arc<Slot>,
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::wasmpool::task::host::Host for TaskState {
    fn report_progress(&mut self, fraction: f64) {
        self.slot.set_progress(fraction);
    }

    fn report_panic(&mut self, message: String) {
        self.panic = Some(message);
    }
}

/// Runs one task on `input` in a fresh store and instance.
pub(crate) fn run(
    pre: &TaskPre<TaskState>,
    input: &[u8],
    settings: &Settings,
    worker: usize,
    slot: Arc<Slot>,
) -> TaskResult {
    let started = Instant::now();
    let stdout = CapturePipe::new(settings.max_output);
    let stderr = CapturePipe::new(settings.max_output);
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build();
    let state = TaskState {
        wasi,
        table: ResourceTable::new(),
        panic: None,
        slot,
    };
    let mut store = Store::new(pre.engine(), state);
    let outcome = pre
        .instantiate(&mut store)
        .and_then(|task| task.call_run(&mut store, input));
    let panic = store.data_mut().panic.take();
    drop(store);
    let duration = started.elapsed();
    let (stdout, stderr) = (stdout.take(), stderr.take());
    let mut error = match outcome {
        Ok(Ok(value)) => {
            return Ok(TaskOutput {
                value,
                stdout,
                stderr,
                duration,
                worker,
            });
        }
        Ok(Err(message)) => TaskError::new(ErrorKind::GuestError, message),
        Err(error) => classify(&error, panic),
    };
    let details = error.details_mut();
    details.stdout = stdout;
    details.stderr = stderr;
    details.duration = duration;
    details.worker = Some(worker);
    Err(error)
}

/// Turns what wasmtime returned into the kind a caller matches on.
fn classify(error: &wasmtime::Error, panic: Option<String>) -> TaskError {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        let mut failure = TaskError::new(
            ErrorKind::Exit,
            format!(
                "the task exited with code {} before returning a result",
                exit.0
            ),
        );
        failure.details_mut().exit_code = Some(exit.0);
        return failure;
    }
    let trap_code = error.downcast_ref::<Trap>().copied();
    let mut failure = match (trap_code, panic) {
        (Some(Trap::StackOverflow), _) => TaskError::new(
            ErrorKind::StackOverflow,
            "the task ran out of wasm stack (unbounded recursion?)",
        ),
        (_, Some(message)) => TaskError::new(ErrorKind::Panic, message),
        (Some(code), None) => TaskError::new(ErrorKind::Trap, code.to_string()),
        (None, None) => TaskError::new(ErrorKind::Trap, format!("{error:#}")),
    };
    let details = failure.details_mut();
    details.trap_code = trap_code;
    details.backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| backtrace.to_string());
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_what_a_file_is_from_its_header() {
        let kind = |bytes: &[u8]| check_header(bytes).err().map(|error| error.kind());
        assert_eq!(kind(b"hello world"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0as"), Some(LoadErrorKind::NotWasm));
        assert_eq!(kind(b"\0asm\x01\0\0\0"), Some(LoadErrorKind::CoreModule));
        assert_eq!(kind(b"\0asm\x0d\0\x01\0"), None);
    }
}
