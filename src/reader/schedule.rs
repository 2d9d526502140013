//! When to poll a feed next. Pure: the caller passes what happened and the clock.
//!
//! A healthy feed is polled about as often as it publishes (items dated in the last week),
//! clamped to [min_interval, max_interval]; a feed with no history yet uses the configured
//! interval. A failing feed backs off exponentially up to max_interval, and is never given up
//! on. The source's own hints are lower bounds: RSS `<ttl>`, Cache-Control max-age, and
//! Retry-After on 429/503. A small per-feed offset spreads feeds that would otherwise fall due
//! in the same second.

use crate::config::PollingConfig;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The longest any hint may push a poll back: a source must not be able to silence itself.
const MAX_HINT: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The feed answered (200 or 304).
    Ok {
        /// Items dated within the last 7 days, after this poll; `None` when unknown.
        items_last_week: Option<u32>,
        ttl: Option<Duration>,
        max_age: Option<Duration>,
    },
    /// The poll failed; `error_count` includes this failure.
    Failed {
        error_count: u32,
        retry_after: Option<Duration>,
    },
}

/// The next poll time of feed `feed_id`.
pub fn next_poll(
    cfg: &PollingConfig,
    feed_id: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let delay = match outcome {
        Outcome::Ok {
            items_last_week,
            ttl,
            max_age,
        } => {
            let base = match items_last_week {
                None => cfg.interval,
                Some(0) => cfg.max_interval,
                Some(n) => Duration::from_secs(7 * 86_400 / u64::from(n)),
            };
            let base = jitter(base.clamp(cfg.min_interval, cfg.max_interval), feed_id);
            let hint = ttl
                .into_iter()
                .chain(max_age)
                .max()
                .unwrap_or_default()
                .min(MAX_HINT);
            base.max(hint)
        }
        Outcome::Failed {
            error_count,
            retry_after,
        } => {
            let exp = error_count.saturating_sub(1).min(20);
            let backoff = cfg
                .min_interval
                .saturating_mul(1u32 << exp)
                .min(cfg.max_interval);
            jitter(backoff, feed_id).max(retry_after.unwrap_or_default().min(MAX_HINT))
        }
    };
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
}

/// Adds up to +10% of `d`, fixed per feed (a hash of its id), so polls spread out but a feed's
/// schedule stays predictable.
fn jitter(d: Duration, feed_id: &str) -> Duration {
    let h = feed_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let permille = h % 100;
    d + d.mul_f64(permille as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PollingConfig {
        PollingConfig {
            interval: Duration::from_secs(15 * 60),
            min_interval: Duration::from_secs(5 * 60),
            max_interval: Duration::from_secs(6 * 3600),
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            max_body: 1 << 20,
            per_host: 2,
            concurrency: 8,
            user_agent: "t".into(),
        }
    }

    fn delay(outcome: Outcome) -> Duration {
        let now = Utc::now();
        (next_poll(&cfg(), "f", outcome, now) - now)
            .to_std()
            .unwrap()
    }

    fn ok(n: Option<u32>) -> Outcome {
        Outcome::Ok {
            items_last_week: n,
            ttl: None,
            max_age: None,
        }
    }

    fn within_jitter(d: Duration, base: Duration) -> bool {
        d >= base && d <= base + base / 10
    }

    #[test]
    fn busy_feeds_are_polled_often_but_not_below_the_minimum() {
        // 7 items a day: one every ~3.4h.
        assert!(within_jitter(
            delay(ok(Some(49))),
            Duration::from_secs(7 * 86_400 / 49)
        ));
        // 10,000 a week would be every minute: clamped to 5 minutes.
        assert!(within_jitter(
            delay(ok(Some(10_000))),
            Duration::from_secs(300)
        ));
    }

    #[test]
    fn quiet_feeds_drift_to_the_maximum_and_new_feeds_use_the_interval() {
        assert!(within_jitter(
            delay(ok(Some(0))),
            Duration::from_secs(6 * 3600)
        ));
        assert!(within_jitter(delay(ok(None)), Duration::from_secs(15 * 60)));
    }

    #[test]
    fn ttl_and_max_age_are_lower_bounds() {
        let d = delay(Outcome::Ok {
            items_last_week: Some(10_000),
            ttl: Some(Duration::from_secs(3600)),
            max_age: None,
        });
        assert_eq!(d, Duration::from_secs(3600));
        let d = delay(Outcome::Ok {
            items_last_week: Some(10_000),
            ttl: None,
            max_age: Some(Duration::from_secs(7 * 86_400)),
        });
        assert_eq!(d, MAX_HINT);
    }

    #[test]
    fn failures_back_off_exponentially_and_are_capped_never_abandoned() {
        let d1 = delay(Outcome::Failed {
            error_count: 1,
            retry_after: None,
        });
        let d3 = delay(Outcome::Failed {
            error_count: 3,
            retry_after: None,
        });
        assert!(within_jitter(d1, Duration::from_secs(300)));
        assert!(within_jitter(d3, Duration::from_secs(1200)));
        let d100 = delay(Outcome::Failed {
            error_count: 100,
            retry_after: None,
        });
        assert!(within_jitter(d100, Duration::from_secs(6 * 3600)));
    }

    #[test]
    fn retry_after_is_honoured() {
        let d = delay(Outcome::Failed {
            error_count: 1,
            retry_after: Some(Duration::from_secs(7200)),
        });
        assert_eq!(d, Duration::from_secs(7200));
    }
}
