//! Deterministic randomness: with a run seed S, task k gets random sources
//! seeded from (S, k) alone, so a run repeats exactly whatever the worker
//! count or the order in which tasks happen to run.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng, TryRng};

/// SplitMix64's finaliser: a bijective mix, so distinct inputs never share
/// an output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of task `key` in a run seeded with `seed`.
pub(crate) fn derive(seed: u64, key: u64) -> u64 {
    mix(mix(seed).wrapping_add(mix(key ^ 0x9e37_79b9_7f4a_7c15)))
}

/// A 128-bit value derived from a task's seed (WASI's insecure seed).
pub(crate) fn derive_u128(task_seed: u64) -> u128 {
    (u128::from(mix(task_seed ^ 2)) << 64) | u128::from(mix(task_seed ^ 3))
}

/// One of a task's random streams.
pub(crate) fn rng(task_seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(mix(task_seed ^ stream.wrapping_mul(0xd6e8_feb8_6659_fd93)))
}

/// A random stream whose state the host can reseed between tasks: a kept
/// instance's WASI context is built once, its seed changes with each task.
#[derive(Clone)]
pub(crate) struct SharedRng(Arc<Mutex<StdRng>>);

impl SharedRng {
    fn reseed(&self, rng: StdRng) {
        *crate::data::lock(&self.0) = rng;
    }

    fn with<T>(&mut self, draw: impl FnOnce(&mut StdRng) -> T) -> T {
        draw(&mut crate::data::lock(&self.0))
    }
}

impl TryRng for SharedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.with(|rng| rng.next_u32()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.with(|rng| rng.next_u64()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.with(|rng| rng.fill_bytes(dst));
        Ok(())
    }
}

/// The random sources of a seeded run's task.
pub(crate) struct TaskRngs {
    pub(crate) secure: SharedRng,
    pub(crate) insecure: SharedRng,
    /// WASI's insecure seed is fixed per instance; it derives from the run.
    pub(crate) insecure_seed: u128,
}

impl TaskRngs {
    pub(crate) fn new(run_seed: u64) -> TaskRngs {
        let shared = || SharedRng(Arc::new(Mutex::new(rng(run_seed, 0))));
        TaskRngs {
            secure: shared(),
            insecure: shared(),
            insecure_seed: derive_u128(mix(run_seed)),
        }
    }

    /// 32 bytes to seed a guest's own generator with, for task `task_seed`:
    /// a stream of their own, so that what the guest drew from the others
    /// does not move them.
    pub(crate) fn seed_bytes(task_seed: u64) -> Vec<u8> {
        let mut bytes = vec![0; 32];
        rng(task_seed, 2).fill_bytes(&mut bytes);
        bytes
    }

    /// Points both streams at task `task_seed`'s sequences.
    pub(crate) fn reseed(&self, task_seed: u64) {
        self.secure.reseed(rng(task_seed, 0));
        self.insecure.reseed(rng(task_seed, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_depend_on_both_the_run_seed_and_the_key() {
        assert_eq!(derive(1, 2), derive(1, 2));
        assert_ne!(derive(1, 2), derive(1, 3));
        assert_ne!(derive(1, 2), derive(2, 2));
        assert_ne!(derive(0, 0), 0);
    }
}
