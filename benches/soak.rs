//! Soak benchmark: what a round costs when the store already holds a long history and the feeds
//! keep publishing. In one run:
//!
//!  1. setup: 1,000 feeds serve their whole history once (500 items each, eight hours apart, so
//!     500,000 items over 166 days of the 180-day retention); `tinbao run --once --all` stores,
//!     clusters and publishes them (measured, as the cold pass over a long history). Then 1,000
//!     subscribers on `immediate`, each following a category, with smtp-sink as their server.
//!  2. `ROUNDS` rounds of cron: before each, every feed gains 1-3 items (a feed lists its newest
//!     50, as papers do); then one `tinbao run --once --all` process, measured from outside
//!     (wall, CPU, its peak RSS). The fixture's clock moves `ROUND_HOURS` (3) per round and
//!     reaches now at the daemon's last round, so the items of a round are dated that many hours
//!     after the last round's: the last days' window (what clustering keeps) fills and then
//!     slides, as in a real week, instead of growing for ever.
//!  3. the daemon `tinbao run`, polling every few seconds, for as many rounds: each round the
//!     feeds gain items, and the round ends when the daemon has fetched every feed since, given
//!     every new item its story and sent every digest it owes. Wall, CPU (from /proc) and peak RSS
//!     (VmHWM, reset each round) of the daemon process per round.
//!
//! Prints rounds 1, 10, 25 and the last of both, and the CPU per new item.
//!
//! Digests: `immediate` ticks every five minutes of the real clock, so only the rounds that
//! start a new tick send them, each covering the rounds since the last.
//!
//! Run: `cargo bench --bench soak` (FEEDS=1000 HISTORY=500 ROUNDS=50 SUBSCRIBERS=1000
//! ROUND_SECS=5 ROUND_HOURS=3). Needs Postfix's smtp-sink for the digests (bench/run installs it); without it
//! the rounds run with no [smtp] and say so.

mod common;

use common::measure;
use common::sink::{Sink, find_tool};
use common::{FeedSet, env_or, now_hour, serve_feed_set};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinbao::config::Config;
use tinbao::storage::Store;

const HOSTS: usize = 20;
const CATEGORIES: usize = 34;
/// What a feed lists after the setup: its newest items.
const LISTED: usize = 50;
/// Hours between two history items of one feed.
const SPACING_H: i64 = 8;
/// Rounds whose figures are printed (and the last).
const SHOWN: [usize; 3] = [1, 10, 25];

/// Feed `feed`'s document listing items `numbers` (newest first), item `i` dated `date(i)`.
fn doc(feed: usize, numbers: impl Iterator<Item = usize>, date: impl Fn(usize) -> i64) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo số {feed}</title><link>https://bao{feed}.vn/</link>"
    );
    for i in numbers {
        let (title, body) = common::text::item(feed, i);
        let pub_date = chrono::DateTime::from_timestamp(date(i), 0)
            .unwrap_or_default()
            .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("offset"))
            .to_rfc2822();
        out.push_str(&format!(
            "<item><title>{title}</title><link>https://bao{feed}.vn/tin/{i}.html</link><guid>bao{feed}-{i}</guid>\
             <description><![CDATA[<p>{body}</p>]]></description><pubDate>{pub_date}</pubDate></item>"
        ));
    }
    out.push_str("</channel></rss>");
    out
}

/// The fixture: each feed's items so far, and when each new one was published.
struct Fixture {
    set: Arc<FeedSet>,
    history: usize,
    base: i64,
    /// Per feed: the publication time of each item after the history.
    added: Vec<Vec<i64>>,
}

impl Fixture {
    fn date(&self, feed: usize, i: usize) -> i64 {
        match i.checked_sub(self.history) {
            Some(n) => self.added[feed][n],
            None => {
                self.base - (self.history - i) as i64 * SPACING_H * 3600 - (feed % 97) as i64 * 37
            }
        }
    }

    /// Every feed gains 1-3 items dated `now`; returns how many in all.
    fn advance(&mut self, round: usize, now: i64) -> usize {
        let mut total = 0;
        for feed in 0..self.added.len() {
            let gain = 1 + (feed + round) % 3;
            total += gain;
            for k in 0..gain {
                self.added[feed].push(now - k as i64);
            }
            let last = self.history + self.added[feed].len();
            let listed = (last.saturating_sub(LISTED)..last).rev();
            self.set
                .replace(feed, doc(feed, listed, |i| self.date(feed, i)));
        }
        total
    }
}

fn config(urls: &[String], smtp: Option<&str>, round_secs: u64) -> String {
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://tinbao.example.vn/\"\n\n\
         [database]\nurl = \"sqlite://soak.db\"\n\n\
         [polling]\nconcurrency = 64\nper_host = 4\ninterval = \"{round_secs}s\"\n\
         min_interval = \"{round_secs}s\"\nmax_interval = \"{round_secs}s\"\n\n\
         [publish]\nmax_items = 100\n"
    );
    if let Some(url) = smtp {
        config.push_str(&format!(
            "\n[smtp]\nurl = \"{url}\"\nfrom = \"Tin tỉnh <ban-tin@tinbao.example.vn>\"\n"
        ));
    }
    for c in 0..CATEGORIES {
        config.push_str(&format!(
            "\n[[category]]\nslug = \"muc-{c}\"\ntitle = \"Chuyên mục {c}\"\n"
        ));
    }
    for (f, url) in urls.iter().enumerate() {
        config.push_str(&format!(
            "\n[[feed]]\nid = \"feed-{f}\"\nurl = \"{url}\"\ncategory = \"muc-{}\"\n",
            f % CATEGORIES
        ));
    }
    config
}

fn main() {
    tinbao::allocator::configure();
    let feeds: usize = env_or("FEEDS", 1000);
    let history: usize = env_or("HISTORY", 500);
    let rounds: usize = env_or("ROUNDS", 50);
    let subscribers: usize = env_or("SUBSCRIBERS", 1000);
    let round_secs: u64 = env_or("ROUND_SECS", 5);
    let round_hours: i64 = env_or("ROUND_HOURS", 3);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("bench folder");
    // The fixture's clock: round k (cron 1..=rounds, then the daemon's) is dated `clock(k)`,
    // the last one now; the history ends an hour before the first.
    let last = 2 * rounds as i64;
    let now = now_hour();
    let clock = move |k: usize| now - (last - k as i64) * round_hours * 3600;
    let base = clock(0) - 3600;
    let docs: Vec<String> = (0..feeds)
        .map(|f| {
            doc(f, (0..history).rev(), |i| {
                base - (history - i) as i64 * SPACING_H * 3600 - (f % 97) as i64 * 37
            })
        })
        .collect();
    let set = Arc::new(FeedSet::new(docs));
    let ips: Vec<String> = (0..HOSTS).map(|h| format!("127.0.0.{}", 11 + h)).collect();
    let ports = runtime.block_on(serve_feed_set(&ips, set.clone()));
    let urls: Vec<String> = (0..feeds)
        .map(|f| {
            let (ip, port) = &ports[f % ports.len()];
            format!("http://{ip}:{port}/feed/{f}")
        })
        .collect();
    let sink = find_tool("smtp-sink").map(|bin| Sink::start(&bin, dir.path()));
    let smtp = sink
        .as_ref()
        .map(|s| format!("smtp://127.0.0.1:{}", s.port));
    if sink.is_none() {
        println!("(smtp-sink not installed: the rounds run without [smtp], so no digests)");
    }
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&urls, smtp.as_deref(), round_secs),
    )
    .expect("write config");
    let tinbao = env!("CARGO_BIN_EXE_tinbao").to_string();
    let once = || {
        let argv = [
            tinbao.clone(),
            "run".into(),
            "--once".into(),
            "--all".into(),
        ];
        let m = measure::run(&argv, dir.path(), &[("RUST_LOG", "error".into())]);
        assert_eq!(m.status, 0, "tinbao run --once failed: {}", m.stdout);
        m
    };

    println!(
        "soak benchmark: {feeds} feeds, {} stored items over {} days, {subscribers} subscribers on immediate, {rounds} rounds",
        feeds * history,
        history as i64 * SPACING_H / 24
    );
    let setup = once();
    println!(
        "setup: run --once --all over the history: {:.1} s wall, {:.1} s CPU, {:.0} MB peak RSS",
        setup.wall,
        setup.cpu,
        setup.rss_mb()
    );
    add_subscribers(&runtime, dir.path(), subscribers);

    let mut fixture = Fixture {
        set,
        history,
        base,
        added: vec![Vec::new(); feeds],
    };
    let mut cron = Vec::new();
    for round in 1..=rounds {
        let new = fixture.advance(round, clock(round));
        let m = once();
        let stored = m
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("poll: "))
            .and_then(|l| l.split(" failed, ").nth(1))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok());
        assert_eq!(stored, Some(new), "round {round}: {}", m.stdout);
        if SHOWN.contains(&round) || round == rounds {
            println!("round {round}: {}", m.stdout.trim().replace('\n', " | "));
        }
        cron.push((new, m.wall, m.cpu, m.rss_kb));
    }
    print_rounds("cron: tinbao run --once --all per round", &cron);

    let daemon = daemon_rounds(&runtime, dir.path(), &tinbao, &mut fixture, rounds, |r| {
        clock(rounds + r)
    });
    print_rounds("daemon: tinbao run, per round", &daemon);
    if let Some(sink) = &sink {
        println!("smtp-sink received {} messages in all", sink.received());
    }
}

fn add_subscribers(runtime: &tokio::runtime::Runtime, dir: &Path, n: usize) {
    let config = Arc::new(Config::load(&dir.join("feeds.toml")).expect("config"));
    runtime.block_on(async {
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("store");
        for s in 0..n {
            let topic = format!("category=muc-{}", s % CATEGORIES);
            let new = tinbao::cli::validate_subscriber(
                &config,
                &format!("ban-doc-{s:05}@vnpt.vn"),
                &[topic],
                "immediate",
                None,
            )
            .unwrap_or_else(|e| panic!("subscriber {s}: {e}"));
            store
                .add_subscriber(&new, chrono::Utc::now())
                .await
                .expect("add subscriber");
        }
        // Subscribed a quarter of an hour ago: the current `immediate` tick (every five minutes)
        // is owed to them from the first round on.
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("soak.db").display()))
                .await
                .expect("open the database");
        sqlx::query("UPDATE subscribers SET created_at = created_at - 900")
            .execute(&pool)
            .await
            .expect("backdate subscribers");
        store.close().await;
    });
}

/// The daemon for `rounds` rounds; per round (new items, wall, CPU, peak RSS in KiB).
fn daemon_rounds(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    tinbao: &str,
    fixture: &mut Fixture,
    rounds: usize,
    clock: impl Fn(usize) -> i64,
) -> Vec<(usize, f64, f64, i64)> {
    let mut child = std::process::Command::new(tinbao)
        .arg("run")
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let pid = child.id().to_string();
    let pool = runtime.block_on(async {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("soak.db").display()))
            .await
            .expect("open the database")
    });
    let count = |pool: &sqlx::SqlitePool| {
        runtime.block_on(async {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items")
                .fetch_one(pool)
                .await
                .expect("count items");
            n as usize
        })
    };
    let mut stored = count(&pool);
    let mut out = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        // Fetched after the change: in a later second than the one it was made in.
        let since = chrono::Utc::now().timestamp() + 1;
        let cpu = proc_cpu(&pid);
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let new = fixture.advance(rounds + round, clock(round));
        stored += new;
        // Done: every new item stored and given its story, every feed fetched since, no digest
        // left to send.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let done: bool = runtime.block_on(async {
                let (waiting,): (i64,) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM feeds WHERE active = 1 \
                         AND (last_fetch_at IS NULL OR last_fetch_at < ?)) \
                     + (SELECT COUNT(*) FROM pending_stories) \
                     + (SELECT COUNT(*) FROM digests WHERE state = 'pending')",
                )
                .bind(since)
                .fetch_one(&pool)
                .await
                .expect("daemon progress");
                waiting == 0
            }) && count(&pool) == stored;
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "daemon round {round} did not finish"
            );
            assert!(
                child.try_wait().ok().flatten().is_none(),
                "the daemon exited"
            );
        }
        out.push((
            new,
            started.elapsed().as_secs_f64(),
            proc_cpu(&pid) - cpu,
            measure::vm_hwm_kb(&pid).unwrap_or(0),
        ));
    }
    let _ = child.kill();
    let _ = child.wait();
    out
}

/// A process's CPU seconds so far (user + system, from /proc/PID/stat).
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

fn print_rounds(title: &str, rounds: &[(usize, f64, f64, i64)]) {
    println!("\n{title}");
    println!("round  new items   wall (s)   CPU (s)   CPU/new item (ms)   peak RSS (MB)");
    let last = rounds.len();
    for (i, (new, wall, cpu, rss)) in rounds.iter().enumerate() {
        let n = i + 1;
        if SHOWN.contains(&n) || n == last {
            println!(
                "{n:>5} {new:>10} {wall:>10.2} {cpu:>9.2} {:>19.3} {:>15.1}",
                cpu * 1000.0 / (*new).max(1) as f64,
                *rss as f64 / 1024.0
            );
            common::result(
                &format!("soak_{}_round_{n}", title.split(':').next().unwrap_or("?")),
                &[
                    ("new", new.to_string()),
                    ("wall_s", format!("{wall:.3}")),
                    ("cpu_s", format!("{cpu:.3}")),
                    ("rss_mb", format!("{:.1}", *rss as f64 / 1024.0)),
                ],
            );
        }
    }
    let mut cpus: Vec<f64> = rounds.iter().map(|r| r.2).collect();
    cpus.sort_by(f64::total_cmp);
    if let Some(median) = cpus.get(cpus.len() / 2) {
        println!("median CPU per round: {median:.2} s");
    }
}
