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

pub(crate) fn from_json_array(
    text: &str,
) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
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

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    Ok(if path == Path::new("-") {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let file = File::open(path)
            .with_context(|| format!("cannot open the input file {}", path.display()))?;
        if file.metadata().is_ok_and(|meta| meta.is_dir()) {
            bail!(
                "the input file {} is a directory: give a file, or - for stdin",
                path.display()
            );
        }
        Box::new(BufReader::new(file))
    })
}

/// One string input per line of text (`--lines`); empty lines too, since
/// an empty line is an input like any other for a text program.
pub(crate) fn from_lines(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
    Ok(lines_of(open(path)?))
}

/// `--lines` over what `reader` reads.
pub(crate) fn lines_of(
    reader: impl BufRead + Send + 'static,
) -> Box<dyn Iterator<Item = Input> + Send> {
    let inputs = lines(reader).enumerate().map(|(number, line)| Input {
        index: number,
        line: Some(number + 1),
        value: line.map(|text| raw(&text)).map_err(|error| Invalid {
            text: String::new(),
            reason: format!("line {} cannot be read: {error}", number + 1),
        }),
    });
    Box::new(inputs)
}

pub(crate) fn from_jsonl(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = Input> + Send>> {
    Ok(jsonl_of(open(path)?))
}

/// One JSON input per line of what `reader` reads; blank lines skipped.
pub(crate) fn jsonl_of(
    reader: impl BufRead + Send + 'static,
) -> Box<dyn Iterator<Item = Input> + Send> {
    let mut index = 0;
    let inputs = lines(reader).enumerate().filter_map(move |(number, line)| {
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
    Box::new(inputs)
}

/// How many inputs the regular file at `path` holds, counted up front for
/// the progress bar's total: its lines (`--lines`), or its lines that are
/// not blank (JSONL). `None` for stdin, a pipe or a FIFO, which cannot be
/// read twice, or a file that cannot be read.
pub(crate) fn count(path: &Path, every_line: bool) -> Option<u64> {
    use std::io::Read;
    if path == Path::new("-") || !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut file = File::open(path).ok()?;
    let mut buffer = vec![0; 1 << 16];
    let (mut count, mut line_counts) = (0u64, false);
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                count += u64::from(every_line || line_counts);
                line_counts = false;
            } else if every_line || !byte.is_ascii_whitespace() {
                line_counts = true;
            }
        }
    }
    Some(count + u64::from(line_counts))
}

/// The lines of `reader`, up to and with its first failure to read: a line
/// that is not UTF-8 is one bad line, but a reader that failed (a device
/// error, say) would fail again at every call, for ever.
fn lines(reader: impl BufRead) -> impl Iterator<Item = io::Result<String>> {
    let mut failed = false;
    reader.lines().map_while(move |line| {
        if failed {
            return None;
        }
        failed = line
            .as_ref()
            .is_err_and(|error| error.kind() != io::ErrorKind::InvalidData);
        Some(line)
    })
}

/// The JSON text of a value.
pub(crate) fn raw(value: &(impl serde::Serialize + ?Sized)) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value or string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every read, as a device in error does.
    struct Broken;

    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("device error"))
        }
    }

    #[test]
    fn a_reader_that_keeps_failing_gives_one_bad_input_and_ends() {
        let inputs: Vec<Input> = jsonl_of(BufReader::new(Broken)).take(3).collect();
        assert_eq!(inputs.len(), 1);
        let reason = &inputs[0].value.as_ref().err().unwrap().reason;
        assert_eq!(reason, "line 1 cannot be read: device error");
        assert_eq!(lines_of(BufReader::new(Broken)).take(3).count(), 1);
    }

    #[test]
    fn a_file_is_counted_as_its_reader_reads_it() {
        let dir = std::env::temp_dir().join(format!("wasmpool-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for text in [
            "",
            "1",
            "1\n",
            "1\n\n  \r\n2\n3",
            "\n\n",
            "a\r\nb\r\n",
            " \t\n\"x\"\n",
        ] {
            let path = dir.join("inputs");
            std::fs::write(&path, text).unwrap();
            let open = || BufReader::new(File::open(&path).unwrap());
            let jsonl = jsonl_of(open()).count() as u64;
            let lines = lines_of(open()).count() as u64;
            assert_eq!(count(&path, false), Some(jsonl), "JSONL {text:?}");
            assert_eq!(count(&path, true), Some(lines), "lines {text:?}");
        }
        assert_eq!(count(Path::new("-"), true), None);
        assert_eq!(count(&dir, true), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_line_that_is_not_utf8_is_one_bad_input_among_good_ones() {
        let text: &[u8] = b"1\n\xff\n2\n";
        let inputs: Vec<Input> = jsonl_of(io::Cursor::new(text)).collect();
        assert_eq!(inputs.len(), 3);
        assert!(inputs[1].value.is_err());
        assert!(matches!(&inputs[2].value, Ok(value) if value.get() == "2"));
    }
}
