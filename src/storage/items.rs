//! The `items` and `item_tombstones` tables: each item once per source, updated in place when
//! its text changes, and never resurrected after retention pruned it. A poll's writes go
//! through the poll writer (`poll_writes`).

use super::feeds::FeedUpdate;
use super::{AnyRow, Dialect, Store, secs, time};
use crate::model::NewItem;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

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
    /// Stores a successful poll atomically: new items inserted, changed ones updated in place,
    /// tombstoned ones ignored, and the feed's row (validators, next poll) updated. The
    /// validators only advance together with the items they cover, so a crash mid-way means the
    /// next poll fetches the same document again rather than a 304 that would hide its items.
    ///
    /// Polls finishing together are committed together (group commit): SQLite has one writer,
    /// and one commit per feed made the commit itself the ingest bottleneck. Each poll keeps
    /// its own savepoint, so one feed's failure never touches another's.
    pub async fn store_poll(
        &self,
        feed_id: &str,
        items: Vec<NewItem>,
        update: FeedUpdate,
    ) -> anyhow::Result<StoreCounts> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = super::poll_writes::PollJob {
            feed_id: feed_id.to_string(),
            items,
            update,
            reply,
        };
        self.poll_jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the database writer dropped the job"))?
    }

    /// Which of `items` this feed already holds, with their content hash (`None`: tombstoned,
    /// never to be stored again). A poll reads this before it prepares what only items to be
    /// written need (their signatures), so a changed document's known items cost nothing more.
    pub async fn known_items(
        &self,
        feed_id: &str,
        items: &[NewItem],
    ) -> anyhow::Result<HashMap<String, Option<String>>> {
        let mut known = HashMap::new();
        on_pool!(self, d = super::poll_writes, |pool| {
            let mut conn = pool.acquire().await?;
            for chunk in items.chunks(super::poll_writes::INSERT_CHUNK) {
                known.extend(d::known_keys(&mut conn, feed_id, chunk).await?);
            }
        });
        Ok(known)
    }

    /// Records a 304 or an unchanged body: validators and schedule only.
    pub async fn record_unchanged(&self, feed_id: &str, update: &FeedUpdate) -> anyhow::Result<()> {
        on_pool!(self, d = super::poll_writes, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            d::write_success(&mut tx, feed_id, update, self.owner()).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes items first seen and dated before `cutoff`, leaving tombstones so a source that
    /// still lists them cannot bring them back as new. Returns how many were pruned.
    pub async fn prune_items(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "INSERT INTO item_tombstones (feed_id, item_key, pruned_at)
                 SELECT feed_id, item_key, ?2 FROM items WHERE published_at < ?1 AND first_seen_at < ?1
                 ON CONFLICT (feed_id, item_key) DO NOTHING",
            ))
            .bind(secs(cutoff))
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            for statement in [
                "DELETE FROM story_index WHERE item_id IN
                    (SELECT id FROM items WHERE published_at < ?1 AND first_seen_at < ?1)",
                "DELETE FROM pending_stories WHERE item_id IN
                    (SELECT id FROM items WHERE published_at < ?1 AND first_seen_at < ?1)",
            ] {
                sqlx::query(Db::sql(statement))
                    .bind(secs(cutoff))
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query(Db::sql(
                "DELETE FROM items WHERE published_at < ?1 AND first_seen_at < ?1",
            ))
            .bind(secs(cutoff))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }

    /// The items of one feed, newest first.
    pub async fn feed_items(&self, feed_id: &str) -> anyhow::Result<Vec<ItemRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT id, feed_id, item_key, url, title, summary_html, text, published_at, date_estimated, first_seen_at
                 FROM items WHERE feed_id = ?1 ORDER BY published_at DESC, id DESC",
            ))
            .bind(feed_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(item_row).collect()
        })
    }
}

fn item_row(r: &impl AnyRow) -> anyhow::Result<ItemRow> {
    Ok(ItemRow {
        id: r.col("id")?,
        feed_id: r.col("feed_id")?,
        item_key: r.col("item_key")?,
        url: r.col("url")?,
        title: r.col("title")?,
        summary_html: r.col("summary_html")?,
        text: r.col("text")?,
        published_at: time(r.col("published_at")?),
        date_estimated: r.col("date_estimated")?,
        first_seen_at: time(r.col("first_seen_at")?),
    })
}
