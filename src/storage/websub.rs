//! The `websub_subscriptions` table (migrations/*/0015): callbacks verified as subscribed to one
//! of tinbao's feeds at its WebSub hub, and the content distribution each is owed. A changed
//! feed counts one more change owed to each live subscription (`owed`); the deliverer claims due
//! rows (pushing their due time out by a lease, so a process that dies mid-delivery gives them
//! back), sends the feed as it is then, and records `sent`, or a later due time after a failure.
//! Expired subscriptions, and those whose callback failed for a whole lease, are dropped.

use super::{AnyRow, Dialect, Store, secs, time};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

/// A verified subscription to store (or renew).
#[derive(Debug, Clone)]
pub struct NewWebSub {
    pub topic: String,
    pub callback: String,
    pub callback_host: String,
    pub secret: Option<String>,
    pub lease_secs: i64,
}

/// A claimed content distribution: the feed `topic` to send to `callback`.
#[derive(Debug, Clone)]
pub struct WebSubJob {
    pub id: i64,
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
    /// The change count this delivery covers.
    pub owed: i64,
    /// Counting this one.
    pub attempts: i64,
    pub lease_secs: i64,
    pub failing_since: Option<DateTime<Utc>>,
}

/// A subscription as the operator sees it.
#[derive(Debug, Clone)]
pub struct WebSubRow {
    pub topic: String,
    pub callback: String,
    pub expires_at: DateTime<Utc>,
    pub pending: bool,
    pub last_error: Option<String>,
}

impl Store {
    /// How many live subscriptions `topic` has, and how many callbacks on `host` have.
    pub async fn websub_counts(
        &self,
        topic: &str,
        host: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(i64, i64)> {
        on_pool!(self, |pool| {
            let count = |sql: &'static str, value: &str| {
                sqlx::query_scalar::<_, i64>(Db::sql(sql))
                    .bind(value.to_string())
                    .bind(secs(now))
                    .fetch_one(pool)
            };
            let topic = count(
                "SELECT COUNT(*) FROM websub_subscriptions WHERE topic = ?1 AND expires_at > ?2",
                topic,
            )
            .await?;
            let host = count(
                "SELECT COUNT(*) FROM websub_subscriptions
                 WHERE callback_host = ?1 AND expires_at > ?2",
                host,
            )
            .await?;
            Ok((topic, host))
        })
    }

    /// Stores a verified subscription, or renews it (a new lease and secret, its failures
    /// forgotten); what it was already owed stays owed.
    pub async fn websub_subscribe(
        &self,
        sub: &NewWebSub,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "INSERT INTO websub_subscriptions
                    (topic, callback, callback_host, secret, lease_secs, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (topic, callback) DO UPDATE SET
                    callback_host = excluded.callback_host, secret = excluded.secret,
                    lease_secs = excluded.lease_secs, expires_at = excluded.expires_at,
                    attempts = 0, failing_since = NULL, last_error = NULL",
            ))
            .bind(&sub.topic)
            .bind(&sub.callback)
            .bind(&sub.callback_host)
            .bind(&sub.secret)
            .bind(sub.lease_secs)
            .bind(secs(now).saturating_add(sub.lease_secs))
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Forgets a subscription; whether there was one.
    pub async fn websub_unsubscribe(&self, topic: &str, callback: &str) -> anyhow::Result<bool> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let done = sqlx::query(Db::sql(
                "DELETE FROM websub_subscriptions WHERE topic = ?1 AND callback = ?2",
            ))
            .bind(topic)
            .bind(callback)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(done > 0)
        })
    }

    /// These feeds (topic URLs) changed: each live subscription to them is owed one more
    /// delivery, due now unless one is already due or in flight. Returns how many were.
    pub async fn websub_changed(
        &self,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        if topics.is_empty() {
            return Ok(0);
        }
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let mut q = QueryBuilder::<Db>::new(
                "UPDATE websub_subscriptions SET owed = owed + 1, due_at = COALESCE(due_at, ",
            );
            q.push_bind(secs(now));
            q.push(") WHERE expires_at > ");
            q.push_bind(secs(now));
            q.push(" AND topic IN (");
            let mut list = q.separated(", ");
            for t in topics {
                list.push_bind(t.clone());
            }
            q.push(")");
            let done = q.build().execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Takes at most `limit` due deliveries for this process, after dropping the subscriptions
    /// whose lease ended.
    pub async fn websub_claim(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<WebSubJob>> {
        on_pool!(self, |pool| {
            // A read first: the hub asks every second, and most seconds there is nothing to do,
            // which must not take the write turn.
            let pending: Option<i64> = sqlx::query_scalar(Db::sql(
                "SELECT id FROM websub_subscriptions WHERE due_at <= ?1 OR expires_at <= ?1 LIMIT 1",
            ))
            .bind(secs(now))
            .fetch_optional(pool)
            .await?;
            if pending.is_none() {
                return Ok(Vec::new());
            }
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "DELETE FROM websub_subscriptions WHERE expires_at <= ?1",
            ))
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(Db::sql(
                "UPDATE websub_subscriptions SET due_at = ?1, attempts = attempts + 1
                 WHERE id IN (
                    SELECT id FROM websub_subscriptions WHERE due_at <= ?2
                    ORDER BY due_at, id LIMIT ?3 /*FOR UPDATE SKIP LOCKED*/)
                 RETURNING id, topic, callback, secret, owed, attempts, lease_secs, failing_since",
            ))
            .bind(self.lease_until(now))
            .bind(secs(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut jobs = rows
                .iter()
                .map(|r| {
                    Ok(WebSubJob {
                        id: r.col("id")?,
                        topic: r.col("topic")?,
                        callback: r.col("callback")?,
                        secret: r.col("secret")?,
                        owed: r.col("owed")?,
                        attempts: r.col("attempts")?,
                        lease_secs: r.col("lease_secs")?,
                        failing_since: r.col::<Option<i64>>("failing_since")?.map(time),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            jobs.sort_by_key(|j| j.id);
            Ok(jobs)
        })
    }

    /// A delivery arrived: what it covered is sent; due again now if the feed changed meanwhile.
    pub async fn websub_delivered(
        &self,
        job: &WebSubJob,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "UPDATE websub_subscriptions SET sent = ?2, attempts = 0, failing_since = NULL,
                    last_error = NULL, delivered_at = ?3,
                    due_at = CASE WHEN owed > ?2 THEN ?3 ELSE NULL END
                 WHERE id = ?1",
            ))
            .bind(job.id)
            .bind(job.owed)
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A delivery failed: tried again at `retry_at`, or, `drop` set, the subscription is gone
    /// (the callback failed for its whole lease, or said it is gone).
    pub async fn websub_failed(
        &self,
        job: &WebSubJob,
        error: &str,
        retry_at: DateTime<Utc>,
        drop: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            if drop {
                sqlx::query(Db::sql("DELETE FROM websub_subscriptions WHERE id = ?1"))
                    .bind(job.id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(Db::sql(
                    "UPDATE websub_subscriptions SET due_at = ?2, last_error = ?3,
                        failing_since = COALESCE(failing_since, ?4)
                     WHERE id = ?1",
                ))
                .bind(job.id)
                .bind(secs(retry_at))
                .bind(error)
                .bind(secs(now))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every subscription, by topic then callback.
    pub async fn websub_subscriptions(&self) -> anyhow::Result<Vec<WebSubRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT topic, callback, expires_at, due_at, last_error FROM websub_subscriptions
                 ORDER BY topic, callback",
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(WebSubRow {
                        topic: r.col("topic")?,
                        callback: r.col("callback")?,
                        expires_at: time(r.col("expires_at")?),
                        pending: r.col::<Option<i64>>("due_at")?.is_some(),
                        last_error: r.col("last_error")?,
                    })
                })
                .collect()
        })
    }
}
