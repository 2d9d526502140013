//! `tinbao run` as a child process on port 0, in a temp folder: it serves, polls, reloads its
//! config on edit (keeping the last good one when an edit is invalid), sends digests, stops
//! cleanly on SIGTERM, and loses or repeats nothing across a restart.

use crate::support::smtp::SmtpServer;
use crate::support::{FixtureServer, Route, daemon_toml as config, rss_doc};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

fn start(dir: &Path) -> Daemon {
    let log = dir.join(format!(
        "daemon-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let (child, base) = crate::support::spawn_daemon(dir, &log);
    Daemon { child, base, log }
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code (None if it did not exit within 10 s).
    fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Waits (up to 20 s) until `check` holds; the daemon works on its own clock.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test]
async fn the_daemon_reloads_its_config_sends_digests_and_stops_cleanly() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    fixtures.set("/hai.rss", Route::ok(rss_doc("Hai", "hai", 3)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot"]),
    )
    .unwrap();
    // A subscriber on the immediate schedule, old enough that the current tick is owed.
    let add = Command::new(env!("CARGO_BIN_EXE_tinbao"))
        .args([
            "subscribers",
            "add",
            "ban-doc@example.vn",
            "--topic",
            "query=Lào Cai",
            "--schedule",
            "immediate",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let pool = crate::support::database(dir.path()).await;
    crate::support::backdate_subscribers(&pool).await;

    let daemon = start(dir.path());
    let base = daemon.base.clone();
    eventually("the first feed polled and published", async || {
        get(&format!("{base}feeds/all.xml"))
            .await
            .1
            .contains("Tin mot số 4")
    })
    .await;
    let (status, health) = get(&format!("{base}healthz")).await;
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"database\":\"ok\""), "{health}");
    eventually("the digest sent", async || smtp.messages().len() == 1).await;
    let (_, metrics) = get(&format!("{base}metrics")).await;
    assert!(
        metrics.contains("tinbao_items_ingested_total{kind=\"new\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("tinbao_digests_sent_total 1"), "{metrics}");
    assert!(
        metrics.contains("tinbao_feeds{state=\"ok\"} 1"),
        "{metrics}"
    );

    // A valid edit: a new feed is polled without a restart.
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot", "hai"]),
    )
    .unwrap();
    eventually("the new feed polled", async || {
        !fixtures.requests("/hai.rss").is_empty()
    })
    .await;
    // Its items are stored (the generated texts are near-identical to the first feed's, so in the
    // merged feeds they join those stories rather than appear twice).
    eventually("its items stored", async || {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM items WHERE feed_id = 'hai'")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 3
    })
    .await;

    // An invalid edit: logged with its position, ignored; the daemon keeps serving.
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot", "hai"]).replace("[smtp]", "[smtp]\ntimeout = 5"),
    )
    .unwrap();
    eventually("the bad edit logged", async || {
        daemon
            .log()
            .contains("feeds.toml:6:1: unknown field `timeout`")
    })
    .await;
    assert_eq!(get(&format!("{base}healthz")).await.0, 200);
    assert!(
        daemon
            .log()
            .contains("still running on the last good config")
    );

    assert_eq!(daemon.terminate(), Some(0), "SIGTERM exits 0 within 10 s");

    // Start again: nothing new, nothing re-sent.
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot", "hai"]),
    )
    .unwrap();
    let again = start(dir.path());
    let base = again.base.clone();
    eventually("serving again", async || {
        get(&format!("{base}healthz")).await.0 == 200
    })
    .await;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 8, "no item lost or stored twice");
    assert_eq!(again.terminate(), Some(0));
    assert_eq!(smtp.messages().len(), 1, "no digest sent twice");
}

#[tokio::test]
async fn sigterm_during_a_poll_exits_cleanly_and_the_poll_is_redone() {
    let fixtures = FixtureServer::start().await;
    // Slower than the shutdown grace: the poll is cut short by SIGTERM.
    fixtures.set(
        "/cham.rss",
        Route {
            delay: Duration::from_secs(30),
            ..Route::ok(rss_doc("Chậm", "cham", 2))
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let text = "[database]\nurl = \"sqlite://tinbao.db\"\n[polling]\ntimeout = \"60s\"\n[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n";
    let text = format!(
        "{text}\n[[feed]]\nid = \"cham\"\nurl = \"{}\"\ncategory = \"thoi-su\"\n",
        fixtures.url("/cham.rss")
    );
    std::fs::write(dir.path().join("feeds.toml"), text).unwrap();
    let daemon = start(dir.path());
    eventually("the poll in flight", async || {
        !fixtures.requests("/cham.rss").is_empty()
    })
    .await;
    let stopped = Instant::now();
    assert_eq!(daemon.terminate(), Some(0), "exit 0 on SIGTERM mid-poll");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "within 10 s: {:?}",
        stopped.elapsed()
    );

    // Nothing was recorded for the interrupted poll, so the restart polls the feed again at once.
    fixtures.set("/cham.rss", Route::ok(rss_doc("Chậm", "cham", 2)));
    let again = start(dir.path());
    let pool = crate::support::database(dir.path()).await;
    eventually("the feed polled after the restart", async || {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM items")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 2
    })
    .await;
    assert_eq!(again.terminate(), Some(0));
}

#[tokio::test]
async fn sigterm_during_a_digest_run_sends_every_digest_exactly_once() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Một", "mot", 5)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &smtp.url(), &["mot"]),
    )
    .unwrap();
    let csv: String = (0..150)
        .map(|i| format!("doc-gia-{i}@example.vn,immediate,query=Lào Cai\n"))
        .collect();
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_tinbao"))
        .args(["subscribers", "import", "people.csv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let pool = crate::support::database(dir.path()).await;
    crate::support::backdate_subscribers(&pool).await;

    let daemon = start(dir.path());
    eventually("the digest run under way", async || {
        !smtp.messages().is_empty()
    })
    .await;
    assert_eq!(daemon.terminate(), Some(0), "exit 0 on SIGTERM mid-run");
    let after_stop = smtp.messages().len();
    assert!(
        after_stop < 150,
        "the stop left digests for the next start ({after_stop} sent)"
    );

    let again = start(dir.path());
    eventually("every digest delivered", async || {
        smtp.messages().len() >= 150
    })
    .await;
    assert_eq!(again.terminate(), Some(0));
    let ids: std::collections::BTreeSet<String> =
        smtp.messages().into_iter().map(|m| m.message_id).collect();
    eprintln!(
        "SIGTERM after {after_stop} of 150 digests; {} received in all",
        smtp.messages().len()
    );
    assert_eq!(ids.len(), 150, "every owed digest arrived");
    assert_eq!(smtp.messages().len(), 150, "a graceful stop repeats none");
}
