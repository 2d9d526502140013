//! The `feeds` table: sources from feeds.toml and their polling state (validators, errors, next
//! poll). A failing feed is data on its row, never a stopped loop.

use super::{Dialect, Store, secs, time};
use crate::config::FeedSource;
use crate::model::Validators;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

/// What the poller needs to fetch a feed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub id: String,
    pub url: String,
    pub validators: Validators,
    pub body_hash: Option<String>,
    pub error_count: u32,
    /// The feed's RSS `<ttl>` from its last parsed document: a lower bound even on a 304.
    pub ttl: Option<std::time::Duration>,
    pub next_poll_at: DateTime<Utc>,
    /// What the last stored document's entries became (`reader::skim::Memory`, stored form).
    pub entry_memory: Option<Vec<u8>>,
}

/// The result of one poll, written on the feed's row.
#[derive(Debug, Clone, Default)]
pub struct FeedUpdate {
    pub fetched_at: DateTime<Utc>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub next_poll_at: DateTime<Utc>,
    /// `Some` on success: the validators to send next time.
    pub validators: Option<Validators>,
    pub body_hash: Option<String>,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub format: Option<String>,
    pub moved_to: Option<String>,
    pub ttl: Option<std::time::Duration>,
    /// When the source document says it last changed (see `ParsedFeed::updated`).
    pub source_updated: Option<DateTime<Utc>>,
    /// Items of the parsed document that the skip/keep rules left out.
    pub skipped: usize,
    /// `Some` when a document was read: its entry memory, or `Some(None)` to forget it.
    pub entry_memory: Option<Option<Vec<u8>>>,
    /// The feed reads its items' article pages: new and edited items go on the article queue.
    pub full_text: bool,
}

/// A feed's state, as `tinbao feeds` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedState {
    pub id: String,
    pub url: String,
    pub category: String,
    pub province: Option<String>,
    pub title: Option<String>,
    pub active: bool,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub error_count: u32,
    pub next_poll_at: DateTime<Utc>,
    pub moved_to: Option<String>,
    pub item_count: i64,
    /// Items the skip/keep rules left out of the last parsed document.
    pub skipped: i64,
    /// Article pages (full text) still to be read, and those given up (their items keep the
    /// feed's text); the newest error reading one.
    pub articles_pending: i64,
    pub articles_given_up: i64,
    pub article_error: Option<String>,
}

impl Store {
    /// Makes the `feeds` table match the config: new feeds are added (due now), changed ones
    /// updated (a new URL forgets the old validators and is polled at once), and feeds no longer
    /// listed are marked inactive. Their items stay.
    pub async fn sync_feeds(&self, feeds: &[FeedSource], now: DateTime<Utc>) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE feeds SET active = FALSE WHERE active = TRUE",
            ))
            .execute(&mut *tx)
            .await?;
            for f in feeds {
                sqlx::query(Db::sql(
                    "INSERT INTO feeds (id, url, category, province, configured_title, active, next_poll_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)
                     ON CONFLICT (id) DO UPDATE SET
                        etag = CASE WHEN feeds.url = excluded.url THEN feeds.etag END,
                        last_modified = CASE WHEN feeds.url = excluded.url THEN feeds.last_modified END,
                        body_hash = CASE WHEN feeds.url = excluded.url THEN feeds.body_hash END,
                        entry_memory = CASE WHEN feeds.url = excluded.url THEN feeds.entry_memory END,
                        next_poll_at = CASE WHEN feeds.url = excluded.url THEN feeds.next_poll_at ELSE 0 END,
                        moved_to = CASE WHEN feeds.url = excluded.url THEN feeds.moved_to END,
                        url = excluded.url, category = excluded.category, province = excluded.province,
                        configured_title = excluded.configured_title, active = excluded.active",
                ))
                .bind(&f.id)
                .bind(f.url.as_str())
                .bind(&f.category)
                .bind(&f.province)
                .bind(&f.title)
                .bind(f.enabled)
                .bind(secs(now))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Active feeds due at `now` (or all active feeds), oldest due first. Only a listing: the
    /// poller claims its feeds with `claim_due_feeds`.
    pub async fn due_feeds(&self, now: DateTime<Utc>, all: bool) -> anyhow::Result<Vec<FeedRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT id, url, etag, last_modified, body_hash, error_count, ttl_seconds, next_poll_at, entry_memory FROM feeds
                 WHERE active = TRUE AND (?1 OR next_poll_at <= ?2) ORDER BY next_poll_at, id",
            ))
            .bind(all)
            .bind(secs(now))
            .fetch_all(pool)
            .await?;
            rows.iter().map(feed_row).collect()
        })
    }

    /// Takes up to `limit` feeds due at `now` (or, with `all`, any active feed) that no other
    /// process holds, leasing them to this one (see `set_lease`); oldest due first. The lease ends
    /// when the poll's outcome is recorded (`store_poll`, `record_unchanged`, `record_failure`);
    /// if this process dies first, another takes the feed once `until` has passed. On PostgreSQL
    /// concurrent claimers skip each other's rows (`FOR UPDATE SKIP LOCKED`) instead of waiting.
    pub async fn claim_due_feeds(
        &self,
        now: DateTime<Utc>,
        all: bool,
        limit: usize,
    ) -> anyhow::Result<Vec<FeedRow>> {
        let mut feeds = on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let rows = sqlx::query(Db::sql(
                "UPDATE feeds SET lease_owner = ?1, lease_until = ?2
                 WHERE id IN (
                    SELECT id FROM feeds
                    WHERE active = TRUE AND (?3 OR next_poll_at <= ?4)
                      AND (lease_until IS NULL OR lease_until < ?4)
                    ORDER BY next_poll_at, id LIMIT ?5 /*FOR UPDATE SKIP LOCKED*/)
                 RETURNING id, url, etag, last_modified, body_hash, error_count, ttl_seconds, next_poll_at, entry_memory",
            ))
            .bind(self.owner())
            .bind(self.lease_until(now))
            .bind(all)
            .bind(secs(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows.iter()
                .map(feed_row)
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        feeds.sort_by(|a, b| (a.next_poll_at, &a.id).cmp(&(b.next_poll_at, &b.id)));
        Ok(feeds)
    }

    /// Gives up this process's lease on a feed it claimed but will not poll.
    pub async fn release_feed(&self, feed_id: &str) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND lease_owner = ?2",
            ))
            .bind(feed_id)
            .bind(self.owner())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a failed poll: the error, the count, and the next try. Validators are kept; this
    /// process's lease on the feed ends.
    pub async fn record_failure(&self, feed_id: &str, update: &FeedUpdate) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE feeds SET last_fetch_at = ?2, last_status = ?3, last_error = ?4,
                    error_count = error_count + 1, next_poll_at = ?5,
                    lease_until = CASE WHEN lease_owner = ?6 THEN NULL ELSE lease_until END,
                    lease_owner = NULLIF(lease_owner, ?6)
                 WHERE id = ?1",
            ))
            .bind(feed_id)
            .bind(secs(update.fetched_at))
            .bind(update.status.map(i64::from))
            .bind(&update.error)
            .bind(secs(update.next_poll_at))
            .bind(self.owner())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Items of a feed dated within the week before `now`: its publishing rate.
    pub async fn items_last_week(&self, feed_id: &str, now: DateTime<Utc>) -> anyhow::Result<u32> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(Db::sql(
                "SELECT COUNT(*) FROM items WHERE feed_id = ?1 AND published_at > ?2 AND published_at <= ?3 AND date_estimated = FALSE",
            ))
            .bind(feed_id)
            .bind(secs(now) - 7 * 86_400)
            .bind(secs(now))
            .fetch_one(pool)
            .await?
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Every feed's state with its item count, by id.
    pub async fn feed_states(&self) -> anyhow::Result<Vec<FeedState>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT f.id, f.url, f.category, f.province, COALESCE(f.configured_title, f.title) AS title, f.active,
                        f.last_fetch_at, f.last_success_at, f.last_status, f.last_error, f.error_count,
                        f.next_poll_at, f.moved_to, f.last_skipped, (SELECT COUNT(*) FROM items i WHERE i.feed_id = f.id) AS item_count,
                        (SELECT COUNT(*) FROM article_queue q WHERE q.feed_id = f.id AND q.due_at IS NOT NULL) AS articles_pending,
                        (SELECT COUNT(*) FROM article_queue q WHERE q.feed_id = f.id AND q.due_at IS NULL) AS articles_given_up,
                        (SELECT q.last_error FROM article_queue q WHERE q.feed_id = f.id AND q.last_error IS NOT NULL
                         ORDER BY q.item_id DESC LIMIT 1) AS article_error
                 FROM feeds f ORDER BY f.id",
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(FeedState {
                        id: r.try_get("id")?,
                        url: r.try_get("url")?,
                        category: r.try_get("category")?,
                        province: r.try_get("province")?,
                        title: r.try_get("title")?,
                        active: r.try_get("active")?,
                        last_fetch_at: r.try_get::<Option<i64>, _>("last_fetch_at")?.map(time),
                        last_success_at: r.try_get::<Option<i64>, _>("last_success_at")?.map(time),
                        last_status: r
                            .try_get::<Option<i64>, _>("last_status")?
                            .map(|s| s as u16),
                        last_error: r.try_get("last_error")?,
                        error_count: r.try_get::<i64, _>("error_count")?.max(0) as u32,
                        next_poll_at: time(r.try_get("next_poll_at")?),
                        moved_to: r.try_get("moved_to")?,
                        item_count: r.try_get("item_count")?,
                        skipped: r.try_get("last_skipped")?,
                        articles_pending: r.try_get("articles_pending")?,
                        articles_given_up: r.try_get("articles_given_up")?,
                        article_error: r.try_get("article_error")?,
                    })
                })
                .collect()
        })
    }
}

impl Store {
    /// Records that the merged feeds of these source feeds were regenerated here, so the other
    /// processes sharing the database (each serving its own copy) regenerate them too. Returns
    /// the log rows' ids; entries older than a day are dropped on the way.
    pub async fn log_feed_changes(
        &self,
        feed_ids: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<i64>> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql("DELETE FROM feed_changes WHERE changed_at < ?1"))
                .bind(secs(now) - 86_400)
                .execute(&mut *tx)
                .await?;
            let mut ids = Vec::with_capacity(feed_ids.len());
            for id in feed_ids {
                let logged: i64 = sqlx::query_scalar(Db::sql(
                    "INSERT INTO feed_changes (feed_id, changed_at) VALUES (?1, ?2) RETURNING id",
                ))
                .bind(id)
                .bind(secs(now))
                .fetch_one(&mut *tx)
                .await?;
                ids.push(logged);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Feeds whose items changed since their merged feeds were last regenerated, with the
    /// mark to hand back to `published`.
    pub async fn unpublished_feeds(&self) -> anyhow::Result<Vec<(String, i64)>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT id, unpublished FROM feeds WHERE unpublished > 0 ORDER BY id",
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("unpublished")?)))
                .collect()
        })
    }

    /// Clears the marks `unpublished_feeds` returned, once their merged feeds are written; a
    /// feed polled again since keeps its (higher) mark.
    pub async fn published(&self, marks: &[(String, i64)]) -> anyhow::Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            for (id, mark) in marks {
                sqlx::query(Db::sql(
                    "UPDATE feeds SET unpublished = 0 WHERE id = ?1 AND unpublished = ?2",
                ))
                .bind(id)
                .bind(mark)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Log entries after `after`: `(entry id, feed id)`, oldest first.
    pub async fn feed_changes_after(&self, after: i64) -> anyhow::Result<Vec<(i64, String)>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT id, feed_id FROM feed_changes WHERE id > ?1 ORDER BY id",
            ))
            .bind(after)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("feed_id")?)))
                .collect()
        })
    }

    /// The newest log entry's id (0 when empty).
    pub async fn last_feed_change(&self) -> anyhow::Result<i64> {
        on_pool!(self, |pool| {
            Ok(
                sqlx::query_scalar(Db::sql("SELECT COALESCE(MAX(id), 0) FROM feed_changes"))
                    .fetch_one(pool)
                    .await?,
            )
        })
    }
}

/// A feed row as the poller needs it (columns of `due_feeds` / `claim_due_feeds`).
fn feed_row(r: &impl super::AnyRow) -> anyhow::Result<FeedRow> {
    Ok(FeedRow {
        id: r.col("id")?,
        url: r.col("url")?,
        validators: Validators {
            etag: r.col("etag")?,
            last_modified: r.col("last_modified")?,
        },
        body_hash: r.col("body_hash")?,
        error_count: r.col::<i64>("error_count")?.max(0) as u32,
        ttl: r
            .col::<Option<i64>>("ttl_seconds")?
            .map(|s| std::time::Duration::from_secs(s.max(0) as u64)),
        next_poll_at: time(r.col("next_poll_at")?),
        entry_memory: r.col("entry_memory")?,
    })
}
