//! A CPU-bound task: the n-th Fibonacci number, computed the slow recursive
//! way on purpose so that it costs about fib(n) calls.

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

wasmpool_guest::task!(fib);
