//! The engine every task of a pool is compiled for: pooled instances,
//! epoch interruption (and the thread that advances the epoch), optional
//! fuel metering and compiled-code cache.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::data::error::BuildError;

/// How often the engine's epoch advances: the granularity of time-outs and
/// of cancelling a running task.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Why a pool that cannot stop running wasm refuses a time-out.
pub(crate) const UNINTERRUPTIBLE_TIMEOUT: &str = "a time-out needs a pool that can stop running wasm: drop interruptible(false) \
     (--no-interrupt) or the time-out";

/// The engine settings a pool chooses.
pub(crate) struct EngineConfig {
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
    /// Bounds-check memory accesses in code instead of with guard pages.
    pub(crate) explicit_bounds_checks: bool,
}

/// An engine configured as `options` say: with the pooling allocator, or,
/// where the address space for its pools cannot be reserved (a tight
/// `ulimit -v`, say), allocating on demand.
pub(crate) fn build(options: &EngineConfig) -> Result<Engine, BuildError> {
    Engine::new(&config(options, true))
        .or_else(|_| Engine::new(&config(options, false)))
        .map_err(|error| BuildError::new(format!("{error:#}")))
}

fn config(options: &EngineConfig, pooled: bool) -> Config {
    let mut config = Config::new();
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
    if options.explicit_bounds_checks {
        // Every access checked in code: no guard pages, so a memory that
        // grew is not shrunk back with mprotect when its slot is reused.
        config.signals_based_traps(false);
        config.memory_guard_size(0);
    }
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

/// Advances the engine's epoch every [`TICK`] while the pool lives.
pub(crate) struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasmpool-ticker".to_string())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped = crate::data::lock(stopped);
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
        *crate::data::lock(stopped) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
