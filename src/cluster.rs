//! Which items are the same story across sources (issue 3, "one story, one item").
//!
//! It owns the decision only: a [`Signature`] per item (MinHash over weighted syllable shingles of
//! title and plain text), and [`assign_clusters`], which gives each newly stored item the cluster
//! of an earlier item that reports the same story, or a new cluster of its own. Two items are the
//! same story when they share a canonical URL, or when their signatures are at least
//! [`THRESHOLD`] similar and they were published at most [`WINDOW_SECS`] apart. Candidates are
//! found by LSH banding, so the cost grows with the number of items, not of pairs.
//!
//! It is pure: members in, assignments out. It must not read the clock, the database or the
//! network; storage loads the members and writes the assignments back.

mod signature;
#[cfg(test)]
mod tests;

pub use signature::{HASHES, Signature, signature};

use std::collections::HashMap;

/// Signature similarity from which two items of different feeds are one story.
///
/// Chosen by sweeping the labelled pairs (`cluster::tests`); see the table there.
pub const THRESHOLD: f64 = 0.42;

/// Two reports of one story are published within three days of each other; a later report on the
/// same subject is a new story (a follow-up, next week's prices).
pub const WINDOW_SECS: i64 = 3 * 24 * 60 * 60;

/// Rows per LSH band: two items become candidates when all rows of one band agree.
const ROWS: usize = 2;
/// Bands probed, over the first `ROWS * BANDS` values of the signature. With `ROWS = 2` the chance
/// that a pair of similarity `s` becomes a candidate is `1 - (1 - s²)^BANDS`: 0.986 at 0.36, 0.999
/// at 0.45, while an unrelated pair (`s` ≈ 0.05) is verified with chance 0.08.
const BANDS: usize = 40;

const DAY_SECS: i64 = 24 * 60 * 60;

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
/// Returns `(item id, cluster id)` pairs, in item id order.
pub fn assign_clusters(existing: &[Member], new: &[Member]) -> Vec<(i64, i64)> {
    let mut order: Vec<&Member> = new.iter().collect();
    order.sort_by_key(|m| m.id);
    order.dedup_by_key(|m| m.id);
    let Some(window) = time_range(&order) else {
        return Vec::new();
    };
    let new_ids: std::collections::HashSet<i64> = order.iter().map(|m| m.id).collect();
    let mut state = State::default();
    for member in existing.iter().filter(|m| !new_ids.contains(&m.id)) {
        let cluster = member.cluster_id.unwrap_or(member.id);
        // Older or newer than every new item by more than the window: only its URL can match.
        let in_window = window.contains(&member.published_at);
        state.add(member, cluster, in_window);
    }
    let mut assigned = Vec::with_capacity(order.len());
    for member in order {
        let cluster = state
            .by_url(member)
            .or_else(|| state.most_similar(member))
            .unwrap_or(member.id);
        state.add(member, cluster, true);
        assigned.push((member.id, cluster));
    }
    assigned
}

/// The publication times an earlier item must fall in to be similar to some new item.
fn time_range(new: &[&Member]) -> Option<std::ops::RangeInclusive<i64>> {
    let first = new.iter().map(|m| m.published_at).min()?;
    let last = new.iter().map(|m| m.published_at).max()?;
    Some(first.saturating_sub(WINDOW_SECS)..=last.saturating_add(WINDOW_SECS))
}

/// The items seen so far: their clusters, URLs, and an LSH index of their signatures.
#[derive(Default)]
struct State<'a> {
    nodes: Vec<Node<'a>>,
    /// Canonical URL → cluster (the smallest, should stored data disagree).
    urls: HashMap<&'a str, i64>,
    /// Cluster → the feeds it holds an item of.
    feeds: HashMap<i64, Vec<&'a str>>,
    /// Band key → the last entry filed under it. Entry `node * BANDS + band` is one band of one
    /// node; `chain[entry]` is the entry filed before it under the same key, always a smaller
    /// number, so a chain ends. Only items that may still be similar to a new one are nodes.
    heads: HashMap<u64, u32>,
    chain: Vec<Option<u32>>,
    /// `seen[node]` is the number of the query that last visited it (1-based), so a pair that
    /// agrees in several bands is verified once.
    seen: Vec<u32>,
    queries: u32,
}

struct Node<'a> {
    member: &'a Member,
    cluster: i64,
}

impl<'a> State<'a> {
    fn add(&mut self, member: &'a Member, cluster: i64, index: bool) {
        if let Some(url) = member.canonical_url.as_deref() {
            let known = self.urls.entry(url).or_insert(cluster);
            *known = (*known).min(cluster);
        }
        let feeds = self.feeds.entry(cluster).or_default();
        if !feeds.contains(&member.feed_id.as_str()) {
            feeds.push(&member.feed_id);
        }
        let Some(sig) = member.signature.as_ref().filter(|s| index && !s.is_empty()) else {
            return;
        };
        let first_entry = self.chain.len();
        if u32::try_from(first_entry + BANDS).is_err() {
            return; // a hundred million signatures in one call: the rest match by URL only
        }
        self.nodes.push(Node { member, cluster });
        self.seen.push(0);
        let day = member.published_at.div_euclid(DAY_SECS);
        for (entry, band) in (first_entry..).zip(0..BANDS) {
            let entry = entry as u32; // checked above
            let previous = self.heads.insert(band_key(sig, band, day), entry);
            self.chain.push(previous);
        }
    }

    fn by_url(&self, member: &Member) -> Option<i64> {
        let url = member.canonical_url.as_deref()?;
        self.urls.get(url).copied()
    }

    /// The cluster of the most similar earlier item that may match `member`.
    fn most_similar(&mut self, member: &Member) -> Option<i64> {
        let sig = member.signature.as_ref()?;
        self.queries += 1;
        let query = self.queries;
        let day = member.published_at.div_euclid(DAY_SECS);
        // Within the window the calendar days differ by at most three.
        let days = (-3..=3).filter_map(|offset| day.checked_add(offset));
        let mut best: Option<(f64, i64)> = None;
        for day in days {
            for band in 0..BANDS {
                let mut next = self.heads.get(&band_key(sig, band, day)).copied();
                while let Some(entry) = next {
                    next = self.chain.get(entry as usize).copied().flatten();
                    let at = entry as usize / BANDS;
                    if self.seen.get(at) == Some(&query) {
                        continue;
                    }
                    if let Some(seen) = self.seen.get_mut(at) {
                        *seen = query;
                    }
                    let Some(candidate) = self.nodes.get(at) else {
                        continue;
                    };
                    if let Some(score) = self.score(member, sig, candidate) {
                        let better = best.is_none_or(|(s, c)| {
                            score > s || (score == s && candidate.cluster < c)
                        });
                        if better {
                            best = Some((score, candidate.cluster));
                        }
                    }
                }
            }
        }
        best.map(|(_, cluster)| cluster)
    }

    /// The similarity of `member` to `candidate`, if they may be one story.
    fn score(&self, member: &Member, sig: &Signature, candidate: &Node) -> Option<f64> {
        let other = candidate.member;
        let close = member.published_at.abs_diff(other.published_at) <= WINDOW_SECS.unsigned_abs();
        let feed_taken = self
            .feeds
            .get(&candidate.cluster)
            .is_some_and(|feeds| feeds.contains(&member.feed_id.as_str()));
        if !close || feed_taken || other.feed_id == member.feed_id {
            return None;
        }
        let similarity = sig.similarity(other.signature.as_ref()?);
        (similarity >= THRESHOLD).then_some(similarity)
    }
}

/// The LSH key of one band of a signature on one calendar day (UTC).
fn band_key(sig: &Signature, band: usize, day: i64) -> u64 {
    let rows = sig.values().iter().skip(band * ROWS).take(ROWS);
    let mut h = signature::mix(band as u64);
    for value in rows.map(|&v| u64::from(v)).chain([day as u64]) {
        h = signature::mix(h ^ value);
    }
    h
}
