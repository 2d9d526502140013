//! The `subscribers` and `topics` tables: who follows what, on which schedule, and how far their
//! digests have got (the last tick handled and the item cursor).

use super::{AnyRow, Dialect, Store, secs, time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub status: String,
    pub schedule: String,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub cursor_item_id: i64,
    pub failed_digests: i64,
    /// Topic specs as written, in order.
    pub topics: Vec<String>,
}

/// A new subscriber, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: String,
    pub status: String,
    pub schedule: String,
    pub timezone: String,
    pub topics: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error("{0} is already subscribed")]
    Exists(String),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl Store {
    /// Adds a subscriber. Their digests start with items stored from now on.
    pub async fn add_subscriber(
        &self,
        s: &NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<i64, SubscriberError> {
        let added: anyhow::Result<Option<i64>> = on_pool!(self, |pool| {
            async {
            let (_turn, mut tx) = self.write(pool).await?;
            let id: Option<i64> = sqlx::query_scalar(Db::sql(
                "INSERT INTO subscribers (email, status, schedule, timezone, created_at, cursor_item_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(id), 0) FROM items))
                 ON CONFLICT (email) DO NOTHING RETURNING id",
            ))
            .bind(&s.email)
            .bind(&s.status)
            .bind(&s.schedule)
            .bind(&s.timezone)
            .bind(secs(now))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                for (position, spec) in s.topics.iter().enumerate() {
                    sqlx::query(Db::sql(
                        "INSERT INTO topics (subscriber_id, position, spec) VALUES (?1, ?2, ?3)",
                    ))
                    .bind(id)
                    .bind(position as i64)
                    .bind(spec)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            Ok(id)
        }
        .await
        });
        added?.ok_or_else(|| SubscriberError::Exists(s.email.clone()))
    }

    /// Every subscriber with their topics, by id.
    pub async fn subscribers(&self) -> anyhow::Result<Vec<Subscriber>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT id, email, status, schedule, timezone, created_at, last_tick_at, cursor_item_id, failed_digests
                 FROM subscribers ORDER BY id",
            ))
            .fetch_all(pool)
            .await?;
            let topics = sqlx::query(Db::sql(
                "SELECT subscriber_id, spec FROM topics ORDER BY subscriber_id, position",
            ))
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(subscriber_row(r)?);
            }
            for t in &topics {
                let id: i64 = t.try_get("subscriber_id")?;
                if let Ok(i) = out.binary_search_by_key(&id, |s| s.id) {
                    out[i].topics.push(t.try_get("spec")?);
                }
            }
            Ok(out)
        })
    }

    /// Removes a subscriber, their topics and their outbox; returns whether they existed.
    pub async fn remove_subscriber(&self, email: &str) -> anyhow::Result<bool> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let id: Option<i64> =
                sqlx::query_scalar(Db::sql("SELECT id FROM subscribers WHERE email = ?1"))
                    .bind(email)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(id) = id else { return Ok(false) };
            sqlx::query(Db::sql("DELETE FROM deliveries WHERE subscriber_id = ?1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(Db::sql("DELETE FROM subscribers WHERE id = ?1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

impl Store {
    /// The installation's link-signing secret (32 random bytes, hex), created on first use.
    pub async fn link_secret(&self) -> anyhow::Result<Vec<u8>> {
        let stored: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(Db::sql(
                "SELECT value FROM settings WHERE key = 'link_secret'",
            ))
            .fetch_optional(pool)
            .await?
        });
        if let Some(hex) = stored {
            return from_hex(&hex)
                .ok_or_else(|| anyhow::anyhow!("settings.link_secret is not hex"));
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let stored: String = on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            // Another process may have created it meanwhile: the first one wins.
            sqlx::query(Db::sql(
                "INSERT INTO settings (key, value) VALUES ('link_secret', ?1) ON CONFLICT (key) DO NOTHING",
            ))
            .bind(&hex)
            .execute(&mut *tx)
            .await?;
            let stored: String = sqlx::query_scalar(Db::sql(
                "SELECT value FROM settings WHERE key = 'link_secret'",
            ))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            stored
        });
        from_hex(&stored).ok_or_else(|| anyhow::anyhow!("settings.link_secret is not hex"))
    }
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

impl Store {
    /// Sets a subscriber's status; returns their address if they exist.
    pub async fn set_subscriber_status(
        &self,
        subscriber_id: i64,
        status: &str,
    ) -> anyhow::Result<Option<String>> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let email: Option<String> = sqlx::query_scalar(Db::sql(
                "UPDATE subscribers SET status = ?2 WHERE id = ?1 RETURNING email",
            ))
            .bind(subscriber_id)
            .bind(status)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(email)
        })
    }
}

/// A subscriber row (the columns of `subscribers`), without topics.
pub(super) fn subscriber_row(r: &impl AnyRow) -> anyhow::Result<Subscriber> {
    Ok(Subscriber {
        id: r.col("id")?,
        email: r.col("email")?,
        status: r.col("status")?,
        schedule: r.col("schedule")?,
        timezone: r.col("timezone")?,
        created_at: time(r.col("created_at")?),
        last_tick_at: r.col::<Option<i64>>("last_tick_at")?.map(time),
        cursor_item_id: r.col("cursor_item_id")?,
        failed_digests: r.col("failed_digests")?,
        topics: Vec::new(),
    })
}

both_dialects! {
/// Which of these subscribers' digests this transaction may build (or pass) now. On PostgreSQL,
/// processes building the same tick would otherwise queue behind each other's uncommitted
/// digest rows and advance in lockstep; with a transaction-scoped advisory lock per subscriber a
/// process finding one taken moves on (the holder builds it), so they split the subscribers.
/// SQLite's single writer needs no such turn.
pub(in crate::storage) async fn build_turns(
    tx: &mut Conn,
    subscriber_ids: &[i64],
) -> anyhow::Result<std::collections::HashSet<i64>> {
    if !<Db as Dialect>::POSTGRES || subscriber_ids.is_empty() {
        return Ok(subscriber_ids.iter().copied().collect());
    }
    let mut q = sqlx::QueryBuilder::<Db>::new("SELECT v.column1 AS id FROM (");
    q.push_values(subscriber_ids, |mut row, id| {
        row.push_bind(*id);
    });
    q.push(") AS v WHERE pg_try_advisory_xact_lock(8, CAST(v.column1 % 2147483647 AS INTEGER))");
    let rows = q.build().fetch_all(&mut *tx).await?;
    rows.iter().map(|r| r.col::<i64>("id")).collect()
}
}
