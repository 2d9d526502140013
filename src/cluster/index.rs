//! The clustered items that new ones may join, kept between batches and between a daemon's
//! rounds: their stories, their feeds, and an LSH index of their signatures.
//!
//! An [`Index`] holds every clustered item published since its low bound ([`Index::low`]): it is
//! filled from storage for that range once, then each assigned item is added as it is assigned,
//! so the next batch finds it without reading the store again. A batch of new items published
//! before the low bound needs the earlier items first ([`Index::extend`]); [`Index::forget_before`]
//! drops items too old for any likely new one, so the index stays the size of a few days of news.

use super::lsh::{Lsh, Values, prefetch};
use super::signature::{HASHES, similarity};
use super::{Member, THRESHOLD, WINDOW_SECS};
use std::collections::HashMap;

/// One indexed item (its signature is in [`Signatures`], at the same number).
struct Node {
    id: i64,
    feed: u32,
    published_at: i64,
    cluster: i64,
}

/// Signatures per chunk of [`Signatures`] (512 KB).
const CHUNK: usize = 1024;

/// The indexed signatures, node by node, in chunks of [`CHUNK`]: a lookup reads one array
/// (no pointer to follow per node, which was a cache miss per candidate), and growing never
/// copies what is stored.
#[derive(Default)]
struct Signatures {
    chunks: Vec<Box<[Values]>>,
    len: usize,
}

impl Signatures {
    fn get(&self, node: usize) -> &Values {
        &self.chunks[node / CHUNK][node % CHUNK]
    }

    fn push(&mut self, values: &Values) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks
                .push(vec![[0u16; HASHES]; CHUNK].into_boxed_slice());
        }
        self.chunks[self.len / CHUNK][self.len % CHUNK] = *values;
        self.len += 1;
    }
}

#[derive(Default)]
pub struct Index {
    nodes: Vec<Node>,
    signatures: Signatures,
    lsh: Lsh,
    /// Feed id → a small number, so a node and a cluster's feed list hold no strings.
    feed_numbers: HashMap<String, u32>,
    /// Cluster → the feeds it holds an item of (among the items this index has seen).
    feeds: HashMap<i64, Vec<u32>>,
    /// Every clustered item published at or after this is in the index; `None`: none is.
    low: Option<i64>,
    /// The latest publication time among the indexed items.
    newest: Option<i64>,
    /// Similarity checks made so far.
    pub(super) checks: usize,
}

impl Index {
    /// An empty index with room for `nodes` items.
    pub fn with_capacity(nodes: usize) -> Self {
        Index {
            nodes: Vec::with_capacity(nodes),
            lsh: Lsh::with_capacity(nodes),
            ..Index::default()
        }
    }

    /// The publication time from which the index holds every clustered item, if it holds any
    /// range at all.
    pub fn low(&self) -> Option<i64> {
        self.low
    }

    /// The latest publication time among the indexed items.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// The number of indexed items.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Adds clustered items (their `cluster_id` set; one without a signature is skipped: it can
    /// match by URL only, which storage answers) and records that the index now holds every
    /// clustered item published from `from` on: with those added, the caller has given it all
    /// of them (for an index with a range, those published in `from..low()`).
    pub fn extend(&mut self, members: impl IntoIterator<Item = Member>, from: i64) {
        for member in members {
            let cluster = member.cluster_id.unwrap_or(member.id);
            self.add(member, cluster);
        }
        self.low = Some(self.low.map_or(from, |low| low.min(from)));
    }

    /// Forgets the items published before `cutoff` (when they are at least a quarter of the
    /// index, so a daemon rebuilds rarely), after which the index covers from `cutoff` on.
    pub fn forget_before(&mut self, cutoff: i64) {
        let old = self
            .nodes
            .iter()
            .filter(|n| n.published_at < cutoff)
            .count();
        if old == 0 || old * 4 < self.nodes.len() {
            return;
        }
        let nodes = std::mem::take(&mut self.nodes);
        let signatures = std::mem::take(&mut self.signatures);
        let kept = nodes.len() - old;
        self.lsh = Lsh::with_capacity(kept);
        self.nodes = Vec::with_capacity(kept);
        self.feeds = HashMap::new();
        self.newest = None;
        for (number, node) in nodes.into_iter().enumerate() {
            if node.published_at >= cutoff {
                self.file(node, signatures.get(number));
            }
        }
        self.low = self.low.map(|low| low.max(cutoff));
    }

    /// Assigns every item of `new` (taken in id order; their `cluster_id` is ignored) to a
    /// story, and adds it to the index. `by_url` maps the canonical URLs the new items carry to
    /// the story of a stored item with that URL (the smallest, should they disagree).
    ///
    /// The rules are those of [`super::assign_clusters`]; the index must hold the new items'
    /// window (`low()` at most the earliest publication minus [`WINDOW_SECS`]), else it may miss
    /// an earlier story.
    pub fn assign(
        &mut self,
        mut new: Vec<Member>,
        by_url: &HashMap<String, i64>,
    ) -> Vec<(i64, i64)> {
        new.sort_by_key(|m| m.id);
        new.dedup_by_key(|m| m.id);
        let mut urls: HashMap<String, i64> = HashMap::new();
        let mut assigned = Vec::with_capacity(new.len());
        for member in new {
            let known = member.canonical_url.as_deref().and_then(|url| {
                let stored = by_url.get(url).copied();
                let here = urls.get(url).copied();
                stored.into_iter().chain(here).min()
            });
            let cluster = known
                .or_else(|| self.most_similar(&member))
                .unwrap_or(member.id);
            if let Some(url) = &member.canonical_url {
                let entry = urls.entry(url.clone()).or_insert(cluster);
                *entry = (*entry).min(cluster);
            }
            assigned.push((member.id, cluster));
            self.add(member, cluster);
        }
        assigned
    }

    fn feed_number(&mut self, feed: &str) -> u32 {
        if let Some(&n) = self.feed_numbers.get(feed) {
            return n;
        }
        let n = self.feed_numbers.len() as u32;
        self.feed_numbers.insert(feed.to_string(), n);
        n
    }

    /// Records `member` as a member of `cluster`.
    fn add(&mut self, member: Member, cluster: i64) {
        let feed = self.feed_number(&member.feed_id);
        match member.signature {
            Some(signature) if !signature.is_empty() => self.file(
                Node {
                    id: member.id,
                    feed,
                    published_at: member.published_at,
                    cluster,
                },
                signature.values(),
            ),
            // No text to compare: only the story's feeds learn of it.
            _ => self.note_feed(cluster, feed),
        }
    }

    /// Files `node` under its story and in the LSH index.
    fn file(&mut self, node: Node, values: &Values) {
        self.note_feed(node.cluster, node.feed);
        let signatures = &self.signatures;
        if self.lsh.insert(values, |n| signatures.get(n)) {
            self.newest = Some(
                self.newest
                    .map_or(node.published_at, |n| n.max(node.published_at)),
            );
            self.nodes.push(node);
            self.signatures.push(values);
        }
    }

    fn note_feed(&mut self, cluster: i64, feed: u32) {
        let list = self.feeds.entry(cluster).or_default();
        if !list.contains(&feed) {
            list.push(feed);
        }
    }

    /// The story of the most similar indexed item that `member` may join (ties: the smaller
    /// cluster id, so the result does not depend on the order of the index).
    fn most_similar(&mut self, member: &Member) -> Option<i64> {
        let sig = member.signature.as_ref().filter(|s| !s.is_empty())?;
        let values = sig.values();
        let feed = self.feed_numbers.get(&member.feed_id).copied();
        let mut best: Option<(f64, i64)> = None;
        let (nodes, signatures, feeds, checks) =
            (&self.nodes, &self.signatures, &self.feeds, &mut self.checks);
        self.lsh.candidates(
            values,
            |n| signatures.get(n),
            |n| {
                prefetch(signatures.get(n));
                if let Some(node) = nodes.get(n) {
                    prefetch(node);
                }
            },
            |n| {
                let Some(candidate) = nodes.get(n) else {
                    return;
                };
                *checks += 1;
                let close = member.published_at.abs_diff(candidate.published_at)
                    <= WINDOW_SECS.unsigned_abs();
                let own_feed = feed.is_some_and(|f| candidate.feed == f);
                if !close || own_feed || candidate.id == member.id {
                    return;
                }
                let score = similarity(values, signatures.get(n));
                if score < THRESHOLD {
                    return;
                }
                // A feed's second item never joins by similarity a story that already holds one
                // of its items. Asked last: most candidates fall short of the threshold, and this
                // lookup is a cache miss of its own.
                let story_has_feed = feed.is_some_and(|f| {
                    feeds
                        .get(&candidate.cluster)
                        .is_some_and(|l| l.contains(&f))
                });
                if story_has_feed {
                    return;
                }
                let better =
                    best.is_none_or(|(s, c)| score > s || (score == s && candidate.cluster < c));
                if better {
                    best = Some((score, candidate.cluster));
                }
            },
        );
        best.map(|(_, cluster)| cluster)
    }
}
