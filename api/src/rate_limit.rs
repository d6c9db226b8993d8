//! Token-bucket rate limiting per client (API key, or address when no valid key is presented). The
//! buckets live in one map behind a mutex held for a few nanoseconds per request; when it passes
//! `MAX_CLIENTS` entries, buckets idle long enough to be full again are dropped, so memory stays
//! bounded whatever the number of addresses. (A moka cache here stalled requests for hundreds of
//! milliseconds under 40k req/s while it ran its maintenance.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_CLIENTS: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second: per_second.max(0.001), burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// `Ok` when `client` may make a request now, else how long until it may.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(client) {
            // A bucket idle for burst/rate seconds is full again: forgetting it changes nothing.
            let refill = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear(); // an address flood: start over rather than grow
            }
        }
        let b = buckets.entry(client.to_string()).or_insert(Bucket { tokens: self.burst, last: now });
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
