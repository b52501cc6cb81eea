//! The CPU time the benchmarks report beside wall time.

/// User and system time of this process so far, in seconds: what the
/// benchmarks report per task, which a noisy machine disturbs less than
/// wall time.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields[index].parse::<f64>().unwrap();
    // utime and stime, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// User and system time of this process's children that have ended and
/// been waited for, in seconds: a command's CPU.
#[allow(dead_code)]
pub fn child_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields[index].parse::<f64>().unwrap();
    // cutime and cstime.
    (ticks(13) + ticks(14)) / 100.0
}
