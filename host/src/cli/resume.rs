//! `--resume`: which inputs already have a record in the output file.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::Path;

use anyhow::Context;

/// The indices recorded in `path` (none if it does not exist). A last line
/// cut short, by a kill in the middle of a write, is cut off the file so
/// that appending goes on from a whole line.
pub(crate) fn recorded_indices(path: &Path) -> anyhow::Result<HashSet<u64>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {} to resume", path.display()));
        }
    };
    let whole = whole_lines(&bytes);
    if whole < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| file.set_len(whole as u64))
            .with_context(|| format!("cannot cut the partial last line of {}", path.display()))?;
    }
    indices_in(&bytes[..whole]).map_err(|number| {
        anyhow::anyhow!(
            "line {number} of {} is not a wasmpool record: cannot resume from this file",
            path.display()
        )
    })
}

/// What `--resume` reads of a record: its index. The rest is skipped
/// unread, so that any input a run accepted (a number beyond `f64`'s range
/// among them, kept as written) resumes.
#[derive(serde::Deserialize)]
struct Recorded {
    index: u64,
}

/// How many of `bytes` are whole lines: a last line without its newline
/// was cut short.
pub(crate) fn whole_lines(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |end| end + 1)
}

/// The indices of the records in `whole` (whole lines), or the 1-based
/// number of the first line that is not a record.
pub(crate) fn indices_in(whole: &[u8]) -> Result<HashSet<u64>, usize> {
    let mut indices = HashSet::new();
    for (number, line) in whole.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Recorded>(line) {
            Ok(record) => {
                indices.insert(record.index);
            }
            Err(_) => return Err(number + 1),
        }
    }
    Ok(indices)
}
