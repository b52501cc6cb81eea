//! The CPU time the benchmarks report beside wall time.

/// User and system time of this process so far, in seconds: what the
/// benchmarks report per task, which a noisy machine disturbs less than
/// wall time.
pub fn cpu_seconds() -> f64 {
    // utime and stime.
    stat_seconds(11, 12)
}

/// User and system time of this process's children that have ended and
/// been waited for, in seconds: a command's CPU.
#[allow(dead_code)]
pub fn child_cpu_seconds() -> f64 {
    // cutime and cstime.
    stat_seconds(13, 14)
}

/// The sum of two clock-tick fields of `/proc/self/stat` (counted after
/// the command name, which may hold spaces), in seconds.
fn stat_seconds(first: usize, second: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields[index].parse::<f64>().unwrap();
    // Clock ticks of 1/100 s on Linux.
    (ticks(first) + ticks(second)) / 100.0
}
