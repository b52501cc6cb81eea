//! The `wasmpool` command: build guest tasks and run them over many inputs.

mod cli;

/// The record path allocates and frees per task from several threads (an
/// input on the reading thread, its output on a worker): mimalloc took
/// 12-20% off a run of tiny tasks against glibc's malloc (BENCHMARKS.md).
/// The 20 MiB more peak memory it was measured with were transparent huge
/// pages, which a run now turns off (`wasmpool::keep_to_small_pages`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
