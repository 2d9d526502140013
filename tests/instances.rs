//! Three `tinbao run` processes on one PostgreSQL database: 500 fixture feeds and 1,000
//! subscribers. Each feed is fetched once per due period (counted at the fixture server) and
//! each digest delivered once (counted at the SMTP server), also when one process is killed with
//! SIGKILL in the middle of sending: its leased digests go to the others once the lease expires,
//! and only the digests it had in flight at the kill can arrive twice (same Message-ID). Killed
//! in the middle of polling instead, its feeds are polled by the others once its lease expires.

use crate::support::db::PgDatabase;
use crate::support::smtp::SmtpServer;
use crate::support::{FixtureServer, Route, rss_doc};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const FEEDS: usize = 500;
const SUBSCRIBERS: usize = 1_000;

struct Instance {
    child: Child,
    log: std::path::PathBuf,
    /// Its HTTP server, "http://127.0.0.1:PORT/".
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, n: usize) -> Instance {
    let log = dir.join(format!("instance-{n}.log"));
    let (child, base) = crate::support::spawn_daemon(dir, &log);
    Instance { child, log, base }
}

/// Messages in the SMTP server's Maildir, counted without parsing them.
fn delivered(smtp: &SmtpServer) -> usize {
    ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(smtp.maildir().join(d)).ok())
        .map(|entries| entries.count())
        .sum()
}

/// Waits until `check` holds; on a timeout, fails showing the instances' logs.
async fn wait_for(
    what: &str,
    limit: Duration,
    instances: &[Option<Instance>],
    mut check: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}\n{}", logs(instances));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn logs(instances: &[Option<Instance>]) -> String {
    instances
        .iter()
        .flatten()
        .map(|i| {
            let text = std::fs::read_to_string(&i.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            format!(
                "== {}\n{}",
                i.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The two scenarios take turns: six daemons at once on two cores would only measure the
/// machine's contention.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn three_instances(kill_one: bool) {
    if !SmtpServer::available() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(pg) = PgDatabase::create().await else {
        eprintln!("SKIPPED: three instances need PostgreSQL (TINBAO_TEST_PG)");
        return;
    };
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"{}\"\nlease = \"15s\"\n\
         [smtp]\nurl = \"{}\"\nfrom = \"Tin tỉnh <ban-tin@example.vn>\"\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n",
        pg.url,
        smtp.url()
    );
    for i in 0..FEEDS {
        let path = format!("/f{i}.rss");
        fixtures.set(
            &path,
            Route::ok(rss_doc(&format!("Báo {i}"), &format!("f{i}"), 2)),
        );
        config.push_str(&format!(
            "\n[[feed]]\nid = \"f{i}\"\nurl = \"{}\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n",
            fixtures.url(&path)
        ));
    }
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();
    // The schema, then 1,000 subscribers dated back so the current immediate tick is owed, each
    // following one source's items (its guid prefix, e.g. `f17`, is a syllable of their titles).
    let store = tinbao::storage::Store::open(&pg.url, dir.path())
        .await
        .unwrap();
    store.close().await;
    crate::support::db::execute(
        &pg.url,
        &format!(
            "INSERT INTO subscribers (email, status, schedule, timezone, created_at, cursor_item_id)
             SELECT 'ban-doc-' || g || '@example.vn', 'active', 'immediate', 'Asia/Ho_Chi_Minh',
                    EXTRACT(EPOCH FROM now())::bigint - 900, 0
             FROM generate_series(1, {SUBSCRIBERS}) g"
        ),
    )
    .await;
    crate::support::db::execute(
        &pg.url,
        &format!(
            "INSERT INTO topics (subscriber_id, position, spec)
             SELECT id, 0, 'category=thoi-su query=f' || (id % {FEEDS}) FROM subscribers"
        ),
    )
    .await;

    let started = Instant::now();
    let mut instances: Vec<Option<Instance>> = (0..3).map(|n| Some(start(dir.path(), n))).collect();
    if kill_one {
        wait_for(
            "a third of the digests",
            Duration::from_secs(40),
            &instances,
            || delivered(&smtp) >= SUBSCRIBERS / 3,
        )
        .await;
        let mut victim = instances[1].take().unwrap();
        victim.child.kill().expect("SIGKILL");
        let _ = victim.child.wait();
        eprintln!(
            "instance 1 killed after {:?} with {} digests delivered",
            started.elapsed(),
            delivered(&smtp)
        );
    }
    let total = || {
        smtp.messages()
            .into_iter()
            .map(|m| m.message_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    wait_for(
        "every digest delivered",
        Duration::from_secs(150),
        &instances,
        || delivered(&smtp) >= SUBSCRIBERS && total() >= SUBSCRIBERS,
    )
    .await;
    // Let a repeat, if any were coming, arrive before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let elapsed = started.elapsed();
    let mut fetches: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..FEEDS {
        *fetches
            .entry(fixtures.requests(&format!("/f{i}.rss")).len())
            .or_default() += 1;
    }
    let received = delivered(&smtp);
    let distinct = total();
    eprintln!(
        "3 instances{}: {FEEDS} feeds fetched {fetches:?} (times: feeds), {received} messages, \
         {distinct} distinct digests, in {elapsed:?}",
        if kill_one { ", one SIGKILLed" } else { "" }
    );
    assert_eq!(
        fetches,
        BTreeMap::from([(1, FEEDS)]),
        "each feed fetched once\n{}",
        logs(&instances)
    );
    assert_eq!(distinct, SUBSCRIBERS, "every owed digest arrived");
    let sent =
        crate::support::db::scalar(&pg.url, "SELECT COUNT(*) FROM digests WHERE state = 'sent'")
            .await;
    assert_eq!(
        sent, SUBSCRIBERS as i64,
        "one digest per subscriber, all sent"
    );
    if kill_one {
        // Only what the killed process had handed to SMTP but not yet recorded can repeat.
        assert!(
            received <= SUBSCRIBERS + 8,
            "{received} messages for {SUBSCRIBERS} digests"
        );
    } else {
        assert_eq!(received, SUBSCRIBERS, "no digest delivered twice");
    }
    // A source gains an item: whichever process polls it, every process serves it (the others
    // learn of it through the database), within a few ticks.
    fixtures.set("/f0.rss", Route::ok(rss_doc("Báo 0", "f0", 3)));
    crate::support::db::execute(&pg.url, "UPDATE feeds SET next_poll_at = 0 WHERE id = 'f0'").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut serving = 0;
        for instance in instances.iter().flatten() {
            let body = reqwest::get(format!("{}feeds/all.json", instance.base))
                .await
                .expect("GET all.json")
                .text()
                .await
                .expect("body");
            serving += usize::from(body.contains("Tin f0 số 2"));
        }
        let running = instances.iter().flatten().count();
        if serving == running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{serving} of {running} processes serve the new item\n{}",
            logs(&instances)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(instances);
}

#[tokio::test]
async fn three_instances_fetch_each_feed_once_and_deliver_each_digest_once() {
    three_instances(false).await;
}

#[tokio::test]
async fn a_sigkilled_instances_digests_are_delivered_by_the_others_once() {
    three_instances(true).await;
}

#[tokio::test]
async fn a_sigkilled_instances_feeds_are_polled_by_the_others_after_its_lease() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(pg) = PgDatabase::create().await else {
        eprintln!("SKIPPED: three instances need PostgreSQL (TINBAO_TEST_PG)");
        return;
    };
    let fixtures = FixtureServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[database]\nurl = \"{}\"\nlease = \"5s\"\n[polling]\nconcurrency = 16\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n",
        pg.url
    );
    for i in 0..FEEDS {
        let path = format!("/f{i}.rss");
        // Slow enough that a poll round is still under way when the process dies.
        let route = Route {
            delay: Duration::from_millis(250),
            ..Route::ok(rss_doc(&format!("Báo {i}"), &format!("f{i}"), 2))
        };
        fixtures.set(&path, route);
        config.push_str(&format!(
            "\n[[feed]]\nid = \"f{i}\"\nurl = \"{}\"\ncategory = \"thoi-su\"\n",
            fixtures.url(&path)
        ));
    }
    std::fs::write(dir.path().join("feeds.toml"), config).unwrap();
    let store = tinbao::storage::Store::open(&pg.url, dir.path())
        .await
        .unwrap();
    store.close().await;
    let fetched = || {
        (0..FEEDS)
            .filter(|i| !fixtures.requests(&format!("/f{i}.rss")).is_empty())
            .count()
    };
    let started = Instant::now();
    let mut instances: Vec<Option<Instance>> = (0..3).map(|n| Some(start(dir.path(), n))).collect();
    wait_for(
        "the first feeds fetched",
        Duration::from_secs(30),
        &instances,
        || fetched() >= 60,
    )
    .await;
    let mut victim = instances[1].take().unwrap();
    victim.child.kill().expect("SIGKILL");
    let _ = victim.child.wait();
    eprintln!(
        "instance 1 killed after {:?} with {} feeds fetched",
        started.elapsed(),
        fetched()
    );
    let mut stored = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored < FEEDS as i64 {
        assert!(
            Instant::now() < deadline,
            "feeds left unpolled\n{}",
            logs(&instances)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        stored = crate::support::db::scalar(
            &pg.url,
            "SELECT COUNT(*) FROM feeds WHERE last_success_at IS NOT NULL",
        )
        .await;
    }
    let mut fetches: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..FEEDS {
        *fetches
            .entry(fixtures.requests(&format!("/f{i}.rss")).len())
            .or_default() += 1;
    }
    eprintln!(
        "every feed stored after {:?}; fetched {fetches:?} (times: feeds)",
        started.elapsed()
    );
    // A feed fetched twice was in the dead process's hands (in flight, or claimed for its next
    // fetches): at most two claim batches of its concurrency.
    let twice = fetches.get(&2).copied().unwrap_or(0);
    assert_eq!(
        fetches.get(&1).copied().unwrap_or(0) + twice,
        FEEDS,
        "{fetches:?}"
    );
    assert!(twice <= 32, "{twice} feeds fetched twice");
    drop(instances);
}
