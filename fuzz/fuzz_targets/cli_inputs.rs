//! The CLI's readers of what a user hands it: an input file as JSONL or as
//! `--lines`, `--inputs` as a JSON array, and an existing records file read
//! by `--resume` (torn last line included). The readers are the binary's
//! own modules, compiled in here as they are.
//!
//! Each must take any bytes: every line becomes exactly one input (valid
//! or an invalid one with its reason), numbered in order, and a records
//! file gives its indices or the number of its first line that is not a
//! record.
//!
//! Bound: no single allocation over 16 MiB (the inputs are a few KiB).

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use wasmpool_fuzz::Bounded;

#[path = "../../host/src/cli/inputs.rs"]
#[allow(dead_code)]
mod inputs;
#[path = "../../host/src/cli/resume.rs"]
#[allow(dead_code)]
mod resume;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded::new();

fuzz_target!(
    init: ALLOCATOR.set(16 << 20),
    |data: &[u8]| {
        let lines = if data.is_empty() {
            0
        } else {
            data.split(|&byte| byte == b'\n').count() - usize::from(data.ends_with(b"\n"))
        };

        // --lines: one input per line, blank ones too, each a JSON string.
        let mut count = 0;
        for (expected, input) in inputs::lines_of(Cursor::new(data.to_vec())).enumerate() {
            assert_eq!((input.index, input.line), (expected, Some(expected + 1)));
            if let Ok(value) = &input.value {
                assert!(serde_json::from_str::<String>(value.get()).is_ok());
            }
            count += 1;
        }
        assert_eq!(count, lines);

        // JSONL: one input per line that is not blank, numbered without
        // gaps; a record of each valid one, its input as written, resumes.
        let mut records = String::new();
        let mut digests = Vec::new();
        let mut count = 0;
        let mut last_line = 0;
        for (expected, input) in inputs::jsonl_of(Cursor::new(data.to_vec())).enumerate() {
            assert_eq!(input.index, expected);
            let line = input.line.expect("a line number");
            assert!(line > last_line && line <= lines);
            last_line = line;
            match &input.value {
                Ok(value) => {
                    records.push_str(&format!("{{\"index\":{},\"input\":{}}}\n", input.index, value.get()));
                    digests.push((input.index as u64, resume::input_digest(value.get())));
                }
                Err(invalid) => assert!(invalid.reason.starts_with(&format!("line {line} "))),
            }
            count += 1;
        }
        assert!(count <= lines);
        let resumed = resume::records_in(records.as_bytes()).expect("the records of valid inputs resume");
        assert_eq!(resumed.len(), records.lines().count());
        // Each record's input reads back as the input it was written from.
        for (index, digest) in digests {
            assert_eq!(resumed[&index], digest);
        }

        // --inputs: a JSON array, element by element.
        if let Ok(text) = std::str::from_utf8(data) {
            match inputs::from_json_array(text) {
                Ok(items) => {
                    let parsed: Vec<Box<serde_json::value::RawValue>> =
                        serde_json::from_str(text).unwrap();
                    assert_eq!(items.count(), parsed.len());
                }
                Err(error) => assert!(error.to_string().starts_with("--inputs ")),
            }
        }

        // --resume: whole lines only, then each line a record with an index.
        let whole = resume::whole_lines(data);
        assert!(whole == 0 || data[whole - 1] == b'\n');
        assert!(!data[whole..].contains(&b'\n'));
        match resume::records_in(&data[..whole]) {
            Ok(indices) => assert!(indices.len() <= lines),
            Err(number) => assert!(number >= 1 && number <= lines),
        }
    }
);
