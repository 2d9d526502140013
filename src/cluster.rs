//! Which items are the same story across sources ("one story, one item").
//!
//! It owns the decision only: a [`Signature`] per item (MinHash over weighted syllable shingles of
//! title and plain text), and [`assign_clusters`], which gives each newly stored item the cluster
//! of an earlier item that reports the same story, or a new cluster of its own. Two items are the
//! same story when they share a canonical URL, or when their signatures are at least
//! [`THRESHOLD`] similar and they were published at most [`WINDOW_SECS`] apart. Candidates are
//! found by LSH banding: a new item is compared with the few earlier items that share a band of
//! its signature, not with all of them, so the cost grows with the number of items, not of pairs.
//!
//! It is pure: members in, assignments out. It must not read the clock, the database or the
//! network; storage loads the members and writes the assignments back. [`Index`] keeps the
//! clustered items of the last days between calls, so that a round's few new items cost a few
//! index lookups, not a reload of the window.

mod index;
mod lsh;
mod signature;
#[cfg(test)]
mod tests;

pub use index::Index;
pub use signature::{HASHES, Signature, signature};

use std::collections::{HashMap, HashSet};

/// Signature similarity from which two items of different feeds are one story.
///
/// Chosen by sweeping 1,602 labelled pairs (`cluster::tests::labelled`, where the table is): there
/// it judges with precision 1.000 and recall 0.976.
pub const THRESHOLD: f64 = 0.42;

/// Two reports of one story are published within three days of each other; a later report on the
/// same subject is a new story (a follow-up, next week's prices).
pub const WINDOW_SECS: i64 = 3 * 24 * 60 * 60;

/// One stored item, as clustering sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: i64,
    pub feed_id: String,
    pub canonical_url: Option<String>,
    /// Unix seconds.
    pub published_at: i64,
    /// `None` for an item stored before signatures existed: it can match by URL only.
    pub signature: Option<Signature>,
    /// `None` for the items being assigned.
    pub cluster_id: Option<i64>,
}

/// Assigns every item of `new` (taken in id order; their `cluster_id` is ignored) to a cluster:
/// the cluster of a matching earlier item (from `existing`, or earlier in `new`), else a new
/// cluster named by the item's own id, so a cluster's id is its first member's.
///
/// A match is a shared canonical URL; or, between items of different feeds published within
/// [`WINDOW_SECS`], a signature similarity of at least [`THRESHOLD`] (the most similar wins). A
/// feed's second item never joins by similarity a cluster that already holds one of its items:
/// an outlet writing twice about an event writes a follow-up, which must stay visible.
///
/// `existing` needs only the items published within [`WINDOW_SECS`] of a new one, and those whose
/// canonical URL a new item carries: any other can match nothing. This builds an [`Index`] of
/// `existing` for the one call; a caller with many batches keeps an `Index` instead.
///
/// Returns `(item id, cluster id)` pairs, in item id order.
pub fn assign_clusters(existing: &[Member], new: &[Member]) -> Vec<(i64, i64)> {
    assign(existing, new).0
}

/// [`assign_clusters`], also counting the similarity checks it made (for the scale test).
fn assign(existing: &[Member], new: &[Member]) -> (Vec<(i64, i64)>, usize) {
    let new_ids: HashSet<i64> = new.iter().map(|m| m.id).collect();
    let (Some(first), Some(last)) = (
        new.iter().map(|m| m.published_at).min(),
        new.iter().map(|m| m.published_at).max(),
    ) else {
        return (Vec::new(), 0);
    };
    let window = first.saturating_sub(WINDOW_SECS)..=last.saturating_add(WINDOW_SECS);
    let earlier: Vec<&Member> = existing
        .iter()
        .filter(|m| !new_ids.contains(&m.id))
        .collect();
    let mut by_url: HashMap<String, i64> = HashMap::new();
    for m in &earlier {
        if let Some(url) = &m.canonical_url {
            let cluster = m.cluster_id.unwrap_or(m.id);
            let known = by_url.entry(url.clone()).or_insert(cluster);
            *known = (*known).min(cluster);
        }
    }
    // Older or newer than every new item by more than the window: only its URL can match.
    let indexed: Vec<Member> = earlier
        .into_iter()
        .filter(|m| window.contains(&m.published_at))
        .cloned()
        .collect();
    let mut index = Index::with_capacity(indexed.len() + new.len());
    index.extend(indexed, *window.start());
    let assigned = index.assign(new.to_vec(), &by_url);
    (assigned, index.checks)
}
