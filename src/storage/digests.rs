//! The `digests` outbox and the `deliveries` ledger. A digest is built in one transaction (its
//! row, its items in the ledger, the subscriber's tick and cursor), so a crash leaves either all
//! of it or none; the ledger's key makes sure no item reaches a subscriber twice.

use super::stories::story_row;
use super::{AnyRow, Dialect, Store, StoryMember, StoryRow, secs, time};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

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
    /// Its items, newest first.
    pub items: Vec<DigestItem>,
    /// Every item of the stories those items belong to (for "also carried by").
    pub members: Vec<StoryMember>,
}

/// What a digest shows of one item: not the article, its text cut to what a summary needs.
#[derive(Debug, Clone)]
pub struct DigestItem {
    /// Which of the subscriber's topics matched it.
    pub topic_position: usize,
    pub id: i64,
    pub cluster_id: i64,
    pub url: Option<String>,
    pub title: String,
    /// The first `DIGEST_TEXT_CHARS` characters of its plain text.
    pub text: String,
    pub published_at: DateTime<Utc>,
    pub feed_title: String,
}

/// Characters of an item's text a digest reads (its summary is cut from them).
pub const DIGEST_TEXT_CHARS: usize = 480;

impl Store {
    /// Items stored after `after_id` and published since `since`, with their sources, by id.
    pub async fn stories_after(
        &self,
        after_id: i64,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<StoryRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(concat!(
                story_columns!(),
                "WHERE i.id > ?1 AND i.published_at >= ?2 ORDER BY i.id"
            )))
            .bind(after_id)
            .bind(secs(since))
            .fetch_all(pool)
            .await?;
            rows.iter().map(story_row).collect()
        })
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
        on_pool!(self, subscribers = super::subscribers, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            if !subscribers::build_turn(&mut tx, subscriber_id).await? {
                return Ok(None);
            }
            // On a conflict another process built this tick's digest (and moved the cursor).
            let created: Option<i64> = sqlx::query_scalar(Db::sql(
                "INSERT INTO digests (subscriber_id, tick_at, next_attempt_at, message_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?3) ON CONFLICT (subscriber_id, tick_at) DO NOTHING RETURNING id",
            ))
            .bind(subscriber_id)
            .bind(secs(tick))
            .bind(secs(now))
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await?;
            let mut digest = None;
            if let Some(id) = created {
                // One statement per chunk, not per item: each statement is a round trip to
                // SQLite's worker thread (or PostgreSQL's socket), and a digest holds dozens.
                let mut kept = 0;
                for chunk in items.chunks(400) {
                    let mut q = QueryBuilder::<Db>::new(
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
                    sqlx::query(Db::sql("DELETE FROM digests WHERE id = ?1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    digest = Some(id);
                }
                subscribers::advance(&mut tx, subscriber_id, tick, cursor).await?;
            }
            tx.commit().await?;
            Ok(digest)
        })
    }

    /// Claims up to `limit` digests due for a (first or further) attempt at `now`, oldest first:
    /// pending, and not held by another process's live lease. Each is leased to this process
    /// until its outcome is recorded (`mark_digest_sent`, `retry_digest`, `fail_digest`); if
    /// this process dies first, another sends it once the lease expires (same Message-ID).
    pub async fn due_digests(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingDigest>> {
        let mut out = on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let rows = sqlx::query(Db::sql(
                "UPDATE digests SET lease_owner = ?1, lease_until = ?2
                 WHERE id IN (
                    SELECT id FROM digests
                    WHERE state = 'pending' AND next_attempt_at <= ?3
                      AND (lease_until IS NULL OR lease_until < ?3)
                    ORDER BY next_attempt_at, id LIMIT ?4 /*FOR UPDATE SKIP LOCKED*/)
                 RETURNING id, subscriber_id, tick_at, attempts, message_id, next_attempt_at,
                    (SELECT s.email FROM subscribers s WHERE s.id = digests.subscriber_id) AS email,
                    (SELECT s.timezone FROM subscribers s WHERE s.id = digests.subscriber_id) AS timezone",
            ))
            .bind(self.owner())
            .bind(self.lease_until(now))
            .bind(secs(now))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((r.col::<i64>("next_attempt_at")?, pending_row(r)?));
            }
            if !out.is_empty() {
                // The batch's topics in one query, not one per digest.
                let mut q = QueryBuilder::<Db>::new(
                    "SELECT subscriber_id, spec FROM topics WHERE subscriber_id IN (",
                );
                let mut list = q.separated(", ");
                for (_, d) in &out {
                    list.push_bind(d.subscriber_id);
                }
                q.push(") ORDER BY subscriber_id, position");
                let mut topics: std::collections::HashMap<i64, Vec<String>> =
                    std::collections::HashMap::new();
                for t in q.build().fetch_all(pool).await? {
                    topics
                        .entry(t.try_get("subscriber_id")?)
                        .or_default()
                        .push(t.try_get("spec")?);
                }
                for (_, d) in &mut out {
                    d.topics = topics.get(&d.subscriber_id).cloned().unwrap_or_default();
                }
            }
            anyhow::Ok(out)
        })?;
        out.sort_by_key(|(next, d)| (*next, d.id));
        let mut out: Vec<PendingDigest> = out.into_iter().map(|(_, d)| d).collect();
        // What the emails show, for the whole batch in two queries (not two per digest).
        let ids: Vec<i64> = out.iter().map(|d| d.id).collect();
        let mut items = self.digest_items(&ids).await?;
        let mut clusters: Vec<i64> = items.values().flatten().map(|i| i.cluster_id).collect();
        clusters.sort_unstable();
        clusters.dedup();
        let members = self.story_members(&clusters).await?;
        for d in &mut out {
            d.items = items.remove(&d.id).unwrap_or_default();
            let wanted: std::collections::HashSet<i64> =
                d.items.iter().map(|i| i.cluster_id).collect();
            d.members = members
                .iter()
                .filter(|m| wanted.contains(&m.cluster_id))
                .cloned()
                .collect();
        }
        Ok(out)
    }

    /// The items of each digest in `digest_ids`, newest first, in one query.
    async fn digest_items(
        &self,
        digest_ids: &[i64],
    ) -> anyhow::Result<std::collections::HashMap<i64, Vec<DigestItem>>> {
        let mut out: std::collections::HashMap<i64, Vec<DigestItem>> = Default::default();
        if digest_ids.is_empty() {
            return Ok(out);
        }
        let rows = on_pool!(self, |pool| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT d.digest_id, d.topic_position, i.id, COALESCE(i.cluster_id, i.id) AS cluster_id,
                    i.url, i.title, substr(i.text, 1, ",
            );
            q.push(DIGEST_TEXT_CHARS.to_string()).push(
                ") AS text, i.published_at, COALESCE(f.configured_title, f.title, f.id) AS feed_title
                 FROM deliveries d JOIN items i ON i.id = d.item_id JOIN feeds f ON f.id = i.feed_id
                 WHERE d.digest_id IN (",
            );
            let mut list = q.separated(", ");
            for id in digest_ids {
                list.push_bind(*id);
            }
            q.push(") ORDER BY d.digest_id, i.published_at DESC, i.id DESC");
            let rows = q.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.col::<i64>("digest_id")?, digest_item(r)?)))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        for (digest, item) in rows {
            out.entry(digest).or_default().push(item);
        }
        Ok(out)
    }

    pub async fn mark_digest_sent(&self, digest_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.mark_digests_sent(&[digest_id], now).await
    }

    /// Records several digests as sent in one transaction (the outbox groups the sends that end
    /// while a commit is under way).
    pub async fn mark_digests_sent(
        &self,
        digest_ids: &[i64],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if digest_ids.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            for chunk in digest_ids.chunks(500) {
                let mut q =
                    QueryBuilder::<Db>::new("UPDATE digests SET state = 'sent', sent_at = ");
                q.push_bind(secs(now)).push(
                    ", attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_until = NULL
                     WHERE id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::<Db>::new(
                    "UPDATE subscribers SET failed_digests = 0 WHERE failed_digests <> 0
                     AND id IN (SELECT subscriber_id FROM digests WHERE id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push("))");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Extends this process's lease on a pending digest, for a send that starts late in its
    /// batch. `false` when the digest is no longer this process's to send (its lease ran out
    /// and another process took it, or it is not pending any more).
    pub async fn renew_digest_lease(
        &self,
        digest_id: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let renewed = on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let renewed = sqlx::query(Db::sql(
                "UPDATE digests SET lease_until = ?3
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
            ))
            .bind(digest_id)
            .bind(self.owner())
            .bind(self.lease_until(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            renewed
        });
        Ok(renewed == 1)
    }

    /// A temporary failure: try again at `next` (any process may).
    pub async fn retry_digest(
        &self,
        digest_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE digests SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1",
            ))
            .bind(digest_id)
            .bind(error)
            .bind(secs(next))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
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
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE digests SET state = 'failed', attempts = attempts + 1, last_error = ?2,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1",
            ))
            .bind(digest_id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            sqlx::query(Db::sql(
                "UPDATE subscribers SET failed_digests = failed_digests + 1,
                    status = CASE WHEN failed_digests + 1 >= ?2 THEN 'bouncing' ELSE status END
                 WHERE id = (SELECT subscriber_id FROM digests WHERE id = ?1)",
            ))
            .bind(digest_id)
            .bind(bounce_after)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Counts of digests by state, for status output and tests.
    pub async fn digest_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT state, COUNT(*) AS n FROM digests GROUP BY state ORDER BY state",
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
                .collect()
        })
    }
}

fn pending_row(r: &impl AnyRow) -> anyhow::Result<PendingDigest> {
    Ok(PendingDigest {
        id: r.col("id")?,
        subscriber_id: r.col("subscriber_id")?,
        email: r.col::<Option<String>>("email")?.unwrap_or_default(),
        timezone: r.col::<Option<String>>("timezone")?.unwrap_or_default(),
        tick_at: time(r.col("tick_at")?),
        attempts: r.col("attempts")?,
        message_id: r.col("message_id")?,
        topics: Vec::new(),
        items: Vec::new(),
        members: Vec::new(),
    })
}

fn digest_item(r: &impl AnyRow) -> anyhow::Result<DigestItem> {
    Ok(DigestItem {
        topic_position: r.col::<i64>("topic_position")?.max(0) as usize,
        id: r.col("id")?,
        cluster_id: r.col("cluster_id")?,
        url: r.col("url")?,
        title: r.col("title")?,
        text: r.col("text")?,
        published_at: time(r.col("published_at")?),
        feed_title: r.col("feed_title")?,
    })
}
