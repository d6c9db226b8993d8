//! Reconnect delays: exponential from `initial` to `max`, with "equal jitter" (half fixed, half random)
//! so that many cameras dropped by one network fault do not all reconnect in the same instant.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    /// `seed` varies the jitter between cameras (the camera id is a good one).
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self { initial, max: max.max(initial), attempt: 0, seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// The delay before the next attempt; each call doubles the base up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.initial.saturating_mul(1u32 << self.attempt.min(16)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: cheap, and good enough to spread reconnects
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        base / 2 + base.mul_f64(frac / 2.0)
    }

    /// After a success, start again from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_stay_within_jitter_bounds_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 42);
        let mut bases = Vec::new();
        for i in 0..10u32 {
            let d = b.next_delay();
            let base = Duration::from_secs(1u64 << i.min(5)).min(Duration::from_secs(30));
            assert!(d >= base / 2 && d <= base, "attempt {i}: {d:?} outside [{:?}, {base:?}]", base / 2);
            bases.push(base);
        }
        assert_eq!(*bases.last().unwrap(), Duration::from_secs(30));
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn different_cameras_get_different_delays() {
        let a: Vec<_> = (0..5)
            .scan(Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 1), |b, _| Some(b.next_delay()))
            .collect();
        let c: Vec<_> = (0..5)
            .scan(Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 2), |b, _| Some(b.next_delay()))
            .collect();
        assert_ne!(a, c);
    }
}
