//! Merged feeds, read by real clients over HTTP: Python feedparser and newsboat fetch them from
//! tinbao's own router on loopback. Regeneration is checked for byte and ETag stability and for
//! touching only the feeds whose sources changed.

use crate::support::samples::{HA_GIANG, LAO_CAI, VNEXPRESS, YEN_BAI};
use crate::support::{FixtureServer, Route, TestApp, client_available, spawn_http};
use std::collections::BTreeSet;
use tinbao::http::AppState;
use tinbao::publish::site::Site;
use tinbao::storage::StoryFilter;
use tinbao::worker::publisher::Publisher;

/// Subscribes a fresh newsboat to `urls` in `dir`, reloads them once, and returns its cache and
/// log; fails on an exit error or an ERROR in its log (newsboat exits 0 when a download fails).
pub async fn newsboat_reload(dir: &std::path::Path, urls: &[String]) -> (sqlx::SqlitePool, String) {
    std::fs::write(dir.join("urls"), urls.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("newsboat.conf"), "").unwrap();
    let status = tokio::process::Command::new("newsboat")
        .args([
            "-u",
            "urls",
            "-c",
            "cache.db",
            "-C",
            "newsboat.conf",
            "-x",
            "reload",
            "-l",
            "3",
            "-d",
            "nb.log",
        ])
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .await
        .expect("newsboat");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let log = format!(
        "{}\nstdout: {}\nstderr: {}",
        std::fs::read_to_string(dir.join("nb.log")).unwrap_or_default(),
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!log.contains("ERROR"), "newsboat log has errors:\n{log}");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("cache.db").display()))
        .await
        .expect("newsboat cache");
    (pool, log)
}

pub struct Published {
    pub app: TestApp,
    pub fixtures: FixtureServer,
    pub publisher: Publisher,
    pub base: String,
}

/// Four sample sources in two categories and four provinces, polled, published and served.
pub async fn published() -> Published {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/lc.rss", Route::ok(LAO_CAI));
    fixtures.set("/vne.rss", Route::ok(VNEXPRESS));
    fixtures.set(
        "/yb.atom",
        Route {
            headers: vec![("content-type".into(), "application/atom+xml".into())],
            ..Route::ok(YEN_BAI)
        },
    );
    fixtures.set("/hg.rss", Route::ok(HA_GIANG));
    let feed = |id: &str, path: &str, cat: &str, prov: &str| {
        format!(
            "\n[[feed]]\nid = \"{id}\"\nurl = \"{}\"\ncategory = \"{cat}\"\nprovince = \"{prov}\"\n",
            fixtures.url(path)
        )
    };
    let config = format!(
        "[database]\nurl = \"sqlite://tinbao.db\"\n[publish]\nmax_age = \"3650d\"\n[server]\ntopic_days = 366\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[category]]\nslug = \"xa-hoi\"\ntitle = \"Xã hội\"\n\
         [[province]]\nslug = \"lao-cai\"\nname = \"Lào Cai\"\n[[province]]\nslug = \"ca-nuoc\"\nname = \"Cả nước\"\n\
         [[province]]\nslug = \"yen-bai\"\nname = \"Yên Bái\"\n[[province]]\nslug = \"ha-giang\"\nname = \"Hà Giang\"\n{}{}{}{}",
        feed("baolaocai", "/lc.rss", "thoi-su", "lao-cai"),
        feed("vnexpress", "/vne.rss", "thoi-su", "ca-nuoc"),
        feed("baoyenbai", "/yb.atom", "thoi-su", "yen-bai"),
        feed("baohagiang", "/hg.rss", "xa-hoi", "ha-giang"),
    );
    let app = TestApp::start(&config).await;
    let polled = app.poll_all().await;
    assert_eq!((polled.failed, polled.new), (0, 40));
    app.refresher.cluster_new_items().await.expect("cluster");
    let publisher = Publisher::new(app.store.clone(), app.config.clone(), Site::default());
    publisher
        .regenerate(&publisher.all_filters())
        .await
        .expect("regenerate");
    let links = tinbao::digest::links::Links::new(
        app.store.link_secret().await.unwrap(),
        app.config.server.base_url.clone(),
    );
    let base = spawn_http(AppState::fixed(
        app.config.clone(),
        publisher.site.clone(),
        app.store.clone(),
        links,
    ))
    .await;
    Published {
        app,
        fixtures,
        publisher,
        base,
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn feedparser_reads_every_merged_feed_without_complaint() {
    crate::support::db::each_database(async || {
        if !client_available("python3", &["-c", "import feedparser"]) {
            return;
        }
        let p = published().await;
        let urls: Vec<String> = [
            "all.xml",
            "all.atom",
            "thoi-su.xml",
            "thoi-su.atom",
            "xa-hoi.xml",
            "province/lao-cai.atom",
        ]
        .iter()
        .map(|n| format!("{}feeds/{n}", p.base))
        .collect();
        let script = r#"
import feedparser, json, sys
out = []
for url in sys.argv[1:]:
    d = feedparser.parse(url)
    out.append({"url": url, "bozo": bool(d.bozo), "error": str(d.get("bozo_exception", "")), "version": d.version,
                "titles": [e.get("title") for e in d.entries], "links": [e.get("link") for e in d.entries],
                "ids": [e.get("id") for e in d.entries]})
print(json.dumps(out))
"#;
        let args: Vec<&str> = std::iter::once("-c")
            .chain(std::iter::once(script))
            .chain(urls.iter().map(String::as_str))
            .collect();
        let out = tokio::process::Command::new("python3")
            .args(&args)
            .output()
            .await
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        for r in &results {
            assert_eq!(r["bozo"], false, "{}: {}", r["url"], r["error"]);
            assert!(!r["titles"].as_array().unwrap().is_empty(), "{}", r["url"]);
            for link in r["links"].as_array().unwrap() {
                assert!(
                    link.as_str().is_some_and(|l| l.starts_with("https://")),
                    "{}: {link}",
                    r["url"]
                );
            }
        }
        let all = &results[0];
        assert_eq!(all["version"], "rss20");
        assert_eq!(results[1]["version"], "atom10");
        let titles: Vec<&str> = all["titles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(
            titles.iter().any(|t| t.contains("Giá chè & quế")),
            "& survives: {titles:?}"
        );
        assert!(
            titles.iter().any(|t| t.contains("Lào Cai")),
            "Vietnamese survives: {titles:?}"
        );
        let ids: BTreeSet<&str> = all["ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(ids.len(), titles.len(), "no repeated item");
        assert_eq!(
            results[4]["titles"].as_array().unwrap().len(),
            8,
            "xa-hoi holds the Hà Giang items"
        );
    })
    .await;
}

#[tokio::test]
async fn newsboat_reads_the_merged_feeds_from_the_running_server() {
    crate::support::db::each_database(async || {
        if !client_available("newsboat", &["--version"]) {
            return;
        }
        let p = published().await;
        let dir = p.app.dir.path();
        let urls = ["all.xml", "thoi-su.atom", "province/ha-giang.xml"]
            .map(|n| format!("{}feeds/{n}", p.base));
        let (pool, log) = newsboat_reload(dir, &urls).await;
        // Every subscription was read and titled.
        let feeds: Vec<(String, String)> =
            sqlx::query_as("SELECT rssurl, title FROM rss_feed ORDER BY rssurl")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(feeds.len(), 3, "{feeds:?}\n{log}");
        assert!(
            feeds
                .iter()
                .any(|(u, t)| u.ends_with("all.xml") && t == "Tất cả tin – tinbao"),
            "{feeds:?}"
        );
        // newsboat keys items by GUID across subscriptions, and a story keeps one GUID in every
        // merged feed, so each story of all.xml is stored exactly once.
        let all_xml = get(&urls[0], &[]).await.text().await.unwrap();
        let stories: BTreeSet<String> = feed_rs::parser::parse(all_xml.as_bytes())
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect();
        let stored: Vec<(String, String)> = sqlx::query_as("SELECT guid, title FROM rss_item")
            .fetch_all(&pool)
            .await
            .unwrap();
        let guids: BTreeSet<String> = stored.iter().map(|(g, _)| g.clone()).collect();
        assert_eq!(
            guids, stories,
            "newsboat holds exactly the stories of all.xml"
        );
        assert_eq!(stored.len(), stories.len(), "no story twice");
        assert!(stored.iter().any(|(_, t)| t.contains("Lào Cai")));
    })
    .await;
}

#[tokio::test]
async fn regenerating_without_new_items_changes_no_byte_and_no_etag() {
    crate::support::db::each_database(async || {
        let p = published().await;
        let url = format!("{}feeds/all.xml", p.base);
        let before = get(&url, &[]).await;
        let etag = before.headers()["etag"].clone();
        let body = before.bytes().await.unwrap();
        let file = p.app.dir.path().join("public/feeds/all.xml");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();

        let again = p
            .publisher
            .regenerate(&p.publisher.all_filters())
            .await
            .unwrap();
        assert_eq!(again.changed, 0, "{again:?}");
        let after = get(&url, &[]).await;
        assert_eq!(after.headers()["etag"], etag);
        assert_eq!(after.bytes().await.unwrap(), body);
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            mtime,
            "file not rewritten"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            body.to_vec(),
            "the file is the served document"
        );
    })
    .await;
}

#[tokio::test]
async fn only_the_feeds_of_a_changed_source_are_regenerated() {
    crate::support::db::each_database(async || {
        let p = published().await;
        let xa_hoi_etag = get(&format!("{}feeds/xa-hoi.xml", p.base), &[])
            .await
            .headers()["etag"]
            .clone();
        let all_etag = get(&format!("{}feeds/all.xml", p.base), &[])
            .await
            .headers()["etag"]
            .clone();
        let extra = LAO_CAI.replacen("<item>", "<item><title>Tin mới: Lào Cai đón khách</title><link>https://baolaocai.vn/moi.html</link><guid>moi-1</guid><pubDate>Sat, 28 Nov 2026 08:00:00 +0700</pubDate></item><item>", 1);
        p.fixtures.set("/lc.rss", Route::ok(extra));
        let polled = p.app.poll_all().await;
        assert_eq!(polled.new, 1);
        assert_eq!(
            polled
                .changed_feeds
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["baolaocai"]
        );
        let filters = p.publisher.filters_for_feeds(&polled.changed_feeds);
        let expected: BTreeSet<StoryFilter> = [
            StoryFilter::All,
            StoryFilter::Category("thoi-su".into()),
            StoryFilter::Province("lao-cai".into()),
        ]
        .into();
        assert_eq!(filters, expected);
        let done = p.publisher.regenerate(&filters).await.unwrap();
        assert_eq!((done.rendered, done.changed), (9, 9));
        assert_eq!(
            get(&format!("{}feeds/xa-hoi.xml", p.base), &[])
                .await
                .headers()["etag"],
            xa_hoi_etag
        );
        let all = get(&format!("{}feeds/all.xml", p.base), &[]).await;
        assert_ne!(all.headers()["etag"], all_etag);
        assert!(
            all.text()
                .await
                .unwrap()
                .contains("Tin mới: Lào Cai đón khách")
        );
    })
    .await;
}

#[tokio::test]
async fn conditional_requests_and_compression_follow_http() {
    crate::support::db::each_database(async || {
        use std::io::Read;
        let p = published().await;
        let url = format!("{}feeds/thoi-su.atom", p.base);
        let plain = get(&url, &[]).await;
        assert_eq!(
            plain.headers()["content-type"],
            "application/atom+xml; charset=utf-8"
        );
        assert_eq!(plain.headers()["vary"], "Accept-Encoding");
        let etag = plain.headers()["etag"].to_str().unwrap().to_string();
        let last_modified = plain.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string();
        let body = plain.bytes().await.unwrap();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong ETag: {etag}"
        );

        assert_eq!(get(&url, &[("if-none-match", &etag)]).await.status(), 304);
        assert_eq!(
            get(&url, &[("if-modified-since", &last_modified)])
                .await
                .status(),
            304
        );
        assert_eq!(
            get(&url, &[("if-none-match", "\"other\"")]).await.status(),
            200
        );

        let gz = get(&url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let gz_etag = gz.headers()["etag"].clone();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body.to_vec());
        assert_ne!(
            gz_etag.to_str().unwrap(),
            etag,
            "each representation has its own strong ETag"
        );
        let br = get(&url, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(br.headers()["content-encoding"], "br");
        assert_eq!(
            get(&url, &[("accept-encoding", "br;q=0, gzip")])
                .await
                .headers()["content-encoding"],
            "gzip"
        );

        for (name, ct) in [
            ("all.xml", "application/rss+xml; charset=utf-8"),
            ("all.json", "application/feed+json; charset=utf-8"),
        ] {
            assert_eq!(
                get(&format!("{}feeds/{name}", p.base), &[]).await.headers()["content-type"],
                ct
            );
        }
        assert_eq!(
            get(&format!("{}feeds/nope.xml", p.base), &[])
                .await
                .status(),
            404
        );
    })
    .await;
}

#[tokio::test]
async fn the_index_page_and_opml_list_feeds_and_sources() {
    crate::support::db::each_database(async || {
        let p = published().await;
        let index = get(&p.base, &[]).await;
        assert_eq!(index.headers()["x-content-type-options"], "nosniff");
        let html = index.text().await.unwrap();
        assert!(
            html.contains("<link rel=\"alternate\" type=\"application/rss+xml\" title=\"Thời sự\""),
            "{html}"
        );
        assert!(html.contains("feeds/province/lao-cai.xml"), "{html}");
        let opml = get(&format!("{}opml", p.base), &[])
            .await
            .text()
            .await
            .unwrap();
        assert!(
            opml.contains("<outline text=\"Xã hội\"") && opml.contains(&p.fixtures.url("/hg.rss")),
            "{opml}"
        );
    })
    .await;
}

#[tokio::test]
async fn one_story_from_several_sources_is_one_item_naming_the_others() {
    crate::support::db::each_database(async || {
        let p = published().await;
        let all = get(&format!("{}feeds/all.xml", p.base), &[])
            .await
            .text()
            .await
            .unwrap();
        let feed = feed_rs::parser::parse(all.as_bytes()).unwrap();
        // samples/README.md: of these four sources' 40 items, six stories are carried twice
        // (O1–O6), so the merged feed holds 34 stories.
        assert_eq!(
            feed.entries.len(),
            34,
            "{:#?}",
            feed.entries
                .iter()
                .map(|e| e.title.as_ref().map(|t| t.content.clone()))
                .collect::<Vec<_>>()
        );
        // O1, the A Lù flash flood, reported by Báo Lào Cai ("Lũ quét trong đêm ở xã A Lù …") and
        // VnExpress ("Lũ quét ở Lào Cai, một người chết …"): one item, whichever title it shows,
        // naming the other outlet.
        let is_flood = |t: &str| {
            t.contains("Lũ quét trong đêm ở xã A Lù")
                || t.contains("Lũ quét ở Lào Cai, một người chết")
        };
        let flood: Vec<_> = feed
            .entries
            .iter()
            .filter(|e| e.title.as_ref().is_some_and(|t| is_flood(&t.content)))
            .collect();
        assert_eq!(flood.len(), 1, "the A Lù flood is one item");
        let body = flood[0]
            .summary
            .as_ref()
            .map(|s| s.content.clone())
            .unwrap_or_default();
        assert!(
            body.contains("Cùng đưa tin"),
            "it names its other source: {body}"
        );
        // The decoy (a flood drill in Trịnh Tường) stays its own story.
        assert!(feed.entries.iter().any(|e| {
            e.title
                .as_ref()
                .is_some_and(|t| t.content.contains("Trịnh Tường"))
        }));
    })
    .await;
}
