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
    // wasmtime's errors capture a native backtrace when RUST_BACKTRACE is
    // set, unless RUST_LIB_BACKTRACE says otherwise, and a command
    // program's ordinary exit travels as such an error: with
    // RUST_BACKTRACE=1, 20,000 runs of a C program took 1.0 s instead of
    // 0.5 (BENCHMARKS.md). wasmpool never prints those backtraces; panics
    // keep theirs. A RUST_LIB_BACKTRACE of the user's own is left alone.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet to read the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
    cli::main()
}
