//! The `items` and `item_tombstones` tables: each item once per source, updated in place when
//! its text changes, and never resurrected after retention pruned it.

use super::feeds::FeedUpdate;
use super::{Store, secs, time};
use crate::reader::parser::NewItem;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

/// How a poll's items landed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub new: usize,
    pub updated: usize,
}

/// A stored item, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct ItemRow {
    pub id: i64,
    pub feed_id: String,
    pub item_key: String,
    pub url: Option<String>,
    pub title: String,
    pub summary_html: String,
    pub text: String,
    pub published_at: DateTime<Utc>,
    pub date_estimated: bool,
    pub first_seen_at: DateTime<Utc>,
}

impl Store {
    /// Stores a successful poll in one transaction: new items inserted, changed ones updated in
    /// place, tombstoned ones ignored, and the feed's row (validators, next poll) updated. The
    /// validators only advance together with the items they cover, so a crash mid-way means the
    /// next poll fetches the same document again rather than a 304 that would hide its items.
    pub async fn store_poll(
        &self,
        feed_id: &str,
        items: &[NewItem],
        update: &FeedUpdate,
    ) -> anyhow::Result<StoreCounts> {
        let (_turn, mut tx) = self.write().await?;
        let mut counts = StoreCounts::default();
        let now = secs(update.fetched_at);
        for item in items {
            let inserted = sqlx::query(
                "INSERT INTO items (feed_id, item_key, guid, url, canonical_url, title, summary_html, content_html, text,
                                    authors, categories, image_url, published_at, date_estimated, updated_at,
                                    first_seen_at, changed_at, content_hash)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17
                 WHERE NOT EXISTS (SELECT 1 FROM item_tombstones t WHERE t.feed_id = ?1 AND t.item_key = ?2)
                 ON CONFLICT (feed_id, item_key) DO NOTHING",
            )
            .bind(feed_id)
            .bind(&item.key)
            .bind(&item.guid)
            .bind(&item.url)
            .bind(&item.canonical_url)
            .bind(&item.title)
            .bind(&item.summary_html)
            .bind(&item.content_html)
            .bind(&item.text)
            .bind(serde_json::to_string(&item.authors)?)
            .bind(serde_json::to_string(&item.categories)?)
            .bind(&item.image_url)
            .bind(secs(item.published))
            .bind(item.date_estimated)
            .bind(item.updated.map(secs))
            .bind(now)
            .bind(&item.content_hash)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                counts.new += 1;
                continue;
            }
            // Seen before: update in place if its text changed. The filing date of an item whose
            // date was estimated stays the first-seen one.
            let changed = sqlx::query(
                "UPDATE items SET guid = ?3, url = ?4, canonical_url = ?5, title = ?6, summary_html = ?7,
                    content_html = ?8, text = ?9, authors = ?10, categories = ?11, image_url = ?12,
                    published_at = CASE WHEN ?14 THEN published_at ELSE ?13 END,
                    date_estimated = CASE WHEN ?14 THEN date_estimated ELSE 0 END,
                    updated_at = ?15, changed_at = ?16, content_hash = ?17
                 WHERE feed_id = ?1 AND item_key = ?2 AND content_hash <> ?17",
            )
            .bind(feed_id)
            .bind(&item.key)
            .bind(&item.guid)
            .bind(&item.url)
            .bind(&item.canonical_url)
            .bind(&item.title)
            .bind(&item.summary_html)
            .bind(&item.content_html)
            .bind(&item.text)
            .bind(serde_json::to_string(&item.authors)?)
            .bind(serde_json::to_string(&item.categories)?)
            .bind(&item.image_url)
            .bind(secs(item.published))
            .bind(item.date_estimated)
            .bind(item.updated.map(secs))
            .bind(now)
            .bind(&item.content_hash)
            .execute(&mut *tx)
            .await?;
            counts.updated += changed.rows_affected() as usize;
        }
        write_success(&mut tx, feed_id, update).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Records a 304 or an unchanged body: validators and schedule only.
    pub async fn record_unchanged(&self, feed_id: &str, update: &FeedUpdate) -> anyhow::Result<()> {
        let (_turn, mut tx) = self.write().await?;
        write_success(&mut tx, feed_id, update).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes items first seen and dated before `cutoff`, leaving tombstones so a source that
    /// still lists them cannot bring them back as new. Returns how many were pruned.
    pub async fn prune_items(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let (_turn, mut tx) = self.write().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO item_tombstones (feed_id, item_key, pruned_at)
             SELECT feed_id, item_key, ?2 FROM items WHERE published_at < ?1 AND first_seen_at < ?1",
        )
        .bind(secs(cutoff))
        .bind(secs(now))
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM items WHERE published_at < ?1 AND first_seen_at < ?1")
            .bind(secs(cutoff))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The items of one feed, newest first.
    pub async fn feed_items(&self, feed_id: &str) -> anyhow::Result<Vec<ItemRow>> {
        let rows = sqlx::query(
            "SELECT id, feed_id, item_key, url, title, summary_html, text, published_at, date_estimated, first_seen_at
             FROM items WHERE feed_id = ?1 ORDER BY published_at DESC, id DESC",
        )
        .bind(feed_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ItemRow {
                    id: r.try_get("id")?,
                    feed_id: r.try_get("feed_id")?,
                    item_key: r.try_get("item_key")?,
                    url: r.try_get("url")?,
                    title: r.try_get("title")?,
                    summary_html: r.try_get("summary_html")?,
                    text: r.try_get("text")?,
                    published_at: time(r.try_get("published_at")?),
                    date_estimated: r.try_get("date_estimated")?,
                    first_seen_at: time(r.try_get("first_seen_at")?),
                })
            })
            .collect()
    }

    pub async fn count_items(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM items")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn write_success(
    tx: &mut sqlx::SqliteConnection,
    feed_id: &str,
    u: &FeedUpdate,
) -> anyhow::Result<()> {
    let v = u.validators.clone().unwrap_or_default();
    sqlx::query(
        "UPDATE feeds SET last_fetch_at = ?2, last_success_at = ?2, last_status = ?3, last_error = NULL,
            error_count = 0, next_poll_at = ?4, etag = ?5, last_modified = ?6,
            body_hash = COALESCE(?7, body_hash), title = COALESCE(?8, title), site_url = COALESCE(?9, site_url),
            format = COALESCE(?10, format), moved_to = ?11, ttl_seconds = ?12
         WHERE id = ?1",
    )
    .bind(feed_id)
    .bind(secs(u.fetched_at))
    .bind(u.status.map(i64::from))
    .bind(secs(u.next_poll_at))
    .bind(&v.etag)
    .bind(&v.last_modified)
    .bind(&u.body_hash)
    .bind(&u.title)
    .bind(&u.site_url)
    .bind(&u.format)
    .bind(&u.moved_to)
    .bind(u.ttl.map(|t| t.as_secs() as i64))
    .execute(tx)
    .await?;
    Ok(())
}
