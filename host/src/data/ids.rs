//! Hash maps keyed by the ids this crate hands out in sequence (job ids, a
//! map's input indices), with a one-multiplication hash.
//!
//! The standard SipHash guards against keys an adversary picks, which
//! these are not; on the paths that insert and remove an entry per task
//! it was a measurable share of rank 0's time on tiny tasks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from sequential ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// 2^64 divided by the golden ratio: multiplying by it spreads sequential
/// ids over both the low bits (the table's bucket) and the high bits (its
/// tag byte).
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0.rotate_left(5) ^ id).wrapping_mul(SPREAD);
    }

    fn write_usize(&mut self, id: usize) {
        self.write_u64(id as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_land_in_distinct_buckets_and_tags() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (0..1024u64).map(|id| build.hash_one(id)).collect();
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        assert_eq!(buckets.len(), 1024);
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128);
    }
}
