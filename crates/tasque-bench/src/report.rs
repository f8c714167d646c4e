//! Printing figures in the `bench: NAME VALUE UNIT` convention.

/// Prints one figure.
pub fn figure(name: &str, value: f64, unit: &str) {
    println!("bench: {name} {value:.2} {unit}");
}

/// Prints a comparison with the baseline (above 1: faster than the baseline).
pub fn ratio(name: &str, ours_per_s: f64, baseline_per_s: f64) {
    println!("bench: {name} {:.3} x", ours_per_s / baseline_per_s);
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Items per second: `n` done in `elapsed`.
pub fn per_s(n: usize, elapsed: std::time::Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}
