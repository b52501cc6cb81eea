//! The `wasmpool` command: build guest tasks and run them over many inputs.

mod cli;

/// The record path allocates and frees per task from several threads (an
/// input on the reading thread, its output on a worker): mimalloc took
/// 12-20% off a run of tiny tasks against glibc's malloc, for about 20 MiB
/// more peak memory, flat in the input count (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
