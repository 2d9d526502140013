//! Tests of the clustering decision: the threshold against labelled Vietnamese pairs (the sample
//! feeds' ground truth from `samples/README.md` plus `tests/data/story_pairs.tsv`), the rules of
//! `assign_clusters`, and a generated set large enough that a quadratic scan would show.

mod labelled;
mod rules;
mod scale;

use super::*;
use crate::reader::parser::{ParseContext, parse};

const DAY: i64 = 24 * 60 * 60;
/// A time in the sample feeds' week (2026-11-30, UTC).
const T0: i64 = 1_796_000_000;

/// One item of the sample feeds, named by its README key (`lc-ts:412876`).
struct SampleItem {
    key: String,
    title: String,
    text: String,
    canonical_url: Option<String>,
    published_at: i64,
}

/// The sample files and the README's prefix for each.
const SAMPLE_FILES: [(&str, &str); 6] = [
    ("lc-ts", "baolaocai-thoi-su.rss"),
    ("lc-xdd", "baolaocai-xay-dung-dang.rss"),
    ("yb", "baoyenbai-thoi-su.atom"),
    ("hg", "baohagiang-xa-hoi.rss"),
    ("lch", "baolaichau-kinh-te.json"),
    ("vne", "vnexpress-thoi-su.rss"),
];

/// The README's "Overlapping stories": these must cluster, and nothing else may.
const SAMPLE_STORIES: [&[&str]; 8] = [
    &["lc-ts:412876", "vne:4951207"],
    &["lc-xdd:412801", "lc-ts:412801", "vne:4950798"],
    &["yb:336871", "vne:4950743"],
    &["hg:812440", "vne:4950102"],
    &["lc-ts:412930", "vne:4951590"],
    &["yb:336815", "lc-ts:412702"],
    &["lch:28461", "vne:4950415"],
    &["yb:336890", "lch:28497"],
];

/// The README's decoys (similar topic, different event), as pairs of keys.
const SAMPLE_DECOYS: [(&str, &str); 19] = [
    ("lc-ts:412655", "lc-ts:412876"),
    ("lc-ts:412655", "vne:4951207"),
    ("yb:336842", "lc-ts:412876"),
    ("yb:336842", "vne:4951207"),
    ("lc-ts:412733", "lc-ts:412876"),
    ("yb:336896", "lc-ts:412801"),
    ("yb:336896", "vne:4950798"),
    ("lc-ts:412760", "yb:336871"),
    ("lc-ts:412760", "vne:4950743"),
    ("lch:28548", "vne:4950743"),
    ("lc-ts:412711", "vne:4950102"),
    ("hg:812401", "hg:812440"),
    ("lc-ts:412648", "lc-ts:412930"),
    ("yb:336890", "yb:336815"),
    ("lch:28497", "lc-ts:412702"),
    ("yb:336921", "lch:28461"),
    ("yb:336921", "vne:4950415"),
    ("lc-ts:412830", "lch:28475"),
    ("lc-ts:412733", "lc-xdd:412738"),
];

fn sample_items() -> Vec<SampleItem> {
    let ctx = ParseContext {
        base: None,
        http_charset: None,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        now: chrono::Utc::now(),
    };
    let mut items = Vec::new();
    for (prefix, file) in SAMPLE_FILES {
        let path = format!("{}/samples/{file}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).expect("sample feed readable");
        let feed = parse(&bytes, &ctx).expect("sample feed parses");
        for item in feed.items {
            let guid = item.guid.as_deref().expect("every sample item has a guid");
            items.push(SampleItem {
                key: format!("{prefix}:{}", guid_number(guid)),
                title: item.title,
                text: item.text,
                canonical_url: item.canonical_url,
                published_at: item.published.timestamp(),
            });
        }
    }
    items
}

/// The number that ends a sample guid (`…-post412876.html`, `…article-336815`, `…?p=28461`).
fn guid_number(guid: &str) -> &str {
    let guid = guid.trim_end_matches(".html");
    let digits = guid.chars().rev().take_while(char::is_ascii_digit).count();
    &guid[guid.len() - digits..]
}

fn member(id: i64, feed: &str, url: Option<&str>, at: i64, sig: Option<Signature>) -> Member {
    Member {
        id,
        feed_id: feed.to_string(),
        canonical_url: url.map(String::from),
        published_at: at,
        signature: sig,
        cluster_id: None,
    }
}
