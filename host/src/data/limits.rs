//! What a task may use: time, memory, fuel, retries, and what of the host it
//! may see (nothing unless granted).

use std::path::PathBuf;
use std::time::Duration;

/// The resource limits of a task. A pool has default limits (set on its
/// builder); [`Input::limits`](crate::Input::limits) overrides them for one
/// task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Wall time a task may run, from instantiation to the end of `run`;
    /// past it the task is stopped and fails as
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), whether it computes
    /// or waits in a host call (a sleep, say). `None`: no limit. Needs a
    /// pool that can stop running wasm (the default; see
    /// [`PoolBuilder::interruptible`](crate::PoolBuilder::interruptible)).
    pub timeout: Option<Duration>,
    /// Bytes of linear memory a task may grow to; a growth past it is
    /// refused and the task fails as
    /// [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit). `None`: no
    /// limit but wasm32's own 4 GiB.
    pub max_memory: Option<usize>,
    /// A deterministic CPU budget, in wasmtime fuel units (about one per
    /// wasm instruction); a task that uses it up fails as
    /// [`ErrorKind::FuelExhausted`](crate::ErrorKind::FuelExhausted). Needs a
    /// pool built with [`PoolBuilder::fuel`](crate::PoolBuilder::fuel).
    pub fuel: Option<u64>,
    /// How many times to run a task again after it failed with a `trap`,
    /// `timeout` or `memory-limit` (0: never).
    pub retries: u32,
}

impl Limits {
    /// No limits, no retries.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Sets [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Limits {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`Limits::max_memory`].
    pub fn max_memory(mut self, bytes: usize) -> Limits {
        self.max_memory = Some(bytes);
        self
    }

    /// Sets [`Limits::fuel`].
    pub fn fuel(mut self, fuel: u64) -> Limits {
        self.fuel = Some(fuel);
        self
    }

    /// Sets [`Limits::retries`].
    pub fn retries(mut self, retries: u32) -> Limits {
        self.retries = retries;
        self
    }
}

/// A host directory a task may see, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirGrant {
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) writable: bool,
}

/// What of the host every task of a pool may see; by default nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grants {
    pub(crate) dirs: Vec<DirGrant>,
    pub(crate) env: Vec<(String, String)>,
}
