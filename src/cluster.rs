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
//! network; storage loads the members and writes the assignments back.

mod signature;
#[cfg(test)]
mod tests;

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

/// Most index entries one query walks (over all bands); see `Index::candidates`.
const MAX_WALK: usize = 256;

/// Rows per LSH band: two items become candidates when all rows of one band agree.
const ROWS: usize = 3;
/// Bands, over the first `ROWS * BANDS` values of the signature. A pair of similarity `s` becomes
/// a candidate with chance `1 - (1 - s³)^BANDS`: 0.995 at 0.40, 0.998 at [`THRESHOLD`], 0.01 at
/// 0.05 (two rows would give 0.095 there). Of the labelled set's 1,561 different-story pairs (one
/// region in one week, more alike than a country's news) 105 share a band; no same-story pair
/// misses.
const BANDS: usize = 80;

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
/// canonical URL a new item carries: any other can match nothing. The LSH index is rebuilt from
/// `existing` on each call.
///
/// Returns `(item id, cluster id)` pairs, in item id order.
pub fn assign_clusters(existing: &[Member], new: &[Member]) -> Vec<(i64, i64)> {
    assign(existing, new).0
}

/// [`assign_clusters`], also counting the similarity checks it made (for the scale test).
fn assign(existing: &[Member], new: &[Member]) -> (Vec<(i64, i64)>, usize) {
    let mut order: Vec<&Member> = new.iter().collect();
    order.sort_by_key(|m| m.id);
    order.dedup_by_key(|m| m.id);
    let Some(window) = time_range(&order) else {
        return (Vec::new(), 0);
    };
    let new_ids: HashSet<i64> = order.iter().map(|m| m.id).collect();
    let earlier: Vec<&Member> = existing
        .iter()
        .filter(|m| !new_ids.contains(&m.id))
        .collect();
    // Older or newer than every new item by more than the window: only its URL can match.
    let in_window = |m: &Member| window.contains(&m.published_at);
    let indexed = earlier.iter().filter(|m| in_window(m)).count() + order.len();
    let mut state = State::with_capacity(indexed);
    for member in earlier {
        let cluster = member.cluster_id.unwrap_or(member.id);
        state.add(member, cluster, in_window(member));
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
    (assigned, state.checks)
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
    /// The items that may still be similar to a new one, in the order they were indexed.
    nodes: Vec<Node<'a>>,
    index: LshIndex,
    /// Canonical URL → cluster (the smallest, should stored data disagree).
    urls: HashMap<&'a str, i64>,
    /// Cluster → the feeds it holds an item of.
    feeds: HashMap<i64, Vec<&'a str>>,
    /// Similarity checks made so far.
    checks: usize,
}

struct Node<'a> {
    member: &'a Member,
    cluster: i64,
}

impl<'a> State<'a> {
    /// Room for `nodes` indexed signatures, so the index is not rebuilt as it grows.
    fn with_capacity(nodes: usize) -> Self {
        State {
            nodes: Vec::with_capacity(nodes),
            index: LshIndex::with_capacity(nodes),
            ..State::default()
        }
    }

    /// Records `member` as a member of `cluster`; `similar` says whether a new item may still
    /// match it by similarity (else only its URL is kept).
    fn add(&mut self, member: &'a Member, cluster: i64, similar: bool) {
        if let Some(url) = member.canonical_url.as_deref() {
            let known = self.urls.entry(url).or_insert(cluster);
            *known = (*known).min(cluster);
        }
        let feeds = self.feeds.entry(cluster).or_default();
        if !feeds.contains(&member.feed_id.as_str()) {
            feeds.push(&member.feed_id);
        }
        let Some(sig) = member.signature.as_ref() else {
            return;
        };
        if similar && !sig.is_empty() && self.index.insert(sig) {
            self.nodes.push(Node { member, cluster });
        }
    }

    fn by_url(&self, member: &Member) -> Option<i64> {
        let url = member.canonical_url.as_deref()?;
        self.urls.get(url).copied()
    }

    /// The cluster of the most similar earlier item that may match `member` (ties: the smaller
    /// cluster id, so the result does not depend on the order of the index).
    fn most_similar(&mut self, member: &Member) -> Option<i64> {
        let sig = member.signature.as_ref()?;
        let mut best: Option<(f64, i64)> = None;
        let (nodes, feeds, checks) = (&self.nodes, &self.feeds, &mut self.checks);
        self.index.candidates(sig, |node| {
            let Some(candidate) = nodes.get(node) else {
                return;
            };
            *checks += 1;
            let Some(score) = score(member, sig, candidate, feeds) else {
                return;
            };
            let better =
                best.is_none_or(|(s, c)| score > s || (score == s && candidate.cluster < c));
            if better {
                best = Some((score, candidate.cluster));
            }
        });
        best.map(|(_, cluster)| cluster)
    }
}

/// The similarity of `member` to `candidate`, if they may be one story.
fn score(
    member: &Member,
    sig: &Signature,
    candidate: &Node,
    feeds: &HashMap<i64, Vec<&str>>,
) -> Option<f64> {
    let other = candidate.member;
    let close = member.published_at.abs_diff(other.published_at) <= WINDOW_SECS.unsigned_abs();
    let feed_taken = feeds
        .get(&candidate.cluster)
        .is_some_and(|f| f.contains(&member.feed_id.as_str()));
    if !close || feed_taken || other.feed_id == member.feed_id {
        return None;
    }
    let similarity = sig.similarity(other.signature.as_ref()?);
    (similarity >= THRESHOLD).then_some(similarity)
}

/// Locality-sensitive hashing over signatures: each band of `ROWS` values is hashed to a key, and
/// signatures that share a key in any band are candidates.
#[derive(Default)]
struct LshIndex {
    /// Band key → the last entry filed under it. Entry `node * BANDS + band` is one band of one
    /// node.
    heads: HashMap<u32, u32>,
    /// `chain[entry]`: the entry filed before it under the same key, or `END`. Always a smaller
    /// number, so every chain ends.
    chain: Vec<u32>,
    /// `seen[node]`: the last query that visited the node, so that a node agreeing in several
    /// bands is visited once.
    seen: Vec<u32>,
    query: u32,
}

const END: u32 = u32::MAX;

impl LshIndex {
    fn with_capacity(nodes: usize) -> Self {
        let entries = nodes.saturating_mul(BANDS);
        LshIndex {
            heads: HashMap::with_capacity(entries),
            chain: Vec::with_capacity(entries),
            seen: Vec::with_capacity(nodes),
            query: 0,
        }
    }

    /// Files `sig` as the next node; `false` when the index is full (fifty million signatures).
    fn insert(&mut self, sig: &Signature) -> bool {
        let first = self.chain.len();
        let Ok(last) = u32::try_from(first + BANDS) else {
            return false;
        };
        for (entry, band) in (last - BANDS as u32..last).zip(0..BANDS) {
            let previous = self.heads.insert(band_key(sig, band), entry);
            self.chain.push(previous.unwrap_or(END));
        }
        self.seen.push(0);
        true
    }

    /// Calls `visit` once with each node that shares a band with `sig`.
    fn candidates(&mut self, sig: &Signature, mut visit: impl FnMut(usize)) {
        self.query = match self.query.checked_add(1) {
            Some(query) => query,
            None => {
                self.seen.fill(0);
                1
            }
        };
        // Buckets are walked newest first, and the walk is bounded: with real news a query meets
        // a few dozen entries, but templated or repeated text can put thousands of items in one
        // bucket, and an unbounded walk made clustering quadratic. Past the bound an item may
        // miss a merge (it stays a story of its own), which is far better than a stalled poller.
        let mut walked = 0usize;
        for band in 0..BANDS {
            let mut entry = self.heads.get(&band_key(sig, band)).copied().unwrap_or(END);
            while let Some(&previous) = self.chain.get(entry as usize) {
                walked += 1;
                if walked > MAX_WALK {
                    return;
                }
                let node = entry as usize / BANDS;
                if let Some(seen) = self.seen.get_mut(node)
                    && *seen != self.query
                {
                    *seen = self.query;
                    visit(node);
                }
                entry = previous;
            }
        }
    }
}

/// The LSH key of one band of a signature.
fn band_key(sig: &Signature, band: usize) -> u32 {
    let rows = sig.values().iter().skip(band * ROWS).take(ROWS);
    let mut h = signature::mix(band as u64);
    for &value in rows {
        h = signature::mix(h ^ u64::from(value));
    }
    (h >> 32) as u32
}
