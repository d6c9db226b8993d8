//! A worker's recent load: capture→decision latency of each analysed frame and the time spent busy,
//! over a sliding window. The scheduler sheds and restores analysis rate from these figures.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// At most this many samples are kept, whatever the window (bounded memory at any frame rate).
const MAX_SAMPLES: usize = 4096;

struct Sample {
    at: Instant,
    latency: Duration,
    busy: Duration,
}

pub struct LoadWindow {
    window: Duration,
    samples: VecDeque<Sample>,
}

/// The load over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LoadFigures {
    /// Frames analysed in the window.
    pub frames: usize,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    /// Fraction of the window spent in inference (0..1; a worker near 1 cannot take more).
    pub utilization: f64,
    /// Mean inference time per analysed frame.
    pub seconds_per_frame: f64,
}

impl LoadWindow {
    pub fn new(window: Duration) -> Self {
        Self { window, samples: VecDeque::new() }
    }

    /// One analysed frame (`busy` is this frame's share of the batch it ran in).
    pub fn record(&mut self, at: Instant, latency: Duration, busy: Duration) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { at, latency, busy });
    }

    pub fn figures(&mut self, now: Instant) -> LoadFigures {
        while self.samples.front().is_some_and(|s| now.duration_since(s.at) > self.window) {
            self.samples.pop_front();
        }
        if self.samples.is_empty() {
            return LoadFigures::default();
        }
        let mut latencies: Vec<f64> = self.samples.iter().map(|s| s.latency.as_secs_f64() * 1e3).collect();
        latencies.sort_by(f64::total_cmp);
        let busy: f64 = self.samples.iter().map(|s| s.busy.as_secs_f64()).sum();
        // Until the window has filled, measure utilisation over the time actually covered.
        let covered =
            self.samples.front().map_or(self.window, |s| now.duration_since(s.at)).max(Duration::from_secs(1));
        LoadFigures {
            frames: latencies.len(),
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
            utilization: (busy / covered.min(self.window).as_secs_f64()).min(1.0),
            seconds_per_frame: busy / latencies.len() as f64,
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let t0 = Instant::now();
        let mut w = LoadWindow::new(Duration::from_secs(5));
        for i in 0..10 {
            w.record(t0 + Duration::from_millis(100 * i), Duration::from_millis(200), Duration::from_millis(50));
        }
        let f = w.figures(t0 + Duration::from_secs(2));
        assert_eq!(f.frames, 10);
        assert!((f.latency_p95_ms - 200.0).abs() < 1e-6);
        assert!((f.seconds_per_frame - 0.05).abs() < 1e-9);
        assert!(f.utilization > 0.2 && f.utilization < 0.3, "{f:?}");
        assert_eq!(w.figures(t0 + Duration::from_secs(60)).frames, 0);
    }
}
