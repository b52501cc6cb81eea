//! `--format text`: what `parallel` and `xargs` users read. Each task's
//! output goes to stdout as the task wrote it, whole, in input order (or
//! as tasks finish, with `--unordered`); what went wrong goes to stderr,
//! one line per failed input naming it and its error kind. The records,
//! if wanted, go to `--output` beside it.

use std::io::Write;

use wasmpool::TaskResult;

use super::record::Record;

/// What a task puts on stdout: a command program's output as it wrote it
/// (also when it failed); a task component's result, one per line, and
/// nothing when it failed.
pub(crate) fn stdout_of(result: &TaskResult, text_io: bool, out: &mut Vec<u8>) {
    match result {
        Ok(output) => {
            out.extend_from_slice(output.value());
            if !text_io && !output.value().ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        Err(error) if text_io => out.extend_from_slice(error.stdout().as_bytes()),
        Err(_) => {}
    }
}

/// What a task puts on stderr, in one write: what it wrote there (a task
/// component's prints too, which are no part of its result), then, if it
/// failed, a line naming its input and why.
pub(crate) fn stderr_of(record: &Record, result: Option<&TaskResult>, text_io: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(result) = result {
        let (stdout, stderr) = match result {
            Ok(output) => (output.stdout(), output.stderr()),
            Err(error) => (error.stdout(), error.stderr()),
        };
        if !text_io {
            out.extend_from_slice(stdout.as_bytes());
        }
        out.extend_from_slice(stderr.as_bytes());
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    if let Some(error) = &record.error {
        let line = record
            .line
            .map_or(String::new(), |line| format!(" (line {line})"));
        let exit = error
            .exit_code
            .map_or(String::new(), |code| format!(" {code}"));
        let message = error.message.lines().next().unwrap_or_default();
        let _ = writeln!(
            out,
            "wasmpool: input {}{line} {}: {}{exit}: {message}",
            record.index,
            shortened(record.input.get()),
            error.kind,
        );
    }
    out
}

/// An input as a failure line shows it: its JSON text, cut short.
fn shortened(text: &str) -> String {
    const MOST: usize = 80;
    match text.char_indices().nth(MOST) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
