//! The `subscribers` and `topics` tables: who follows what, on which schedule, and how far their
//! digests have got (the last tick handled and the item cursor).

use super::{Store, secs, time};
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
        let (_turn, mut tx) = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO subscribers (email, status, schedule, timezone, created_at, cursor_item_id)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(id), 0) FROM items))
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&s.email)
        .bind(&s.status)
        .bind(&s.schedule)
        .bind(&s.timezone)
        .bind(secs(now))
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
        if inserted.rows_affected() == 0 {
            return Err(SubscriberError::Exists(s.email.clone()));
        }
        let id = inserted.last_insert_rowid();
        for (position, spec) in s.topics.iter().enumerate() {
            sqlx::query("INSERT INTO topics (subscriber_id, position, spec) VALUES (?1, ?2, ?3)")
                .bind(id)
                .bind(position as i64)
                .bind(spec)
                .execute(&mut *tx)
                .await
                .map_err(anyhow::Error::from)?;
        }
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(id)
    }

    /// Every subscriber with their topics, by id.
    pub async fn subscribers(&self) -> anyhow::Result<Vec<Subscriber>> {
        let rows = sqlx::query(
            "SELECT id, email, status, schedule, timezone, created_at, last_tick_at, cursor_item_id, failed_digests
             FROM subscribers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let topics =
            sqlx::query("SELECT subscriber_id, spec FROM topics ORDER BY subscriber_id, position")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(Subscriber {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                status: r.try_get("status")?,
                schedule: r.try_get("schedule")?,
                timezone: r.try_get("timezone")?,
                created_at: time(r.try_get("created_at")?),
                last_tick_at: r.try_get::<Option<i64>, _>("last_tick_at")?.map(time),
                cursor_item_id: r.try_get("cursor_item_id")?,
                failed_digests: r.try_get("failed_digests")?,
                topics: Vec::new(),
            });
        }
        for t in &topics {
            let id: i64 = t.try_get("subscriber_id")?;
            if let Ok(i) = out.binary_search_by_key(&id, |s| s.id) {
                out[i].topics.push(t.try_get("spec")?);
            }
        }
        Ok(out)
    }

    /// Removes a subscriber, their topics and their outbox; returns whether they existed.
    pub async fn remove_subscriber(&self, email: &str) -> anyhow::Result<bool> {
        let (_turn, mut tx) = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM subscribers WHERE email = ?1")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else { return Ok(false) };
        sqlx::query("DELETE FROM deliveries WHERE subscriber_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subscribers WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a tick that owed nothing: the subscriber's tick and cursor move on.
    pub async fn pass_tick(
        &self,
        subscriber_id: i64,
        tick: DateTime<Utc>,
        cursor: i64,
    ) -> anyhow::Result<()> {
        let (_turn, mut tx) = self.write().await?;
        advance(&mut tx, subscriber_id, tick, cursor).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// The installation's link-signing secret (32 random bytes, hex), created on first use.
    pub async fn link_secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(hex) =
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = 'link_secret'")
                .fetch_optional(&self.pool)
                .await?
        {
            return from_hex(&hex)
                .ok_or_else(|| anyhow::anyhow!("settings.link_secret is not hex"));
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let (_turn, mut tx) = self.write().await?;
        // Another process may have created it meanwhile: the first one wins.
        sqlx::query("INSERT INTO settings (key, value) VALUES ('link_secret', ?1) ON CONFLICT (key) DO NOTHING")
            .bind(&hex)
            .execute(&mut *tx)
            .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'link_secret'")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
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
        let (_turn, mut tx) = self.write().await?;
        let email: Option<String> =
            sqlx::query_scalar("UPDATE subscribers SET status = ?2 WHERE id = ?1 RETURNING email")
                .bind(subscriber_id)
                .bind(status)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(email)
    }
}

/// Moves a subscriber's tick and item cursor on (never back: two processes may race).
pub(super) async fn advance(
    tx: &mut sqlx::SqliteConnection,
    subscriber_id: i64,
    tick: DateTime<Utc>,
    cursor: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE subscribers SET last_tick_at = MAX(COALESCE(last_tick_at, 0), ?2),
            cursor_item_id = MAX(cursor_item_id, ?3) WHERE id = ?1",
    )
    .bind(subscriber_id)
    .bind(secs(tick))
    .bind(cursor)
    .execute(tx)
    .await?;
    Ok(())
}
