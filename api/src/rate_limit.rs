//! Token-bucket rate limiting per client (API key, or address when no valid key is presented). The
//! buckets live in a bounded moka cache that forgets idle clients, so memory stays flat whatever the
//! number of addresses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second: per_second.max(0.001),
            burst: burst.max(1.0),
            buckets: Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(600)).build(),
        }
    }

    /// `Ok` when `client` may make a request now, else how long until it may.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let bucket =
            self.buckets.get_with_by_ref(client, || Arc::new(Mutex::new(Bucket { tokens: self.burst, last: now })));
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let l = RateLimiter::new(10.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("k", t0).is_ok());
        }
        let wait = l.check("k", t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(l.check("other", t0).is_ok(), "clients have their own buckets");
        assert!(l.check("k", t0 + Duration::from_millis(100)).is_ok());
        assert!(l.check("k", t0 + Duration::from_millis(100)).is_err());
    }
}
