//! Argument parsing and exit codes; each subcommand lives in its own module.

mod block_writer;
mod build;
mod inputs;
mod live;
mod new;
mod record;
mod report;
mod resume;
mod run;
mod summary;
mod text;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use wasmpool::python::{self, PythonBuild};

/// Every task succeeded.
pub(crate) const EXIT_OK: u8 = 0;
/// At least one task failed; every other task's record was still written.
pub(crate) const EXIT_TASK_FAILED: u8 = 1;
/// Bad usage, or the task could not be built or loaded: nothing ran.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Interrupted by SIGINT or SIGTERM; the records written so far are whole,
/// and `--resume` finishes the job.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

const RUN_EXAMPLES: &str = "Examples:
  wasmpool run guest-tasks/examples/fib --inputs '[20, 25, 30]'
      build a task crate, run it on three inputs, records to stdout
  wasmpool run task.wasm --input-file inputs.jsonl -o results.jsonl --timeout 5s
      one JSON input per line, records to a file; stop any task after 5 s
  wasmpool run task.wasm --input-file inputs.jsonl -o results.jsonl --resume
      after an interruption: run only the inputs without a record
  wasmpool run shout.wasm --lines names.txt --args-template 'hello {}'
      an ordinary WASI program, once per line, the line in its arguments
  wasmpool run shapes.wasm --invoke area --inputs '[[{\"circle\": 1.5}]]'
      call an exported function of any component with JSON arguments
  mpirun -n 3 wasmpool run --mpi task.wasm --input-file inputs.jsonl -o results.jsonl
      the same on an MPI cluster (a build with --features mpi)

Records: index, input, ok or error {kind, message, exit_code, backtrace}, stdout, stderr,
duration_ms, worker, attempts, timings. Exit codes: 0 all ok, 1 some task failed, 2 bad usage
or a task that cannot be loaded, 130 interrupted.";

#[derive(Parser)]
#[command(
    name = "wasmpool",
    version,
    about = "Run WebAssembly tasks over many inputs on all cores, each in a fresh sandbox",
    long_about = "Run WebAssembly tasks over many inputs on all cores, each in a fresh sandbox.\n\n\
        A task that traps, panics, exits or returns an error fails alone, with a typed \
        error in its record; every other task still runs.",
    after_help = "Exit codes: 0 every task succeeded, 1 some task failed, 2 bad usage or a task \
        that cannot be built or loaded, 130 interrupted (SIGINT or SIGTERM)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl RunArgs {
    /// Whether the run adds to the records already in --output
    /// (--resume, --retry-failed) rather than start it afresh.
    fn appends(&self) -> bool {
        self.resume || self.retry_failed.is_some()
    }
}

/// What `wasmpool run` writes on stdout.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new task project (a Rust crate with the guest SDK and one
    /// example task) in the directory NAME.
    New(NewArgs),
    /// Compile a guest crate to a task component and print the .wasm path.
    Build(BuildArgs),
    /// Run a task on every input and write one JSON record per input.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Compile a task ahead of time to a .cwasm that `run` loads without
    /// compiling (for pools with the default engine settings: no --fuel).
    Compile(CompileArgs),
    /// Say what a WebAssembly file is: task component, command component or
    /// module, its imports and exports, its memories, whether it fits the
    /// task world.
    Inspect(InspectArgs),
    /// Turn a run's records into one self-contained HTML page: a timeline
    /// per worker, a histogram of durations, the errors by kind.
    Report(ReportArgs),
}

#[derive(Args)]
struct CompileArgs {
    /// The task: a .wasm component, or a guest crate directory (built first).
    task: PathBuf,

    /// Where to write the precompiled component. Load only precompiled files
    /// you trust: their machine code cannot be checked.
    #[arg(long, short = 'o', value_name = "FILE.cwasm")]
    output: PathBuf,
}

#[derive(Args)]
struct InspectArgs {
    /// A .wasm file, or a guest crate directory (built first).
    task: PathBuf,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// The records of a run (the JSONL that `wasmpool run` writes).
    results: PathBuf,

    /// Where to write the HTML page.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct NewArgs {
    /// The project's directory, which must not exist yet; its last part
    /// names the crate.
    name: PathBuf,
}

#[derive(Args)]
struct BuildArgs {
    /// The task: a guest crate's directory (a cdylib using the
    /// wasmpool-guest SDK), a Python file with a @task function, or a
    /// directory holding a Python package with one.
    task: PathBuf,

    /// For a Python task: also bundle the pure-Python packages of DIR (a
    /// directory on Python's path, or a virtual environment). Repeatable.
    #[arg(long, value_name = "DIR")]
    python_path: Vec<PathBuf>,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true), allow_negative_numbers = true)]
pub(crate) struct RunArgs {
    /// The task: a task component (.wasm), a WASI command program (a core
    /// module with `_start`, or a component exporting wasi:cli/run), a
    /// precompiled .cwasm, a guest crate directory, or a Python task (a .py
    /// file or a package directory); the last three are built first.
    task: PathBuf,

    /// For a Python task: also bundle the pure-Python packages of DIR (a
    /// directory on Python's path, or a virtual environment). Repeatable.
    #[arg(long, value_name = "DIR", help_heading = "Programs")]
    python_path: Vec<PathBuf>,

    /// The inputs as one JSON array; each element is one task's input.
    #[arg(long, value_name = "JSON_ARRAY", group = "source")]
    inputs: Option<String>,

    /// A file with one JSON input per line (JSONL); `-` reads stdin.
    #[arg(long, value_name = "FILE", group = "source")]
    input_file: Option<PathBuf>,

    /// A text file with one input per line, taken as plain text (a string),
    /// not JSON: for command programs, like `xargs` or GNU parallel. `-`
    /// reads stdin.
    #[arg(long, value_name = "FILE", group = "source")]
    lines: Option<PathBuf>,

    /// Worker threads [default: the number of cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    workers: Option<u64>,

    /// Write the records to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write each record as its task finishes, not in input order.
    #[arg(long)]
    unordered: bool,

    /// What goes to stdout: `json`, a record per input (JSONL); or `text`,
    /// each task's output as it wrote it (a command program's stdout; a
    /// task's result, one per line), with a line on stderr for each
    /// failed input. With `text`, --output still writes the records.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,

    /// In input order, hold up to SIZE of the records that finished before
    /// an earlier, slower task [default: 64MiB]: the workers run on past
    /// it meanwhile. Once it is full they wait for that task; the summary
    /// says so.
    #[arg(long, value_name = "SIZE", value_parser = units::size, conflicts_with = "unordered")]
    order_buffer: Option<usize>,

    /// Print neither the tasks' output as they finish, nor the progress bar,
    /// nor the summary.
    #[arg(long, short = 'q')]
    quiet: bool,

    /// On a terminal, show the progress bar alone: not each task's output,
    /// nor its failure, as it finishes (the records keep both).
    #[arg(long, conflicts_with = "quiet")]
    no_echo: bool,

    /// Cache compiled code in DIR [default: $XDG_CACHE_HOME/wasmpool or
    /// ~/.cache/wasmpool]: a second run of the same task skips compiling.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,

    /// Compile the task afresh and cache nothing.
    #[arg(long)]
    no_cache: bool,

    /// Also write the end-of-run summary (counts by error kind, wall time,
    /// tasks per second) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,

    /// Also write an HTML report of the run to FILE (see `wasmpool report`).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// With --output: keep the records already in FILE, run only the inputs
    /// that have none, and append.
    #[arg(long, requires = "output")]
    resume: bool,

    /// With --output: run again the inputs whose record in FILE is a
    /// failure (of any kind, or of the KINDS given, e.g.
    /// --retry-failed=timeout,trap), and those without a record; their new
    /// records replace the failed ones, so FILE keeps one per input.
    #[arg(
        long,
        requires = "output",
        conflicts_with = "resume",
        value_name = "KINDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all",
        value_parser = units::error_kinds
    )]
    retry_failed: Option<units::Kinds>,

    /// Stop a task after this much wall time (e.g. 5s, 500ms, 2m): kind `timeout`.
    #[arg(long, value_name = "DURATION", value_parser = units::duration, help_heading = "Limits")]
    timeout: Option<Duration>,

    /// Cap a task's linear memory (e.g. 64MiB, 1GiB): kind `memory-limit`.
    #[arg(long, value_name = "SIZE", value_parser = units::size, help_heading = "Limits")]
    max_memory: Option<usize>,

    /// Give each task a deterministic CPU budget of N fuel units (about one
    /// per wasm instruction): kind `fuel-exhausted`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    fuel: Option<u64>,

    /// Run a task that failed with `trap`, `timeout` or `memory-limit` again,
    /// up to N times; the record's `attempts` says how many runs it took.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Limits")]
    retries: u32,

    /// Keep at most SIZE of each task's stdout, and of its stderr [default: 1MiB];
    /// the rest is dropped and the record marked truncated.
    #[arg(long, value_name = "SIZE", value_parser = units::size, help_heading = "Limits")]
    max_output: Option<usize>,

    /// Take at most SIZE of a task's result [default: 64MiB]: kind
    /// `resource-limit` past it. The host reads no value a task hands it
    /// (result, error, an `--invoke` result's values) past the larger of
    /// SIZE and 1MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::size, help_heading = "Limits")]
    max_result: Option<usize>,

    /// Keep at most SIZE of a failure's message, traceback and backtrace
    /// each [default: 64KiB]; the rest is cut, and the text says so.
    #[arg(long, value_name = "SIZE", value_parser = units::size, help_heading = "Limits")]
    max_message: Option<usize>,

    /// The wasm stack of each task [default: 512KiB]: kind `stack-overflow` past it.
    #[arg(long, value_name = "SIZE", value_parser = units::size, help_heading = "Limits")]
    max_stack: Option<usize>,

    /// Run up to K tasks in one instance before making a fresh one. Only for
    /// tasks that keep no state between calls: what one task leaves
    /// in memory, the next one sees. An instance that failed is never reused.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    reuse_instances: u32,

    /// Compile without the checks that let a running task be stopped: CPU-bound
    /// code runs 20-30% faster, but --timeout is refused and, after Ctrl-C, a
    /// running task is waited for (a second Ctrl-C ends wasmpool at once).
    #[arg(long, conflicts_with = "timeout", help_heading = "Limits")]
    no_interrupt: bool,

    /// Check memory accesses in the compiled code instead of with guard
    /// pages: no page protection changes between tasks, so programs whose
    /// memory grows in every run (C command programs) scale with workers
    /// (3.5x faster on 2); CPU-bound code runs 30-60% slower.
    #[arg(long, help_heading = "Limits")]
    explicit_bounds_checks: bool,

    /// Let tasks read the host directory HOST_DIR, seen at GUEST_DIR (default:
    /// the same path). Repeatable. Tasks see no file otherwise: a path
    /// outside the granted directories fails in the task, as "No such file
    /// or directory" (absolute) or "Operation not permitted" (climbing out
    /// with ..); the summary JSON lists the grants.
    #[arg(long, value_name = "HOST_DIR[::GUEST_DIR]", value_parser = units::dir_grant, help_heading = "Sandbox")]
    dir: Vec<(PathBuf, String)>,

    /// Like --dir, but tasks may also write there.
    #[arg(long, value_name = "HOST_DIR[::GUEST_DIR]", value_parser = units::dir_grant, help_heading = "Sandbox")]
    dir_rw: Vec<(PathBuf, String)>,

    /// Give tasks the environment variable KEY=VALUE. Repeatable. Tasks see no
    /// variable of the host otherwise.
    #[arg(long, value_name = "KEY=VALUE", value_parser = units::env_pair, help_heading = "Sandbox")]
    env: Vec<(String, String)>,

    /// Call this exported function of a component of any world, instead of
    /// a task's `run`: NAME, or INTERFACE#NAME for a function of an exported
    /// interface. Each input is a JSON array of the arguments; the record's
    /// `ok` is the result as JSON.
    #[arg(long, value_name = "NAME", help_heading = "Programs")]
    invoke: Option<String>,

    /// For a WASI command program: pass each input in its arguments instead
    /// of on stdin. The template is split into words as a shell splits them
    /// (quotes keep spaces: '"two words" {}'); `{}` in a word is replaced by
    /// the input's text (e.g. --args-template '--n {}').
    #[arg(long, value_name = "TEMPLATE", value_parser = units::shell_words, help_heading = "Programs")]
    args_template: Option<units::Words>,

    /// For a WASI command program: append ARG to the arguments of every run
    /// (after the template's). Repeatable.
    #[arg(
        long = "arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Programs"
    )]
    args: Vec<String>,

    /// For a WASI command program: its arguments, after `--`, as wasmtime
    /// takes them (`wasmpool run prog.wasm --lines files.txt -- -v {}`).
    /// With a `{}` among them they are the arguments template; without,
    /// every run gets them and its input on stdin.
    #[arg(last = true, value_name = "PROGRAM_ARGS")]
    program_args: Vec<String>,

    /// Run on an MPI cluster, under `mpirun -n N` (N >= 2): rank 0 reads the
    /// inputs and writes the records, every other rank runs tasks on all its
    /// cores. Needs a wasmpool built with `--features mpi`.
    #[arg(long, help_heading = "Cluster")]
    mpi: bool,

    /// Seed each task's random source from (S, input index), so that the run
    /// repeats exactly, whatever the worker count. Default: secure random.
    #[arg(long, value_name = "S", help_heading = "Sandbox")]
    seed: Option<u64>,
}

/// A Python task or a guest crate directory is built first; anything else
/// is taken as a file.
pub(crate) fn task_file(task: &std::path::Path, python: &PythonBuild) -> anyhow::Result<PathBuf> {
    if python::is_python_task(task) {
        Ok(python::build(task, python)?)
    } else if task.is_dir() {
        build::build_guest(task)
    } else {
        Ok(task.to_path_buf())
    }
}

pub(crate) use wasmpool::default_cache_dir;

/// How a Python task is built outside `run`: bundling nothing more, into
/// the cache.
fn python_build(paths: Vec<PathBuf>) -> PythonBuild {
    PythonBuild {
        paths,
        cache: default_cache_dir(),
    }
}

/// The task's file (built first if it is a crate), its bytes, and a
/// one-worker pool to compile or inspect them with.
fn task_bytes(task: &std::path::Path) -> anyhow::Result<(PathBuf, Vec<u8>, wasmpool::Pool)> {
    use anyhow::Context;
    let path = task_file(task, &python_build(Vec::new()))?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let pool = wasmpool::Pool::builder().workers(1).build()?;
    Ok((path, bytes, pool))
}

fn compile(args: &CompileArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let (path, bytes, pool) = task_bytes(&args.task)?;
    let compiled = pool
        .precompile(&bytes)
        .with_context(|| format!("cannot compile {}", path.display()))?;
    std::fs::write(&args.output, compiled)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "wasmpool: compiled {} to {}",
        path.display(),
        args.output.display()
    );
    Ok(())
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let (path, bytes, pool) = task_bytes(&args.task)?;
    let found = pool
        .inspect(&bytes)
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    let memories: Vec<serde_json::Value> = found
        .memories
        .iter()
        .map(|memory| serde_json::json!({"minimum": memory.minimum, "maximum": memory.maximum}))
        .collect();
    // What a file imports says what it may reach for; the sandbox says
    // what it finds.
    let opens_files = found
        .imports
        .iter()
        .any(|import| import.starts_with("wasi:filesystem") || import.ends_with("::path_open"));
    let uses_sockets = found
        .imports
        .iter()
        .any(|import| import.starts_with("wasi:sockets") || import.contains("::sock_"));
    if args.json {
        let report = serde_json::json!({
            "file": path,
            "kind": found.kind.describe(),
            "runs_as": found.kind.runs_as(),
            "fits_task_world": found.task.is_ok(),
            "why_not": found.task.as_ref().err().map(|error| error.message().to_string()),
            "imports": found.imports,
            "exports": found.exports,
            "functions": found.functions,
            "memories": memories,
            "opens_files": opens_files,
            "uses_sockets": uses_sockets,
        });
        println!("{report}");
        return Ok(());
    }
    println!("{}: {}", path.display(), found.kind.describe());
    println!("wasmpool run runs it as {}", found.kind.runs_as());
    match &found.task {
        Ok(()) => println!("fits the wasmpool:task world: yes"),
        Err(why) => println!("fits the wasmpool:task world: no: {}", why.message()),
    }
    println!("imports ({}):", found.imports.len());
    for import in &found.imports {
        println!("  {import}");
    }
    println!("exports ({}):", found.exports.len());
    for export in &found.exports {
        println!("  {export}");
    }
    if !found.functions.is_empty() {
        println!("functions, for --invoke ({}):", found.functions.len());
        for function in &found.functions {
            println!("  {function}");
        }
    }
    println!("memories ({}):", found.memories.len());
    for memory in &found.memories {
        match memory.maximum {
            Some(maximum) => println!("  {} bytes, growing to {maximum} at most", memory.minimum),
            None => println!("  {} bytes, growing to 4 GiB at most", memory.minimum),
        }
    }
    println!("what it sees under wasmpool run:");
    if opens_files {
        println!(
            "  files: it opens files; it sees only the directories given with --dir or \
             --dir-rw, at their guest paths. A path outside them fails in the task: \
             \"No such file or directory\" for an absolute one, \"Operation not \
             permitted\" for one that climbs out with .."
        );
    } else {
        println!("  files: it imports no way to open one");
    }
    println!("  environment: only the variables given with --env; arguments: only its template's");
    if uses_sockets {
        println!("  network: it imports sockets, which wasmpool refuses (TCP, UDP, name lookup)");
    } else {
        println!("  network: it imports no sockets");
    }
    println!("  clocks and random numbers: yes (random from --seed, if given)");
    Ok(())
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::New(args) => new::new_project(&args.name).map(|()| EXIT_OK),
        Command::Build(args) => match task_file(&args.task, &python_build(args.python_path)) {
            Ok(path) => {
                println!("{}", path.display());
                Ok(EXIT_OK)
            }
            Err(error) => Err(error),
        },
        Command::Run(args) => run::run(*args),
        Command::Compile(args) => compile(&args).map(|()| EXIT_OK),
        Command::Inspect(args) => inspect(&args).map(|()| EXIT_OK),
        Command::Report(args) => report::read_rows(&args.results)
            .and_then(|rows| {
                let title = args.results.display().to_string();
                report::write(&rows, &title, &[], &args.output)
            })
            .map(|()| EXIT_OK),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
