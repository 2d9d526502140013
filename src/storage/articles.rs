//! The `article_queue` table: items of full-text feeds whose article page is still to be read.
//! A poll enqueues its new and edited items; the full-text stage claims due rows (a claim
//! counts an attempt and pushes the row's due time out by a lease, so a process that dies
//! mid-fetch gives the row back later), then either stores the body (and the row goes) or
//! records the error with a later due time, and after `MAX_ATTEMPTS` gives up (due NULL): the
//! item keeps its feed text.

use super::{AnyRow, Dialect, Store, secs};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

/// Tries per article page before the item keeps its feed text for good.
pub const MAX_ATTEMPTS: i64 = 3;

/// How a claimed page ended, for `Store::finish_articles`.
#[derive(Debug, Clone)]
pub enum ArticleDone {
    Stored {
        item_id: i64,
        html: String,
        text: String,
        signature: Vec<u8>,
    },
    Failed {
        job: ArticleJob,
        error: String,
        retry_at: DateTime<Utc>,
    },
    Dropped {
        item_id: i64,
    },
}

/// A claimed article page to read.
#[derive(Debug, Clone)]
pub struct ArticleJob {
    pub item_id: i64,
    pub feed_id: String,
    pub url: String,
    pub title: String,
    /// The item's text as its feed gave it (the body must say more than this).
    pub text: String,
    /// Counting this one.
    pub attempts: i64,
}

impl Store {
    /// Takes at most `limit` due article pages for this process.
    pub async fn claim_articles(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<ArticleJob>> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            // Rows whose last attempt's process died after its final try: given up.
            sqlx::query(Db::sql(
                "UPDATE article_queue SET due_at = NULL,
                    last_error = COALESCE(last_error, 'the process reading it stopped')
                 WHERE attempts >= ?1 AND due_at <= ?2",
            ))
            .bind(MAX_ATTEMPTS)
            .bind(secs(now))
            .execute(&mut *tx)
            .await?;
            let claimed = sqlx::query(Db::sql(
                "UPDATE article_queue SET due_at = ?1, attempts = attempts + 1
                 WHERE item_id IN (
                    SELECT item_id FROM article_queue WHERE due_at <= ?2 AND attempts < ?3
                    ORDER BY due_at, item_id LIMIT ?4 /*FOR UPDATE SKIP LOCKED*/)
                 RETURNING item_id, feed_id, attempts",
            ))
            .bind(self.lease_until(now))
            .bind(secs(now))
            .bind(MAX_ATTEMPTS)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            let mut jobs = Vec::with_capacity(claimed.len());
            if !claimed.is_empty() {
                let mut q =
                    QueryBuilder::<Db>::new("SELECT id, url, title, text FROM items WHERE id IN (");
                let mut ids = q.separated(", ");
                for r in &claimed {
                    ids.push_bind(r.try_get::<i64, _>(0)?);
                }
                q.push(")");
                let items = q.build().fetch_all(&mut *tx).await?;
                let mut items: std::collections::HashMap<i64, _> = items
                    .iter()
                    .map(|r| {
                        let id: i64 = r.col("id")?;
                        let url: Option<String> = r.col("url")?;
                        Ok((
                            id,
                            (url, r.col::<String>("title")?, r.col::<String>("text")?),
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?;
                for r in &claimed {
                    let item_id: i64 = r.try_get(0)?;
                    if let Some((Some(url), title, text)) = items.remove(&item_id) {
                        jobs.push(ArticleJob {
                            item_id,
                            feed_id: r.try_get(1)?,
                            url,
                            title,
                            text,
                            attempts: r.try_get(2)?,
                        });
                    }
                }
            }
            tx.commit().await?;
            jobs.sort_by_key(|j| j.item_id);
            Ok(jobs)
        })
    }

    /// Records a batch of read pages in one transaction. Each stored body becomes its item's
    /// content and text (with the signature made from them; the item's feed is marked for
    /// publishing) and leaves the queue; each failure is due again at its retry time, or given
    /// up after its last attempt; each dropped row (its feed no longer wants full text) goes.
    pub async fn finish_articles(&self, done: &[ArticleDone]) -> anyhow::Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            for d in done {
                match d {
                    ArticleDone::Stored {
                        item_id,
                        html,
                        text,
                        signature,
                    } => {
                        let changed = sqlx::query(Db::sql(
                            "UPDATE items SET content_html = ?2, text = ?3
                             WHERE id = ?1 AND id IN (SELECT item_id FROM article_queue)",
                        ))
                        .bind(item_id)
                        .bind(html)
                        .bind(text)
                        .execute(&mut *tx)
                        .await?;
                        if changed.rows_affected() > 0 {
                            // Where clustering reads it: the story index, or the waiting row.
                            for statement in [
                                "UPDATE story_index SET signature = ?2 WHERE item_id = ?1",
                                "UPDATE pending_stories SET signature = ?2 WHERE item_id = ?1",
                            ] {
                                sqlx::query(Db::sql(statement))
                                    .bind(item_id)
                                    .bind(signature)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                            sqlx::query(Db::sql(
                                "UPDATE feeds SET unpublished = unpublished + 1
                                 WHERE id = (SELECT feed_id FROM items WHERE id = ?1)",
                            ))
                            .bind(item_id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        sqlx::query(Db::sql("DELETE FROM article_queue WHERE item_id = ?1"))
                            .bind(item_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    ArticleDone::Failed {
                        job,
                        error,
                        retry_at,
                    } => {
                        let due = (job.attempts < MAX_ATTEMPTS).then(|| secs(*retry_at));
                        sqlx::query(Db::sql(
                            "UPDATE article_queue SET due_at = ?2, last_error = ?3 WHERE item_id = ?1",
                        ))
                        .bind(job.item_id)
                        .bind(due)
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                    }
                    ArticleDone::Dropped { item_id } => {
                        sqlx::query(Db::sql("DELETE FROM article_queue WHERE item_id = ?1"))
                            .bind(item_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

both_dialects! {
/// Puts the given items of a feed (by key; those with a link) on the queue, due now; an item
/// already there starts its attempts again (its text changed).
pub(in crate::storage) async fn enqueue_articles(
    tx: &mut Conn,
    feed_id: &str,
    keys: &[&str],
    now: i64,
) -> anyhow::Result<()> {
    for chunk in keys.chunks(400) {
        let mut q = QueryBuilder::<Db>::new(
            "INSERT INTO article_queue (item_id, feed_id, attempts, due_at)
             SELECT id, feed_id, 0, ",
        );
        q.push_bind(now).push(" FROM items WHERE url IS NOT NULL AND feed_id = ");
        q.push_bind(feed_id).push(" AND item_key IN (");
        let mut list = q.separated(", ");
        for key in chunk {
            list.push_bind(key.to_string());
        }
        q.push(
            ") ON CONFLICT (item_id) DO UPDATE SET attempts = 0, due_at = excluded.due_at,
                last_error = NULL",
        );
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}
}
