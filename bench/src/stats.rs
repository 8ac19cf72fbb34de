//! Latency percentiles, pass/fail checks and the counters workers keep.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Percentiles of one set of latencies, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// How many samples the percentiles are over.
    pub samples: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Sorts `samples` in place and summarises them (all zero when empty).
    pub fn from_samples(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let mean_ms = if samples.is_empty() { 0.0 } else { ms(total) / samples.len() as f64 };
        Self {
            samples: samples.len(),
            mean_ms: round(mean_ms),
            p50_ms: percentile(samples, 0.50),
            p95_ms: percentile(samples, 0.95),
            p99_ms: percentile(samples, 0.99),
            max_ms: samples.last().map_or(0.0, |d| round(ms(*d))),
        }
    }
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    round(ms(sorted[index]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Three decimals is finer than any timer noise and keeps the report readable.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Events per second over `elapsed`.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs == 0.0 { 0.0 } else { round(count as f64 / secs) }
}

/// One target and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// Human-readable target, e.g. `>= 1500`.
    pub target: String,
    pub actual: f64,
    pub pass: bool,
}

impl Check {
    /// Passes when `actual >= min`.
    pub fn at_least(name: &str, min: f64, actual: f64) -> Self {
        Self { name: name.to_owned(), target: format!(">= {min}"), actual, pass: actual >= min }
    }

    /// Passes when `actual <= max`.
    pub fn at_most(name: &str, max: f64, actual: f64) -> Self {
        Self { name: name.to_owned(), target: format!("<= {max}"), actual, pass: actual <= max }
    }
}

/// True when every check passed.
pub fn all_pass(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.pass)
}

/// Adds every count of `other` into `into`.
pub fn merge_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, other: &BTreeMap<K, u64>) {
    for (k, v) in other {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// `d` in whole microseconds, saturating at about 71 minutes.
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Sorts `samples` (microseconds) in place and summarises them like [`LatencySummary::from_samples`].
pub fn summarize(samples: &mut [u32]) -> LatencySummary {
    samples.sort_unstable();
    let n = samples.len();
    let ms = |us: u32| round(f64::from(us) / 1000.0);
    let at = |p: f64| {
        if n == 0 {
            return 0.0;
        }
        let rank = (p * n as f64).ceil() as usize;
        ms(samples[rank.clamp(1, n) - 1])
    };
    let total: u64 = samples.iter().map(|&us| u64::from(us)).sum();
    LatencySummary {
        samples: n,
        mean_ms: if n == 0 { 0.0 } else { round(total as f64 / n as f64 / 1000.0) },
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: samples.last().map_or(0.0, |&us| ms(us)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = LatencySummary::from_samples(&mut samples);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(LatencySummary::from_samples(&mut []).p99_ms, 0.0);
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let mut samples: Vec<u32> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let s = summarize(&mut samples);
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(summarize(&mut []).p99_ms, 0.0);
    }
}
