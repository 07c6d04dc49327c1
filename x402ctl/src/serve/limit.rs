//! Per-caller rate limits: a token bucket per caller name (or client address when callers are
//! not authenticated), refilled at a steady rate up to a burst.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets unused for this long are forgotten (their caller is back to a full burst).
const IDLE: Duration = Duration::from_secs(600);

/// A rate limit shared by every request of one process.
pub(crate) struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_second` requests sustained, `burst` at once.
    pub(crate) fn new(per_second: f64, burst: u32) -> RateLimit {
        RateLimit {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `caller`'s bucket: `Ok`, or how long until one is available.
    pub(crate) fn take(&self, caller: &str) -> Result<(), Duration> {
        self.take_at(caller, Instant::now())
    }

    fn take_at(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate_per_caller() {
        let limit = RateLimit::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limit.take_at("shop", t0).is_ok());
        }
        let wait = limit.take_at("shop", t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another caller has its own bucket.
        assert!(limit.take_at("other", t0).is_ok());
        // 100 ms later one request is back, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limit.take_at("shop", t1).is_ok());
        assert!(limit.take_at("shop", t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limit.take_at("shop", t2).is_ok());
        }
        assert!(limit.take_at("shop", t2).is_err());
    }
}
