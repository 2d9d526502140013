//! `tinbao discover URL`, the real binary against sites served on loopback: advertised feeds,
//! an RSS index page with hundreds of links, a page that is a feed itself, a redirect loop, a
//! windows-1258 page; what it prints pastes into feeds.toml as it is.

use crate::support::{FixtureServer, Route, rss_doc, run_tinbao as tinbao};

fn html(body: impl Into<Vec<u8>>, content_type: &str) -> Route {
    Route {
        status: 200,
        body: body.into(),
        headers: vec![("content-type".into(), content_type.into())],
        ..Route::default()
    }
}

fn out(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn site(fixtures: &FixtureServer) {
    fixtures.set(
        "/",
        html(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <link rel=\"alternate\" type=\"application/rss+xml\" title=\"Thời sự\" href=\"/rss/thoi-su.rss\">\
             <link rel=\"alternate\" type=\"application/rss+xml\" href=\"/rss/da-xoa.rss\"></head>\
             <body><a href=\"/rss.html\">RSS</a><a href=\"/tin/1.html\">Tin</a></body></html>",
            "text/html; charset=utf-8",
        ),
    );
    fixtures.set(
        "/rss/thoi-su.rss",
        Route::ok(rss_doc("Báo Lào Cai - Thời sự", "ts", 3)),
    );
    // The paper's RSS page: a link per section, hundreds of them, most long gone.
    let links: String = (0..300)
        .map(|i| format!("<li><a href=\"/rss/muc-{i}.rss\">Mục {i}</a></li>"))
        .collect();
    fixtures.set(
        "/rss.html",
        html(
            format!(
                "<html><body><a href=\"/rss/kinh-te.rss\">Kinh tế</a><ul>{links}</ul></body></html>"
            ),
            "text/html",
        ),
    );
    fixtures.set(
        "/rss/kinh-te.rss",
        Route::ok(rss_doc("Báo Lào Cai - Kinh tế", "kt", 2)),
    );
}

#[tokio::test]
async fn a_sites_feeds_are_found_checked_and_printed_ready_to_paste() {
    let fixtures = FixtureServer::start().await;
    site(&fixtures);
    let dir = tempfile::tempdir().unwrap();
    let run = tinbao(dir.path(), &["discover", &fixtures.url("/")]).await;
    let text = out(&run);
    assert_eq!(run.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        stdout.contains(&format!(
            "[[feed]]\nid = \"bao-lao-cai-thoi-su\"\nurl = \"{}\"\ncategory = \"thoi-su\"",
            fixtures.url("/rss/thoi-su.rss")
        )),
        "{text}"
    );
    assert!(stdout.contains("(rss2.0, 3 items, newest"), "{text}");
    assert!(
        stdout.contains("id = \"bao-lao-cai-kinh-te\""),
        "through the RSS page: {text}"
    );
    assert!(!stdout.contains("da-xoa"), "{text}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("da-xoa.rss: HTTP 404"),
        "{text}"
    );
    // The index page's 300 links are capped: most are never requested.
    let asked = (0..300)
        .filter(|i| !fixtures.requests(&format!("/rss/muc-{i}.rss")).is_empty())
        .count();
    assert!(
        asked > 0 && asked < 100,
        "{asked} of 300 index links fetched"
    );

    // Pasted under a minimal config, it is a valid feeds.toml.
    std::fs::write(
        dir.path().join("feeds.toml"),
        format!("[database]\nurl = \"sqlite://tinbao.db\"\n{stdout}"),
    )
    .unwrap();
    let check = tinbao(dir.path(), &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}\n{stdout}", out(&check));

    let json = tinbao(dir.path(), &["discover", &fixtures.url("/"), "--json"]).await;
    let found: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let first = &found.as_array().unwrap()[0];
    assert_eq!(first["items"], 2, "{found}");
    assert_eq!(first["found"], "linked");
}

#[tokio::test]
async fn a_feed_address_a_redirect_loop_and_a_windows_1258_page() {
    let fixtures = FixtureServer::start().await;
    site(&fixtures);
    let dir = tempfile::tempdir().unwrap();
    let itself = tinbao(dir.path(), &["discover", &fixtures.url("/rss/thoi-su.rss")]).await;
    assert_eq!(itself.status.code(), Some(0), "{}", out(&itself));
    assert!(
        out(&itself).contains("the address itself"),
        "{}",
        out(&itself)
    );

    fixtures.set("/vong", Route::status(302).header("location", "/vong2"));
    fixtures.set("/vong2", Route::status(302).header("location", "/vong"));
    let looped = tinbao(dir.path(), &["discover", &fixtures.url("/vong")]).await;
    assert_eq!(looped.status.code(), Some(1));
    assert!(out(&looped).contains("redirect loop"), "{}", out(&looped));

    let page = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1258\">\
                <link rel=\"alternate\" type=\"application/rss+xml\" href=\"/rss/thoi-su.rss\"></head>\
                <body><a href=\"/\">Trang chu\u{309}</a></body></html>";
    let (bytes, _, bad) = encoding_rs::WINDOWS_1258.encode(page);
    assert!(!bad);
    fixtures.set("/cu", html(bytes.into_owned(), "text/html"));
    let legacy = tinbao(dir.path(), &["discover", &fixtures.url("/cu")]).await;
    assert_eq!(legacy.status.code(), Some(0), "{}", out(&legacy));
    assert!(
        out(&legacy).contains("id = \"bao-lao-cai-thoi-su\""),
        "{}",
        out(&legacy)
    );

    fixtures.set(
        "/trong",
        html("<html><body>Không có gì</body></html>", "text/html"),
    );
    let none = tinbao(dir.path(), &["discover", &fixtures.url("/trong")]).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(out(&none).contains("no feed found"), "{}", out(&none));
}
