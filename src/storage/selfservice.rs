//! Self-service subscription: the `subscriber_tokens` table (hashed link tokens, see
//! migrations/*/0004) and the subscriber changes the web pages make: a sign-up request,
//! confirmation, topics and schedule, pause and resume. Tokens arrive here already hashed; this
//! file never sees a usable token.

use super::subscribers::{Subscriber, subscriber_row};
use super::{AnyRow, Dialect, Store, secs, time};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

/// A token to store: its selector and hash (hex), what it is for, and when it stops working.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub selector: String,
    pub hash: String,
    pub purpose: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// A stored token, found by its selector.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub hash: String,
    pub subscriber_id: i64,
    pub purpose: String,
    pub expires_at: DateTime<Utc>,
}

/// What a sign-up request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUp {
    /// A new or not yet active address, now pending with the topics and schedule asked for.
    Pending(i64),
    /// An address already receiving (or pausing) digests: nothing was changed.
    Existing(i64),
}

impl Store {
    /// Stores tokens, each for its subscriber, in one transaction, and drops every expired token
    /// (of anyone) on the way. An address that signed up but let its confirmation link expire is
    /// forgotten with it: nobody proved it wanted mail, so it is not kept.
    pub async fn insert_tokens(
        &self,
        tokens: &[(i64, NewToken)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            sqlx::query(Db::sql(
                "DELETE FROM subscribers WHERE status = 'pending'
                   AND id IN (SELECT subscriber_id FROM subscriber_tokens
                              WHERE purpose = 'confirm' AND expires_at < ?1)
                   AND NOT EXISTS (SELECT 1 FROM subscriber_tokens t
                                   WHERE t.subscriber_id = subscribers.id AND t.expires_at >= ?1)",
            ))
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            sqlx::query(Db::sql(
                "DELETE FROM subscriber_tokens WHERE expires_at < ?1",
            ))
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            // One statement per chunk (6 values a row, well under either database's limit on
            // bound parameters): a batch of digests mints two tokens each.
            for chunk in tokens.chunks(500) {
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO subscriber_tokens (selector, hash, subscriber_id, purpose, created_at, expires_at) ",
                );
                q.push_values(chunk, |mut row, (subscriber_id, t)| {
                    row.push_bind(&t.selector)
                        .push_bind(&t.hash)
                        .push_bind(*subscriber_id)
                        .push_bind(t.purpose)
                        .push_bind(secs(now))
                        .push_bind(secs(t.expires_at));
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The selector of the subscriber's private feed token, if they have one (the newest).
    pub async fn feed_selector(&self, subscriber_id: i64) -> anyhow::Result<Option<String>> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_scalar(Db::sql(
                "SELECT selector FROM subscriber_tokens WHERE subscriber_id = ?1 AND purpose = 'feed'
                 ORDER BY created_at DESC, selector LIMIT 1",
            ))
            .bind(subscriber_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Drops every token of `purpose` the subscriber has (their private feed's, on revoking).
    pub async fn revoke_tokens(&self, subscriber_id: i64, purpose: &str) -> anyhow::Result<u64> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let done = sqlx::query(Db::sql(
                "DELETE FROM subscriber_tokens WHERE subscriber_id = ?1 AND purpose = ?2",
            ))
            .bind(subscriber_id)
            .bind(purpose)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The token with this selector, if stored.
    pub async fn token(&self, selector: &str) -> anyhow::Result<Option<TokenRow>> {
        on_pool!(self, |pool| {
            let row = sqlx::query(Db::sql(
                "SELECT hash, subscriber_id, purpose, expires_at FROM subscriber_tokens WHERE selector = ?1",
            ))
            .bind(selector)
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(TokenRow {
                    hash: r.col("hash")?,
                    subscriber_id: r.col("subscriber_id")?,
                    purpose: r.col("purpose")?,
                    expires_at: time(r.col("expires_at")?),
                })
            })
            .transpose()
        })
    }

    /// Records a sign-up request. A new address, or one that is pending, unsubscribed or
    /// bouncing, becomes pending with `topics` and `schedule`; an active or paused subscriber is
    /// left as they are (the caller mails them their manage link instead).
    pub async fn request_subscription(
        &self,
        email: &str,
        schedule: &str,
        timezone: &str,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<SignUp> {
        on_pool!(self, d, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let existing = sqlx::query(Db::sql(
                "SELECT id, status FROM subscribers WHERE email = ?1",
            ))
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match existing {
                Some(r) => {
                    let id: i64 = r.col("id")?;
                    let status: String = r.col("status")?;
                    if status == "active" || status == "paused" {
                        return Ok(SignUp::Existing(id));
                    }
                    sqlx::query(Db::sql(
                        "UPDATE subscribers SET status = 'pending', schedule = ?2, timezone = ?3 WHERE id = ?1",
                    ))
                    .bind(id)
                    .bind(schedule)
                    .bind(timezone)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => {
                    sqlx::query_scalar(Db::sql(
                        "INSERT INTO subscribers (email, status, schedule, timezone, created_at, cursor_item_id)
                         VALUES (?1, 'pending', ?2, ?3, ?4, 0) RETURNING id",
                    ))
                    .bind(email)
                    .bind(schedule)
                    .bind(timezone)
                    .bind(secs(now))
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            d::replace_topics(&mut tx, id, topics).await?;
            tx.commit().await?;
            Ok(SignUp::Pending(id))
        })
    }

    /// Starts (or restarts) a subscriber's digests: status active from one of `from` statuses,
    /// failures forgotten, and the first digest owes only what arrives from now on. Consumes
    /// their confirm tokens. Returns their address, or `None` if their status was not in `from`.
    pub async fn activate_subscriber(
        &self,
        subscriber_id: i64,
        from: &[&str],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let status: Option<String> =
                sqlx::query_scalar(Db::sql("SELECT status FROM subscribers WHERE id = ?1"))
                    .bind(subscriber_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if !status.is_some_and(|s| from.contains(&s.as_str())) {
                return Ok(None);
            }
            let email: String = sqlx::query_scalar(Db::sql(
                "UPDATE subscribers SET status = 'active', failed_digests = 0, last_tick_at = ?2,
                    cursor_item_id = (SELECT COALESCE(MAX(id), 0) FROM items)
                 WHERE id = ?1 RETURNING email",
            ))
            .bind(subscriber_id)
            .bind(secs(now))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(Db::sql(
                "DELETE FROM subscriber_tokens WHERE subscriber_id = ?1 AND purpose = 'confirm'",
            ))
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(email))
        })
    }

    /// One subscriber with their topics.
    pub async fn subscriber(&self, subscriber_id: i64) -> anyhow::Result<Option<Subscriber>> {
        on_pool!(self, |pool| {
            let Some(r) = sqlx::query(Db::sql(
                "SELECT id, email, status, schedule, timezone, created_at, last_tick_at, cursor_item_id, failed_digests
                 FROM subscribers WHERE id = ?1",
            ))
            .bind(subscriber_id)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let mut subscriber = subscriber_row(&r)?;
            subscriber.topics = sqlx::query_scalar(Db::sql(
                "SELECT spec FROM topics WHERE subscriber_id = ?1 ORDER BY position",
            ))
            .bind(subscriber_id)
            .fetch_all(pool)
            .await?;
            Ok(Some(subscriber))
        })
    }

    /// Replaces a subscriber's topics and schedule; returns whether they exist.
    pub async fn update_subscription(
        &self,
        subscriber_id: i64,
        schedule: &str,
        topics: &[String],
    ) -> anyhow::Result<bool> {
        on_pool!(self, d, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let updated = sqlx::query(Db::sql(
                "UPDATE subscribers SET schedule = ?2 WHERE id = ?1",
            ))
            .bind(subscriber_id)
            .bind(schedule)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            d::replace_topics(&mut tx, subscriber_id, topics).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

both_dialects! {
pub(in crate::storage) async fn replace_topics(
    tx: &mut Conn,
    subscriber_id: i64,
    topics: &[String],
) -> anyhow::Result<()> {
    sqlx::query(Db::sql("DELETE FROM topics WHERE subscriber_id = ?1"))
        .bind(subscriber_id)
        .execute(&mut *tx)
        .await?;
    for (position, spec) in topics.iter().enumerate() {
        sqlx::query(Db::sql(
            "INSERT INTO topics (subscriber_id, position, spec) VALUES (?1, ?2, ?3)",
        ))
        .bind(subscriber_id)
        .bind(position as i64)
        .bind(spec)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
}
