//! `tinbao run --once`, the real binary as cron runs it: one pass polls, clusters, publishes the
//! merged feeds and sends the due digests; a pass killed (SIGKILL, by PID) in any stage is
//! completed by the next pass, which loses nothing and repeats nothing.

use crate::support::smtp::SmtpServer;
use crate::support::{
    FixtureServer, Route, daemon_toml, rss_doc, run_tinbao as tinbao, tinbao_command as command,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SUBSCRIBER: &str = "ban-doc@example.vn";
/// The stored items without a story: none waiting, none missing from the story index.
const UNCLUSTERED: &str = "SELECT COUNT(*) FROM items \
    WHERE id IN (SELECT item_id FROM pending_stories) \
       OR id NOT IN (SELECT item_id FROM story_index)";

/// The daemon tests' config, with a poll timeout longer than the slow fixture's delay.
fn config(fixtures: &FixtureServer, smtp: &str, feeds: &[&str]) -> String {
    daemon_toml(fixtures, smtp, feeds) + "\n[polling]\ntimeout = \"60s\"\n"
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A folder with feeds.toml and one subscriber on the immediate schedule, old enough that the
/// current tick is owed.
async fn setup(config_text: &str, subscribers: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feeds.toml"), config_text).unwrap();
    let csv: String = (0..subscribers)
        .map(|i| match i {
            0 => format!("{SUBSCRIBER},immediate,query=Lào Cai\n"),
            i => format!("doc-gia-{i}@example.vn,immediate,query=Lào Cai\n"),
        })
        .collect();
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let import = tinbao(dir.path(), &["subscribers", "import", "people.csv"]).await;
    assert_eq!(import.status.code(), Some(0), "{}", text(&import));
    let pool = crate::support::database(dir.path()).await;
    crate::support::backdate_subscribers(&pool).await;
    pool.close().await;
    dir
}

/// `run --once` started in the background, its stderr in a file.
struct Pass {
    child: Child,
    log: PathBuf,
}

impl Pass {
    fn start(dir: &Path, args: &[&str], hold_before: Option<&str>) -> Pass {
        let log = dir.join(format!("pass-{}.log", std::process::id()));
        let mut command = command(dir, args);
        if let Some(stage) = hold_before {
            // Clustering in batches of 3, so a test's few items make several.
            command
                .env("TINBAO_TEST_HOLD_BEFORE", stage)
                .env("TINBAO_TEST_CLUSTER_BATCH", "3");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tinbao run --once");
        Pass { child, log }
    }

    /// Waits (up to 20 s) until `check` holds while the pass still runs.
    async fn until(&mut self, what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check().await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the pass exited ({status}) before {what}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    async fn until_held(&mut self, stage: &str) {
        let log = self.log.clone();
        let line = format!("holding before {stage}");
        self.until(&line.clone(), async || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&line))
        })
        .await;
    }

    /// SIGKILL by PID, as a timeout or a power cut would stop it.
    fn kill(mut self) {
        let killed = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let status = self.child.wait().expect("reap the pass");
        assert_eq!(status.code(), None, "killed by a signal, not exited");
    }
}

async fn scalar(dir: &Path, sql: &str) -> i64 {
    let pool = crate::support::database(dir).await;
    let n = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn merged(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("public/feeds").join(name)).ok()
}

/// After a pass completed what an interrupted one left: every item stored once and in a
/// story, every item in the merged feed, and the subscriber's one digest.
async fn assert_complete(dir: &Path, smtp: &SmtpServer, feeds: &[(&str, usize)]) {
    let total: usize = feeds.iter().map(|(_, n)| n).sum();
    assert_eq!(
        scalar(dir, "SELECT COUNT(*) FROM items").await,
        total as i64,
        "every item stored once"
    );
    assert_eq!(
        scalar(dir, UNCLUSTERED).await,
        0,
        "every item has its story"
    );
    assert_eq!(
        scalar(dir, "SELECT COUNT(*) FROM feeds WHERE unpublished > 0").await,
        0,
        "no source left unpublished"
    );
    let rss = merged(dir, "thoi-su.xml").expect("the category's merged RSS feed");
    let atom = merged(dir, "all.atom").expect("the merged Atom feed of everything");
    for (feed, n) in feeds {
        for i in 0..*n {
            let link = format!("https://baolaocai.vn/{feed}/{i}.html");
            assert!(rss.contains(&link), "{link} in thoi-su.xml");
            assert!(atom.contains(&link), "{link} in all.atom");
        }
    }
    assert_eq!(
        scalar(
            dir,
            "SELECT COUNT(*) FROM story_index s JOIN items i ON i.id = s.item_id
             WHERE s.feed_id = i.feed_id AND s.published_at = i.published_at
               AND s.cluster_id IN (SELECT item_id FROM story_index)"
        )
        .await,
        total as i64,
        "each item in the story index once, with its story, named by a clustered item"
    );
    let mails = smtp.messages_to(SUBSCRIBER);
    assert_eq!(mails.len(), 1, "one digest, sent once");
}

#[tokio::test]
async fn run_once_polls_clusters_publishes_and_sends_in_one_pass() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    fixtures.set("/hai.rss", Route::ok(rss_doc("Hai", "hai", 3)));
    let dir = setup(&config(&fixtures, &smtp.url(), &["mot", "hai"]), 1).await;

    let first = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "one line per stage: {out}");
    assert!(
        lines[0].starts_with("poll: polled 2 feeds") && lines[0].contains("8 new items"),
        "{out}"
    );
    assert_eq!(lines[1], "full text: skipped (no feed has full_text on)");
    assert!(lines[2].starts_with("cluster: 8 new items"), "{out}");
    assert!(lines[3].starts_with("publish: "), "{out}");
    assert!(
        lines[4].starts_with("digests: 1 subscribers due: 1 digests built")
            && lines[4].contains("; 1 sent"),
        "{out}"
    );
    assert_complete(dir.path(), &smtp, &[("mot", 5), ("hai", 3)]).await;
    let rss = merged(dir.path(), "thoi-su.xml").unwrap();

    // Nothing new: nothing rewritten, nobody owed anything.
    let again = tinbao(dir.path(), &["run", "--once", "--all"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(out.contains("0 new items"), "{out}");
    assert!(out.contains("cluster: 0 new items"), "{out}");
    assert!(
        out.contains("0 digests built") && out.contains("; 0 sent"),
        "{out}"
    );
    assert_eq!(merged(dir.path(), "thoi-su.xml").unwrap(), rss);
    assert_eq!(smtp.messages().len(), 1, "no digest sent twice");
}

#[tokio::test]
async fn run_once_exits_1_naming_the_failed_stage_and_still_publishes() {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 2)));
    // Nothing listens there: every send fails to connect.
    let dead_smtp = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("smtp://{}", listener.local_addr().unwrap())
    };
    let dir = setup(&config(&fixtures, &dead_smtp, &["mot"]), 1).await;
    let pass = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(pass.status.code(), Some(1), "{}", text(&pass));
    let err = String::from_utf8_lossy(&pass.stderr);
    assert!(err.contains("failed: digests:"), "{}", text(&pass));
    assert!(
        merged(dir.path(), "thoi-su.xml")
            .is_some_and(|t| t.contains("https://baolaocai.vn/mot/1.html")),
        "merged feeds written although the SMTP server is down"
    );
    assert_eq!(
        scalar(
            dir.path(),
            "SELECT COUNT(*) FROM digests WHERE state = 'pending'"
        )
        .await,
        1,
        "the digest waits for the next pass"
    );
}

#[tokio::test]
async fn a_pass_killed_during_the_poll_is_completed_by_the_next() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    // Slow enough that the pass is still polling it when killed.
    fixtures.set(
        "/cham.rss",
        Route {
            delay: Duration::from_secs(30),
            ..Route::ok(rss_doc("Chậm", "cham", 3))
        },
    );
    let dir = setup(&config(&fixtures, &smtp.url(), &["mot", "cham"]), 1).await;
    let mut pass = Pass::start(dir.path(), &["run", "--once"], None);
    let path = dir.path().to_path_buf();
    pass.until("mot stored while cham is in flight", async || {
        !fixtures.requests("/cham.rss").is_empty()
            && scalar(&path, "SELECT COUNT(*) FROM items").await == 5
    })
    .await;
    pass.kill();
    assert!(merged(dir.path(), "thoi-su.xml").is_none());

    // mot is not due any more; its items are unclustered and unpublished in the database.
    fixtures.set("/cham.rss", Route::ok(rss_doc("Chậm", "cham", 3)));
    let next = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let out = String::from_utf8_lossy(&next.stdout);
    assert!(out.contains("polled 1 feeds"), "only cham was due: {out}");
    assert_complete(dir.path(), &smtp, &[("mot", 5), ("cham", 3)]).await;
}

/// Kills a pass held before `stage`, checks what it left with `left`, then runs the next pass
/// and checks it completed everything.
async fn killed_before(stage: &str, left: impl AsyncFn(&Path)) {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    fixtures.set("/hai.rss", Route::ok(rss_doc("Hai", "hai", 3)));
    let dir = setup(&config(&fixtures, &smtp.url(), &["mot", "hai"]), 1).await;
    let mut pass = Pass::start(dir.path(), &["run", "--once"], Some(stage));
    pass.until_held(stage).await;
    pass.kill();
    left(dir.path()).await;
    assert!(smtp.messages().is_empty());

    let next = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let out = String::from_utf8_lossy(&next.stdout);
    assert!(
        out.contains("polled 0 feeds"),
        "nothing due any more: {out}"
    );
    assert_complete(dir.path(), &smtp, &[("mot", 5), ("hai", 3)]).await;
}

#[tokio::test]
async fn a_pass_killed_before_clustering_is_completed_by_the_next() {
    killed_before("cluster", async |dir: &Path| {
        assert_eq!(scalar(dir, "SELECT COUNT(*) FROM items").await, 8);
        assert_eq!(scalar(dir, UNCLUSTERED).await, 8);
        assert!(merged(dir, "thoi-su.xml").is_none());
    })
    .await;
}

#[tokio::test]
async fn a_pass_killed_between_cluster_batches_is_completed_by_the_next() {
    killed_before("the next cluster batch", async |dir: &Path| {
        assert_eq!(scalar(dir, UNCLUSTERED).await, 5, "one batch of 3 stored");
        assert_eq!(scalar(dir, "SELECT COUNT(*) FROM story_index").await, 3);
        assert_eq!(
            scalar(
                dir,
                "SELECT COUNT(*) FROM cluster_lease WHERE lease_owner IS NOT NULL"
            )
            .await,
            1,
            "the killed pass held the clustering lease"
        );
        assert!(merged(dir, "thoi-su.xml").is_none());
    })
    .await;
}

#[tokio::test]
async fn a_pass_killed_before_publishing_is_completed_by_the_next() {
    killed_before("publish", async |dir: &Path| {
        assert_eq!(scalar(dir, UNCLUSTERED).await, 0);
        assert_eq!(
            scalar(dir, "SELECT COUNT(*) FROM feeds WHERE unpublished > 0").await,
            2
        );
        assert!(merged(dir, "thoi-su.xml").is_none());
    })
    .await;
}

#[tokio::test]
async fn a_pass_killed_during_its_sends_is_completed_by_the_next_within_the_resend_bound() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    // A slow relay: the kill lands with most digests still to send.
    smtp.set_delay(0.05);
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    let dir = setup(&config(&fixtures, &smtp.url(), &["mot"]), 150).await;
    let mut pass = Pass::start(dir.path(), &["run", "--once"], None);
    pass.until("the sends under way", async || smtp.messages().len() >= 10)
        .await;
    pass.kill();
    let before = smtp.messages().len();
    assert!(before < 150, "killed part-way ({before} of 150 sent)");

    smtp.set_delay(0.0);
    let next = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let mails = smtp.messages();
    let ids: std::collections::BTreeSet<String> =
        mails.iter().map(|m| m.message_id.clone()).collect();
    eprintln!(
        "SIGKILL after {before} of 150 digests; {} received in all",
        mails.len()
    );
    assert_eq!(ids.len(), 150, "every owed digest arrived");
    assert!(
        mails.len() <= 150 + 8,
        "at most the 8 in flight sent again ({} received)",
        mails.len()
    );
    assert_eq!(
        scalar(
            dir.path(),
            "SELECT COUNT(*) FROM digests WHERE state <> 'sent'"
        )
        .await,
        0
    );

    // And the pass after that sends nothing.
    let quiet = tinbao(dir.path(), &["run", "--once"]).await;
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert_eq!(smtp.messages().len(), mails.len());
}

#[tokio::test]
async fn digest_now_sends_each_subscriber_what_matched_since_their_last_digest() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 4)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot"]),
    )
    .unwrap();
    for (email, query) in [
        (SUBSCRIBER, "query=Lào Cai"),
        ("khac@example.vn", "query=Hà Giang"),
    ] {
        let add = tinbao(
            dir.path(),
            &[
                "subscribers",
                "add",
                email,
                "--topic",
                query,
                "--schedule",
                "daily",
            ],
        )
        .await;
        assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    }
    let poll = tinbao(dir.path(), &["poll", "--once"]).await;
    assert_eq!(poll.status.code(), Some(0), "{}", text(&poll));

    // By schedule, nobody added a moment ago is owed a daily digest yet.
    let scheduled = tinbao(dir.path(), &["digest"]).await;
    assert_eq!(scheduled.status.code(), Some(0), "{}", text(&scheduled));
    assert!(
        text(&scheduled).contains("0 subscribers due"),
        "{}",
        text(&scheduled)
    );

    let unknown = tinbao(dir.path(), &["digest", "--now", "--to", "ai-do@example.vn"]).await;
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(text(&unknown).contains("no subscriber ai-do@example.vn"));

    let preview = dir.path().join("preview");
    let dry = tinbao(
        dir.path(),
        &["digest", "--now", "--dry-run", preview.to_str().unwrap()],
    )
    .await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert_eq!(
        std::fs::read_dir(&preview).unwrap().count(),
        1,
        "{}",
        text(&dry)
    );
    assert!(smtp.messages().is_empty(), "a dry run sends nothing");

    let now = tinbao(dir.path(), &["digest", "--now"]).await;
    assert_eq!(now.status.code(), Some(0), "{}", text(&now));
    assert!(
        text(&now).contains("2 subscribers due: 1 digests built, 1 owed nothing; 1 sent"),
        "{}",
        text(&now)
    );
    let mails = smtp.messages_to(SUBSCRIBER);
    assert_eq!(mails.len(), 1);
    assert!(
        smtp.messages_to("khac@example.vn").is_empty(),
        "nothing matched: no email"
    );

    // Nothing new since: nothing to send, again.
    let again = tinbao(dir.path(), &["digest", "--now", "--to", SUBSCRIBER]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("0 digests built"), "{}", text(&again));

    // A new item reaches only the subscriber it matches, once.
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 6)));
    tinbao(dir.path(), &["poll", "--once", "--all"]).await;
    let more = tinbao(dir.path(), &["digest", "--now", "--to", SUBSCRIBER]).await;
    assert!(text(&more).contains("1 sent"), "{}", text(&more));
    let mails = smtp.messages_to(SUBSCRIBER);
    assert_eq!(mails.len(), 2);
    let texts: Vec<String> = mails
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    let with = |link: &str| texts.iter().filter(|t| t.contains(link)).count();
    assert_eq!(
        (with("mot/0.html"), with("mot/5.html")),
        (1, 1),
        "{texts:?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("mot/0.html") && t.contains("mot/5.html")),
        "the second digest holds only what is new: {texts:?}"
    );
}
