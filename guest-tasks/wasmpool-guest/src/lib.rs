//! Write wasmpool tasks as plain Rust functions.
//!
//! A task is one function from an input to an output, plus one macro line:
//!
//! ```ignore
//! fn really_hard_task(some_parameter: i64) -> f64 {
//!     some_parameter as f64 / 2.0
//! }
//!
//! wasmpool_guest::task!(really_hard_task);
//! ```
//!
//! Built for `wasm32-wasip2` as a `cdylib` (`wasmpool build DIR` does that),
//! the crate becomes a component of the `wasmpool:task` world. The input
//! arrives as JSON and is decoded into the function's parameter type; the
//! return value goes back as JSON. Anything serde can read or write works,
//! tuples and structs included.
//!
//! - An input that does not decode fails the task as a `guest-error` carrying
//!   serde's message, without calling the function.
//! - A function that can fail returns `Result<T, E>` with `E: Display` and is
//!   exported with [`try_task!`]: `Err(e)` becomes a `guest-error` with
//!   `e.to_string()` as its message.
//! - A panic is reported to the host with its message before the guest
//!   aborts, so the host sees a `panic` with that message, not a bare trap.
//! - [`report_progress`] tells the host how far a long task has come.
//!
//! What a task prints on stdout and stderr is captured by the host and handed
//! back with the result (stdout is flushed after each input, so a last line
//! without a newline is not lost).
//!
//! The macros also export `run-batch`: when the host reuses instances it
//! hands a run of inputs to one call, and [`run_batch`] runs them one by one.

#![deny(missing_docs)]

extern crate self as wasmpool_guest;

/// Bindings generated from the `wasmpool:task` WIT package.
///
/// Use them directly to write a task on raw bytes instead of JSON: implement
/// [`bindings::Guest`] (its `run_batch` is one line:
/// `wasmpool_guest::run_batch(Self::run)`) and export it with
/// `wasmpool_guest::bindings::export_task!`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        // The crate's own copy of `wit/task.wit` (a test keeps the two the
        // same), so that the SDK builds wherever it is copied.
        path: "wit",
        world: "batch-task",
        pub_export_macro: true,
        export_macro_name: "export_task",
        default_bindings_module: "wasmpool_guest::bindings",
        runtime_path: "wasmpool_guest::__private::rt",
    });
}

use std::fmt::Display;
use std::io::Write;
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Tells the host how far the running task has come, from 0.0 to 1.0.
///
/// The host keeps the latest value; calling this often is cheap but not free
/// (it crosses into the host), so once per percent is plenty.
pub fn report_progress(fraction: f64) {
    bindings::wasmpool::task::host::report_progress(fraction);
}

/// Runs the inputs of a `run-batch` call one by one through `run`, the
/// task's own entry point: the whole of `run-batch` for a task on raw bytes.
pub fn run_batch(mut run: impl FnMut(Vec<u8>) -> Result<Vec<u8>, String>) {
    use bindings::wasmpool::task::host;
    let mut next = host::next_input();
    while let Some(input) = next {
        let outcome = run(input);
        next = host::finish_and_next_input(
            outcome.as_ref().map(Vec::as_slice).map_err(String::as_str),
        );
    }
}

/// Exports a function `fn(I) -> O` as the task, with `I: Deserialize` and
/// `O: Serialize`.
///
/// ```ignore
/// fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
/// wasmpool_guest::task!(fib);
/// ```
#[macro_export]
macro_rules! task {
    ($function:path) => {
        $crate::__export_json_task!($crate::__private::run_json, $function);
    };
}

/// Exports a function `fn(I) -> Result<O, E>` as the task, with
/// `E: Display`: `Err(e)` fails the task as a `guest-error` whose message is
/// `e.to_string()`.
///
/// ```ignore
/// fn parse(text: String) -> Result<i64, std::num::ParseIntError> { text.parse() }
/// wasmpool_guest::try_task!(parse);
/// ```
#[macro_export]
macro_rules! try_task {
    ($function:path) => {
        $crate::__export_json_task!($crate::__private::try_run_json, $function);
    };
}

#[doc(hidden)]
#[macro_export]
#[rustfmt::skip] // rustfmt cannot parse `with_types_in` and misplaces that line
macro_rules! __export_json_task {
    ($adapter:path, $function:path) => {
        const _: () = {
            struct JsonTask;

            impl $crate::bindings::Guest for JsonTask {
                fn run(
                    input: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    $adapter(&input, $function)
                }

                fn run_batch() {
                    $crate::run_batch(<Self as $crate::bindings::Guest>::run);
                }
            }

            $crate::bindings::export_task!(JsonTask with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen::rt;

    use super::*;

    /// Decodes the input, calls the task, encodes the output.
    pub fn run_json<I, O>(input: &[u8], task: impl FnOnce(I) -> O) -> Result<Vec<u8>, String>
    where
        I: DeserializeOwned,
        O: Serialize,
    {
        try_run_json(input, |value| {
            Ok::<O, std::convert::Infallible>(task(value))
        })
    }

    /// Like [`run_json`], for a task that returns `Result<O, E>`.
    pub fn try_run_json<I, O, E>(
        input: &[u8],
        task: impl FnOnce(I) -> Result<O, E>,
    ) -> Result<Vec<u8>, String>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Display,
    {
        install_panic_hook();
        let value: I =
            serde_json::from_slice(input).map_err(|error| format!("invalid input: {error}"))?;
        let output = task(value).map_err(|error| error.to_string());
        // What the task printed without a newline would otherwise wait in
        // the buffer: lost with the instance, or printed by the next task.
        let _ = std::io::stdout().flush();
        serde_json::to_vec(&output?).map_err(|error| format!("cannot encode the output: {error}"))
    }
}

/// Reports every panic to the host before the guest aborts.
///
/// Tasks are built with `panic = "abort"`, so a panic ends in a trap whose
/// message would otherwise be lost. The hook also prints the usual
/// `panicked at` line to stderr, which the host captures.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            match info.location() {
                Some(at) => eprintln!("task panicked at {at}:\n{message}"),
                None => eprintln!("task panicked:\n{message}"),
            }
            bindings::wasmpool::task::host::report_panic(&message);
        }));
    });
}
