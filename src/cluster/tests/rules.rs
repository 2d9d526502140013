//! The rules of `assign_clusters`: URLs, first member's id, feeds, time window, stored bytes.

use super::*;
use std::collections::BTreeMap;

/// A story and a rewording of it by another outlet (the first pair of story_pairs.tsv).
fn bus_crash() -> (Signature, Signature) {
    let path = format!("{}/tests/data/story_pairs.tsv", env!("CARGO_MANIFEST_DIR"));
    let tsv = std::fs::read_to_string(&path).expect("story_pairs.tsv readable");
    let line = tsv
        .lines()
        .find(|l| l.starts_with("same\t"))
        .expect("a same-story pair");
    let fields: Vec<&str> = line.split('\t').collect();
    let (a, b) = (
        signature(fields[1], fields[2]),
        signature(fields[3], fields[4]),
    );
    assert!(a.similarity(&b) >= THRESHOLD);
    (a, b)
}

#[test]
fn items_with_the_same_canonical_url_are_one_cluster() {
    let url = Some("https://baolaocai.vn/a-post1.html");
    // Different text, same feed, far apart in time: the URL alone decides.
    let existing = [Member {
        cluster_id: Some(3),
        ..member(4, "lc-ts", url, T0, Some(signature("Một", "hai")))
    }];
    let new = [member(
        9,
        "lc-ts",
        url,
        T0 + 30 * DAY,
        Some(signature("Ba", "bốn")),
    )];
    assert_eq!(assign_clusters(&existing, &new), [(9, 3)]);
}

#[test]
fn a_cluster_is_named_by_its_first_members_id() {
    let (a, b) = bus_crash();
    let new = [
        member(
            30,
            "vne",
            Some("https://x/3"),
            T0 + 2 * DAY,
            Some(b.clone()),
        ),
        member(12, "yb", Some("https://x/2"), T0 + DAY, Some(b)),
        member(20, "lc-ts", Some("https://x/1"), T0, Some(a)),
    ];
    assert_eq!(assign_clusters(&[], &new), [(12, 12), (20, 12), (30, 12)]);
}

#[test]
fn a_new_item_joins_the_cluster_of_an_existing_member() {
    let (a, b) = bus_crash();
    let existing = [Member {
        cluster_id: Some(5),
        ..member(7, "lc-ts", None, T0, Some(a))
    }];
    let new = [member(40, "vne", None, T0 + DAY, Some(b))];
    assert_eq!(assign_clusters(&existing, &new), [(40, 5)]);
}

#[test]
fn items_of_one_feed_do_not_cluster_by_similarity() {
    let (a, _) = bus_crash();
    let new = [
        member(1, "lc-ts", Some("https://x/1"), T0, Some(a.clone())),
        member(2, "lc-ts", Some("https://x/2"), T0 + 60, Some(a)),
    ];
    assert_eq!(assign_clusters(&[], &new), [(1, 1), (2, 2)]);
}

#[test]
fn a_feed_joins_a_cluster_by_similarity_only_once() {
    // lc-ts already reported the crash (cluster 1, with vne); its follow-up stays its own story
    // even though it resembles the VnExpress report.
    let (a, b) = bus_crash();
    let existing = [
        Member {
            cluster_id: Some(1),
            ..member(1, "lc-ts", Some("https://x/1"), T0, Some(a))
        },
        Member {
            cluster_id: Some(1),
            ..member(2, "vne", Some("https://x/2"), T0, Some(b.clone()))
        },
    ];
    let new = [member(3, "lc-ts", Some("https://x/3"), T0 + DAY, Some(b))];
    assert_eq!(assign_clusters(&existing, &new), [(3, 3)]);
}

#[test]
fn a_four_day_gap_prevents_clustering() {
    let (a, b) = bus_crash();
    let three_days = [
        member(1, "lc-ts", None, T0, Some(a.clone())),
        member(2, "vne", None, T0 + 3 * DAY, Some(b.clone())),
    ];
    assert_eq!(assign_clusters(&[], &three_days), [(1, 1), (2, 1)]);
    let four_days = [
        member(1, "lc-ts", None, T0, Some(a)),
        member(2, "vne", None, T0 + 4 * DAY, Some(b)),
    ];
    assert_eq!(assign_clusters(&[], &four_days), [(1, 1), (2, 2)]);
}

#[test]
fn items_without_a_signature_match_by_url_only() {
    let (a, _) = bus_crash();
    let new = [
        member(1, "lc-ts", None, T0, Some(a)),
        member(2, "vne", None, T0, None),
    ];
    assert_eq!(assign_clusters(&[], &new), [(1, 1), (2, 2)]);
}

#[test]
fn the_sample_feeds_cluster_into_exactly_the_readme_stories() {
    let items = sample_items();
    let new: Vec<Member> = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let feed = item.key.split(':').next().unwrap_or_default();
            let sig = signature(&item.title, &item.text);
            let id = n as i64 + 1;
            member(
                id,
                feed,
                item.canonical_url.as_deref(),
                item.published_at,
                Some(sig),
            )
        })
        .collect();
    let assigned = assign_clusters(&[], &new);
    let mut clusters: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (id, cluster) in assigned {
        clusters
            .entry(cluster)
            .or_default()
            .push(&items[(id - 1) as usize].key);
    }
    let mut got: Vec<Vec<&str>> = clusters.into_values().filter(|c| c.len() > 1).collect();
    let mut want: Vec<Vec<&str>> = SAMPLE_STORIES.iter().map(|s| s.to_vec()).collect();
    for c in got.iter_mut().chain(want.iter_mut()) {
        c.sort_unstable();
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn bands_that_once_shared_a_key_are_indexed_without_looping() {
    // Regression: the band key once started from the band number and xor-ed the rows in, so
    // band `b` with first row `b ^ 0x40` gave every band one key; the node then chained to itself
    // and the next lookup never ended.
    let format = signature("", "").to_bytes()[0];
    let mut bytes = vec![format];
    for i in 0..HASHES {
        let value = if i % 2 == 0 { (i / 2) as u16 ^ 0x40 } else { 9 };
        bytes.extend(value.to_le_bytes());
    }
    let sig = Signature::from_bytes(&bytes).expect("a valid signature");
    let new = [
        member(1, "lc-ts", None, T0, Some(sig.clone())),
        member(2, "vne", None, T0, Some(sig.clone())),
        member(3, "yb", None, T0, Some(sig)),
    ];
    assert_eq!(assign_clusters(&[], &new), [(1, 1), (2, 1), (3, 1)]);
}

#[test]
fn signatures_round_trip_through_bytes() {
    let sig = signature(
        "Đỉnh Fansipan phủ băng giá",
        "Sáng 27/11, nhiệt độ âm 1,5 độ C",
    );
    let bytes = sig.to_bytes();
    assert_eq!(bytes.len(), 1 + 2 * HASHES);
    assert_eq!(Signature::from_bytes(&bytes), Some(sig));
    assert_eq!(Signature::from_bytes(&bytes[..bytes.len() - 1]), None);
    assert_eq!(Signature::from_bytes(&[]), None);
    let mut other_format = bytes.clone();
    other_format[0] = 0;
    assert_eq!(Signature::from_bytes(&other_format), None);
}
