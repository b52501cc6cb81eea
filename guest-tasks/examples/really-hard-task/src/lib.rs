//! The seed's `really_hard_task`: draw a random float, sleep two seconds,
//! print what was done and return the float. It reports its progress every
//! half second, which `wasmpool run` shows on its progress bar.

use std::time::Duration;

fn really_hard_task(some_parameter: i64) -> f64 {
    let result = random_unit();
    const STEPS: u32 = 4;
    for step in 1..=STEPS {
        std::thread::sleep(Duration::from_millis(500));
        wasmpool_guest::report_progress(f64::from(step) / f64::from(STEPS));
    }
    println!("finished task crunching {some_parameter} with result {result:.2}");
    result
}

/// A uniform float in [0, 1) from the host's random source (`wasi:random`).
fn random_unit() -> f64 {
    let bits = getrandom::u64().expect("the host provides wasi:random");
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

wasmpool_guest::task!(really_hard_task);
