//! Arbitrary bytes as a task: raw bytes (as a component, a core module or
//! neither), and core modules from wasm-smith, half of them shaped as WASI
//! command programs (a `_start`, WASI preview 1 imports to call with
//! arbitrary arguments). What loads runs under tight limits: 1 s, 16 MiB
//! of memory, a million units of fuel, 64 KiB of output.
//!
//! Loading must give a task or a typed `LoadError`; running must give an
//! output or a typed `TaskError`, never `internal` (a host bug), and the
//! pool must go on.
//!
//! Bound: no single allocation over 256 MiB (compiling is the largest
//! user).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use wasmpool::{ErrorKind, Pool};
use wasmpool_fuzz::Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded::new();

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::builder()
            .workers(1)
            .timeout(Duration::from_secs(1))
            .max_memory(16 << 20)
            .fuel(1_000_000)
            .max_output(64 << 10)
            .build()
            .expect("a pool")
    })
}

/// A module that exports what a WASI command exports.
const COMMAND_EXPORTS: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")))"#;

/// What WASI preview 1 a command may import, as wasm-smith reads it.
const WASI_IMPORTS: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#;

fn smith_config(u: &mut Unstructured<'_>, command: bool) -> arbitrary::Result<wasm_smith::Config> {
    let mut config: wasm_smith::Config = u.arbitrary()?;
    // What a pool's engine runs: no threads, no 64-bit memories.
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.memory64_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.max_memories = config.max_memories.min(1);
    config.min_memories = config.min_memories.min(1);
    config.max_memory32_bytes = config.max_memory32_bytes.min(64 << 20);
    if command {
        config.exports = Some(wat::parse_str(COMMAND_EXPORTS).expect("valid"));
        config.available_imports = Some(wat::parse_str(WASI_IMPORTS).expect("valid"));
    }
    Ok(config)
}

fuzz_target!(
    init: ALLOCATOR.set(256 << 20),
    |data: &[u8]| {
        let mut u = Unstructured::new(data);
        let Ok(shape) = u.int_in_range(0..=2u8) else { return };
        // Raw bytes take the rest of the data (so that a seed is a zero
        // byte and a file) and run with no input.
        let (bytes, input) = match shape {
            0 => (u.take_rest().to_vec(), Vec::new()),
            _ => {
                let Ok(config) = smith_config(&mut u, shape == 2) else { return };
                let Ok(module) = wasm_smith::Module::new(config, &mut u) else { return };
                (module.to_bytes(), u.arbitrary().unwrap_or_default())
            }
        };
        let task = match pool().load_bytes(&bytes) {
            Ok(task) => task,
            Err(error) => {
                assert!(!error.message().is_empty());
                return;
            }
        };
        let result = pool().submit(&task, input).expect("the pool is open").wait();
        if let Err(error) = result {
            assert_ne!(error.kind(), ErrorKind::Internal, "a host failure: {error}");
        }
    }
);
