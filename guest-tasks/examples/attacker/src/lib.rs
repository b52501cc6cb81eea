//! A task that attacks the host on demand: each input names one way a task
//! could hurt the host or the tasks beside it rather than itself. Inputs
//! are JSON strings; `"good-N"` is an honest task that returns `2 * N`.
//!
//! | input | what the guest does | what the host must do |
//! |---|---|---|
//! | `"good-N"` | returns `2 * N` | (success) |
//! | `"huge-result"` | returns 96 MiB | `resource-limit` (`--max-result`, 64 MiB) |
//! | `"huge-error"` | returns an error of 24 MiB | `guest-error`, message cut (`--max-message`) |
//! | `"huge-panic"` | reports a panic message of 24 MiB, then traps | `panic`, message cut |
//! | `"huge-traceback"` | reports a traceback of 24 MiB, then fails | `guest-error`, traceback cut |
//! | `"progress-flood"` | reports progress 250,000 times | (success; each report is one number) |
//! | `"output-flood"` | writes 16 MiB to stdout and to stderr | (success; output truncated at `--max-output`) |
//! | `"forge-results"` | outside a batch, hands the host a result of another input and asks for more inputs | (success with its own value; nothing forged is taken) |
//! | `"leak-handles"` | makes 2,000,000 pollables and drops none | `trap` at the store's handle limit (wasmtime's default, 100,000) |
//! | `"poll-many"` | waits on 10,000 pollables of an hour each | `timeout` |
//! | `"sleep"` | sleeps a minute in a host call | `timeout` |
//! | `"spin"` | computes for ever | `timeout` |

use std::hint::black_box;
use std::io::Write;

use wasip2::clocks::monotonic_clock;
use wasmpool_guest::bindings::wasmpool::task::host;

/// An hour, in the monotonic clock's nanoseconds.
const HOUR: u64 = 3_600_000_000_000;

/// Bytes of the large things an attack hands over: more than the host's
/// default caps, within a 160 MiB memory.
const HUGE_RESULT: usize = 96 << 20;
const HUGE_TEXT: usize = 24 << 20;

struct Attacker;

impl wasmpool_guest::bindings::Guest for Attacker {
    fn run(input: Vec<u8>) -> Result<Vec<u8>, String> {
        let text = String::from_utf8_lossy(&input);
        let name = text.trim().trim_matches('"');
        if let Some(number) = name.strip_prefix("good-") {
            let number: u64 = number
                .parse()
                .map_err(|_| format!("not a number: {number}"))?;
            return Ok((2 * number).to_string().into_bytes());
        }
        match name {
            "huge-result" => Ok(vec![b'7'; HUGE_RESULT]),
            "huge-error" => Err("e".repeat(HUGE_TEXT)),
            "huge-panic" => {
                // What the SDK's panic hook does, with a message of 24 MiB.
                host::report_panic(&"p".repeat(HUGE_TEXT));
                core::arch::wasm32::unreachable()
            }
            "huge-traceback" => {
                host::report_traceback(&"t".repeat(HUGE_TEXT));
                Err("failed with a huge traceback".to_string())
            }
            "progress-flood" => {
                for step in 0..250_000u32 {
                    host::report_progress(f64::from(step) / 250_000.0);
                }
                Ok(b"\"flooded\"".to_vec())
            }
            "output-flood" => {
                let block = vec![b'o'; 1 << 20];
                for _ in 0..16 {
                    std::io::stdout()
                        .write_all(&block)
                        .map_err(|e| e.to_string())?;
                    std::io::stderr()
                        .write_all(&block)
                        .map_err(|e| e.to_string())?;
                }
                Ok(b"\"flooded\"".to_vec())
            }
            "forge-results" => {
                host::finish_input(Ok(b"\"forged\""));
                let stolen = host::next_input();
                host::finish_input(Err("forged failure"));
                Ok(
                    format!("\"own, stole {}\"", stolen.map_or(0, |input| input.len()))
                        .into_bytes(),
                )
            }
            "leak-handles" => {
                for _ in 0..2_000_000 {
                    std::mem::forget(monotonic_clock::subscribe_duration(HOUR));
                }
                Ok(b"\"leaked\"".to_vec())
            }
            "poll-many" => {
                let pollables: Vec<_> = (0..10_000)
                    .map(|_| monotonic_clock::subscribe_duration(HOUR))
                    .collect();
                let ready = wasip2::io::poll::poll(&pollables.iter().collect::<Vec<_>>());
                Ok(format!("{}", ready.len()).into_bytes())
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                Ok(b"\"woke\"".to_vec())
            }
            "spin" => {
                let mut spins = 0u64;
                loop {
                    spins = black_box(spins.wrapping_add(1));
                }
            }
            other => Err(format!("unknown attack {other:?}")),
        }
    }

    fn run_batch() {
        wasmpool_guest::run_batch(Self::run);
    }
}

wasmpool_guest::bindings::export_task!(Attacker with_types_in wasmpool_guest::bindings);
