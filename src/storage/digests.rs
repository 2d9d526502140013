//! The `digests` outbox and the `deliveries` ledger. A digest is built in one transaction (its
//! row, its items in the ledger, the subscriber's tick and cursor), so a crash leaves either all
//! of it or none; the ledger's key makes sure no item reaches a subscriber twice.

use super::stories::{STORY_COLUMNS, story_row};
use super::{Store, StoryRow, secs, time};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};

/// A digest waiting to be sent.
#[derive(Debug, Clone)]
pub struct PendingDigest {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub timezone: String,
    pub tick_at: DateTime<Utc>,
    pub attempts: i64,
    pub message_id: String,
    pub topics: Vec<String>,
}

impl Store {
    /// Items stored after `after_id` and published since `since`, with their sources, by id.
    pub async fn stories_after(
        &self,
        after_id: i64,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<StoryRow>> {
        let sql = format!("{STORY_COLUMNS} WHERE i.id > ?1 AND i.published_at >= ?2 ORDER BY i.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_id)
            .bind(secs(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(story_row).collect()
    }

    /// Creates the digest for `tick` with its items `(item id, topic position)`, moves the
    /// subscriber's tick and cursor on. Returns the digest id, or `None` if this tick's digest
    /// already exists (another process built it) or every item was already delivered.
    pub async fn create_digest(
        &self,
        subscriber_id: i64,
        tick: DateTime<Utc>,
        message_id: &str,
        items: &[(i64, usize)],
        cursor: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<i64>> {
        let (_turn, mut tx) = self.write().await?;
        let created = sqlx::query(
            "INSERT INTO digests (subscriber_id, tick_at, next_attempt_at, message_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?3) ON CONFLICT (subscriber_id, tick_at) DO NOTHING",
        )
        .bind(subscriber_id)
        .bind(secs(tick))
        .bind(secs(now))
        .bind(message_id)
        .execute(&mut *tx)
        .await?;
        let mut digest = None;
        if created.rows_affected() == 1 {
            let id = created.last_insert_rowid();
            // One statement per chunk, not per item: each statement is a round trip to SQLite's
            // worker thread, and a digest holds dozens of items.
            let mut kept = 0;
            for chunk in items.chunks(400) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO deliveries (subscriber_id, item_id, digest_id, topic_position) ",
                );
                q.push_values(chunk, |mut row, (item, topic)| {
                    row.push_bind(subscriber_id)
                        .push_bind(*item)
                        .push_bind(id)
                        .push_bind(*topic as i64);
                });
                q.push(" ON CONFLICT (subscriber_id, item_id) DO NOTHING");
                kept += q.build().execute(&mut *tx).await?.rows_affected();
            }
            if kept == 0 {
                sqlx::query("DELETE FROM digests WHERE id = ?1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                digest = Some(id);
            }
        }
        super::subscribers::advance(&mut tx, subscriber_id, tick, cursor).await?;
        tx.commit().await?;
        Ok(digest)
    }

    /// Digests due for a (first or further) attempt at `now`, oldest first.
    pub async fn due_digests(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingDigest>> {
        let rows = sqlx::query(
            "SELECT d.id, d.subscriber_id, s.email, s.timezone, d.tick_at, d.attempts, d.message_id
             FROM digests d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at, d.id LIMIT ?2",
        )
        .bind(secs(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        // The batch's topics in one query, not one per digest.
        let mut topics: std::collections::HashMap<i64, Vec<String>> =
            std::collections::HashMap::new();
        if !rows.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT subscriber_id, spec FROM topics WHERE subscriber_id IN (",
            );
            let mut list = q.separated(", ");
            for r in &rows {
                list.push_bind(r.try_get::<i64, _>("subscriber_id")?);
            }
            q.push(") ORDER BY subscriber_id, position");
            for t in q.build().fetch_all(&self.pool).await? {
                topics
                    .entry(t.try_get("subscriber_id")?)
                    .or_default()
                    .push(t.try_get("spec")?);
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let subscriber_id: i64 = r.try_get("subscriber_id")?;
            out.push(PendingDigest {
                id: r.try_get("id")?,
                subscriber_id,
                email: r.try_get("email")?,
                timezone: r.try_get("timezone")?,
                tick_at: time(r.try_get("tick_at")?),
                attempts: r.try_get("attempts")?,
                message_id: r.try_get("message_id")?,
                topics: topics.remove(&subscriber_id).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// A digest's stories with the topic each was matched by, plus the other members of their
    /// stories (for "also carried by").
    pub async fn digest_stories(&self, digest_id: i64) -> anyhow::Result<Vec<(usize, StoryRow)>> {
        let sql = format!(
            "{STORY_COLUMNS} JOIN deliveries d ON d.item_id = i.id WHERE d.digest_id = ?1 ORDER BY i.published_at DESC, i.id DESC"
        );
        let sql = sql.replacen("SELECT ", "SELECT d.topic_position, ", 1);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(digest_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("topic_position")?.max(0) as usize,
                    story_row(r)?,
                ))
            })
            .collect()
    }

    pub async fn mark_digest_sent(&self, digest_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        let (_turn, mut tx) = self.write().await?;
        sqlx::query("UPDATE digests SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1")
            .bind(digest_id)
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE subscribers SET failed_digests = 0 WHERE id = (SELECT subscriber_id FROM digests WHERE id = ?1)")
            .bind(digest_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A temporary failure: try again at `next`.
    pub async fn retry_digest(
        &self,
        digest_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let (_turn, mut tx) = self.write().await?;
        sqlx::query("UPDATE digests SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1")
            .bind(digest_id)
            .bind(error)
            .bind(secs(next))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A permanent failure for this recipient. After `bounce_after` in a row the subscriber is
    /// marked bouncing and gets no more digests until an operator looks.
    pub async fn fail_digest(
        &self,
        digest_id: i64,
        error: &str,
        bounce_after: i64,
    ) -> anyhow::Result<()> {
        let (_turn, mut tx) = self.write().await?;
        sqlx::query("UPDATE digests SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1")
            .bind(digest_id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE subscribers SET failed_digests = failed_digests + 1,
                status = CASE WHEN failed_digests + 1 >= ?2 THEN 'bouncing' ELSE status END
             WHERE id = (SELECT subscriber_id FROM digests WHERE id = ?1)",
        )
        .bind(digest_id)
        .bind(bounce_after)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts of digests by state, for status output and tests.
    pub async fn digest_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM digests GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}
