//! Clustering as a stage: the new items of the store get their stories, a batch at a time,
//! against a story index (`cluster::Index`) that this process keeps between rounds. The index is
//! filled from the store's story index once, for the last days, and then grows with each batch it
//! assigns; it is dropped and rebuilt when another process clustered meanwhile (the lease's
//! generation moved) or a round failed half-way. So a round of a few new items costs a few
//! lookups, not a reload of the window.

use super::refresh::Refresher;
use crate::cluster::{Index, Member, Signature, WINDOW_SECS, signature};
use crate::storage::{Assignment, ClusterRow};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The index and the lease generation it reflects.
pub(crate) type Kept = Arc<Mutex<Option<(Index, i64)>>>;

/// New items per batch: one transaction, and what a kill can leave half-done.
const BATCH: usize = 5_000;

impl Refresher {
    /// Gives every new item its story: the story of an item from another source that reports
    /// the same event (same canonical link, or near-identical text within three days), else a
    /// story of its own. One process clusters at a time (a lease); another that finds the lease
    /// taken leaves the items to its holder and returns 0.
    pub async fn cluster_new_items(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let Some(generation) = self.store.claim_clustering(now).await? else {
            tracing::info!("another process is clustering; the new items are left to it");
            return Ok(0);
        };
        let kept = self.stories.lock().ok().and_then(|mut kept| kept.take());
        let index = match kept {
            Some((index, seen)) if seen == generation => index,
            _ => Index::default(),
        };
        let result = self
            .cluster_batches(index, generation, now.timestamp())
            .await;
        let released = self.store.release_clustering().await;
        let (mut index, generation, done) = result?;
        released?;
        // Items six days older than the news (the newest indexed item, or now if that is in the
        // future) are kept only while few: a new item that old loads its days again.
        let newest = index
            .newest()
            .map_or(now.timestamp(), |n| n.min(now.timestamp()));
        index.forget_before(newest - 2 * WINDOW_SECS);
        if let Ok(mut kept) = self.stories.lock() {
            *kept = Some((index, generation));
        }
        Ok(done)
    }

    async fn cluster_batches(
        &self,
        mut index: Index,
        mut generation: i64,
        now: i64,
    ) -> anyhow::Result<(Index, i64, usize)> {
        // The kept index holds the news of the last days: from six days before the newest
        // stored item (not counting items dated in the future) on.
        if index.low().is_none() {
            let newest = self.store.newest_item(now).await?.unwrap_or(now);
            let horizon = newest - 2 * WINDOW_SECS;
            // Filed as they are read: the rows are not held as well as the index.
            self.store
                .indexed_items(horizon, None, |row| index.extend([member(row)], horizon))
                .await?;
            index.extend([], horizon);
        }
        let low = index.low().unwrap_or(i64::MIN);
        let mut done = 0;
        let batch = crate::seam::cluster_batch(BATCH);
        loop {
            if done > 0 {
                crate::seam::hold_before("the next cluster batch").await;
            }
            let fresh = self.store.unclustered_items(batch).await?;
            if fresh.is_empty() {
                return Ok((index, generation, done));
            }
            let count = fresh.len();
            // Items dated before the kept days (a first poll of long histories, a paper's
            // backdated item) are clustered against the days around them, read for this batch.
            let (old, recent): (Vec<ClusterRow>, Vec<ClusterRow>) = fresh
                .into_iter()
                .partition(|r| r.published_at.saturating_sub(WINDOW_SECS) < low);
            if let (Some(first), Some(last)) = (
                old.iter().map(|r| r.published_at).min(),
                old.iter().map(|r| r.published_at).max(),
            ) {
                let (from, to) = (first - WINDOW_SECS, last.saturating_add(WINDOW_SECS));
                let mut window = Index::default();
                self.store
                    .indexed_items(from, Some(to.saturating_add(1)), |row| {
                        window.extend([member(row)], from)
                    })
                    .await?;
                window.extend([], from);
                let (_, rows) = self.assign(window, old).await?;
                generation = self.store.save_clusters(&rows).await?;
                // Those from the kept days on are now part of them.
                let kept: Vec<Member> = rows
                    .iter()
                    .filter(|r| r.published_at >= low)
                    .map(assigned_member)
                    .collect();
                index.extend(kept, low);
            }
            if !recent.is_empty() {
                let (back, rows) = self.assign(index, recent).await?;
                index = back;
                generation = self.store.save_clusters(&rows).await?;
            }
            done += count;
        }
    }

    /// One batch's stories against `index` (which then holds them too): the signatures the
    /// poll made, or new ones for items without, and the stories of their canonical URLs.
    async fn assign(
        &self,
        index: Index,
        fresh: Vec<ClusterRow>,
    ) -> anyhow::Result<(Index, Vec<Assignment>)> {
        // Made by the poll's parse; one missing (stored by an older build) or unreadable is made
        // again from the item's text.
        let unsigned: Vec<i64> = fresh
            .iter()
            .filter(|r| stored_signature(r).is_none())
            .map(|r| r.id)
            .collect();
        let texts = if unsigned.is_empty() {
            Vec::new()
        } else {
            self.store.item_texts(&unsigned).await?
        };
        let urls: Vec<&str> = fresh
            .iter()
            .filter_map(|r| r.canonical_url.as_deref())
            .collect();
        let by_url = self.store.stories_by_url(&urls).await?;
        Ok(tokio::task::spawn_blocking(move || assign_batch(index, fresh, texts, &by_url)).await?)
    }
}

/// An assigned item as the index holds it.
fn assigned_member(row: &Assignment) -> Member {
    Member {
        id: row.item,
        feed_id: row.feed_id.clone(),
        canonical_url: None,
        published_at: row.published_at,
        signature: Signature::from_bytes(&row.signature),
        cluster_id: Some(row.cluster),
    }
}

fn stored_signature(row: &ClusterRow) -> Option<Signature> {
    row.signature.as_deref().and_then(Signature::from_bytes)
}

/// A clustered item of the story index, as the index holds it.
fn member(row: ClusterRow) -> Member {
    Member {
        signature: stored_signature(&row),
        id: row.id,
        feed_id: row.feed_id,
        canonical_url: row.canonical_url,
        published_at: row.published_at,
        cluster_id: row.cluster_id,
    }
}

/// The pure part of a batch: signatures for the items without one, then their stories.
///
/// Each row is taken apart rather than copied: its signature goes once into the index (as
/// values) and once into its assignment (as the stored bytes), which is what a batch holds.
fn assign_batch(
    mut index: Index,
    fresh: Vec<ClusterRow>,
    texts: Vec<(i64, String, String)>,
    by_url: &HashMap<String, i64>,
) -> (Index, Vec<Assignment>) {
    let mut texts: HashMap<i64, (String, String)> =
        texts.into_iter().map(|(id, t, x)| (id, (t, x))).collect();
    let mut stored: HashMap<i64, (String, i64, Vec<u8>)> = HashMap::with_capacity(fresh.len());
    let mut members = Vec::with_capacity(fresh.len());
    for row in fresh {
        let (signature, bytes) = match stored_signature(&row) {
            Some(signature) => (Some(signature), row.signature.unwrap_or_default()),
            None => {
                let made = texts
                    .remove(&row.id)
                    .map(|(title, text)| signature(&title, &text));
                let bytes = made.as_ref().map(Signature::to_bytes).unwrap_or_default();
                (made, bytes)
            }
        };
        members.push(Member {
            id: row.id,
            feed_id: row.feed_id.clone(),
            canonical_url: row.canonical_url,
            published_at: row.published_at,
            signature,
            cluster_id: None,
        });
        stored.insert(row.id, (row.feed_id, row.published_at, bytes));
    }
    let rows = index
        .assign(members, by_url)
        .into_iter()
        .filter_map(|(item, cluster)| {
            let (feed_id, published_at, signature) = stored.remove(&item)?;
            Some(Assignment {
                item,
                cluster,
                feed_id,
                published_at,
                signature,
            })
        })
        .collect();
    (index, rows)
}
