//! Locality-sensitive hashing over signatures: each band of `ROWS` values is hashed to a key, and
//! signatures that share a key in any band are candidates.
//!
//! The table is a directory of buckets picked by a key's low bits, each a chain of entries (newest
//! first). An entry keeps only the entry before it: whether it really holds the queried band is
//! read from the indexed signature itself (the band's rows), which the caller holds anyway. An
//! entry costs 4 bytes and the directory 2 to 4 per entry: at most 640 bytes per indexed item,
//! a third of a general hash map of the same keys, with no hashing of keys that are already
//! hashes.

use super::signature::{self, HASHES};

/// A signature's values, as the index stores them.
pub(super) type Values = [u16; HASHES];

/// Rows per LSH band: two items become candidates when all rows of one band agree.
const ROWS: usize = 3;
/// Bands, over the first `ROWS * BANDS` values of the signature. A pair of similarity `s` becomes
/// a candidate with chance `1 - (1 - s³)^BANDS`: 0.995 at 0.40, 0.998 at `THRESHOLD`, 0.01 at
/// 0.05 (two rows would give 0.095 there). Of the labelled set's 1,561 different-story pairs (one
/// region in one week, more alike than a country's news) 105 share a band; no same-story pair
/// misses.
pub(super) const BANDS: usize = 80;

/// Most matching entries one query walks (over all bands); see [`Lsh::candidates`].
const MAX_WALK: usize = 256;
/// Most entries one query steps over, matching or not (a bucket also holds other keys).
const MAX_STEPS: usize = 4 * MAX_WALK + 4 * BANDS;

const END: u32 = u32::MAX;

#[derive(Default)]
pub(super) struct Lsh {
    /// `heads[bucket]`: the newest entry of the bucket, or `END`. Its length is a power of two,
    /// at least half the number of entries, so a bucket holds one or two entries of other keys.
    heads: Vec<u32>,
    /// Entry `node * BANDS + band` is one band of one node: the entry filed before it in the
    /// same bucket (always a smaller number, so every chain ends).
    prev: Vec<u32>,
    /// `seen[node]`: the last query that visited the node, so that a node agreeing in several
    /// bands is visited once.
    seen: Vec<u32>,
    query: u32,
    /// The nodes a query found, kept to reuse the allocation.
    found: Vec<u32>,
}

impl Lsh {
    pub(super) fn with_capacity(nodes: usize) -> Self {
        let entries = nodes.saturating_mul(BANDS);
        let mut lsh = Lsh {
            prev: Vec::with_capacity(entries),
            seen: Vec::with_capacity(nodes),
            ..Lsh::default()
        };
        lsh.heads = vec![END; (entries / 2).max(1024).next_power_of_two()];
        lsh
    }

    /// Files `sig` as the next node; `false` when the index is full (fifty million signatures).
    /// `signature_of(node)` gives an indexed node's signature, to file it again when the
    /// directory grows.
    pub(super) fn insert<'a>(
        &mut self,
        sig: &Values,
        signature_of: impl Fn(usize) -> &'a Values,
    ) -> bool {
        let first = self.prev.len();
        if u32::try_from(first + BANDS).is_err() {
            return false;
        }
        if first + BANDS > 2 * self.heads.len() {
            self.grow(signature_of);
        }
        for band in 0..BANDS {
            let bucket = self.bucket(band_key(sig, band));
            let entry = self.prev.len() as u32;
            self.prev.push(self.heads[bucket]);
            self.heads[bucket] = entry;
        }
        self.seen.push(0);
        true
    }

    /// Doubles the directory and files every entry again, oldest first (so chains stay newest
    /// first).
    fn grow<'a>(&mut self, signature_of: impl Fn(usize) -> &'a Values) {
        let size = (self.heads.len() * 2).max(1024);
        self.heads = vec![END; size];
        for node in 0..self.seen.len() {
            let sig = signature_of(node);
            for band in 0..BANDS {
                let entry = node * BANDS + band;
                let bucket = self.bucket(band_key(sig, band));
                self.prev[entry] = self.heads[bucket];
                self.heads[bucket] = entry as u32;
            }
        }
    }

    /// The bucket of `key` (0 in an empty directory, where every chain is empty).
    fn bucket(&self, key: u32) -> usize {
        key as usize & self.heads.len().saturating_sub(1)
    }

    /// Calls `visit` once with each node that shares a band with `sig`; `signature_of(node)`
    /// gives an indexed node's signature, to tell a shared band from a shared bucket.
    ///
    /// The nodes are found first and visited after, and `ahead(node)` is called a few visits
    /// before `visit(node)`, for the caller to fetch what the visit will read (see [`prefetch`]):
    /// a visit reads a candidate's whole signature, and waiting for each in turn was most of the
    /// cost of clustering.
    pub(super) fn candidates<'a>(
        &mut self,
        sig: &Values,
        signature_of: impl Fn(usize) -> &'a Values,
        ahead: impl Fn(usize),
        mut visit: impl FnMut(usize),
    ) {
        const AHEAD: usize = 4;
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.find(sig, &signature_of, &mut found);
        for &node in found.iter().take(AHEAD) {
            ahead(node as usize);
        }
        for (i, &node) in found.iter().enumerate() {
            if let Some(&next) = found.get(i + AHEAD) {
                ahead(next as usize);
            }
            visit(node as usize);
        }
        self.found = found;
    }

    /// The nodes that share a band with `sig`, each once.
    ///
    /// The bands' chains are followed side by side, one entry of each in turn, newest first:
    /// the next entry of one chain does not wait on another's, so the memory serves them
    /// together (followed one after another, every step waited for the one before).
    fn find<'a>(
        &mut self,
        sig: &Values,
        signature_of: &impl Fn(usize) -> &'a Values,
        found: &mut Vec<u32>,
    ) {
        self.query = match self.query.checked_add(1) {
            Some(query) => query,
            None => {
                self.seen.fill(0);
                1
            }
        };
        // The walk is bounded: with real news a query meets a few dozen entries, but templated
        // or repeated text can put thousands of items in one bucket, and an unbounded walk made
        // clustering quadratic. Past the bound an item may miss a merge (it stays a story of its
        // own), which is far better than a stalled poller. Walking the bands side by side, the
        // bound keeps the newest entries of every band rather than all of the first bands'.
        let (mut walked, mut steps) = (0usize, 0usize);
        // (band, next entry) of each chain not yet ended: the first `live` of them.
        let mut chains = [(0usize, END); BANDS];
        for (band, chain) in chains.iter_mut().enumerate() {
            let bucket = self.bucket(band_key(sig, band));
            *chain = (band, self.heads.get(bucket).copied().unwrap_or(END));
        }
        let mut live = BANDS;
        while live > 0 {
            let mut i = 0;
            while i < live {
                let (band, entry) = chains[i];
                let Some(&previous) = self.prev.get(entry as usize) else {
                    // This chain has ended: the last live one takes its place.
                    live -= 1;
                    chains[i] = chains[live];
                    continue;
                };
                chains[i].1 = previous;
                i += 1;
                steps += 1;
                if steps > MAX_STEPS {
                    return;
                }
                let node = entry as usize / BANDS;
                if entry as usize % BANDS != band || !same_band(sig, signature_of(node), band) {
                    continue;
                }
                walked += 1;
                if walked > MAX_WALK {
                    return;
                }
                if let Some(seen) = self.seen.get_mut(node)
                    && *seen != self.query
                {
                    *seen = self.query;
                    found.push(node as u32);
                }
            }
        }
    }
}

/// Asks the memory for `value`, which is about to be read (a hint: it changes nothing).
#[inline]
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = (value as *const T).cast::<i8>();
        for line in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch never faults and reads nothing into the program; the address is
            // inside `value` anyway. SSE, which it needs, is part of every x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Whether two signatures agree in every row of `band`.
fn same_band(a: &Values, b: &Values, band: usize) -> bool {
    let rows = band * ROWS..(band + 1) * ROWS;
    a.get(rows.clone()) == b.get(rows)
}

/// The LSH key of one band of a signature.
pub(super) fn band_key(sig: &Values, band: usize) -> u32 {
    let rows = sig.iter().skip(band * ROWS).take(ROWS);
    let mut h = signature::mix(band as u64);
    for &value in rows {
        h = signature::mix(h ^ u64::from(value));
    }
    (h >> 32) as u32
}
