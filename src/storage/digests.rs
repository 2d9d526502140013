//! The `digests` outbox and the `deliveries` ledger. A digest is built in one transaction with
//! the others of its group (its row with its item list, its items in the ledger, the
//! subscriber's tick and cursor), so a crash leaves either all of it or none; the ledger's key
//! makes sure no item reaches a subscriber twice.
//!
//! This file builds digests into the outbox; `digest_claims` claims pending ones and records
//! how their sends ended.

use super::stories::story_row;
use super::{AnyRow, Dialect, Store, StoryRow, secs};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use std::fmt::Write as _;

/// A subscriber's digest for one tick, to build (see `Store::create_digests`).
#[derive(Debug, Clone)]
pub struct NewDigest {
    pub subscriber_id: i64,
    pub tick: DateTime<Utc>,
    pub message_id: String,
    /// (item id, position of the topic it matched); empty: the tick passes with no email.
    pub items: Vec<(i64, usize)>,
    /// Items up to this id have been considered for the subscriber.
    pub cursor: i64,
}

/// A digest waiting to be sent.
#[derive(Debug, Clone)]
pub struct PendingDigest {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub timezone: String,
    pub tick_at: DateTime<Utc>,
    pub attempts: i64,
    /// The subscriber's permanent failures in a row when the digest was claimed.
    pub failures: i64,
    pub message_id: String,
    pub topics: Vec<String>,
    /// Its items: (item id, position of the topic that matched it). What they show is read
    /// once for a whole run (`Store::digest_items`): many digests carry the same stories.
    pub items: Vec<(i64, usize)>,
}

/// What a digest shows of one item: not the article, its text cut to what a summary needs.
#[derive(Debug, Clone)]
pub struct DigestItem {
    pub id: i64,
    pub cluster_id: i64,
    pub url: Option<String>,
    pub title: String,
    /// The first `DIGEST_TEXT_CHARS` characters of its plain text.
    pub text: String,
    pub published_at: DateTime<Utc>,
    pub feed_title: String,
}

/// Longest a digest waits for an item's first full-text try (a stage that never runs, because
/// the feed's full_text was turned off, must not hold digests back for ever).
const FULL_TEXT_HOLD_SECS: i64 = 30 * 60;

/// Characters of an item's text a digest reads (its summary is cut from them).
pub const DIGEST_TEXT_CHARS: usize = 480;

impl Store {
    /// Items stored after `after_id` and published since `since`, with their sources, by id,
    /// up to the first item whose article page (full text) has not had its first try yet: a
    /// digest matches an item on its article's words, not its teaser's, and the cursor that
    /// follows the newest item read never passes one (held at most `FULL_TEXT_HOLD_SECS`);
    /// what digests match (title and plain text) and group, without the HTML (`summary_html` and
    /// `content_html` come back empty), which digests never show and which made a digest after a
    /// long gap hold every new item's page in memory.
    pub async fn stories_after(
        &self,
        after_id: i64,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<StoryRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT i.id, COALESCE(s.cluster_id, i.id) AS cluster_id, i.feed_id, i.url, i.title,
                    i.text, '' AS summary_html, '' AS content_html, i.authors, i.image_url,
                    i.published_at, i.changed_at,
                    COALESCE(f.configured_title, f.title, f.id) AS feed_title, f.url AS feed_url,
                    f.site_url, f.source_updated_at, f.category, f.province
                 FROM items i JOIN feeds f ON f.id = i.feed_id
                 LEFT JOIN story_index s ON s.item_id = i.id
                 WHERE i.id > ?1 AND i.published_at >= ?2
                   AND i.id < COALESCE((SELECT MIN(q.item_id) FROM article_queue q
                                        WHERE q.attempts = 0 AND q.due_at > ?3), ?4)
                 ORDER BY i.id",
            ))
            .bind(after_id)
            .bind(secs(since))
            .bind(secs(chrono::Utc::now()) - FULL_TEXT_HOLD_SECS)
            .bind(i64::MAX)
            .fetch_all(pool)
            .await?;
            rows.iter().map(story_row).collect()
        })
    }

    /// Builds the digests of several subscribers in one transaction: for each, its row (with
    /// the item list), its ledger rows, and its tick and cursor moved on; a `NewDigest` with no
    /// items only moves them (the tick passes without an email). A subscriber another process is
    /// building right now (PostgreSQL), or whose tick already has a digest, is left alone, and
    /// items the ledger already holds for a subscriber are dropped. Returns how many digests were
    /// created. A few statements per group, not per subscriber: each statement is a round trip
    /// to SQLite's worker thread or PostgreSQL's socket.
    pub async fn create_digests(
        &self,
        digests: &[NewDigest],
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        if digests.is_empty() {
            return Ok(0);
        }
        on_pool!(self, subscribers = super::subscribers, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let ids: Vec<i64> = digests.iter().map(|d| d.subscriber_id).collect();
            let turns = subscribers::build_turns(&mut tx, &ids).await?;
            let mine: Vec<&NewDigest> = digests
                .iter()
                .filter(|d| turns.contains(&d.subscriber_id))
                .collect();
            // What the ledger already holds of the owed items (normally nothing: owed items are
            // past the cursor; a race between processes can leave some behind it).
            let mut delivered = std::collections::HashSet::new();
            let first = mine
                .iter()
                .flat_map(|d| d.items.iter().map(|(i, _)| *i))
                .min();
            if let Some(first) = first {
                for chunk in mine.chunks(500) {
                    let mut q = QueryBuilder::<Db>::new(
                        "SELECT subscriber_id, item_id FROM deliveries WHERE item_id >= ",
                    );
                    q.push_bind(first).push(" AND subscriber_id IN (");
                    let mut list = q.separated(", ");
                    for d in chunk {
                        list.push_bind(d.subscriber_id);
                    }
                    q.push(")");
                    for r in q.build().fetch_all(&mut *tx).await? {
                        delivered
                            .insert((r.col::<i64>("subscriber_id")?, r.col::<i64>("item_id")?));
                    }
                }
            }
            let owed: Vec<(&NewDigest, Vec<(i64, usize)>)> = mine
                .iter()
                .map(|d| {
                    let items = d
                        .items
                        .iter()
                        .filter(|(i, _)| !delivered.contains(&(d.subscriber_id, *i)))
                        .copied()
                        .collect();
                    (*d, items)
                })
                .collect();
            // Digest rows; on a conflict another process built that tick (and moved the cursor).
            let mut created: std::collections::HashMap<i64, i64> = Default::default();
            let with_items: Vec<&(&NewDigest, Vec<(i64, usize)>)> =
                owed.iter().filter(|(_, items)| !items.is_empty()).collect();
            for chunk in with_items.chunks(500) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO digests (subscriber_id, tick_at, next_attempt_at, message_id, created_at, items) ",
                );
                q.push_values(chunk, |mut row, (d, items)| {
                    row.push_bind(d.subscriber_id)
                        .push_bind(secs(d.tick))
                        .push_bind(secs(now))
                        .push_bind(d.message_id.as_str())
                        .push_bind(secs(now))
                        .push_bind(item_list(items));
                });
                q.push(
                    " ON CONFLICT (subscriber_id, tick_at) DO NOTHING RETURNING id, subscriber_id",
                );
                for r in q.build().fetch_all(&mut *tx).await? {
                    created.insert(r.col("subscriber_id")?, r.col("id")?);
                }
            }
            let ledger: Vec<(i64, i64, i64, usize)> = with_items
                .iter()
                .filter_map(|(d, items)| Some((created.get(&d.subscriber_id)?, d, items)))
                .flat_map(|(id, d, items)| {
                    items.iter().map(|(i, t)| (d.subscriber_id, *i, *id, *t))
                })
                .collect();
            for chunk in ledger.chunks(400) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO deliveries (subscriber_id, item_id, digest_id, topic_position) ",
                );
                q.push_values(chunk, |mut row, (subscriber, item, digest, topic)| {
                    row.push_bind(*subscriber)
                        .push_bind(*item)
                        .push_bind(*digest)
                        .push_bind(*topic as i64);
                });
                q.push(" ON CONFLICT (subscriber_id, item_id) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            // Ticks and cursors move for the digests made and the ticks passed, never for a
            // tick another process built.
            let moved: Vec<&NewDigest> = owed
                .iter()
                .filter(|(d, items)| items.is_empty() || created.contains_key(&d.subscriber_id))
                .map(|(d, _)| *d)
                .collect();
            for chunk in moved.chunks(500) {
                let mut q = QueryBuilder::<Db>::new(
                    "UPDATE subscribers SET last_tick_at = v.column2,
                        cursor_item_id = CASE WHEN subscribers.cursor_item_id > v.column3
                            THEN subscribers.cursor_item_id ELSE v.column3 END
                     FROM (",
                );
                q.push_values(chunk, |mut row, d| {
                    row.push_bind(d.subscriber_id)
                        .push_bind(secs(d.tick))
                        .push_bind(d.cursor);
                });
                q.push(
                    ") AS v WHERE subscribers.id = v.column1
                       AND COALESCE(subscribers.last_tick_at, 0) < v.column2",
                );
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(created.len())
        })
    }
}

/// A digest's items as stored on its row: "item:topic,item:topic".
fn item_list(items: &[(i64, usize)]) -> String {
    let mut out = String::with_capacity(items.len() * 8);
    for (n, (item, topic)) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{item}:{topic}");
    }
    out
}
