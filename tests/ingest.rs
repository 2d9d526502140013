//! Ingest against a real HTTP server on loopback: conditional GET, pacing, limits, hostile
//! servers and malformed documents. Each ends as a recorded error or a correct parse, and the
//! other feeds of the same poll are unaffected.

use crate::support::{FixtureServer, Route, TestApp, feeds_toml, fixture::gzip, rss_doc};
use chrono::Utc;
use std::time::Duration;
use tinbao::reader::refresh::FeedResult;

async fn app_with(server: &FixtureServer, paths: &[&str], polling: &str) -> TestApp {
    let feeds: Vec<(&str, String)> = paths
        .iter()
        .map(|p| (p.trim_start_matches('/'), server.url(p)))
        .collect();
    TestApp::start(&feeds_toml(&feeds, polling)).await
}

#[tokio::test]
async fn conditional_get_sends_validators_and_a_304_changes_nothing() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let lm = "Sat, 28 Nov 2026 01:00:00 GMT";
        server.set(
            "/a",
            Route {
                etag: Some("\"v1\"".into()),
                last_modified: Some(lm.into()),
                ..Route::ok(rss_doc("A", "a", 5))
            },
        );
        let app = app_with(&server, &["/a"], "").await;

        let first = app.poll_all().await;
        assert_eq!((first.new, first.not_modified, first.failed), (5, 0, 0));
        let second = app.poll_all().await;
        assert_eq!((second.new, second.not_modified), (0, 1));

        let seen = server.requests("/a");
        assert_eq!(seen.len(), 2);
        assert!(seen[0].headers.get("if-none-match").is_none());
        assert_eq!(seen[1].headers.get("if-none-match").unwrap(), "\"v1\"");
        assert_eq!(seen[1].headers.get("if-modified-since").unwrap(), lm);
        let ua = seen[0].headers.get("user-agent").unwrap().to_str().unwrap();
        assert!(ua.starts_with("tinbao/") && ua.contains("+http"), "{ua}");
        assert!(
            seen[0]
                .headers
                .get("accept-encoding")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("gzip")
        );

        // A new version of the document: only the new item is new.
        server.set(
            "/a",
            Route {
                etag: Some("\"v2\"".into()),
                ..Route::ok(rss_doc("A", "a", 6))
            },
        );
        let third = app.poll_all().await;
        assert_eq!((third.new, third.updated), (1, 0));
        assert_eq!(app.feed("a").await.item_count, 6);
    })
    .await;
}

#[tokio::test]
async fn an_unchanged_body_without_validators_is_not_parsed_again() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/plain", Route::ok(rss_doc("P", "p", 3)));
        let app = app_with(&server, &["/plain"], "").await;
        assert_eq!(app.poll_all().await.new, 3);
        let again = app.poll_all().await;
        assert_eq!((again.new, again.updated, again.not_modified), (0, 0, 1));
    })
    .await;
}

#[tokio::test]
async fn rate_limited_feed_waits_for_retry_after() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/busy", Route::status(429).header("retry-after", "3600"));
        let app = app_with(&server, &["/busy"], "").await;
        let before = Utc::now();
        assert_eq!(app.poll_all().await.failed, 1);
        let state = app.feed("busy").await;
        assert_eq!(state.last_status, Some(429));
        assert_eq!(state.error_count, 1);
        // Stored times are whole seconds.
        assert!(
            state.next_poll_at.timestamp() >= before.timestamp() + 3600,
            "{:?}",
            state.next_poll_at
        );
    })
    .await;
}

#[tokio::test]
async fn server_errors_back_off_and_recovery_clears_the_count() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/flaky", Route::status(500));
        let app = app_with(&server, &["/flaky"], "").await;
        app.poll_all().await;
        let first = app.feed("flaky").await;
        app.poll_all().await;
        let second = app.feed("flaky").await;
        assert_eq!((first.error_count, second.error_count), (1, 2));
        assert_eq!(second.last_error.as_deref(), Some("HTTP 500"));
        let gap1 = first.next_poll_at - first.last_fetch_at.unwrap();
        let gap2 = second.next_poll_at - second.last_fetch_at.unwrap();
        assert!(gap2 > gap1, "backoff grows: {gap1} then {gap2}");
        assert!(
            app.poll_all().await.failed == 1,
            "a failing feed is still polled: never given up on"
        );

        server.set("/flaky", Route::ok(rss_doc("F", "f", 2)));
        assert_eq!(app.poll_all().await.new, 2);
        let healed = app.feed("flaky").await;
        assert_eq!((healed.error_count, healed.last_error), (0, None));
    })
    .await;
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_cut_off() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set(
            "/slow",
            Route {
                delay: Duration::from_secs(5),
                ..Route::ok(rss_doc("S", "s", 1))
            },
        );
        let app = app_with(&server, &["/slow"], "timeout = \"1s\"").await;
        let summary = app.poll_all().await;
        assert_eq!(summary.failed, 1);
        assert!(
            app.feed("slow")
                .await
                .last_error
                .unwrap()
                .contains("timed out")
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/big", Route::ok(rss_doc("B", "b", 2000)));
        let app = app_with(&server, &["/big"], "max_body = \"64KiB\"").await;
        assert_eq!(app.poll_all().await.failed, 1);
        let error = app.feed("big").await.last_error.unwrap();
        assert!(error.contains("65536-byte limit"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_cap() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let mut bomb = rss_doc("G", "g", 1).into_bytes();
        bomb.extend(std::iter::repeat_n(b' ', 200 << 20));
        let compressed = gzip(&bomb);
        assert!(
            compressed.len() < 1 << 20,
            "the bomb is small on the wire: {}",
            compressed.len()
        );
        server.set(
            "/bomb",
            Route::ok(compressed).header("content-encoding", "gzip"),
        );
        let app = app_with(&server, &["/bomb"], "max_body = \"1MiB\"").await;
        assert_eq!(app.poll_all().await.failed, 1);
        assert!(app.feed("bomb").await.last_error.unwrap().contains("limit"));
    })
    .await;
}

#[tokio::test]
async fn gzip_responses_are_decoded() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set(
            "/gz",
            Route::ok(gzip(rss_doc("Z", "z", 4).as_bytes())).header("content-encoding", "gzip"),
        );
        let app = app_with(&server, &["/gz"], "").await;
        assert_eq!(app.poll_all().await.new, 4);
    })
    .await;
}

#[tokio::test]
async fn redirect_loops_and_long_chains_are_errors() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/loop-a", Route::status(302).header("location", "/loop-b"));
        server.set("/loop-b", Route::status(302).header("location", "/loop-a"));
        for i in 0..7 {
            server.set(
                &format!("/hop{i}"),
                Route::status(307).header("location", &format!("/hop{}", i + 1)),
            );
        }
        server.set("/hop7", Route::ok(rss_doc("H", "h", 1)));
        let app = app_with(&server, &["/loop-a", "/hop0"], "").await;
        assert_eq!(app.poll_all().await.failed, 2);
        assert!(
            app.feed("loop-a")
                .await
                .last_error
                .unwrap()
                .contains("redirect loop")
        );
        assert!(
            app.feed("hop0")
                .await
                .last_error
                .unwrap()
                .contains("more than 5 redirects")
        );
    })
    .await;
}

#[tokio::test]
async fn a_permanent_redirect_is_followed_and_reported() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/old", Route::status(301).header("location", "/new"));
        server.set("/new", Route::ok(rss_doc("N", "n", 2)));
        let app = app_with(&server, &["/old"], "").await;
        assert_eq!(app.poll_all().await.new, 2);
        assert_eq!(app.feed("old").await.moved_to, Some(server.url("/new")));
    })
    .await;
}

#[tokio::test]
async fn malformed_and_empty_documents_are_recorded_errors() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set(
            "/broken",
            Route::ok("<rss version=\"2.0\"><channel><item><title>đứt"),
        );
        server.set("/blank", Route::ok(""));
        server.set("/html", Route::ok("<html><body>Trang chủ</body></html>"));
        server.set(
            "/noitems",
            Route::ok("<rss version=\"2.0\"><channel><title>Trống</title></channel></rss>"),
        );
        let app = app_with(&server, &["/broken", "/blank", "/html", "/noitems"], "").await;
        let summary = app.poll_all().await;
        assert_eq!((summary.failed, summary.new), (3, 0));
        assert!(
            app.feed("broken")
                .await
                .last_error
                .unwrap()
                .starts_with("parse error")
        );
        assert_eq!(
            app.feed("blank").await.last_error.as_deref(),
            Some("parse error: empty document")
        );
        let empty = app.feed("noitems").await;
        assert_eq!(
            (empty.last_status, empty.error_count, empty.item_count),
            (Some(200), 0, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn wrong_or_missing_charsets_are_decoded() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let (latin, _, _) = encoding_rs::WINDOWS_1252.encode(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Café</title><item><guid>1</guid><title>Crème brûlée</title></item></channel></rss>",
        );
        server.set("/liar", Route::ok(latin.to_vec()));
        let (nodecl, _, _) = encoding_rs::WINDOWS_1252.encode(
            "<rss version=\"2.0\"><channel><title>Señor</title><item><guid>1</guid><title>Niño</title></item></channel></rss>",
        );
        server.set(
            "/header",
            Route {
                headers: vec![(
                    "content-type".into(),
                    "text/xml; charset=windows-1252".into(),
                )],
                ..Route::ok(nodecl.to_vec())
            },
        );
        let app = app_with(&server, &["/liar", "/header"], "").await;
        assert_eq!(app.poll_all().await.new, 2);
        assert_eq!(
            app.store.feed_items("liar").await.unwrap()[0].title,
            "Crème brûlée"
        );
        assert_eq!(
            app.store.feed_items("header").await.unwrap()[0].title,
            "Niño"
        );
    })
    .await;
}

#[tokio::test]
async fn duplicate_and_missing_guids_store_each_story_once() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let doc = r#"<rss version="2.0"><channel><title>D</title>
        <item><guid>x</guid><title>Một</title><link>https://baolaocai.vn/1</link></item>
        <item><guid>x</guid><title>Một</title><link>https://baolaocai.vn/1</link></item>
        <item><title>Hai</title><link>https://baolaocai.vn/2?utm_source=rss</link></item>
        <item><title>Ba</title><description>không có liên kết</description></item>
        </channel></rss>"#;
        server.set("/dup", Route::ok(doc));
        let app = app_with(&server, &["/dup"], "").await;
        assert_eq!(app.poll_all().await.new, 3);
        // Re-serve with a trivial byte change so it is parsed again: nothing new.
        server.set("/dup", Route::ok(format!("{doc}\n")));
        let again = app.poll_all().await;
        assert_eq!((again.new, again.updated), (0, 0));
        let keys: Vec<String> = app
            .store
            .feed_items("dup")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.item_key)
            .collect();
        assert!(
            keys.contains(&"g:x".to_string())
                && keys.contains(&"l:https://baolaocai.vn/2".to_string()),
            "{keys:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn relative_links_become_absolute_and_nfd_text_becomes_nfc() {
    crate::support::db::each_database(async || {
        use unicode_normalization::UnicodeNormalization;
        let server = FixtureServer::start().await;
        let title: String = "Lũ quét ở Bát Xát".nfd().collect();
        let doc = format!(
            "<rss version=\"2.0\"><channel><title>R</title><item><guid>r1</guid><title>{title}</title><link>../tin/1.html</link>\
             <description>&lt;a href=\"/anh\"&gt;ảnh&lt;/a&gt;</description></item></channel></rss>"
        );
        server.set("/rss/feed.xml", Route::ok(doc));
        let app = TestApp::start(&feeds_toml(&[("nested", server.url("/rss/feed.xml"))], "")).await;
        assert_eq!(app.poll_all().await.new, 1);
        let item = &app.store.feed_items("nested").await.unwrap()[0];
        assert_eq!(item.title, "Lũ quét ở Bát Xát");
        assert_eq!(
            item.url.as_deref(),
            Some(server.url("/tin/1.html").as_str())
        );
        assert!(
            item.summary_html
                .contains(&format!("href=\"{}\"", server.url("/anh"))),
            "{}",
            item.summary_html
        );
    })
    .await;
}

#[tokio::test]
async fn an_entity_expansion_attack_is_bounded() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            doc.push_str(&format!(
                "<!ENTITY {n} \"{}\">",
                format!("&{prev};").repeat(10)
            ));
            prev = n;
        }
        doc.push_str("]><rss version=\"2.0\"><channel><title>&i;</title><item><guid>1</guid><title>&i;</title></item></channel></rss>");
        server.set("/lol", Route::ok(doc));
        let app = app_with(&server, &["/lol"], "").await;
        app.poll_all().await;
        let state = app.feed("lol").await;
        let stored: usize = app
            .store
            .feed_items("lol")
            .await
            .unwrap()
            .iter()
            .map(|i| i.title.len())
            .sum();
        assert!(
            state.last_error.is_some() || stored < 10_000,
            "expanded to {stored} bytes"
        );
    })
    .await;
}

#[tokio::test]
async fn a_changed_item_is_updated_in_place() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let doc = |t: &str| {
            format!(
                "<rss version=\"2.0\"><channel><title>U</title><item><guid>u1</guid><title>{t}</title></item></channel></rss>"
            )
        };
        server.set("/u", Route::ok(doc("Bản nháp")));
        let app = app_with(&server, &["/u"], "").await;
        assert_eq!(app.poll_all().await.new, 1);
        server.set("/u", Route::ok(doc("Bản chính thức")));
        let again = app.poll_all().await;
        assert_eq!((again.new, again.updated), (0, 1));
        let items = app.store.feed_items("u").await.unwrap();
        assert_eq!(
            (items.len(), items[0].title.as_str()),
            (1, "Bản chính thức")
        );
    })
    .await;
}

#[tokio::test]
async fn a_changed_document_stores_what_a_whole_read_would() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let item = |n: u32, title: &str| {
            format!(
                "<item><guid>m{n}</guid><title>{title}</title><link>https://baoyenbai.com.vn/{n}</link></item>"
            )
        };
        let doc = |items: &[String]| {
            format!(
                "<rss version=\"2.0\"><channel><title>M</title>{}</channel></rss>",
                items.concat()
            )
        };
        let v1: Vec<String> = (1..=5).map(|n| item(n, &format!("Tin {n}"))).collect();
        server.set("/m", Route::ok(doc(&v1)));
        let app = app_with(&server, &["/m"], "").await;
        assert_eq!(app.poll_all().await.new, 5);
        // Two new on top, one edited, one gone.
        let mut v2 = vec![item(7, "Tin 7"), item(6, "Tin 6")];
        v2.extend([item(1, "Tin 1"), item(2, "Tin 2 (sửa)"), item(3, "Tin 3")]);
        server.set("/m", Route::ok(doc(&v2)));
        let again = app.poll_all().await;
        assert_eq!((again.new, again.updated), (2, 1));
        // The edit taken back: the entry is not remembered in that form, so it is read.
        v2[3] = item(2, "Tin 2");
        server.set("/m", Route::ok(doc(&v2)));
        let back = app.poll_all().await;
        assert_eq!((back.new, back.updated), (0, 1));
        let remembered = "SELECT COUNT(*) FROM feeds WHERE entry_memory IS NOT NULL";
        assert_eq!(app.scalar(remembered).await, 1);
        // A corrupt memory is ignored: the document is read whole and nothing changes.
        app.execute("UPDATE feeds SET entry_memory = substr(entry_memory, 1, 20)")
            .await;
        v2.push(item(8, "Tin 8"));
        server.set("/m", Route::ok(doc(&v2)));
        assert_eq!(app.poll_all().await.new, 1);
        let mut titles: Vec<String> = app
            .store
            .feed_items("m")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.title)
            .collect();
        titles.sort();
        assert_eq!(
            titles,
            ["Tin 1", "Tin 2", "Tin 3", "Tin 4", "Tin 5", "Tin 6", "Tin 7", "Tin 8"]
        );
    })
    .await;
}

#[tokio::test]
async fn pruned_items_leave_tombstones_and_never_return_as_new() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/p", Route::ok(rss_doc("P", "p", 3)));
        let app = app_with(&server, &["/p"], "").await;
        assert_eq!(app.poll_all().await.new, 3);
        let now = Utc::now();
        assert_eq!(
            app.store
                .prune_items(now + chrono::Duration::days(2), now)
                .await
                .unwrap(),
            3
        );
        server.set("/p", Route::ok(rss_doc("P", "p", 4)));
        let after = app.poll_all().await;
        assert_eq!(after.new, 1, "only the genuinely new item comes in");
    })
    .await;
}

#[tokio::test]
async fn requests_to_one_host_respect_the_per_host_limit() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        let paths: Vec<String> = (0..6).map(|i| format!("/h{i}")).collect();
        for p in &paths {
            server.set(
                p,
                Route {
                    delay: Duration::from_millis(300),
                    ..Route::ok(rss_doc("H", p.trim_start_matches('/'), 1))
                },
            );
        }
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let app = app_with(&server, &refs, "per_host = 2").await;
        assert_eq!(app.poll_all().await.new, 6);
        assert_eq!(server.peak_in_flight(), 2);
    })
    .await;
}

#[tokio::test]
async fn one_bad_feed_does_not_stop_the_others() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/good", Route::ok(rss_doc("Good", "good", 10)));
        server.set("/e500", Route::status(500));
        server.set(
            "/slow",
            Route {
                delay: Duration::from_secs(4),
                ..Route::ok(rss_doc("S", "s", 1))
            },
        );
        server.set("/junk", Route::ok("\u{0}\u{1}garbage"));
        server.set("/loop", Route::status(308).header("location", "/loop"));
        let app = app_with(
            &server,
            &["/good", "/e500", "/slow", "/junk", "/loop", "/missing"],
            "timeout = \"1s\"\nper_host = 8",
        )
        .await;
        let summary = app.poll_all().await;
        assert_eq!((summary.polled, summary.failed, summary.new), (6, 5, 10));
        assert_eq!(app.feed("good").await.item_count, 10);
        assert_eq!(app.feed("missing").await.last_status, Some(404));
        // A single refresh reports its failure as a value, never a panic or an Err.
        let due = app
            .store
            .due_feeds(Utc::now() + chrono::Duration::days(2), true)
            .await
            .unwrap();
        let junk = due.into_iter().find(|f| f.id == "junk").unwrap();
        assert!(matches!(
            app.refresher.refresh(junk).await,
            FeedResult::Failed(_)
        ));
    })
    .await;
}

#[tokio::test]
async fn removing_a_feed_from_the_config_keeps_its_items() {
    crate::support::db::each_database(async || {
        let server = FixtureServer::start().await;
        server.set("/keep", Route::ok(rss_doc("K", "k", 2)));
        let app = app_with(&server, &["/keep"], "").await;
        app.poll_all().await;
        app.store.sync_feeds(&[], Utc::now()).await.unwrap();
        let state = app.feed("keep").await;
        assert_eq!((state.active, state.item_count), (false, 2));
        assert_eq!(
            app.poll_all().await.polled,
            0,
            "inactive feeds are not polled"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_write_in_a_group_commit_spares_the_other_feeds() {
    crate::support::db::each_database(async || {
        use tinbao::reader::parser::{self, ParseContext};
        use tinbao::storage::FeedUpdate;
        let server = FixtureServer::start().await;
        let app = app_with(&server, &["/real"], "").await;
        let ctx = ParseContext {
            base: None,
            http_charset: None,
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
            now: Utc::now(),
        };
        let items = parser::parse(rss_doc("R", "r", 3).as_bytes(), &ctx)
            .unwrap()
            .items;
        let update = FeedUpdate {
            fetched_at: Utc::now(),
            next_poll_at: Utc::now(),
            status: Some(200),
            ..FeedUpdate::default()
        };
        // "ghost" has no row in `feeds`: its items violate the foreign key, inside the same group.
        let (ghost, real) = tokio::join!(
            app.store.store_poll("ghost", items.clone(), update.clone()),
            app.store.store_poll("real", items.clone(), update.clone()),
        );
        assert!(ghost.is_err(), "the ghost feed's write fails");
        assert_eq!(real.unwrap().new, 3);
        assert_eq!(app.feed("real").await.item_count, 3);
    })
    .await;
}
