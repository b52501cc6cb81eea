//! The `wasmpool` command: build guest tasks and run them over many inputs.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
