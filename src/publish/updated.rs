//! When a story last changed, as merged feeds state it (Atom `updated`, JSON Feed
//! `date_modified`): read from what its items say, never from when the document was rendered,
//! so a regeneration with nothing new keeps every date and every byte.

use crate::storage::StoryMember;
use chrono::{DateTime, Utc};

/// A later sighting than this after the story's first is another outlet joining it, not the same
/// poll round reaching another feed.
const JOINED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// A story's last change, from what its members say, never from when it was rendered: the
/// newest of its items' publication and update dates as their sources gave them, the time tinbao
/// saw an item's text change, and the time an outlet joined the story after its first sighting.
/// It stays put across regenerations and moves when the story does.
pub fn story_updated(members: &[&StoryMember]) -> Option<DateTime<Utc>> {
    let born = members.iter().map(|m| m.first_seen_at).min()?;
    members
        .iter()
        .map(|m| {
            let mut t = m
                .updated_at
                .map_or(m.published_at, |u| u.max(m.published_at));
            if m.changed_at > m.first_seen_at {
                t = t.max(m.changed_at);
            }
            if m.first_seen_at > born + JOINED_AFTER {
                t = t.max(m.first_seen_at);
            }
            t
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    /// An item published at `published`, first seen at `seen`, its text last changed at `changed`.
    fn member(
        published: DateTime<Utc>,
        seen: DateTime<Utc>,
        changed: DateTime<Utc>,
    ) -> StoryMember {
        StoryMember {
            cluster_id: 1,
            id: 1,
            url: None,
            changed_at: changed,
            published_at: published,
            updated_at: None,
            first_seen_at: seen,
            feed_title: "Báo Lào Cai".into(),
            feed_url: "https://baolaocai.vn/rss".into(),
            site_url: None,
        }
    }

    #[test]
    fn a_story_is_as_new_as_its_sources_say_not_as_when_it_was_seen() {
        let a = member(at(7, 30), at(9, 0), at(9, 0));
        let b = member(at(8, 15), at(9, 1), at(9, 1));
        assert_eq!(story_updated(&[&a, &b]), Some(at(8, 15)));
        let mut c = a.clone();
        c.updated_at = Some(at(8, 45));
        assert_eq!(
            story_updated(&[&c, &b]),
            Some(at(8, 45)),
            "the source's own update date"
        );
        assert_eq!(story_updated(&[]), None);
    }

    #[test]
    fn an_edit_or_a_later_outlet_moves_the_story() {
        let a = member(at(7, 30), at(9, 0), at(9, 0));
        let edited = member(at(7, 30), at(9, 0), at(11, 20));
        assert_eq!(
            story_updated(&[&edited]),
            Some(at(11, 20)),
            "seen changed at 11:20"
        );
        // Another outlet's older article joins at 12:00: the story changed then.
        let joined = member(at(6, 0), at(12, 0), at(12, 0));
        assert_eq!(story_updated(&[&a, &joined]), Some(at(12, 0)));
        // The same poll round reaching a second feed a minute later is no join.
        let same_round = member(at(6, 0), at(9, 1), at(9, 1));
        assert_eq!(story_updated(&[&a, &same_round]), Some(at(7, 30)));
    }
}
