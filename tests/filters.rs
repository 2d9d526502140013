//! Skip and keep rules in feeds.toml, through the real binary: a poll stores only what the rules
//! admit and counts the rest on the feed's row; `tinbao check` points at a rule that does not
//! parse.

use crate::support::{FixtureServer, Route, run_tinbao as tinbao};

fn rss(titles: &[&str]) -> String {
    let items: String = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "<item><title>{t}</title><link>https://baolaocai.vn/tin/{i}.html</link>\
                 <description>Tin trong tỉnh.</description><pubDate>Sat, 28 Nov 2026 0{i}:00:00 +0700</pubDate></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo</title>{items}</channel></rss>"
    )
}

#[tokio::test]
async fn a_poll_stores_only_what_the_rules_admit_and_counts_the_rest() {
    let fixtures = FixtureServer::start().await;
    fixtures.set(
        "/lc.rss",
        Route::ok(rss(&[
            "Lào Cai đón khách quốc tế",
            "Kết quả xổ số miền Bắc",
            "Sa Pa có băng giá",
            "Hà Nội tắc đường",
        ])),
    );
    fixtures.set(
        "/yb.rss",
        Route::ok(rss(&["Kết quả xổ số Yên Bái", "Yên Bái khởi công cao tốc"])),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[database]\nurl = \"sqlite://tinbao.db\"\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\nskip = \"xo so\"\n\
         [[feed]]\nid = \"lc\"\nurl = \"{}\"\ncategory = \"thoi-su\"\nkeep = '\"Lào Cai\" OR \"Sa Pa\"'\n\
         [[feed]]\nid = \"yb\"\nurl = \"{}\"\ncategory = \"thoi-su\"\n",
        fixtures.url("/lc.rss"),
        fixtures.url("/yb.rss")
    );
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();
    let check = tinbao(dir.path(), &["check"]).await;
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    let poll = tinbao(dir.path(), &["poll", "--once"]).await;
    let out = String::from_utf8_lossy(&poll.stdout);
    assert!(out.contains("3 new items"), "{out}");
    let pool = crate::support::database(dir.path()).await;
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM items ORDER BY title")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        titles,
        [
            "Lào Cai đón khách quốc tế",
            "Sa Pa có băng giá",
            "Yên Bái khởi công cao tốc"
        ]
    );

    let feeds = tinbao(dir.path(), &["feeds", "--json"]).await;
    let states: serde_json::Value = serde_json::from_slice(&feeds.stdout).expect("json");
    let skipped = |id: &str| {
        states
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["skipped"].clone())
    };
    assert_eq!(skipped("lc"), Some(2.into()), "{states}");
    assert_eq!(skipped("yb"), Some(1.into()), "{states}");
    let table = tinbao(dir.path(), &["feeds"]).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.lines().next().unwrap().contains("skipped"), "{table}");

    // The paper adds one story the rules admit and one they skip: the entries already read are
    // not read again, and the count still covers the whole document.
    fixtures.set(
        "/lc.rss",
        Route::ok(rss(&[
            "Lào Cai đón khách quốc tế",
            "Kết quả xổ số miền Bắc",
            "Sa Pa có băng giá",
            "Hà Nội tắc đường",
            "Lào Cai mở đường bay",
            "Giá vàng hôm nay",
        ])),
    );
    let poll = tinbao(dir.path(), &["poll", "--once", "--all"]).await;
    let out = String::from_utf8_lossy(&poll.stdout);
    assert!(out.contains(" 1 new items"), "{out}");
    let feeds = tinbao(dir.path(), &["feeds", "--json"]).await;
    let states: serde_json::Value = serde_json::from_slice(&feeds.stdout).expect("json");
    let lc = states.as_array().unwrap().iter().find(|s| s["id"] == "lc");
    assert_eq!(lc.map(|s| s["skipped"].clone()), Some(3.into()), "{states}");
}

#[test]
fn check_points_at_a_rule_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\nkeep = '\"Lào Cai'\n\n\
                [[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"thoi-su\"\nskip = \"-lũ\"\n";
    std::fs::write(dir.path().join("feeds.toml"), text).unwrap();
    let out = crate::support::tinbao_command(dir.path(), &["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feeds.toml:4:8: keep rule"), "{err}");
    assert!(err.contains("feeds.toml:10:8: skip rule"), "{err}");
}
