//! `--resume`: which inputs already have a record in the output file, and
//! what each of those inputs was.

use std::fs::OpenOptions;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde_json::value::RawValue;

/// The records of a file: by index, a digest of the input's JSON text as
/// the record holds it ([`NO_INPUT`] for a record without one), for
/// telling a resumed run's inputs from another run's. Sixteen bytes a
/// record, hashed without SipHash: resuming a million records costs 2%
/// more time than the check of indices alone did (BENCHMARKS.md).
pub(crate) type Recorded = FxHashMap<u64, u64>;

/// The digest of a record without an input: never an input's.
pub(crate) const NO_INPUT: u64 = 0;

/// The digest [`Recorded`] keeps of an input's JSON text: the same text,
/// the same digest. A check against mistakes (another file, an edited
/// line), not against an adversary who writes the records file.
pub(crate) fn input_digest(text: &str) -> u64 {
    FxBuildHasher.hash_one(text) | 1
}

/// The records in `path` (none if it does not exist). A last line
/// cut short, by a kill in the middle of a write, is cut off the file so
/// that appending goes on from a whole line.
pub(crate) fn recorded_inputs(path: &Path) -> anyhow::Result<Recorded> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Recorded::default());
        }
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
    records_in(&bytes[..whole]).map_err(|number| {
        anyhow::anyhow!(
            "line {number} of {} is not a wasmpool record: cannot resume from this file",
            path.display()
        )
    })
}

/// `--retry-failed`: takes out of `path` the records of the inputs to run
/// again, failures of a kind `retried` names, and returns how many. The file is
/// rewritten beside itself and renamed over it, so that it holds, at every
/// moment, either all its records or those kept: one per input, never a
/// failure and its retry both. A last line cut short is dropped.
pub(crate) fn take_failed(path: &Path, retried: impl Fn(&str) -> bool) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "--retry-failed: cannot read the records {}: it needs the file of an earlier run",
            path.display()
        )
    })?;
    let whole = &bytes[..whole_lines(&bytes)];
    let mut kept = Vec::with_capacity(whole.len());
    let mut taken = 0;
    for (number, line) in whole.split_inclusive(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outcome: Outcome<'_> = serde_json::from_slice(line).map_err(|_| {
            anyhow::anyhow!(
                "line {} of {} is not a wasmpool record: cannot retry from this file",
                number + 1,
                path.display()
            )
        })?;
        match outcome.error {
            Some(error) if retried(&error.kind) => taken += 1,
            _ => kept.extend_from_slice(line),
        }
    }
    if taken > 0 {
        let mut beside = path.as_os_str().to_owned();
        beside.push(".retrying");
        let beside = std::path::PathBuf::from(beside);
        let written = std::fs::File::create(&beside).and_then(|mut file| {
            file.write_all(&kept)?;
            file.sync_all()
        });
        written
            .and_then(|()| std::fs::rename(&beside, path))
            .with_context(|| format!("cannot rewrite {} without its failures", path.display()))?;
    }
    Ok(taken)
}

/// What `--retry-failed` reads of a record: the kind of its failure.
#[derive(serde::Deserialize)]
struct Outcome<'a> {
    #[serde(borrow)]
    error: Option<Failure<'a>>,
}

#[derive(serde::Deserialize)]
struct Failure<'a> {
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// What `--resume` reads of a record: its index and its input's text, as
/// written. The rest is skipped unread, so that any input a run accepted
/// (a number beyond `f64`'s range among them, kept as written) resumes.
#[derive(serde::Deserialize)]
struct Record<'a> {
    index: u64,
    /// `None` only when the field is missing: an input of `null` is one.
    #[serde(borrow, default, deserialize_with = "present")]
    input: Option<&'a RawValue>,
}

/// A field that is there, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// How many of `bytes` are whole lines: a last line without its newline
/// was cut short.
pub(crate) fn whole_lines(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |end| end + 1)
}

/// The records in `whole` (whole lines), or the 1-based number of the
/// first line that is not a record.
pub(crate) fn records_in(whole: &[u8]) -> Result<Recorded, usize> {
    let mut records = Recorded::default();
    for (number, line) in whole.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record<'_>>(line) {
            Ok(record) => {
                let digest = record
                    .input
                    .map_or(NO_INPUT, |input| input_digest(input.get()));
                records.insert(record.index, digest);
            }
            Err(_) => return Err(number + 1),
        }
    }
    Ok(records)
}
