//! A live instance of a program: made in a fresh store (capture pipes,
//! granted directories and variables, a seedable random source, a command
//! program's stdin and arguments), or the one this worker kept from its
//! last run when instances are reused.

use std::cell::RefCell;
use std::sync::Arc;

use wasmtime::component::TypedFunc as ComponentFunc;
use wasmtime::{Store, TypedFunc, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::data::error::{ErrorKind, TaskError};
use crate::data::limits::Limits;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::wasm::capture::CapturePipe;
use crate::wasm::load::{Command, CommandEntry, Program};
use crate::wasm::outcome::FuelNotMetered;
use crate::wasm::sandbox::Sandbox;
use crate::wasm::seed::TaskRngs;
use crate::wasm::state::{HostState, MemoryGuard, Watch, bindings};

thread_local! {
    /// The instance this worker keeps for its next task, with reuse on.
    static KEPT: RefCell<Option<Instance>> = const { RefCell::new(None) };
}

/// A live store and instance of one program, with its output pipes.
pub(crate) struct Instance {
    pub(crate) program: Arc<Program>,
    pub(crate) store: Store<HostState>,
    pub(crate) entry: Entry,
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
    pub(crate) runs: u32,
}

/// What a run calls in an instance.
pub(crate) enum Entry {
    /// A task's `run`, and its `run-batch` when it has one and the instance
    /// may be reused.
    Task(bindings::Task, Option<ComponentFunc<(), ()>>),
    /// A function to invoke and how many values it returns.
    Func(wasmtime::component::Func, usize),
    Start(TypedFunc<(), ()>),
    Command(wasmtime_wasi::p2::bindings::Command),
}

/// A command program's stdin and arguments for one input.
struct CommandIo {
    stdin: Vec<u8>,
    args: Vec<String>,
}

impl CommandIo {
    fn new(command: &Command, input: &[u8]) -> CommandIo {
        let mut args = vec![command.name.clone()];
        let stdin = match &command.args_template {
            Some(words) => {
                let text = String::from_utf8_lossy(input);
                args.extend(words.iter().map(|word| word.replace("{}", &text)));
                Vec::new()
            }
            None => input.to_vec(),
        };
        args.extend(command.args.iter().cloned());
        CommandIo { stdin, args }
    }
}

/// This worker's kept instance, when it is one of `program` with runs left
/// (with reuse on; a kept instance of another program is dropped).
pub(crate) fn take_kept(program: &Arc<Program>, sandbox: &Sandbox) -> Option<Instance> {
    if sandbox.reuse <= 1 {
        return None;
    }
    KEPT.with(|kept| kept.borrow_mut().take())
        .filter(|kept| Arc::ptr_eq(&kept.program, program) && kept.runs < sandbox.reuse)
}

/// Keeps a healthy `instance` for this worker's next run, if it has runs
/// left.
pub(crate) fn keep(instance: Instance, sandbox: &Sandbox) {
    if instance.runs < sandbox.reuse {
        KEPT.with(|kept| *kept.borrow_mut() = Some(instance));
    }
}

/// A new store and instance: capture pipes, the granted directories and
/// variables, a seedable random source if the run has a seed, and for a
/// command program its stdin and arguments.
pub(crate) async fn instantiate(
    program: &Arc<Program>,
    input: &[u8],
    sandbox: &Sandbox,
    limits: &Limits,
    watch: &Watch,
) -> Result<Instance, TaskError> {
    let stdout = CapturePipe::new(sandbox.max_output);
    let stderr = CapturePipe::new(sandbox.max_output);
    let rngs = sandbox.seed.map(TaskRngs::new);
    let io = match &**program {
        Program::Command(command) => Some(CommandIo::new(command, input)),
        _ => None,
    };
    let wasi = wasi_context(sandbox, &stdout, &stderr, rngs.as_ref(), io)?;
    let state = HostState {
        wasi,
        panic: None,
        traceback: None,
        memory: MemoryGuard {
            max: limits.max_memory,
            refused: false,
            peak: 0,
        },
        watch: watch.clone(),
        rngs,
        task_seed: None,
        batch: None,
    };
    let mut store = Store::new(program.engine(), state);
    store.limiter(|state| &mut state.memory);
    store.set_hostcall_fuel(sandbox.value_budget());
    if let Some(fuel) = limits.fuel {
        // Instantiation runs the component's start code: it burns fuel too.
        if store.set_fuel(fuel).is_err() {
            let error = wasmtime::Error::new(FuelNotMetered);
            return Err(store.data().classify(&error, limits));
        }
    }
    if sandbox.interruptible {
        store.epoch_deadline_callback(|context| match context.data().watch.check() {
            Some(why) => Err(why.into()),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        store.set_epoch_deadline(1);
    }
    match entry(program, &mut store, sandbox.reuse > 1).await {
        Ok(entry) => Ok(Instance {
            program: Arc::clone(program),
            store,
            entry,
            stdout,
            stderr,
            runs: 0,
        }),
        Err(error) => Err(store.data().classify(&error, limits)),
    }
}

/// Instantiates `program` in `store` and finds what a run calls (with
/// `reusable`, a task's `run-batch` too).
async fn entry(
    program: &Program,
    store: &mut Store<HostState>,
    reusable: bool,
) -> wasmtime::Result<Entry> {
    Ok(match program {
        Program::Task(task) => {
            let instance = task.pre.instantiate_async(&mut *store).await?;
            let run = task.indices.load(&mut *store, &instance)?;
            let batch = match &task.batch {
                Some(index) if reusable => instance.get_typed_func(&mut *store, index).ok(),
                _ => None,
            };
            Entry::Task(run, batch)
        }
        Program::Invoke(invoke) => {
            let instance = invoke.pre.instantiate_async(&mut *store).await?;
            let func = instance
                .get_func(&mut *store, invoke.export)
                .ok_or_else(|| wasmtime::format_err!("the invoked function is not exported"))?;
            Entry::Func(func, invoke.results)
        }
        Program::Command(command) => match &command.entry {
            CommandEntry::Module(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                Entry::Start(instance.get_typed_func::<(), ()>(&mut *store, "_start")?)
            }
            CommandEntry::Component(pre) => {
                Entry::Command(pre.instantiate_async(&mut *store).await?)
            }
        },
    })
}

fn wasi_context(
    sandbox: &Sandbox,
    stdout: &CapturePipe,
    stderr: &CapturePipe,
    rngs: Option<&TaskRngs>,
    io: Option<CommandIo>,
) -> Result<WasiP1Ctx, TaskError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_blocking_current_thread(true);
    if let Some(io) = io {
        wasi.stdin(MemoryInputPipe::new(io.stdin)).args(&io.args);
    }
    for (key, value) in &sandbox.grants.env {
        wasi.env(key, value);
    }
    for dir in &sandbox.grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| {
                TaskError::new(
                    ErrorKind::Internal,
                    format!(
                        "cannot open the granted directory {}: {error:#}",
                        dir.host.display()
                    ),
                )
            })?;
    }
    if let Some(rngs) = rngs {
        wasi.secure_random(rngs.secure.clone())
            .insecure_random(rngs.insecure.clone())
            .insecure_random_seed(rngs.insecure_seed);
    }
    Ok(wasi.build_p1())
}
