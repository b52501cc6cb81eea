//! Deterministic randomness: with a run seed S, task k gets random sources
//! seeded from (S, k) alone, so a run repeats exactly whatever the worker
//! count or the order in which tasks happen to run.

use rand::SeedableRng;
use rand::rngs::StdRng;

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
