//! Merged feeds as feed validators read them: the sample sources' merged documents checked
//! against RFC 4287's MUSTs, RSS 2.0's required elements and the W3C validator's warnings
//! (`tests/data/feedcheck.py`), and each entry's `updated` moving only when its story does.

use crate::publish::published;
use crate::support::samples::LAO_CAI;
use crate::support::{Route, client_available};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn documents(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(documents(&path));
        } else if path.extension().is_some_and(|e| e == "atom" || e == "xml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_samples_merged_feeds_pass_the_feed_validators_rules() {
    crate::support::db::each_database(async || {
        if !client_available("python3", &["-c", "import xml.etree.ElementTree"]) {
            return;
        }
        let p = published().await;
        let files = documents(&p.app.dir.path().join("public/feeds"));
        assert!(files.len() >= 12, "{files:?}");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/feedcheck.py");
        let out = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(p.app.config.server.base_url.as_str())
            .args(&files)
            .output()
            .await
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let problems: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            String::from_utf8_lossy(&out.stdout)
        );
    })
    .await;
}

/// Entry id -> its `updated`, from a merged Atom document.
fn updated_by_id(atom: &[u8]) -> BTreeMap<String, String> {
    let feed = feed_rs::parser::parse(atom).expect("tinbao's Atom parses");
    feed.entries
        .into_iter()
        .map(|e| (e.id, e.updated.expect("entry updated").to_rfc3339()))
        .collect()
}

#[tokio::test]
async fn an_entrys_updated_moves_only_when_its_story_changes() {
    crate::support::db::each_database(async || {
        let p = published().await;
        let file = p.app.dir.path().join("public/feeds/all.atom");
        let first = std::fs::read(&file).unwrap();
        let before = updated_by_id(&first);
        let distinct: std::collections::BTreeSet<&String> = before.values().collect();
        assert_eq!(distinct.len(), before.len(), "each entry its own time: {before:?}");

        // Two hours pass (every sighting moves back); regenerating changes nothing.
        p.app
            .execute("UPDATE items SET first_seen_at = first_seen_at - 7200, changed_at = changed_at - 7200")
            .await;
        let again = p.publisher.regenerate(&p.publisher.all_filters()).await.unwrap();
        assert_eq!(again.changed, 0, "{again:?}");
        assert_eq!(std::fs::read(&file).unwrap(), first, "the same bytes");

        // The paper edits its first story's title and publishes a new one.
        let edited = LAO_CAI
            .replacen(
                "nông thôn mới nâng cao</title>",
                "nông thôn mới nâng cao năm 2026</title>",
                1,
            )
            .replacen(
                "<item>",
                "<item><title>Lào Cai đón đoàn khách quốc tế đầu tiên qua cửa khẩu</title>\
                 <link>https://baolaocai.vn/don-khach-post413000.html</link>\
                 <pubDate>Sat, 28 Nov 2026 10:00:00 +0700</pubDate></item><item>",
                1,
            );
        assert_ne!(edited, LAO_CAI);
        p.fixtures.set("/lc.rss", Route::ok(edited));
        let polled = p.app.poll_all().await;
        assert_eq!((polled.new, polled.updated), (1, 1), "{polled:?}");
        p.app.refresher.cluster_new_items().await.unwrap();
        p.publisher.regenerate(&p.publisher.all_filters()).await.unwrap();
        let after = updated_by_id(&std::fs::read(&file).unwrap());

        let feed = feed_rs::parser::parse(&std::fs::read(&file).unwrap()[..]).unwrap();
        let id_of = |link_part: &str| {
            feed.entries
                .iter()
                .find(|e| e.links.iter().any(|l| l.href.contains(link_part)))
                .map(|e| e.id.clone())
                .unwrap_or_else(|| panic!("an entry links {link_part}"))
        };
        let edited_id = id_of("post412972");
        let new_id = id_of("don-khach-post413000");
        assert!(!before.contains_key(&new_id));
        assert_ne!(after[&edited_id], before[&edited_id], "the edit moved its entry");
        assert_eq!(after[&new_id], "2026-11-28T03:00:00+00:00", "the new story's own date");
        for (id, updated) in &before {
            if *id != edited_id && after.contains_key(id) {
                assert_eq!(&after[id], updated, "{id} did not change");
            }
        }
    })
    .await;
}
