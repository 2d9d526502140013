//! Full text for teaser feeds, through the real binary: `run --once` reads the article pages of
//! a feed with `full_text` on, served on loopback, so an item's text (what topics match and
//! clustering compares) and its merged-feed content are the whole article; every kind of bad
//! page costs only its own item, which keeps its teaser and is retried a bounded number of times.

use crate::support::{FixtureServer, Route, run_tinbao as tinbao};
use std::path::Path;

/// The article text: it names the commune, which the teaser does not.
const BODY: &str = "Trận lũ quét đêm qua tại xã Trịnh Tường đã cuốn trôi nhiều hoa màu và làm hư \
                    hỏng tuyến đường liên xã. Lực lượng chức năng cùng người dân địa phương đang \
                    khẩn trương khắc phục hậu quả, bảo đảm giao thông thông suốt trong tuần tới.";

fn article(n: u32) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bài {n}</title></head><body>\
         <nav><a href=\"/\">Trang chủ</a><a href=\"/xa-hoi\">Xã hội</a></nav>\
         <article class=\"chi-tiet\"><h1>Bài {n}</h1><div class=\"noi-dung\"><p>Bài {n}. {BODY}</p>\
         <p>{BODY}</p><p>{BODY}</p></div><div class=\"lien-quan\"><a href=\"/khac\">Tin khác</a></div>\
         </article><footer>Báo Lào Cai</footer></body></html>"
    )
}

/// A feed whose items carry one-line teasers and link to `/bai/N.html`.
fn teaser_feed(ns: &[u32]) -> String {
    let items: String = ns
        .iter()
        .map(|n| {
            format!(
                "<item><title>Tin {n}: Bát Xát khắc phục hậu quả mưa lũ</title><link>/bai/{n}.html</link>\
                 <guid isPermaLink=\"false\">tin-{n}</guid><pubDate>Sat, 05 Dec 2026 0{}:00:00 +0700</pubDate>\
                 <description>Mưa lớn gây thiệt hại ở huyện vùng cao.</description></item>",
                n % 10
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Báo Lào Cai</title>\
         <link>/</link><description>Tin</description>{items}</channel></rss>"
    )
}

/// Text as Windows-1258 spells it: letters with a circumflex, breve or horn precomposed, tone
/// marks after them as combining characters.
fn windows_1258_form(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let tone = |c: &char| {
        matches!(
            *c,
            '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}'
        )
    };
    let mut out = String::new();
    for c in text.chars() {
        let (tones, letter): (Vec<char>, Vec<char>) = c.nfd().partition(tone);
        out.extend(letter.into_iter().nfc());
        out.extend(tones);
    }
    out
}

fn config(fixtures: &FixtureServer, feeds: &[(&str, &str, &str)]) -> String {
    let mut text = "[database]\nurl = \"sqlite://tinbao.db\"\n\
                    [polling]\ntimeout = \"1s\"\nmax_body = \"64KiB\"\n\
                    [[category]]\nslug = \"xa-hoi\"\ntitle = \"Xã hội\"\n"
        .to_string();
    for (id, path, full_text) in feeds {
        text += &format!(
            "[[feed]]\nid = \"{id}\"\nurl = \"{}\"\ncategory = \"xa-hoi\"\n{full_text}\n",
            fixtures.url(path)
        );
    }
    text
}

async fn text_of(dir: &Path, guid: &str) -> String {
    let pool = crate::support::database(dir).await;
    sqlx::query_scalar("SELECT text FROM items WHERE guid = ?1")
        .bind(guid)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// `(attempts, due, last_error)` of the item's queue row, if it has one.
async fn queue_row(dir: &Path, guid: &str) -> Option<(i64, bool, Option<String>)> {
    let pool = crate::support::database(dir).await;
    sqlx::query_as(
        "SELECT q.attempts, q.due_at IS NOT NULL, q.last_error FROM article_queue q
         JOIN items i ON i.id = q.item_id WHERE i.guid = ?1",
    )
    .bind(guid)
    .fetch_optional(&pool)
    .await
    .unwrap()
}

/// A response of `content_type` (`Route::ok` would add a feed's type first).
fn page(body: impl Into<Vec<u8>>, content_type: &str) -> Route {
    Route {
        status: 200,
        body: body.into(),
        headers: vec![("content-type".into(), content_type.into())],
        ..Route::default()
    }
}

fn stdout(o: &std::process::Output) -> String {
    format!(
        "{}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn teasers_get_their_article_and_each_bad_page_costs_only_its_item() {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/rss", Route::ok(teaser_feed(&[1, 2, 3, 4, 5, 6, 7, 9])));
    let html = |body: String| page(body, "text/html; charset=utf-8");
    fixtures.set("/bai/1.html", html(article(1)));
    // Slower than the 1 s timeout.
    let mut slow = html(article(2));
    slow.delay = std::time::Duration::from_secs(3);
    fixtures.set("/bai/2.html", slow);
    fixtures.set(
        "/bai/3.html",
        page(b"%PDF-1.7 ...".to_vec(), "application/pdf"),
    );
    fixtures.set(
        "/bai/4.html",
        Route::status(302).header("location", "/bai/4b.html"),
    );
    fixtures.set(
        "/bai/4b.html",
        Route::status(302).header("location", "/bai/4.html"),
    );
    // Windows-1258, named only by the page's meta: tone marks as combining characters.
    let page5 =
        windows_1258_form(&article(5).replace("charset=\"utf-8\"", "charset=\"windows-1258\""));
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1258.encode(&page5);
    assert!(!unmappable && std::str::from_utf8(&bytes).is_err());
    let page5 = bytes.into_owned();
    fixtures.set("/bai/5.html", page(page5, "text/html"));
    // Past the 64 KiB body cap.
    fixtures.set("/bai/6.html", html(article(6).repeat(200)));
    fixtures.set("/bai/7.html", Route::status(404));
    // Decomposed (NFD) text, as some editors save it.
    let nfd: String = {
        use unicode_normalization::UnicodeNormalization;
        article(9).nfd().collect()
    };
    fixtures.set("/bai/9.html", html(nfd));
    // A feed without full text, whose pages must never be asked for.
    fixtures.set("/plain", Route::ok(teaser_feed(&[8])));
    fixtures.set("/bai/8.html", html(article(8)));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(
            &fixtures,
            &[("lc", "/rss", "full_text = true"), ("plain", "/plain", "")],
        ),
    )
    .unwrap();
    // A reader following the commune, which only the articles name.
    let add = tinbao(
        dir.path(),
        &[
            "subscribers",
            "add",
            "ban-doc@example.vn",
            "--topic",
            "query=\"Trịnh Tường\"",
            "--schedule",
            "immediate",
        ],
    )
    .await;
    assert_eq!(add.status.code(), Some(0), "{}", stdout(&add));
    let run = tinbao(dir.path(), &["run", "--once"]).await;
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(
        out.contains("full text: 3 article bodies stored, 5 pages failed (0 given up)"),
        "{out}"
    );
    let digest = tinbao(dir.path(), &["digest", "--now", "--dry-run", "out"]).await;
    assert_eq!(digest.status.code(), Some(0), "{}", stdout(&digest));
    let mails: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| crate::support::smtp::ReceivedMail::parse(&e.unwrap().path()))
        .collect();
    assert_eq!(mails.len(), 1, "one digest");
    let mail = mails[0].text.clone().unwrap_or_default();
    assert!(
        mail.contains("Tin 1:") && mail.contains("Tin 5:") && mail.contains("Tin 9:"),
        "{mail}"
    );
    assert!(
        !mail.contains("Tin 2:") && !mail.contains("Tin 8:"),
        "teasers do not match: {mail}"
    );

    // The article's own words are what the item says now; the feed's teaser is not lost.
    let one = text_of(dir.path(), "tin-1").await;
    assert!(one.contains("xã Trịnh Tường"), "{one}");
    assert!(
        !one.contains("Trang chủ") && !one.contains("Báo Lào Cai"),
        "{one}"
    );
    let five = text_of(dir.path(), "tin-5").await;
    assert!(
        five.contains("xã Trịnh Tường"),
        "windows-1258 as NFC: {five}"
    );
    let nine = text_of(dir.path(), "tin-9").await;
    assert!(nine.contains("xã Trịnh Tường"), "NFD as NFC: {nine}");
    assert_eq!(queue_row(dir.path(), "tin-1").await, None);
    let merged = std::fs::read_to_string(dir.path().join("public/feeds/all.atom")).unwrap();
    assert!(
        merged.contains("xã Trịnh Tường"),
        "the merged feed carries the body"
    );

    for (guid, why) in [
        ("tin-2", "timed out"),
        ("tin-3", "application/pdf"),
        ("tin-4", "redirect loop"),
        ("tin-6", "limit"),
        ("tin-7", "HTTP 404"),
    ] {
        assert_eq!(
            text_of(dir.path(), guid).await,
            "Mưa lớn gây thiệt hại ở huyện vùng cao.",
            "{guid} keeps its feed text"
        );
        let (attempts, due, error) = queue_row(dir.path(), guid).await.expect(guid);
        assert_eq!((attempts, due), (1, true), "{guid}");
        let error = error.unwrap_or_default();
        assert!(error.contains(why), "{guid}: {error}");
    }
    assert!(fixtures.requests("/bai/8.html").is_empty());
    assert_eq!(
        text_of(dir.path(), "tin-8").await,
        "Mưa lớn gây thiệt hại ở huyện vùng cao."
    );

    // `tinbao feeds` tells the operator what is waiting and why.
    let feeds = tinbao(dir.path(), &["feeds", "--json"]).await;
    let states: serde_json::Value = serde_json::from_slice(&feeds.stdout).expect("json");
    let lc = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "lc")
        .unwrap();
    assert_eq!(lc["articles_pending"], 5, "{lc}");
    assert_eq!(lc["articles_given_up"], 0, "{lc}");
}

#[tokio::test]
async fn a_failing_page_is_tried_a_bounded_number_of_times_and_a_read_one_never_again() {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/rss", Route::ok(teaser_feed(&[1, 2])));
    fixtures.set("/bai/1.html", page(article(1), "text/html"));
    fixtures.set("/bai/2.html", page(article(2), "text/html"));
    let dir = tempfile::tempdir().unwrap();
    // The operator's selector for this site: it matches the first page's layout only.
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &[("lc", "/rss", "full_text = \"div.noi-dung\"")]),
    )
    .unwrap();
    fixtures.set(
        "/bai/2.html",
        page(article(2).replace("noi-dung", "bai-viet"), "text/html"),
    );
    for pass in 1..=4 {
        let run = tinbao(dir.path(), &["run", "--once", "--all"]).await;
        assert_eq!(run.status.code(), Some(0), "{}", stdout(&run));
        // Make the failed page due again at once, as if its backoff had passed.
        let pool = crate::support::database(dir.path()).await;
        sqlx::query("UPDATE article_queue SET due_at = 0 WHERE due_at IS NOT NULL")
            .execute(&pool)
            .await
            .unwrap();
        let (attempts, due, error) = queue_row(dir.path(), "tin-2").await.expect("queued");
        assert_eq!(attempts, pass.min(3), "pass {pass}");
        assert_eq!(due, pass < 3, "given up after 3 attempts (pass {pass})");
        let error = error.unwrap_or_default();
        assert!(
            error.contains("\"div.noi-dung\" matches nothing"),
            "the error names the selector: {error}"
        );
    }
    assert_eq!(fixtures.requests("/bai/2.html").len(), 3);
    assert_eq!(
        fixtures.requests("/bai/1.html").len(),
        1,
        "a stored body is not read again"
    );
    assert!(text_of(dir.path(), "tin-1").await.contains("Trịnh Tường"));
    let feeds = tinbao(dir.path(), &["feeds", "--json"]).await;
    let states: serde_json::Value = serde_json::from_slice(&feeds.stdout).expect("json");
    assert_eq!(states[0]["articles_given_up"], 1, "{}", states[0]);
}

/// The queue on both databases: an edited item is read again, a read one leaves the queue, and
/// one process's claim is not another's.
#[tokio::test]
async fn the_article_queue_works_alike_on_both_databases() {
    crate::support::db::each_database(async || {
        let fixtures = FixtureServer::start().await;
        fixtures.set("/rss", Route::ok(teaser_feed(&[1, 2])));
        fixtures.set("/bai/1.html", page(article(1), "text/html"));
        fixtures.set("/bai/2.html", Route::status(503));
        let app = crate::support::TestApp::start(&config(
            &fixtures,
            &[("lc", "/rss", "full_text = true")],
        ))
        .await;
        app.poll_all().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM article_queue").await, 2);
        let other = tinbao::storage::Store::open(&app.db_url, app.dir.path())
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let long_ago = now - chrono::Duration::days(3650);
        // Digests wait for an item's first try at its article.
        assert!(
            app.store
                .stories_after(0, long_ago)
                .await
                .unwrap()
                .is_empty()
        );
        // Another process's claim hides both rows from this one until its lease ends.
        assert_eq!(other.claim_articles(now, 10).await.unwrap().len(), 2);
        assert_eq!(app.store.stories_after(0, long_ago).await.unwrap().len(), 2);
        let summary = app.refresher.fetch_full_texts().await.unwrap();
        assert_eq!((summary.read, summary.failed), (0, 0));
        app.execute("UPDATE article_queue SET due_at = 0, attempts = 0")
            .await;
        let summary = app.refresher.fetch_full_texts().await.unwrap();
        assert_eq!((summary.read, summary.failed), (1, 1), "{summary:?}");
        assert_eq!(app.feed("lc").await.articles_pending, 1);
        assert!(
            app.feed("lc")
                .await
                .article_error
                .unwrap()
                .contains("HTTP 503")
        );
        // The body is the item's content now, and its feed is due to be published again.
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM items WHERE content_html LIKE '%Trịnh Tường%'")
                .await,
            1
        );
        assert!(
            app.scalar("SELECT unpublished FROM feeds WHERE id = 'lc'")
                .await
                > 0
        );
        // The publisher edits item 1: its new teaser goes back on the queue, attempts anew.
        fixtures.set(
            "/rss",
            Route::ok(teaser_feed(&[1, 2]).replacen("Mưa lớn", "Mưa rất lớn", 1)),
        );
        app.poll_all().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM article_queue").await, 2);
        assert_eq!(
            app.scalar("SELECT MAX(attempts) FROM article_queue").await,
            1
        );
        other.close().await;
    })
    .await;
}

/// `tinbao inspect URL --full-text [SELECTOR]` shows an operator what a feed with full text on
/// would store for one page, from an empty folder.
#[tokio::test]
async fn inspect_reads_one_article_page_as_full_text_would() {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/bai/1.html", page(article(1), "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().unwrap();
    let url = fixtures.url("/bai/1.html");
    let auto = tinbao(dir.path(), &["inspect", &url, "--full-text"]).await;
    let out = stdout(&auto);
    assert_eq!(auto.status.code(), Some(0), "{out}");
    assert!(out.contains("body found by readability"), "{out}");
    assert!(
        out.contains("xã Trịnh Tường") && !out.contains("Trang chủ"),
        "{out}"
    );

    let picked = tinbao(
        dir.path(),
        &["inspect", &url, "--full-text", ".lien-quan", "--json"],
    )
    .await;
    assert_eq!(picked.status.code(), Some(0), "{}", stdout(&picked));
    let json: serde_json::Value = serde_json::from_slice(&picked.stdout).expect("json");
    assert_eq!(json["found_by"], "selector");
    assert_eq!(json["text"], "Tin khác");

    let missing = tinbao(
        dir.path(),
        &["inspect", &url, "--full-text", "div.bai-viet"],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("\"div.bai-viet\" matches nothing"));
    let broken = tinbao(dir.path(), &["inspect", &url, "--full-text", "div..x"]).await;
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("not a valid CSS selector"));
}

/// A section page without a feed (`kind = "html"`) can have full text too: its items are the
/// list's links, read for their articles.
#[tokio::test]
async fn a_section_page_source_gets_its_articles_full_text() {
    let fixtures = FixtureServer::start().await;
    let list = "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>\
                <div class=\"tin\"><a href=\"/bai/1.html\">Lũ quét ở Bát Xát</a><p>Mưa lớn.</p></div>\
                </body></html>";
    fixtures.set("/xa-hoi/", page(list, "text/html; charset=utf-8"));
    fixtures.set("/bai/1.html", page(article(1), "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().unwrap();
    let text = config(&fixtures, &[])
        + &format!(
            "[[feed]]\nid = \"lc-html\"\nurl = \"{}\"\ncategory = \"xa-hoi\"\nkind = \"html\"\n\
             html = {{ item = \"div.tin\", title = \"a\", link = \"a\", summary = \"p\" }}\nfull_text = true\n",
            fixtures.url("/xa-hoi/")
        );
    std::fs::write(dir.path().join("feeds.toml"), text).unwrap();
    let run = tinbao(dir.path(), &["run", "--once"]).await;
    let out = stdout(&run);
    assert!(
        out.contains("full text: 1 article bodies stored, 0 pages failed"),
        "{out}"
    );
    let pool = crate::support::database(dir.path()).await;
    let text: String = sqlx::query_scalar("SELECT text FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(text.contains("xã Trịnh Tường"), "{text}");
}
