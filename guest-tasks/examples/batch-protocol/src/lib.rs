//! A task on raw bytes that drives `run-batch` by hand, for the host's side
//! of the batch protocol: it echoes each input, finishing it with
//! `finish-input` and taking the next with `next-input` (two calls, as
//! guests built with earlier SDKs do), and on request it breaks the
//! protocol:
//!
//! - `"skip-finish"`: takes the next input without finishing this one;
//! - `"return"`: returns from `run-batch` without finishing this one.
//!
//! Run alone (through `run`, as a run of one input is), those two fail
//! with `ran alone`: there is no protocol to break.

use wasmpool_guest::bindings::{self, wasmpool::task::host};

struct Protocol;

impl bindings::Guest for Protocol {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, String> {
        match input.as_slice() {
            b"\"skip-finish\"" | b"\"return\"" => Err("ran alone".to_string()),
            _ => Ok(input),
        }
    }

    fn run_batch() {
        while let Some(input) = host::next_input() {
            match input.as_slice() {
                b"\"skip-finish\"" => continue,
                b"\"return\"" => return,
                _ => host::finish_input(Ok(&input)),
            }
        }
    }
}

bindings::export_task!(Protocol with_types_in bindings);
