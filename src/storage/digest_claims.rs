//! The outbox's sending side: pending digests claimed under a lease (oldest first, never one
//! another live process holds), the items each shows, and each send's outcome: sent, retried
//! with backoff, or failed (three in a row mark the subscriber bouncing).

use super::digests::{DIGEST_TEXT_CHARS, DigestItem, PendingDigest};
use super::{AnyRow, Dialect, Store, secs, time};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

impl Store {
    /// Claims up to `limit` digests due for a (first or further) attempt at `now`, oldest first:
    /// pending, and not held by another process's live lease. Each is leased to this process
    /// until its outcome is recorded (`mark_digest_sent`, `retry_digest`, `fail_digest`); if
    /// this process dies first, another sends it once the lease expires (same Message-ID).
    pub async fn due_digests(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingDigest>> {
        // Deliveries recorded in the sent log are in the table before anything is claimed, so a
        // digest delivered but not yet marked is never taken again.
        self.flush_sent().await?;
        let mut out = on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let rows = sqlx::query(Db::sql(
                "UPDATE digests SET lease_owner = ?1, lease_until = ?2
                 WHERE id IN (
                    SELECT id FROM digests
                    WHERE state = 'pending' AND next_attempt_at <= ?3
                      AND (lease_until IS NULL OR lease_until < ?3)
                    ORDER BY next_attempt_at, id LIMIT ?4 /*FOR UPDATE SKIP LOCKED*/)
                 RETURNING id, subscriber_id, tick_at, attempts, message_id, next_attempt_at, items,
                    (SELECT s.email FROM subscribers s WHERE s.id = digests.subscriber_id) AS email,
                    (SELECT s.timezone FROM subscribers s WHERE s.id = digests.subscriber_id) AS timezone,
                    (SELECT s.failed_digests FROM subscribers s WHERE s.id = digests.subscriber_id) AS failures",
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
        // Digests built before their rows carried the list: from the ledger.
        let unlisted: Vec<i64> = out
            .iter()
            .filter(|d| d.items.is_empty())
            .map(|d| d.id)
            .collect();
        if !unlisted.is_empty() {
            let mut ledger = self.ledger_items(&unlisted).await?;
            for d in out.iter_mut().filter(|d| d.items.is_empty()) {
                d.items = ledger.remove(&d.id).unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// The ledger's items of each digest in `digest_ids`.
    async fn ledger_items(
        &self,
        digest_ids: &[i64],
    ) -> anyhow::Result<std::collections::HashMap<i64, Vec<(i64, usize)>>> {
        let mut out: std::collections::HashMap<i64, Vec<(i64, usize)>> = Default::default();
        on_pool!(self, |pool| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT digest_id, item_id, topic_position FROM deliveries WHERE digest_id IN (",
            );
            let mut list = q.separated(", ");
            for id in digest_ids {
                list.push_bind(*id);
            }
            q.push(") ORDER BY digest_id, item_id");
            for r in q.build().fetch_all(pool).await? {
                out.entry(r.col("digest_id")?).or_default().push((
                    r.col("item_id")?,
                    r.col::<i64>("topic_position")?.max(0) as usize,
                ));
            }
        });
        Ok(out)
    }

    /// What digests show of the items in `ids` (text cut to `DIGEST_TEXT_CHARS` in the query),
    /// in one query per few hundred.
    pub async fn digest_items(&self, ids: &[i64]) -> anyhow::Result<Vec<DigestItem>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            on_pool!(self, |pool| {
                let mut q = QueryBuilder::<Db>::new(
                    "SELECT i.id, COALESCE(s.cluster_id, i.id) AS cluster_id, i.url, i.title, substr(i.text, 1, ",
                );
                q.push(DIGEST_TEXT_CHARS.to_string()).push(
                    ") AS text, i.published_at, COALESCE(f.configured_title, f.title, f.id) AS feed_title
                     FROM items i JOIN feeds f ON f.id = i.feed_id
                     LEFT JOIN story_index s ON s.item_id = i.id WHERE i.id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(pool).await? {
                    out.push(digest_item(&r)?);
                }
            });
        }
        Ok(out)
    }

    pub async fn mark_digest_sent(&self, digest_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.mark_digests_sent(&[digest_id], true, now).await
    }

    /// Records several digests as sent (the outbox groups the sends that end while a write is
    /// under way). `clear_failures`: some of their subscribers had permanent failures counted
    /// (`PendingDigest::failures`), which a delivery resets; without it, and for up to 500
    /// digests, this is a single statement, its own transaction. Only pending digests change, so
    /// recording a delivery twice (a sent log applied again after a crash) changes nothing.
    pub async fn mark_digests_sent(
        &self,
        digest_ids: &[i64],
        clear_failures: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if digest_ids.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let sent = |chunk: &[i64]| {
                let mut q =
                    QueryBuilder::<Db>::new("UPDATE digests SET state = 'sent', sent_at = ");
                q.push_bind(secs(now)).push(
                    ", attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_until = NULL
                     WHERE state = 'pending' AND id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q
            };
            if !clear_failures && digest_ids.len() <= 500 {
                let _turn = self.write_turn::<Db>().await;
                sent(digest_ids).build().execute(pool).await?;
                return Ok(());
            }
            let (_turn, mut tx) = self.write(pool).await?;
            for chunk in digest_ids.chunks(500) {
                sent(chunk).build().execute(&mut *tx).await?;
                if !clear_failures {
                    continue;
                }
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
        failures: r.col::<Option<i64>>("failures")?.unwrap_or(0),
        message_id: r.col("message_id")?,
        topics: Vec::new(),
        items: r
            .col::<Option<String>>("items")?
            .map(|list| parse_item_list(&list))
            .transpose()?
            .unwrap_or_default(),
    })
}

fn parse_item_list(list: &str) -> anyhow::Result<Vec<(i64, usize)>> {
    list.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (item, topic) = e.split_once(':').unwrap_or((e, "0"));
            Ok((item.parse()?, topic.parse()?))
        })
        .collect::<anyhow::Result<_>>()
        .map_err(|e: anyhow::Error| anyhow::anyhow!("digest item list {list:?}: {e}"))
}

fn digest_item(r: &impl AnyRow) -> anyhow::Result<DigestItem> {
    Ok(DigestItem {
        id: r.col("id")?,
        cluster_id: r.col("cluster_id")?,
        url: r.col("url")?,
        title: r.col("title")?,
        text: r.col("text")?,
        published_at: time(r.col("published_at")?),
        feed_title: r.col("feed_title")?,
    })
}
