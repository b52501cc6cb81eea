//! CPU-bound kernels as a task: `{"kernel": "sha256", "size": 1048576}`
//! hashes a generated buffer and returns the hex digest;
//! `{"kernel": "nbody", "steps": 100000}` returns the system's energy.

mod kernels;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "kernel", rename_all = "kebab-case")]
enum Kernel {
    Sha256 { size: usize },
    Nbody { steps: u32 },
}

fn run(kernel: Kernel) -> String {
    match kernel {
        Kernel::Sha256 { size } => kernels::sha256(&kernels::buffer(size))
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
        Kernel::Nbody { steps } => format!("{:.9}", kernels::nbody(steps)),
    }
}

wasmpool_guest::task!(run);
