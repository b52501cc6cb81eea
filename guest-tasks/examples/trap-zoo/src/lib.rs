//! A task that fails on demand: the input names the fault.
//!
//! | input            | what the guest does                        | expected kind    |
//! |------------------|--------------------------------------------|------------------|
//! | `"ok"`           | returns `"ok"`                             | (success)        |
//! | `"panic"`        | a Rust panic with a message                | `panic`          |
//! | `"unreachable"`  | the wasm `unreachable` instruction         | `trap`           |
//! | `"oob"`          | an out-of-bounds memory load               | `trap`           |
//! | `"abort"`        | `std::process::abort()`                    | `trap`           |
//! | `"stack-overflow"` | unbounded recursion                      | `stack-overflow` |
//! | `"exit"`         | `std::process::exit(3)`                    | `exit`           |
//! | `"error"`        | returns `Err`                              | `guest-error`    |
//! | `"loop"`         | never returns                              | (needs a timeout) |
//! | `"memory-bomb"`  | allocates until allocation fails           | (needs a memory cap) |
//! | `"deep"`         | recursion 20,000 calls deep, then returns  | `stack-overflow` on the default 512 KiB stack; fine on 8 MiB |
//! | `"chatty"`       | prints about 3 MB to stdout, returns `"ok"` | (success, output truncated) |
//! | `"unfinished-line"` | prints `no newline` without a newline, returns `"ok"` | (success) |

use std::hint::black_box;

fn fault(name: String) -> Result<String, String> {
    match name.as_str() {
        "ok" => Ok("ok".to_string()),
        "panic" => panic!("the task panicked on purpose"),
        "unreachable" => core::arch::wasm32::unreachable(),
        "oob" => {
            // Linear memory is far smaller than 4 GiB: this load is outside it.
            let address = black_box(0xFFFF_FFF0usize) as *const u64;
            #[allow(unsafe_code)]
            let value = unsafe { address.read_volatile() };
            Ok(value.to_string())
        }
        "abort" => std::process::abort(),
        "stack-overflow" => Ok(recurse(0).to_string()),
        "deep" => Ok(recurse_to(20_000).to_string()),
        "exit" => std::process::exit(3),
        "error" => Err("the task returned an error on purpose".to_string()),
        "loop" => {
            let mut spins = 0u64;
            loop {
                spins = black_box(spins.wrapping_add(1));
            }
        }
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                black_box(&hoard);
            }
        }
        "chatty" => {
            for line in 0..100_000 {
                println!("chatty line {line:>6} of 100000");
            }
            Ok("ok".to_string())
        }
        "unfinished-line" => {
            print!("no newline");
            Ok("ok".to_string())
        }
        other => Err(format!("unknown fault {other:?}")),
    }
}

/// Recursion the optimiser cannot turn into a loop: the work after the call
/// keeps every frame alive until the wasm stack runs out.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    1 + recurse(depth + 1).wrapping_mul(black_box(3))
}

/// Like [`recurse`], but stops at `depth`.
fn recurse_to(depth: u64) -> u64 {
    if black_box(depth) == 0 {
        return 0;
    }
    1 + recurse_to(depth - 1).wrapping_mul(black_box(3))
}

wasmpool_guest::try_task!(fault);
