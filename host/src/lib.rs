//! A pool of sandboxed WebAssembly workers.
//!
//! wasmpool runs many tasks over all cores, like Python's
//! `ProcessPoolExecutor`, but each task runs in a fresh wasmtime instance:
//! a task that traps, panics, exits or returns an error fails alone, with a
//! typed [`TaskError`], and the pool and every other task go on.
//!
//! A task is a WebAssembly component of the `wasmpool:task` world (see
//! `wit/task.wit`), usually written in Rust with the `wasmpool-guest` SDK and
//! built with `wasmpool build`. Unmodified WASI command programs (core
//! modules with `_start`, components exporting `wasi:cli/run`) load too,
//! with stdin as input and stdout as output, and [`LoadOptions::invoke`]
//! calls any exported function of any component with JSON arguments.
//!
//! ```no_run
//! use wasmpool::{ErrorKind, Pool};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder().workers(2).build()?;
//! let task = pool.load("really_hard_task.wasm")?;
//!
//! // Inputs and outputs are bytes; SDK tasks speak JSON.
//! for result in pool.map(&task, ["3", "5", "10", "15"]) {
//!     match result {
//!         Ok(output) => {
//!             let value: f64 = output.json()?;
//!             print!("{}", output.stdout().to_string_lossy());
//!             println!("-> {value} (worker {}, {:?})", output.worker(), output.duration());
//!         }
//!         Err(error) if error.kind() == ErrorKind::Panic => {
//!             eprintln!("the task panicked: {}", error.message());
//!         }
//!         Err(error) => eprintln!("the task failed: {error}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Handles can also be awaited: [`TaskHandle`] is a [`Future`].
//!
//! ```no_run
//! # async fn demo(pool: &wasmpool::Pool, task: &wasmpool::Task) -> Result<(), Box<dyn std::error::Error>> {
//! let handle = pool.submit(task, "30")?;
//! let output = handle.await?;
//! println!("{}", String::from_utf8_lossy(output.value()));
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

// The layers, from the bottom: each imports only from those below it.
//
// 1. `data`: plain data both sides hand each other.
// 2. `wasm` (everything that touches wasmtime) and `sched` (threads,
//    queues, handles, maps), side by side: neither imports the other.
// 3. The glue: `task`, `pool`, `executor` and `cluster` put a wasm program
//    on the scheduler's threads.
mod data;
mod sched;
mod wasm;

#[cfg(feature = "mpi")]
pub mod cluster;
mod executor;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod pool;
pub mod python;
mod task;

pub use data::captured::Captured;
pub use data::error::{BuildError, ErrorKind, LoadError, LoadErrorKind, SubmitError, TaskError};
pub use data::input::Input;
pub use data::limits::Limits;
pub use data::load_options::LoadOptions;
pub use data::metrics::Metrics;
pub use data::output::{TaskOutput, TaskResult};
pub use executor::Executor;
pub use pool::{Pool, PoolBuilder};
pub use sched::handle::TaskHandle;
pub use sched::map::{DEFAULT_ORDER_BUFFER, Map, MapStop, MapUnordered};
pub use sched::stats::Stats;
pub use sched::wait::{AsCompleted, WaitFor, Waited, as_completed, wait, wait_timeout};
pub use task::{Task, TaskKind};
pub use wasm::inspect::{Inspection, MemoryDecl, WasmKind};
/// The trap codes of [`TaskError::trap_code`], from wasmtime.
pub use wasmtime::Trap;

/// Where wasmpool keeps what it can reuse (compiled code, Python builds):
/// `$XDG_CACHE_HOME/wasmpool`, else `~/.cache/wasmpool`; `None` when
/// neither variable is set.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("wasmpool"))
}

/// Turns transparent huge pages off for this process (and what it
/// starts); does nothing outside Linux.
///
/// For a program that runs many tiny tasks with an allocator that asks for
/// huge pages for its heap, as mimalloc does (`MADV_HUGEPAGE`): under the
/// kernel's usual `defrag=madvise`, a fault on such a page may compact
/// memory on the spot. Runs of 10,000 tiny tasks on MPI stalled for tens of
/// milliseconds at a time so, with no result arriving from any rank, and a
/// first cluster map took 35 ms instead of 11 (BENCHMARKS.md). Results and
/// records stream through a small heap; they gain nothing from huge pages.
/// The wasmpool binary calls it before a run.
pub fn keep_to_small_pages() {
    #[cfg(target_os = "linux")]
    {
        // The kernel reads each argument as a whole unsigned long.
        let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: PR_SET_THP_DISABLE takes no pointer; it sets a flag of
        // this process that the kernel reads when it faults a page in.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    }
}
