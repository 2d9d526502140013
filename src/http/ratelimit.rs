//! In-memory rate limits for sign-ups: a sliding window of recent attempts per key (a client
//! IP, an address). Lost on restart, and per process; enough to stop one client from using the
//! sign-up form to flood a mailbox or the outbox.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    max: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(max: usize, window: Duration) -> Limiter {
        Limiter {
            max,
            window,
            seen: Mutex::default(),
        }
    }

    /// Counts an attempt for `key` at `now`; `Err(wait)` if it is over the limit (the attempt
    /// is then not counted) and how long until one more would be allowed.
    pub fn attempt(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            // Forget keys whose attempts are all out of the window, so memory stays bounded.
            seen.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let times = seen.entry(key.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

/// The limits on the self-service pages.
pub struct Limits {
    /// Sign-ups (submissions that would send an email) per client IP.
    pub per_ip: Limiter,
    /// Sign-ups per address: at most this many emails to one mailbox.
    pub per_address: Limiter,
    /// Previews per client IP (each one matches a week of stories).
    pub previews: Limiter,
    /// Topic feeds made (not served from the cache) per client IP: each matches the stories.
    pub topics: Limiter,
    /// WebSub hub requests per client IP: each sends a verification request to a callback.
    pub hub: Limiter,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_ip: Limiter::new(10, Duration::from_secs(3600)),
            per_address: Limiter::new(3, Duration::from_secs(3600)),
            previews: Limiter::new(60, Duration::from_secs(600)),
            topics: Limiter::new(120, Duration::from_secs(600)),
            hub: Limiter::new(60, Duration::from_secs(600)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_over_the_limit_wait_for_the_window_to_slide() {
        let l = Limiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.attempt("a", t0).is_ok());
        assert!(l.attempt("a", t0 + Duration::from_secs(10)).is_ok());
        assert_eq!(
            l.attempt("a", t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(l.attempt("b", t0 + Duration::from_secs(20)).is_ok());
        assert!(l.attempt("a", t0 + Duration::from_secs(61)).is_ok());
    }
}
