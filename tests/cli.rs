//! The real `tinbao` binary: `check`, `poll --once`, `feeds --json`, `inspect --json`.

use crate::support::{FixtureServer, Route, feeds_toml, rss_doc};
use std::path::Path;
use std::process::Output;

fn tinbao(dir: &Path, args: &[&str]) -> Output {
    crate::support::tinbao_command(dir, args)
        .output()
        .expect("run tinbao")
}

/// Asserts the command succeeded, showing its stderr if not.
fn assert_ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_lists_every_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[polling]\ninterval = \"soon\"\n\n[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\n[[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"kinh-te\"\n";
    std::fs::write(dir.path().join("feeds.toml"), text).unwrap();
    let out = tinbao(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feeds.toml:2:12: invalid duration"), "{err}");
    assert!(
        err.contains("feeds.toml:11:12: feed \"a\" names category \"kinh-te\""),
        "{err}"
    );
}

#[test]
fn the_shipped_feeds_toml_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tinbao(root, &["check", "--config", "feeds.toml"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("ok ("));
}

#[tokio::test]
async fn poll_once_prints_a_summary_and_feeds_shows_state() {
    let server = FixtureServer::start().await;
    server.set("/a.rss", Route::ok(rss_doc("A", "a", 3)));
    server.set("/down.rss", Route::status(503).header("retry-after", "120"));
    let dir = tempfile::tempdir().unwrap();
    let config = feeds_toml(
        &[
            ("a", server.url("/a.rss")),
            ("down", server.url("/down.rss")),
        ],
        "",
    );
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();
    let path = dir.path().to_path_buf();

    let out = tokio::task::spawn_blocking(move || tinbao(&path, &["poll", "--once"]))
        .await
        .unwrap();
    assert_ok(&out);
    let line = stdout(&out);
    assert!(
        line.starts_with("polled 2 feeds: 0 not modified, 1 failed, 3 new items, 0 updated"),
        "{line}"
    );

    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || tinbao(&path, &["feeds", "--json"]))
        .await
        .unwrap();
    let states: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let down = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "down")
        .unwrap();
    assert_eq!(down["last_status"], 503);
    assert_eq!(down["error_count"], 1);
    let a = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "a")
        .unwrap();
    assert_eq!(a["item_count"], 3);

    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || tinbao(&path, &["feeds"]))
        .await
        .unwrap();
    let table = stdout(&out);
    assert!(
        table.contains("down") && table.contains("HTTP 503"),
        "{table}"
    );
}

#[tokio::test]
async fn inspect_prints_the_documented_json_without_writing() {
    let server = FixtureServer::start().await;
    server.set("/i.rss", Route::ok(rss_doc("Báo Lào Cai", "i", 2)));
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/i.rss");
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || tinbao(&path, &["inspect", &url, "--json"]))
        .await
        .unwrap();
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["feed"]["title"], "Báo Lào Cai");
    assert_eq!(v["feed"]["format"], "rss2.0");
    let item = &v["items"][0];
    assert_eq!(item["id"], "i-0");
    assert_eq!(item["url"], "https://baolaocai.vn/i/0.html");
    for key in [
        "title",
        "summary",
        "published",
        "updated",
        "authors",
        "categories",
    ] {
        assert!(item.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "inspect wrote nothing"
    );
}

#[test]
fn the_demo_runs_offline_publishes_and_writes_the_subscribers_digest() {
    let dir = tempfile::tempdir().unwrap();
    let first = tinbao(dir.path(), &["demo", "--dir", "d", "--once"]);
    assert_ok(&first);
    let text = stdout(&first);
    assert!(
        text.contains("polled 6 feeds: 0 not modified, 0 failed, 56 new items"),
        "{text}"
    );
    assert!(
        text.contains("1 digests built") && text.contains("; 1 sent"),
        "{text}"
    );
    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("d/outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1, "one .eml for the demo subscriber");
    assert!(dir.path().join("d/public/feeds/all.xml").exists());
    let again = stdout(&tinbao(dir.path(), &["demo", "--dir", "d", "--once"]));
    assert!(
        again.contains(", 0 new items"),
        "nothing stored twice: {again}"
    );
    assert!(
        again.contains("0 digests built") && again.contains("; 0 sent"),
        "nothing sent twice: {again}"
    );
}

#[test]
fn subscribers_are_added_listed_imported_and_removed_with_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[province]]\nslug = \"lao-cai\"\nname = \"Lào Cai\"\n\
                  [[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n";
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();
    let run = |args: &[&str]| tinbao(dir.path(), args);

    let added = run(&[
        "subscribers",
        "add",
        "Ban.Doc@Example.VN",
        "--topic",
        "category=thoi-su province=lao-cai query=\"Lào Cai\" lũ",
        "--schedule",
        "daily",
    ]);
    assert_ok(&added);
    let again = run(&[
        "subscribers",
        "add",
        "ban.doc@example.vn",
        "--topic",
        "query=lũ",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already subscribed"));
    for (args, reason) in [
        (
            vec![
                "subscribers",
                "add",
                "not-an-address",
                "--topic",
                "query=lũ",
            ],
            "not an email address",
        ),
        (
            vec![
                "subscribers",
                "add",
                "x@example.vn",
                "--topic",
                "category=the-thao",
            ],
            "unknown category",
        ),
        (
            vec![
                "subscribers",
                "add",
                "x@example.vn",
                "--topic",
                "query=\"Lào Cai",
            ],
            "unbalanced quote",
        ),
        (
            vec![
                "subscribers",
                "add",
                "x@example.vn",
                "--topic",
                "query=lũ",
                "--schedule",
                "hourly",
            ],
            "unknown schedule",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(reason),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let csv = "email,schedule,topic\nmot@example.vn,weekly,\"query=\"\"Lào Cai\"\" lũ\",category=thoi-su\nhai@example.vn,immediate,province=lao-cai\nba@example.vn,daily,category=nope\n";
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let imported = run(&["subscribers", "import", "people.csv"]);
    assert_eq!(imported.status.code(), Some(1), "one line was refused");
    assert!(
        stdout(&imported).contains("imported 2 subscribers, refused 1"),
        "{}",
        stdout(&imported)
    );
    assert!(
        String::from_utf8_lossy(&imported.stderr).contains("people.csv:4: topic"),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let list: serde_json::Value =
        serde_json::from_slice(&run(&["subscribers", "list", "--json"]).stdout).unwrap();
    let people = list.as_array().unwrap();
    assert_eq!(people.len(), 3);
    assert_eq!(people[0]["email"], "ban.doc@example.vn");
    assert_eq!(people[1]["topics"][0], "query=\"Lào Cai\" lũ");
    assert_eq!(people[1]["schedule"], "weekly");

    assert_eq!(
        run(&["subscribers", "remove", "hai@example.vn"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["subscribers", "remove", "hai@example.vn"])
            .status
            .code(),
        Some(1)
    );
    let dry = run(&["digest", "--now", "--dry-run", "out"]);
    assert_ok(&dry);
    assert!(stdout(&dry).contains("nothing recorded as sent"));
}
