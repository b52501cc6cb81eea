//! What a task wrote to stdout or stderr, as kept: the first bytes, up to
//! a limit, and whether more was dropped.

/// What a task wrote to one output stream, up to the pool's capture limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    /// Nothing written.
    pub(crate) const EMPTY: Captured = Captured {
        bytes: Vec::new(),
        truncated: false,
    };

    #[cfg(any(feature = "mpi", feature = "fuzzing", test))]
    pub(crate) fn new(bytes: Vec<u8>, truncated: bool) -> Captured {
        Captured { bytes, truncated }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes kept, as text (invalid UTF-8 is replaced).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// Whether the task wrote more than the limit and the rest was dropped.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.truncated
    }

    /// Appends what of `bytes` fits under `limit` bytes in all, and marks
    /// the capture truncated if any was dropped.
    pub(crate) fn append_within(&mut self, bytes: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.bytes.len());
        let kept = bytes.len().min(room);
        self.bytes.extend_from_slice(&bytes[..kept]);
        if kept < bytes.len() {
            self.truncated = true;
        }
    }
}
