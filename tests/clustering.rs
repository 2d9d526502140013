//! Stories across sources as the stages store them: each item's near-duplicate signature is made
//! by the poll's parse and stored with the item, so clustering reads it instead of recomputing
//! it (a signature that is missing or unreadable is computed again, never a crash), then moved
//! into the story index that later rounds search.

use crate::support::samples::{HA_GIANG, LAO_CAI, VNEXPRESS, YEN_BAI};
use crate::support::{FixtureServer, Route, TestApp, feeds_toml};
use std::collections::{BTreeMap, BTreeSet};

/// The four sample sources (six stories carried twice), polled, not yet clustered.
async fn polled() -> TestApp {
    let fixtures = FixtureServer::start().await;
    let mut feeds = Vec::new();
    for (id, doc) in [
        ("baolaocai", LAO_CAI),
        ("vnexpress", VNEXPRESS),
        ("baoyenbai", YEN_BAI),
        ("baohagiang", HA_GIANG),
    ] {
        fixtures.set(&format!("/{id}"), Route::ok(doc));
        feeds.push((id, fixtures.url(&format!("/{id}"))));
    }
    let app = TestApp::start(&feeds_toml(&feeds, "")).await;
    let polled = app.poll_all().await;
    assert_eq!((polled.failed, polled.new), (0, 40));
    app
}

/// The stories as sets of items, each item named by what identifies it in any database (its
/// feed and link): the same partition whichever item of a story got the smaller id.
async fn stories(app: &TestApp) -> BTreeSet<BTreeSet<(String, String)>> {
    let rows = app
        .store
        .clustered_between(i64::MIN, i64::MAX)
        .await
        .unwrap();
    let mut by_cluster: BTreeMap<i64, BTreeSet<(String, String)>> = BTreeMap::new();
    for r in &rows {
        let key = (
            r.feed_id.clone(),
            r.canonical_url.clone().unwrap_or_default(),
        );
        by_cluster
            .entry(r.cluster_id.expect("clustered"))
            .or_default()
            .insert(key);
    }
    assert_eq!(rows.len(), 40);
    by_cluster.into_values().collect()
}

#[tokio::test]
async fn the_poll_stores_each_items_signature_and_a_bad_one_is_computed_again() {
    crate::support::db::each_database(async || {
        let reference = polled().await;
        assert_eq!(
            reference
                .scalar("SELECT COUNT(*) FROM pending_stories WHERE length(signature) = 513")
                .await,
            40,
            "every item stored with its signature"
        );
        reference.refresher.cluster_new_items().await.unwrap();
        let expected = stories(&reference).await;
        assert_eq!(
            expected.len(),
            34,
            "six stories carried twice: {expected:?}"
        );

        // The same items, three of their signatures cut short and two gone.
        let damaged = polled().await;
        damaged
            .execute(
                "UPDATE pending_stories SET signature = substr(signature, 1, 10) WHERE item_id IN \
                 (SELECT item_id FROM pending_stories ORDER BY item_id LIMIT 3)",
            )
            .await;
        damaged
            .execute(
                "UPDATE pending_stories SET signature = NULL WHERE item_id IN \
                 (SELECT item_id FROM pending_stories ORDER BY item_id DESC LIMIT 2)",
            )
            .await;
        assert_eq!(
            damaged
                .scalar(
                    "SELECT COUNT(*) FROM pending_stories \
                     WHERE signature IS NULL OR length(signature) <> 513"
                )
                .await,
            5
        );
        damaged.refresher.cluster_new_items().await.unwrap();
        assert_eq!(stories(&damaged).await, expected, "the same stories");
        assert_eq!(
            damaged
                .scalar("SELECT COUNT(*) FROM story_index WHERE length(signature) = 513")
                .await,
            40,
            "the bad signatures were replaced, and moved into the story index"
        );
        assert_eq!(
            damaged.scalar("SELECT COUNT(*) FROM pending_stories").await,
            0,
            "a clustered item waits no more: its signature is kept once"
        );
    })
    .await;
}

/// A process keeps its story index between rounds. When another process clustered meanwhile
/// (sharing the database), the index is rebuilt from the store: stories spread over three rounds
/// and two processes come out as when everything is clustered at once.
#[tokio::test]
async fn a_process_sees_the_stories_another_process_clustered_meanwhile() {
    crate::support::db::each_database(async || {
        let reference = polled().await;
        reference.refresher.cluster_new_items().await.unwrap();
        let expected = stories(&reference).await;

        let fixtures = FixtureServer::start().await;
        let sources = [
            ("baolaocai", LAO_CAI),
            ("vnexpress", VNEXPRESS),
            ("baoyenbai", YEN_BAI),
            ("baohagiang", HA_GIANG),
        ];
        let mut feeds = Vec::new();
        for (id, _) in sources {
            fixtures.set(&format!("/{id}"), Route::status(500));
            feeds.push((id, fixtures.url(&format!("/{id}"))));
        }
        let app = TestApp::start(&feeds_toml(&feeds, "")).await;
        let other_store =
            tinbao::storage::Store::open(&app.config.database.url, &app.config.base_dir())
                .await
                .unwrap();
        let other =
            tinbao::reader::refresh::Refresher::new(other_store.clone(), app.config.clone())
                .unwrap();
        let serve = |ids: &[&str]| {
            for (id, doc) in sources {
                if ids.contains(&id) {
                    fixtures.set(&format!("/{id}"), Route::ok(doc));
                }
            }
        };

        serve(&["baolaocai"]);
        assert_eq!(app.poll_all().await.new, 12);
        assert_eq!(app.refresher.cluster_new_items().await.unwrap(), 12);
        serve(&["vnexpress"]);
        assert_eq!(app.poll_all().await.new, 10);
        assert_eq!(
            other.cluster_new_items().await.unwrap(),
            10,
            "the other process"
        );
        serve(&["baoyenbai", "baohagiang"]);
        assert_eq!(app.poll_all().await.new, 18);
        assert_eq!(app.refresher.cluster_new_items().await.unwrap(), 18);

        assert_eq!(stories(&app).await, expected);
        other_store.close().await;
    })
    .await;
}

/// An RSS document of one item published an hour ago, at `link`.
fn fresh_item(link: &str, title: &str, text: &str) -> String {
    let date = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc2822();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo</title>\
         <link>https://example.vn/</link><item><title>{title}</title><link>{link}</link>\
         <guid>{link}</guid><description>{text}</description><pubDate>{date}</pubDate></item>\
         </channel></rss>"
    )
}

/// Today's news, so that every round goes through the index the process keeps: a story that a
/// second process clustered is found by the first one's next round, which must notice that its
/// kept index no longer holds everything.
#[tokio::test]
async fn a_kept_index_made_stale_by_another_process_is_read_again() {
    crate::support::db::each_database(async || {
        const FLOOD: &str = "Lũ quét ở xã Bản Vược, huyện Bát Xát";
        const FLOOD_TEXT: &str = "Đêm 27/11, mưa lớn gây lũ quét tại thôn Phìn Hồ, xã Bản Vược, \
            huyện Bát Xát, tỉnh Lào Cai, cuốn trôi 12 ngôi nhà và làm 3 người mất tích; lực lượng \
            cứu hộ đã sơ tán 45 hộ dân đến nơi an toàn.";
        let fixtures = FixtureServer::start().await;
        let feeds: Vec<(&str, String)> = ["mot", "hai", "ba"]
            .iter()
            .map(|id| {
                fixtures.set(&format!("/{id}"), Route::status(500));
                (*id, fixtures.url(&format!("/{id}")))
            })
            .collect();
        let app = TestApp::start(&feeds_toml(&feeds, "")).await;
        let other_store =
            tinbao::storage::Store::open(&app.config.database.url, &app.config.base_dir())
                .await
                .unwrap();
        let other =
            tinbao::reader::refresh::Refresher::new(other_store.clone(), app.config.clone())
                .unwrap();

        // This process: an unrelated story. The other process: the flood. This process again:
        // another paper's report of the flood, which must join it.
        fixtures.set(
            "/mot",
            Route::ok(fresh_item(
                "https://mot.vn/1.html",
                "Giá vải thiều Lục Ngạn tăng mạnh",
                "Thương lái thu mua vải thiều tại Lục Ngạn, Bắc Giang với giá 40.000 đồng một \
                 kilôgam, cao gấp đôi năm ngoái.",
            )),
        );
        assert_eq!(app.poll_all().await.new, 1);
        assert_eq!(app.refresher.cluster_new_items().await.unwrap(), 1);
        fixtures.set(
            "/hai",
            Route::ok(fresh_item("https://hai.vn/2.html", FLOOD, FLOOD_TEXT)),
        );
        assert_eq!(app.poll_all().await.new, 1);
        assert_eq!(
            other.cluster_new_items().await.unwrap(),
            1,
            "the other process"
        );
        fixtures.set(
            "/ba",
            Route::ok(fresh_item("https://ba.vn/3.html", FLOOD, FLOOD_TEXT)),
        );
        assert_eq!(app.poll_all().await.new, 1);
        assert_eq!(app.refresher.cluster_new_items().await.unwrap(), 1);

        assert_eq!(
            app.scalar(
                "SELECT COUNT(DISTINCT cluster_id) FROM story_index WHERE feed_id IN ('hai', 'ba')"
            )
            .await,
            1,
            "both reports of the flood are one story"
        );
        assert_eq!(
            app.scalar("SELECT COUNT(DISTINCT cluster_id) FROM story_index")
                .await,
            2
        );
        other_store.close().await;
    })
    .await;
}
