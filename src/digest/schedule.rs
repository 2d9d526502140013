//! When a subscriber is owed a digest: the latest tick of their schedule at or before `now`,
//! if they have not had it yet. Named schedules are cron expressions evaluated in the
//! subscriber's timezone; `immediate` ticks every few minutes so new matches go out in small
//! batches. Several missed ticks (the daemon was down) are one digest, not a burst. Pure.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

/// How `immediate` batches new matches.
pub const IMMEDIATE_BATCH: i64 = 300;

/// The tick owed at `now`, if any. `since` is the last tick handled, else when they subscribed.
pub fn due_tick(
    schedule: Option<&cron::Schedule>,
    tz: Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let tick = match schedule {
        None => DateTime::from_timestamp(
            now.timestamp() - now.timestamp().rem_euclid(IMMEDIATE_BATCH),
            0,
        )?,
        Some(s) => latest_at_or_before(s, tz, now)?,
    };
    (tick > since).then_some(tick)
}

/// The latest occurrence of `schedule` at or before `now` (searching back up to 8 days).
fn latest_at_or_before(
    schedule: &cron::Schedule,
    tz: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let start = (now - Duration::days(8)).with_timezone(&tz);
    schedule
        .after(&start)
        .take_while(|t| t.with_timezone(&Utc) <= now)
        .last()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Asia::Ho_Chi_Minh;
    use std::str::FromStr;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Ho_Chi_Minh
            .with_ymd_and_hms(2026, 11, 28, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_seven_oclock_digest_is_due_once_after_seven_local_time() {
        let daily = cron::Schedule::from_str("0 0 7 * * *").unwrap();
        let yesterday = at(7, 0) - Duration::days(1);
        assert_eq!(
            due_tick(Some(&daily), Ho_Chi_Minh, yesterday, at(6, 59)),
            None
        );
        assert_eq!(
            due_tick(Some(&daily), Ho_Chi_Minh, yesterday, at(7, 0)),
            Some(at(7, 0))
        );
        assert_eq!(
            due_tick(Some(&daily), Ho_Chi_Minh, yesterday, at(18, 0)),
            Some(at(7, 0))
        );
        assert_eq!(
            due_tick(Some(&daily), Ho_Chi_Minh, at(7, 0), at(18, 0)),
            None,
            "already had it"
        );
    }

    #[test]
    fn missed_ticks_become_one_digest() {
        let daily = cron::Schedule::from_str("0 0 7 * * *").unwrap();
        let three_days_ago = at(7, 0) - Duration::days(3);
        assert_eq!(
            due_tick(Some(&daily), Ho_Chi_Minh, three_days_ago, at(9, 0)),
            Some(at(7, 0))
        );
    }

    #[test]
    fn immediate_ticks_every_few_minutes() {
        let t = due_tick(None, Ho_Chi_Minh, at(7, 0), at(7, 7)).unwrap();
        assert_eq!(t, at(7, 5));
        assert_eq!(due_tick(None, Ho_Chi_Minh, at(7, 5), at(7, 9)), None);
    }
}
