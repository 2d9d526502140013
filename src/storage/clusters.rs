//! Reads and writes of clustering: the items not yet given a story, the story index (one narrow
//! row per clustered item: its feed, date, story and signature), stories by canonical URL, and
//! the assignments.

use super::{AnyRow, Dialect, Store, secs};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// An item as clustering needs it.
#[derive(Debug, Clone)]
pub struct ClusterRow {
    pub id: i64,
    pub feed_id: String,
    /// `None` when read from the story index (URLs are looked up with [`Store::stories_by_url`]).
    pub canonical_url: Option<String>,
    pub published_at: i64,
    pub signature: Option<Vec<u8>>,
    pub cluster_id: Option<i64>,
}

/// One item's story, as clustering decided it.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub item: i64,
    pub cluster: i64,
    pub feed_id: String,
    pub published_at: i64,
    /// `cluster::Signature::to_bytes`, or empty for an item with no text to sign.
    pub signature: Vec<u8>,
}

/// Values (ids, URLs, rows) per statement: at most 5 parameters each, 2,000 in all, well within
/// SQLite's 32,766 and PostgreSQL's 65,535.
const CHUNK: usize = 400;

impl Store {
    /// Takes the clustering lease for this process (or renews it), unless another live process
    /// holds it: `Some(generation)`, the count of assignment batches stored so far by anyone.
    pub async fn claim_clustering(&self, now: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        on_pool!(self, |pool| {
            let _turn = self.write_turn::<Db>().await;
            let generation: Option<i64> = sqlx::query_scalar(Db::sql(
                "UPDATE cluster_lease SET lease_owner = ?1, lease_until = ?2
                 WHERE id = 1 AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_until < ?3)
                 RETURNING generation",
            ))
            .bind(self.owner())
            .bind(self.lease_until(now))
            .bind(secs(now))
            .fetch_optional(pool)
            .await?;
            Ok(generation)
        })
    }

    /// Gives up the clustering lease, if this process holds it.
    pub async fn release_clustering(&self) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let _turn = self.write_turn::<Db>().await;
            sqlx::query(Db::sql(
                "UPDATE cluster_lease SET lease_owner = NULL, lease_until = NULL
                 WHERE id = 1 AND lease_owner = ?1",
            ))
            .bind(self.owner())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Items not yet given a story, in publication order (so a batch covers a few days, not the
    /// whole history of a first poll), with the signature the poll stored: their waiting rows,
    /// not the items' own.
    pub async fn unclustered_items(&self, limit: usize) -> anyhow::Result<Vec<ClusterRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT item_id AS id, feed_id, canonical_url, published_at, signature,
                    NULL AS cluster_id
                 FROM pending_stories ORDER BY published_at, item_id LIMIT ?1",
            ))
            .bind(limit as i64)
            .fetch_all(pool)
            .await?;
            rows.iter().map(cluster_row).collect()
        })
    }

    /// Title and plain text of the given items, for signatures that must be made again.
    pub async fn item_texts(&self, ids: &[i64]) -> anyhow::Result<Vec<(i64, String, String)>> {
        let mut out = Vec::with_capacity(ids.len());
        on_pool!(self, |pool| {
            for chunk in ids.chunks(CHUNK) {
                let mut q =
                    QueryBuilder::<Db>::new("SELECT id, title, text FROM items WHERE id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(pool).await? {
                    out.push((r.col("id")?, r.col("title")?, r.col("text")?));
                }
            }
        });
        Ok(out)
    }

    /// The latest publication time of a stored item that is not after `now` (Unix seconds).
    pub async fn newest_item(&self, now: i64) -> anyhow::Result<Option<i64>> {
        on_pool!(self, |pool| {
            let newest: Option<i64> = sqlx::query_scalar(Db::sql(
                "SELECT MAX(published_at) FROM items WHERE published_at <= ?1",
            ))
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(newest)
        })
    }

    /// Calls `each` with every item of the story index published at or after `from` (and
    /// before `until`, if given), read as a stream: the caller keeps what it needs, nothing is
    /// buffered here. Returns how many.
    pub async fn indexed_items(
        &self,
        from: i64,
        until: Option<i64>,
        mut each: impl FnMut(ClusterRow),
    ) -> anyhow::Result<usize> {
        let mut count = 0;
        on_pool!(self, |pool| {
            let mut rows = sqlx::query(Db::sql(
                "SELECT item_id AS id, feed_id, NULL AS canonical_url, published_at, signature,
                    cluster_id
                 FROM story_index WHERE published_at >= ?1 AND published_at < ?2",
            ))
            .bind(from)
            .bind(until.unwrap_or(i64::MAX))
            .fetch(pool);
            while let Some(r) = rows.try_next().await? {
                each(cluster_row(&r)?);
                count += 1;
            }
        });
        Ok(count)
    }

    /// The story of a clustered item carrying each of `urls` as its canonical URL (the smallest
    /// story, should stored items disagree).
    pub async fn stories_by_url(&self, urls: &[&str]) -> anyhow::Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        on_pool!(self, |pool| {
            for chunk in urls.chunks(CHUNK) {
                let mut q = QueryBuilder::<Db>::new(
                    "SELECT i.canonical_url, MIN(s.cluster_id) AS cluster_id
                     FROM items i JOIN story_index s ON s.item_id = i.id
                     WHERE i.canonical_url IN (",
                );
                let mut list = q.separated(", ");
                for url in chunk {
                    list.push_bind(url.to_string());
                }
                q.push(") GROUP BY i.canonical_url");
                for r in q.build().fetch_all(pool).await? {
                    out.insert(r.col("canonical_url")?, r.col("cluster_id")?);
                }
            }
        });
        Ok(out)
    }

    /// Clustered items published between `from` and `to` (Unix seconds), from the items table
    /// (with their URLs; no signatures).
    pub async fn clustered_between(&self, from: i64, to: i64) -> anyhow::Result<Vec<ClusterRow>> {
        on_pool!(self, |pool| {
            let rows = sqlx::query(Db::sql(
                "SELECT i.id, i.feed_id, i.canonical_url, i.published_at, NULL AS signature,
                    s.cluster_id
                 FROM items i JOIN story_index s ON s.item_id = i.id
                 WHERE i.published_at BETWEEN ?1 AND ?2",
            ))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            rows.iter().map(cluster_row).collect()
        })
    }

    /// Stores each item's story in the story index (with its signature) and deletes its
    /// waiting row, in one transaction, under this process's clustering lease (renewed; an
    /// error if another process took it over, and then nothing is stored). Returns the new
    /// generation.
    pub async fn save_clusters(&self, rows: &[Assignment]) -> anyhow::Result<i64> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            let generation: Option<i64> = sqlx::query_scalar(Db::sql(
                "UPDATE cluster_lease SET generation = generation + 1, lease_until = ?2
                 WHERE id = 1 AND lease_owner = ?1 RETURNING generation",
            ))
            .bind(self.owner())
            .bind(self.lease_until(Utc::now()))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(generation) = generation else {
                anyhow::bail!("another process took over clustering; this batch is left to it");
            };
            for chunk in rows.chunks(CHUNK) {
                // One statement per chunk: each statement is a round trip to the database, which
                // cost more than the clustering itself when made per item.
                let mut q =
                    QueryBuilder::<Db>::new("DELETE FROM pending_stories WHERE item_id IN (");
                let mut list = q.separated(", ");
                for row in chunk {
                    list.push_bind(row.item);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::<Db>::new(
                    "INSERT INTO story_index (item_id, feed_id, published_at, cluster_id, signature) ",
                );
                q.push_values(chunk, |mut b, row| {
                    let signature = (!row.signature.is_empty()).then(|| row.signature.clone());
                    b.push_bind(row.item)
                        .push_bind(row.feed_id.clone())
                        .push_bind(row.published_at)
                        .push_bind(row.cluster)
                        .push_bind(signature);
                });
                q.push(" ON CONFLICT (item_id) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(generation)
        })
    }
}

fn cluster_row(r: &impl AnyRow) -> anyhow::Result<ClusterRow> {
    Ok(ClusterRow {
        id: r.col("id")?,
        feed_id: r.col("feed_id")?,
        canonical_url: r.col("canonical_url")?,
        published_at: r.col("published_at")?,
        signature: r.col("signature")?,
        cluster_id: r.col("cluster_id")?,
    })
}
