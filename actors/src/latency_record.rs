//! Capture→decision latency of every decided frame since the engine started, in 1 ms buckets up to
//! 10 s (anything longer counts in the last bucket): exact enough for percentiles over a whole
//! benchmark or a day, lock-free to record from every worker, 80 KB however many frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = 10_000;

pub struct LatencyRecord {
    counts: Box<[AtomicU64]>,
}

impl Default for LatencyRecord {
    fn default() -> Self {
        Self { counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

/// Percentiles of a [`LatencyRecord`] at one moment (nearest rank, to the millisecond).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub decisions: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl LatencyRecord {
    pub fn record(&self, latency: Duration) {
        let bucket = (latency.as_millis() as usize).min(BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now, to subtract from a later reading (a benchmark's measuring window).
    pub fn counts(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    pub fn summary(&self) -> LatencySummary {
        summarise(&self.counts())
    }

    /// The summary of what was recorded since `earlier` (a [`counts`](Self::counts) reading).
    pub fn summary_since(&self, earlier: &[u64]) -> LatencySummary {
        let now = self.counts();
        let diff: Vec<u64> = now.iter().zip(earlier.iter().chain(std::iter::repeat(&0))).map(|(a, b)| a - b).collect();
        summarise(&diff)
    }
}

fn summarise(counts: &[u64]) -> LatencySummary {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return LatencySummary::default();
    }
    let rank = |q: f64| ((q * total as f64).ceil() as u64).clamp(1, total);
    let at = |r: u64| {
        let mut seen = 0;
        for (ms, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= r {
                return ms as u64;
            }
        }
        (counts.len() - 1) as u64
    };
    let max = counts.iter().rposition(|n| *n > 0).unwrap_or(0) as u64;
    LatencySummary {
        decisions: total,
        p50_ms: at(rank(0.50)),
        p95_ms: at(rank(0.95)),
        p99_ms: at(rank(0.99)),
        max_ms: max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_milliseconds() {
        let r = LatencyRecord::default();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary();
        assert_eq!((s.decisions, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms), (100, 50, 95, 99, 100));
        let before = r.counts();
        r.record(Duration::from_secs(60));
        let since = r.summary_since(&before);
        assert_eq!((since.decisions, since.p50_ms), (1, 9_999));
        assert_eq!(LatencyRecord::default().summary(), LatencySummary::default());
    }
}
