//! Where `wasmpool run` reads its inputs: a JSON array given on the command
//! line, or a JSONL file (or stdin) read lazily, one input per line.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::value::RawValue;

/// One input, numbered in order; an input that is not JSON keeps its text
/// and the reason, so that it gets a record of its own.
///
/// A valid input is kept as its JSON text, checked but not parsed into a
/// tree: the task gets it as written (numbers beyond `f64` and all) and the
/// record echoes it without a second encoding.
pub(crate) struct Input {
    pub(crate) index: usize,
    /// The 1-based line it came from, for inputs read from a file.
    pub(crate) line: Option<usize>,
    pub(crate) value: Result<Box<RawValue>, Invalid>,
}

/// An input line that could not be used.
pub(crate) struct Invalid {
    pub(crate) text: String,
    pub(crate) reason: String,
}

pub(crate) fn from_json_array(text: &str) -> anyhow::Result<Box<dyn Iterator<Item = Input>>> {
    let value: &RawValue = serde_json::from_str(text)
        .context("--inputs is not valid JSON: give a JSON array, e.g. --inputs '[3, 5, 10]'")?;
    // Each element keeps its text, as a line of an input file does.
    let Ok(values) = serde_json::from_str::<Vec<Box<RawValue>>>(value.get()) else {
        bail!("--inputs must be a JSON array of inputs, e.g. --inputs '[3, 5, 10]'");
    };
    Ok(Box::new(values.into_iter().enumerate().map(
        |(index, value)| Input {
            index,
            line: None,
            value: Ok(value),
        },
    )))
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if path == Path::new("-") {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let file = File::open(path)
            .with_context(|| format!("cannot open the input file {}", path.display()))?;
        Box::new(BufReader::new(file))
    })
}

/// One string input per line of text (`--lines`); empty lines too, since
/// an empty line is an input like any other for a text program.
pub(crate) fn from_lines(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = Input>>> {
    let inputs = open(path)?.lines().enumerate().map(|(number, line)| Input {
        index: number,
        line: Some(number + 1),
        value: line.map(|text| raw(&text)).map_err(|error| Invalid {
            text: String::new(),
            reason: format!("line {} cannot be read: {error}", number + 1),
        }),
    });
    Ok(Box::new(inputs))
}

pub(crate) fn from_jsonl(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = Input>>> {
    let reader = open(path)?;
    let mut index = 0;
    let inputs = reader
        .lines()
        .enumerate()
        .filter_map(move |(number, line)| {
            let line_number = number + 1;
            let value = match line {
                Ok(text) if text.trim().is_empty() => return None,
                Ok(text) => serde_json::from_str(&text).map_err(|error| Invalid {
                    reason: format!("line {line_number} is not JSON: {error}"),
                    text,
                }),
                Err(error) => Err(Invalid {
                    text: String::new(),
                    reason: format!("line {line_number} cannot be read: {error}"),
                }),
            };
            let input = Input {
                index,
                line: Some(line_number),
                value,
            };
            index += 1;
            Some(input)
        });
    Ok(Box::new(inputs))
}

/// The JSON text of a value.
pub(crate) fn raw(value: &(impl serde::Serialize + ?Sized)) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value or string serialises")
}
