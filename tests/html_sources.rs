//! Section pages without a feed as sources (`kind = "html"`), through the real binary against
//! pages served on loopback in the shapes provincial papers' list pages have.

use crate::support::{FixtureServer, Route, run_tinbao as tinbao};

fn story(n: u32, title: &str, when: &str) -> String {
    format!(
        "<article class=\"story\"><h3 class=\"story__title\"><a href=\"/tin/{n}.html\">{title}</a></h3>\
         <div class=\"story__time\">{when}</div><p class=\"story__summary\">Tóm tắt bài {n}.</p></article>"
    )
}

fn page(stories: &[String]) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Thời sự - Báo Lào Cai</title></head>\
         <body><nav><a href=\"/\">Trang chủ</a></nav><div class=\"list\">{}</div></body></html>",
        stories.concat()
    )
}

const SELECTORS: &str = "{ item = \"article.story\", title = \".story__title\", link = \".story__title a\", date = \".story__time\", summary = \".story__summary\" }";

fn config(url: &str, html: &str) -> String {
    format!(
        "[database]\nurl = \"sqlite://tinbao.db\"\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\
         [[feed]]\nid = \"lc-html\"\nurl = \"{url}\"\ncategory = \"thoi-su\"\nkind = \"html\"\nhtml = {html}\n"
    )
}

async fn titles(dir: &std::path::Path) -> Vec<String> {
    let pool = crate::support::database(dir).await;
    sqlx::query_scalar("SELECT title FROM items ORDER BY published_at")
        .fetch_all(&pool)
        .await
        .unwrap()
}

async fn feed_state(dir: &std::path::Path) -> serde_json::Value {
    let feeds = tinbao(dir, &["feeds", "--json"]).await;
    let states: serde_json::Value = serde_json::from_slice(&feeds.stdout).expect("json");
    states[0].clone()
}

#[tokio::test]
async fn a_section_page_is_polled_like_a_feed_and_a_layout_change_is_flagged() {
    let fixtures = FixtureServer::start().await;
    fixtures.set(
        "/thoi-su/",
        Route::ok(page(&[
            story(2, "Bát Xát khắc phục hậu quả mưa lũ", "05/12/2026 - 07:30"),
            story(1, "Sa Pa đón khách quốc tế", "04/12/2026 18:05"),
        ]))
        .header("content-type", "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures.url("/thoi-su/"), SELECTORS),
    )
    .unwrap();
    let check = tinbao(dir.path(), &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    let poll = tinbao(dir.path(), &["poll", "--once"]).await;
    let out = String::from_utf8_lossy(&poll.stdout);
    assert!(out.contains("2 new items"), "{out}");
    assert_eq!(
        titles(dir.path()).await,
        [
            "Sa Pa đón khách quốc tế",
            "Bát Xát khắc phục hậu quả mưa lũ"
        ]
    );
    let pool = crate::support::database(dir.path()).await;
    let (url, published): (String, i64) =
        sqlx::query_as("SELECT url, published_at FROM items WHERE title LIKE 'Bát Xát%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(url, fixtures.url("/tin/2.html"));
    // 05/12/2026 07:30 in Asia/Ho_Chi_Minh.
    assert_eq!(published, 1_796_430_600);

    // A new story on top: one new item, the others known by their links.
    fixtures.set(
        "/thoi-su/",
        Route::ok(page(&[
            story(3, "Lào Cai mở đường bay", "05/12/2026 09:00"),
            story(2, "Bát Xát khắc phục hậu quả mưa lũ", "05/12/2026 - 07:30"),
            story(1, "Sa Pa đón khách quốc tế", "04/12/2026 18:05"),
        ])),
    );
    let poll = tinbao(dir.path(), &["poll", "--once", "--all"]).await;
    let out = String::from_utf8_lossy(&poll.stdout);
    assert!(out.contains(" 1 new items"), "{out}");

    // The paper changes its layout: the feed is flagged with the selector, nothing is lost.
    fixtures.set(
        "/thoi-su/",
        Route::ok("<html><body><ul class=\"news\"><li><a href=\"/tin/4.html\">Tin</a></li></ul></body></html>"),
    );
    let poll = tinbao(dir.path(), &["poll", "--once", "--all"]).await;
    let out = String::from_utf8_lossy(&poll.stdout);
    assert!(out.contains("1 failed"), "{out}");
    let state = feed_state(dir.path()).await;
    let error = state["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("item selector \"article.story\" matches nothing"),
        "{state}"
    );
    assert_eq!(titles(dir.path()).await.len(), 3, "nothing stored is lost");
}

#[tokio::test]
async fn check_and_inspect_speak_of_the_selectors() {
    let fixtures = FixtureServer::start().await;
    fixtures.set(
        "/p",
        Route::ok(page(&[story(1, "Sa Pa có băng giá", "05/12/2026 07:30")])),
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = SELECTORS.replace("article.story", "article[");
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures.url("/p"), &bad),
    )
    .unwrap();
    let check = tinbao(dir.path(), &["check"]).await;
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("feeds.toml:11:") && err.contains("html.item selector \"article[\""),
        "{err}"
    );
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures.url("/p"), "").replace("html = \n", ""),
    )
    .unwrap();
    let check = tinbao(dir.path(), &["check"]).await;
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("kind = \"html\" but no html"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let url = fixtures.url("/p");
    let args = [
        "inspect",
        url.as_str(),
        "--html",
        "item=article.story",
        "--html",
        "title=h3",
        "--html",
        "link=h3 a",
        "--html",
        "date=.story__time",
    ];
    let inspect = tinbao(empty.path(), &args).await;
    let out = String::from_utf8_lossy(&inspect.stdout);
    assert_eq!(inspect.status.code(), Some(0), "{inspect:?}");
    assert!(out.contains("(html, 1 items)"), "{out}");
    assert!(
        out.contains("[05/12/2026 07:30] Sa Pa có băng giá"),
        "{out}"
    );
    let inspect = tinbao(
        empty.path(),
        &["inspect", url.as_str(), "--html", "item=li"],
    )
    .await;
    assert_eq!(inspect.status.code(), Some(2));
    let err = String::from_utf8_lossy(&inspect.stderr);
    assert!(err.contains("--html needs title=SELECTOR"), "{err}");
}
