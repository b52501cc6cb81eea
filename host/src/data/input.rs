//! One task's input: its bytes, and optionally its own limits and the key
//! its random seed is derived from.

use bytes::Bytes;

use crate::data::limits::Limits;

/// The input of one task. Anything byte-like converts into it (`&str`,
/// `String`, `Vec<u8>`, `&[u8]`); build one explicitly to give a task its
/// own [`Limits`] or seed key.
///
/// ```
/// use std::time::Duration;
/// use wasmpool::{Input, Limits};
///
/// let input = Input::new("30")
///     .limits(Limits::new().timeout(Duration::from_secs(5)))
///     .seed_key(7);
/// # let _ = input;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Shared, not copied, with the message it came in on a cluster's
    /// worker rank.
    pub(crate) bytes: Bytes,
    pub(crate) limits: Option<Limits>,
    pub(crate) seed_key: Option<u64>,
}

impl Input {
    /// An input with the pool's default limits.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Input {
        Input::shared(Bytes::from(bytes.into()))
    }

    pub(crate) fn shared(bytes: Bytes) -> Input {
        Input {
            bytes,
            limits: None,
            seed_key: None,
        }
    }

    /// Runs this task with `limits` instead of the pool's.
    pub fn limits(mut self, limits: Limits) -> Input {
        self.limits = Some(limits);
        self
    }

    /// In a pool with a seed, this task's random source is seeded from
    /// (pool seed, `key`). Without it the key is the input's position in a
    /// `map`, or the task's id for `submit`.
    pub fn seed_key(mut self, key: u64) -> Input {
        self.seed_key = Some(key);
        self
    }

    /// The input's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key its seed derives from: the one given, else its `position` in
    /// a map, else the task's `id`. A pool and a cluster use the same rule,
    /// so that a seeded run draws the same numbers on both.
    pub(crate) fn seed_key_or(&self, position: Option<u64>, id: u64) -> u64 {
        self.seed_key.or(position).unwrap_or(id)
    }
}

impl From<Vec<u8>> for Input {
    fn from(bytes: Vec<u8>) -> Input {
        Input::new(bytes)
    }
}

impl From<&[u8]> for Input {
    fn from(bytes: &[u8]) -> Input {
        Input::new(bytes)
    }
}

impl From<String> for Input {
    fn from(text: String) -> Input {
        Input::new(text)
    }
}

impl From<&String> for Input {
    fn from(text: &String) -> Input {
        Input::new(text.as_bytes())
    }
}

impl From<&str> for Input {
    fn from(text: &str) -> Input {
        Input::new(text)
    }
}

/// One task of a queued job: its number, its place in its map, its input
/// and the key of its random seed. The input stays apart from what runs
/// it, so that a refused job can hand it back.
pub(crate) struct QueuedTask {
    /// The task's number in its pool.
    pub(crate) id: u64,
    /// The task's position in its map, if a map submitted it.
    pub(crate) index: Option<u64>,
    pub(crate) input: Bytes,
    /// The key of the task's random seed.
    pub(crate) seed_key: u64,
}
