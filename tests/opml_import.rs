//! `tinbao import opml FILE`, the real binary: another reader's subscriptions added to
//! feeds.toml with its comments kept, refusals that change nothing, and a round trip through
//! the server's own `/opml` export.

use crate::support::{TestApp, run_tinbao as tinbao, spawn_http};
use std::path::Path;

const LIST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>Xuất từ trình đọc cũ</title></head><body>
  <outline text="Thời sự" title="Thời sự">
    <outline type="rss" text="Báo Lào Cai" xmlUrl="https://baolaocai.vn/rss/thoi-su.rss"/>
    <outline type="rss" text="Báo Yên Bái" xmlUrl="https://baoyenbai.com.vn/rss/thoi-su.rss"/>
  </outline>
  <outline text="Đời sống">
    <outline type="rss" text="Báo Hà Giang" xmlUrl="https://baohagiang.vn/rss/doi-song.rss"/>
  </outline>
</body></opml>"#;

const FEEDS_TOML: &str = "# Cấu hình của tỉnh: chú thích này phải còn.\n\
[database]\nurl = \"sqlite://tinbao.db\"\n\n\
[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\n\
[[feed]]\nid = \"lao-cai\"  # giữ nguyên\nurl = \"https://baolaocai.vn/rss/thoi-su.rss\"\ncategory = \"thoi-su\"\n";

fn out(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn feeds_of(path: &Path) -> Vec<(String, String, Option<String>)> {
    let config = tinbao::config::Config::load(path).expect("valid feeds.toml");
    let mut feeds: Vec<_> = config
        .feeds
        .iter()
        .map(|f| (f.url.to_string(), f.category.clone(), f.title.clone()))
        .collect();
    feeds.sort();
    feeds
}

#[tokio::test]
async fn an_opml_list_is_added_keeping_the_file_and_a_second_import_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feeds.toml"), FEEDS_TOML).unwrap();
    std::fs::write(dir.path().join("cu.opml"), LIST).unwrap();

    let dry = tinbao(dir.path(), &["import", "opml", "cu.opml", "--dry-run"]).await;
    assert_eq!(dry.status.code(), Some(0), "{}", out(&dry));
    assert!(
        out(&dry).contains("would add 2 feeds and 1 categories; 1 skipped"),
        "{}",
        out(&dry)
    );
    assert!(
        out(&dry).contains("+ [[feed]]\n+ id = \"bao-yen-bai\"\n"),
        "{}",
        out(&dry)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("feeds.toml")).unwrap(),
        FEEDS_TOML
    );

    let run = tinbao(dir.path(), &["import", "opml", "cu.opml"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", out(&run));
    let text = std::fs::read_to_string(dir.path().join("feeds.toml")).unwrap();
    let mut lines = text.lines();
    assert!(
        FEEDS_TOML.lines().all(|line| lines.any(|l| l == line)),
        "the operator's lines are kept, in order:\n{text}"
    );
    assert!(
        text.contains("[[category]]\nslug = \"doi-song\"\ntitle = \"Đời sống\""),
        "{text}"
    );
    let check = tinbao(dir.path(), &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", out(&check));
    assert_eq!(feeds_of(&dir.path().join("feeds.toml")).len(), 3);

    let again = tinbao(dir.path(), &["import", "opml", "cu.opml"]).await;
    assert!(
        out(&again).contains("added 0 feeds and 0 categories; 3 skipped"),
        "{}",
        out(&again)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("feeds.toml")).unwrap(),
        text
    );
}

#[tokio::test]
async fn any_refusal_names_the_outline_and_leaves_the_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feeds.toml"), FEEDS_TOML).unwrap();
    for (name, list, expect) in [
        (
            "hong.opml",
            "<opml version=\"2.0\"><body><outline text=\"A\" xmlUrl=\"https://a.vn/rss\"></body></opml>",
            "not well-formed OPML",
        ),
        (
            "thieu.opml",
            "<opml version=\"2.0\"><body><outline text=\"Tốt\" xmlUrl=\"https://a.vn/rss\"/><outline text=\"Không địa chỉ\" type=\"rss\"/></body></opml>",
            "outline 2 (“Không địa chỉ”): no xmlUrl",
        ),
        (
            "ftp.opml",
            "<opml version=\"2.0\"><body><outline text=\"Máy chủ cũ\" xmlUrl=\"ftp://baocu.vn/rss\"/></body></opml>",
            "outline 1 (“Máy chủ cũ”): xmlUrl \"ftp://baocu.vn/rss\" is not an http(s) address",
        ),
        (
            "rss.opml",
            "<rss version=\"2.0\"><channel><title>x</title></channel></rss>",
            "not an OPML document",
        ),
    ] {
        std::fs::write(dir.path().join(name), list).unwrap();
        let run = tinbao(dir.path(), &["import", "opml", name]).await;
        assert_eq!(run.status.code(), Some(1), "{name}: {}", out(&run));
        assert!(out(&run).contains(expect), "{name}: {}", out(&run));
        assert!(
            out(&run).contains("nothing imported"),
            "{name}: {}",
            out(&run)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("feeds.toml")).unwrap(),
            FEEDS_TOML
        );
    }
    // A feeds.toml that is already broken is refused with its own problem, not made worse.
    let broken = format!("{FEEDS_TOML}[polling]\ninterval = \"soon\"\n");
    std::fs::write(dir.path().join("feeds.toml"), &broken).unwrap();
    std::fs::write(dir.path().join("cu.opml"), LIST).unwrap();
    let run = tinbao(dir.path(), &["import", "opml", "cu.opml"]).await;
    assert_eq!(run.status.code(), Some(1), "{}", out(&run));
    assert!(
        out(&run).contains("invalid duration \"soon\""),
        "{}",
        out(&run)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("feeds.toml")).unwrap(),
        broken
    );
}

/// What the server exports at /opml, imported into an empty folder, is the same sources.
#[tokio::test]
async fn the_servers_opml_export_imports_as_the_same_feeds() {
    let config = "[database]\nurl = \"sqlite://tinbao.db\"\n\
        [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\
        [[category]]\nslug = \"doi-song\"\ntitle = \"Đời sống\"\n\
        [[feed]]\nid = \"lc\"\nurl = \"https://baolaocai.vn/rss/thoi-su.rss\"\ncategory = \"thoi-su\"\ntitle = \"Báo Lào Cai\"\n\
        [[feed]]\nid = \"yb\"\nurl = \"https://baoyenbai.com.vn/rss/doi-song.rss\"\ncategory = \"doi-song\"\ntitle = \"Báo Yên Bái – Đời sống\"\n";
    let app = TestApp::start(config).await;
    let links = tinbao::digest::links::Links::new(
        app.store.link_secret().await.unwrap(),
        app.config.server.base_url.clone(),
    );
    let base = spawn_http(tinbao::http::AppState::fixed(
        app.config.clone(),
        Default::default(),
        app.store.clone(),
        links,
    ))
    .await;
    let exported = reqwest::get(format!("{base}opml"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("xuat.opml"), exported).unwrap();
    let run = tinbao(dir.path(), &["import", "opml", "xuat.opml"]).await;
    assert_eq!(run.status.code(), Some(0), "{}", out(&run));
    assert_eq!(
        feeds_of(&dir.path().join("feeds.toml")),
        feeds_of(&app.dir.path().join("feeds.toml"))
    );
}
