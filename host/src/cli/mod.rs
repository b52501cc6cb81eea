//! Argument parsing and exit codes; each subcommand lives in its own module.

mod build;
mod inputs;
mod record;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Every task succeeded.
pub(crate) const EXIT_OK: u8 = 0;
/// At least one task failed; every other task's record was still written.
pub(crate) const EXIT_TASK_FAILED: u8 = 1;
/// Bad usage, or the task could not be built or loaded: nothing ran.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wasmpool",
    version,
    about = "Run WebAssembly tasks over many inputs on all cores, each in a fresh sandbox",
    long_about = "Run WebAssembly tasks over many inputs on all cores, each in a fresh sandbox.\n\n\
        A task that traps, panics, exits or returns an error fails alone, with a typed \
        error in its record; every other task still runs.",
    after_help = "Exit codes: 0 every task succeeded, 1 some task failed, 2 bad usage or a task \
        that cannot be built or loaded."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a guest crate to a task component and print the .wasm path.
    Build(BuildArgs),
    /// Run a task on every input and write one JSON record per input.
    Run(RunArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// The guest crate's directory (a cdylib using the wasmpool-guest SDK).
    dir: PathBuf,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true))]
pub(crate) struct RunArgs {
    /// The task: a .wasm component, or a guest crate directory (built first).
    task: PathBuf,

    /// The inputs as one JSON array; each element is one task's input.
    #[arg(long, value_name = "JSON_ARRAY", group = "source")]
    inputs: Option<String>,

    /// A file with one JSON input per line (JSONL); `-` reads stdin.
    #[arg(long, value_name = "FILE", group = "source")]
    input_file: Option<PathBuf>,

    /// Worker threads [default: the number of cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    workers: Option<u64>,

    /// Write the records to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write each record as its task finishes, not in input order.
    #[arg(long)]
    unordered: bool,

    /// Print neither the tasks' output as they finish nor the summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Build(args) => match build::build_guest(&args.dir) {
            Ok(path) => {
                println!("{}", path.display());
                Ok(EXIT_OK)
            }
            Err(error) => Err(error),
        },
        Command::Run(args) => run::run(args),
    };
    match code {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
