//! Counts the lines, words and bytes of stdin and prints them like `wc`.
//!
//! An ordinary WASI command program, with no wasmpool in it: built for
//! wasm32-wasip2 it is a command component (it exports `wasi:cli/run`, not
//! the task world's `run`).

use std::io::Read;

fn main() {
    let mut text = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("word-count: cannot read stdin: {error}");
        std::process::exit(1);
    }
    let lines = text.lines().count();
    let words = text.split_whitespace().count();
    println!("{lines} {words} {}", text.len());
}
