//! The rendered merged feeds held in memory for serving: each document with its gzip and brotli
//! forms, each compressed once per document version, by the first request that asks for it
//! (a round that regenerates every merged feed does not compress the many no reader fetches
//! before the next round replaces them), a strong ETag per representation, and a Last-Modified
//! taken from its content. Shared between the publisher (writes) and the HTTP server (reads).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock, RwLock};

/// One merged feed document in its three encodings.
#[derive(Debug, Clone)]
pub struct Document {
    pub content_type: &'static str,
    pub identity: Bytes,
    /// The compressed forms, made when first asked for (shared by every clone).
    gzip: Arc<OnceLock<Bytes>>,
    brotli: Arc<OnceLock<Bytes>>,
    /// Strong ETag of the identity form; the compressed forms add "-gz" / "-br" inside the quotes.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

impl Document {
    pub fn new(content_type: &'static str, body: String, last_modified: DateTime<Utc>) -> Document {
        let identity = Bytes::from(body);
        let digest = Sha256::digest(&identity);
        let etag = format!(
            "\"{}\"",
            digest[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Document {
            content_type,
            gzip: Arc::default(),
            brotli: Arc::default(),
            identity,
            etag,
            last_modified,
        }
    }

    /// The ETag of one representation: encodings differ in bytes, so they differ in strong ETag
    /// (RFC 9110 §8.8.3).
    pub fn etag_for(&self, encoding: Encoding) -> String {
        match encoding {
            Encoding::Identity => self.etag.clone(),
            Encoding::Gzip => format!("{}-gz\"", self.etag.trim_end_matches('"')),
            Encoding::Brotli => format!("{}-br\"", self.etag.trim_end_matches('"')),
        }
    }

    pub fn body(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.identity.clone(),
            Encoding::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)).clone(),
            Encoding::Brotli => self.brotli.get_or_init(|| brotli(&self.identity)).clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// The documents by name below /feeds/ ("thoi-su.xml", "province/lao-cai.atom", "all.json"),
/// and the topic feeds made on request, kept while no merged feed changes.
#[derive(Debug, Default, Clone)]
pub struct Site {
    docs: Arc<RwLock<HashMap<String, Arc<Document>>>>,
    /// Bumped whenever a document changes: the stories changed, so topic feeds are stale.
    generation: Arc<std::sync::atomic::AtomicU64>,
    topics: Arc<std::sync::Mutex<TopicCache>>,
}

/// Topic feeds by key (normalised query, filters, format), least recently used dropped first.
#[derive(Debug, Default)]
struct TopicCache {
    entries: HashMap<String, (u64, u64, Arc<Document>)>,
    clock: u64,
}

/// Distinct topic feeds kept.
pub const TOPIC_CACHE: usize = 512;

impl Site {
    pub fn get(&self, name: &str) -> Option<Arc<Document>> {
        self.docs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether `name` is already served with exactly these bytes (checked before paying for
    /// compression).
    pub fn holds(&self, name: &str, body: &str) -> bool {
        self.get(name)
            .is_some_and(|d| d.identity == body.as_bytes())
    }

    /// Stores a document unless an identical one is already there; returns whether it changed.
    pub fn put(&self, name: &str, doc: Document) -> bool {
        let mut docs = self.docs.write().unwrap_or_else(|e| e.into_inner());
        if docs.get(name).is_some_and(|d| d.identity == doc.identity) {
            return false;
        }
        docs.insert(name.to_string(), Arc::new(doc));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// The cached topic feed `key`, unless a document changed since it was made.
    pub fn topic(&self, key: &str) -> Option<Arc<Document>> {
        let now = self.generation.load(std::sync::atomic::Ordering::Relaxed);
        let mut cache = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        cache.clock += 1;
        let clock = cache.clock;
        match cache.entries.get_mut(key) {
            Some((made, used, doc)) if *made == now => {
                *used = clock;
                Some(doc.clone())
            }
            _ => None,
        }
    }

    /// Keeps a topic feed made while the documents were at `generation` (read before the
    /// stories were), dropping the least recently used past `TOPIC_CACHE`.
    pub fn keep_topic(&self, key: &str, generation: u64, doc: Arc<Document>) {
        let mut cache = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        cache.clock += 1;
        let clock = cache.clock;
        if cache.entries.len() >= TOPIC_CACHE && !cache.entries.contains_key(key) {
            let oldest = cache
                .entries
                .iter()
                .min_by_key(|(_, (_, used, _))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                cache.entries.remove(&k);
            }
        }
        cache
            .entries
            .insert(key.to_string(), (generation, clock, doc));
    }

    /// The documents' generation now (see `keep_topic`).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .docs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    Bytes::from(enc.finish().unwrap_or_default())
}

fn brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 6,
        lgwin: 22,
        ..Default::default()
    };
    let _ = brotli::BrotliCompress(&mut &data[..], &mut out, &params);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_forms_decode_to_the_document() {
        use std::io::Read;
        let doc = Document::new("text/plain", "Lào Cai ".repeat(100), DateTime::default());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&doc.body(Encoding::Gzip)[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &doc.identity[..]);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &doc.body(Encoding::Brotli)[..], &mut out).unwrap();
        // Made once: a clone shares the compressed forms.
        assert!(doc.clone().body(Encoding::Gzip).as_ptr() == doc.body(Encoding::Gzip).as_ptr());
        assert_eq!(out, doc.identity.to_vec());
        assert_ne!(doc.etag_for(Encoding::Gzip), doc.etag);
    }

    #[test]
    fn an_identical_document_is_not_a_change() {
        let site = Site::default();
        assert!(site.put("a.xml", Document::new("t", "x".into(), DateTime::default())));
        let etag = site.get("a.xml").unwrap().etag.clone();
        assert!(!site.put("a.xml", Document::new("t", "x".into(), DateTime::default())));
        assert_eq!(site.get("a.xml").unwrap().etag, etag);
        assert!(site.put("a.xml", Document::new("t", "y".into(), DateTime::default())));
    }
}
