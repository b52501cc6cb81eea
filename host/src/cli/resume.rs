//! `--resume`: which inputs already have a record in the output file.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{Context, bail};

/// The indices recorded in `path` (none if it does not exist). A last line
/// cut short, by a kill in the middle of a write, is cut off the file so
/// that appending goes on from a whole line.
pub(crate) fn recorded_indices(path: &Path) -> anyhow::Result<HashSet<u64>> {
    let mut indices = HashSet::new();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(indices),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {} to resume", path.display()));
        }
    };
    let whole = bytes
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |end| end + 1);
    if whole < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| file.set_len(whole as u64))
            .with_context(|| format!("cannot cut the partial last line of {}", path.display()))?;
    }
    for (number, line) in bytes[..whole].split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let index = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|record| record["index"].as_u64());
        match index {
            Some(index) => {
                indices.insert(index);
            }
            None => bail!(
                "line {} of {} is not a wasmpool record: cannot resume from this file",
                number + 1,
                path.display()
            ),
        }
    }
    Ok(indices)
}
