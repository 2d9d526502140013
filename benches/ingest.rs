//! Ingest benchmark: 1,000 feeds x 50 Vietnamese items served over loopback from
//! 20 addresses (127.0.0.11-30, so per-host limits apply as with real newspapers). In one run:
//!
//!  1. `tinbao poll --once --all` (release binary, a child process): cold, every item new;
//!  2. clustering the new items into stories (`Refresher::cluster_new_items`, the daemon's stage
//!     after a poll round), in a child (this bench re-executed as a worker);
//!  3. `tinbao poll --once --all` again with every feed unchanged (all 304);
//!  4. with `COMPARE_PY` set (a Python with `reader` and `rss2email`, see `bench/run`), the same
//!     feeds from the same server through the Python `reader` library into its SQLite file (cold,
//!     then unchanged), and through `rss2email` (one email per item) into Postfix's smtp-sink,
//!     on the first `R2E_FEEDS` feeds (100) because it polls one feed after another;
//!  5. `tinbao run --once --all` (the pass cron runs: poll, cluster, publish) from an empty
//!     database of its own on the same feeds, beside reader's cold round of step 4;
//!  6. one feed gains one item, then in one worker process, as the daemon does: regenerate every
//!     merged feed, poll all feeds (999 unchanged, one with one new item), cluster the new item,
//!     regenerate the merged feeds that item touches. Run with ITEMS=500 (10x the stored items,
//!     as a ten times longer history) to see which of these costs grow with what is stored.
//!
//! Items are dated two hours apart per feed, newest now, so more items per feed mean a longer
//! history, not a busier day. Text is `TEXT=varied` by default (see `common::text`); `TEXT=phrases`
//! uses the 36 phrases, where every item resembles every other (clustering's worst case).
//!
//! Every child's wall time, CPU time and own peak RSS are measured (`common::measure`). Prints a
//! table and one `RESULT` line per measurement for `bench/run`.
//!
//! Run: `cargo bench --bench ingest` (options: FEEDS=1000 ITEMS=50 TEXT=varied|phrases
//! PARAGRAPHS=1 (10: article-length items, each body paragraph repeated)
//! COMPARE_PY=path/to/python R2E_FEEDS=100 READER_WORKERS=16 READER_FEEDS=1000
//! STAGES=cold,cluster,unchanged,compare,once,incremental;
//! `WRAP="perf record -g -o /tmp/perf.data"` runs the tinbao polls under a profiler; `KEEP=1`
//! keeps the bench folder and its databases for a look afterwards).

mod common;

use common::measure::{self, Measured};
use common::sink::{Sink, find_tool};
use common::{FeedSet, Style, Text, env_or, feed_doc_with, serve_feed_set};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tinbao::config::Config;
use tinbao::publish::site::Site;
use tinbao::reader::refresh::Refresher;
use tinbao::storage::Store;
use tinbao::worker::publisher::Publisher;

const HOSTS: usize = 20;
const CATEGORIES: usize = 34;
const PROVINCES: usize = 10;
/// Set (to the stage's name) when this binary runs as a worker in the bench folder.
const WORKER_ENV: &str = "TINBAO_INGEST_BENCH_WORKER";

fn main() {
    tinbao::allocator::configure();
    if let Ok(stage) = std::env::var(WORKER_ENV) {
        worker(&stage);
        return;
    }
    let feeds: usize = env_or("FEEDS", 1000);
    let items: usize = env_or("ITEMS", 50);
    let stages: String = env_or(
        "STAGES",
        "cold,cluster,unchanged,compare,once,incremental".into(),
    );
    let stage = |name: &str| stages.split(',').any(|s| s == name);
    let style = Style {
        text: Text::from_env(Text::Varied),
        paragraphs: env_or("PARAGRAPHS", 1),
        ..Style::default()
    };
    let started = Instant::now();
    let set = Arc::new(FeedSet::new(
        (0..feeds)
            .map(|f| feed_doc_with(f, items, 0, &style))
            .collect(),
    ));
    let generated = started.elapsed().as_secs_f64();
    let stored = feeds * items;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ips: Vec<String> = (0..HOSTS).map(|h| format!("127.0.0.{}", 11 + h)).collect();
    let ports = runtime.block_on(serve_feed_set(&ips, set.clone()));
    let urls: Vec<String> = (0..feeds)
        .map(|f| {
            let (ip, port) = &ports[f % HOSTS];
            format!("http://{ip}:{port}/feed/{f}")
        })
        .collect();

    let dir = tempfile::tempdir().expect("temp dir");
    write_config(dir.path(), &urls);

    println!(
        "ingest benchmark: {feeds} feeds x {items} items ({:.1} MB of feeds, {} text, generated in {generated:.1} s), \
         {HOSTS} loopback hosts, per_host = 4",
        set.bytes() as f64 / 1e6,
        style.text.name()
    );
    println!(
        "{:<44} {:>9} {:>8} {:>12} {:>14}  summary",
        "round", "wall (s)", "CPU (s)", "throughput", "peak RSS (MB)"
    );
    let tag = [
        ("stored", stored.to_string()),
        ("text", style.text.name().to_string()),
    ];
    let wrap: Vec<String> = std::env::var("WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();

    if stage("cold") {
        let m = poll_once(dir.path(), &wrap);
        let new = summary_count(&m.stdout, " new items");
        report("ingest_cold", "tinbao poll, cold", &m, new, "items/s", &tag);
    }
    if stage("cluster") {
        let m = run_worker(dir.path(), "cluster");
        let n = field(&m.stdout, "clustered").unwrap_or(0.0);
        report(
            "cluster_cold",
            "tinbao cluster new items",
            &m,
            n,
            "items/s",
            &tag,
        );
    }
    if stage("unchanged") {
        let m = poll_once(dir.path(), &wrap);
        let polled = summary_count(&m.stdout, " not modified");
        report(
            "ingest_unchanged",
            "tinbao poll, unchanged",
            &m,
            polled,
            "feeds/s",
            &tag,
        );
    }
    if stage("compare") {
        match std::env::var("COMPARE_PY") {
            Ok(py) => compare(&py, dir.path(), &urls, items, &tag),
            Err(_) => {
                println!("(COMPARE_PY unset: reader and rss2email not run; bench/run sets it)")
            }
        }
    }
    if stage("once") {
        // The whole pass cron runs, from an empty database of its own: poll, cluster, publish.
        let once = dir.path().join("once");
        std::fs::create_dir_all(&once).expect("once folder");
        write_config(&once, &urls);
        let mut argv: Vec<String> = wrap.clone();
        argv.extend([env!("CARGO_BIN_EXE_tinbao"), "run", "--once", "--all"].map(String::from));
        let m = measure::run(&argv, &once, &[("RUST_LOG", "error".into())]);
        assert_eq!(m.status, 0, "tinbao run --once failed: {}", m.stdout);
        let new = m
            .stdout
            .lines()
            .find(|l| l.starts_with("poll: "))
            .map_or(0.0, |l| summary_count(l, " new items"));
        report(
            "once_cold",
            "tinbao run --once --all, cold",
            &m,
            new,
            "items/s",
            &tag,
        );
        // Its stage lines, which time each stage from inside.
        for line in m.stdout.lines().filter(|l| !l.starts_with("RESULT")) {
            println!("    {line}");
        }
    }
    if stage("incremental") {
        // Feed 0 publishes one new item; the server now sends its second version.
        set.replace(0, feed_doc_with(0, items, 1, &style));
        let m = run_worker(dir.path(), "incremental");
        assert_eq!(m.status, 0, "incremental worker failed");
        for line in m.stdout.lines().filter(|l| l.starts_with("step ")) {
            let name = line.split_whitespace().nth(1).unwrap_or("?");
            let get = |k: &str| field(line, k).unwrap_or(0.0);
            let step = Measured {
                wall: get("wall_s"),
                cpu: get("cpu_s"),
                rss_kb: get("rss_kb") as i64,
                rss_own: true,
                ..Measured::default()
            };
            let (label, unit) = match name {
                "regen_all" => ("regenerate all merged feeds", "docs/s"),
                "poll_one_new" => ("poll all, one feed with 1 new item", "feeds/s"),
                "cluster_one_new" => ("cluster the 1 new item", "items/s"),
                _ => ("regenerate the merged feeds it touches", "docs/s"),
            };
            report(
                &format!("inc_{name}"),
                label,
                &step,
                get("count"),
                unit,
                &tag,
            );
        }
    }
    drop(runtime);
    if std::env::var_os("KEEP").is_some() {
        println!("kept the bench folder: {}", dir.keep().display());
    }
}

/// feeds.toml for the bench folder: 34 categories, 10 provinces, the feeds spread over them.
fn write_config(dir: &Path, urls: &[String]) {
    let mut config = String::from(
        "[database]\nurl = \"sqlite://bench.db\"\n\n[polling]\nconcurrency = 64\nper_host = 4\n\n\
         [publish]\nmax_items = 100\n",
    );
    for c in 0..CATEGORIES {
        config.push_str(&format!(
            "\n[[category]]\nslug = \"muc-{c}\"\ntitle = \"Chuyên mục {c}\"\n"
        ));
    }
    for (f, url) in urls.iter().enumerate() {
        config.push_str(&format!(
            "\n[[feed]]\nid = \"feed-{f}\"\nurl = \"{url}\"\ncategory = \"muc-{}\"\nprovince = \"tinh-{}\"\n",
            f % CATEGORIES,
            f % PROVINCES
        ));
    }
    std::fs::write(dir.join("feeds.toml"), config).expect("write config");
}

/// Prints a table row and the `RESULT` line of one measurement of `count` things.
fn report(name: &str, label: &str, m: &Measured, count: f64, unit: &str, tag: &[(&str, String)]) {
    let rate = if count > 0.0 && m.wall > 0.0 {
        count / m.wall
    } else {
        0.0
    };
    let summary = m.stdout.lines().last().unwrap_or("").trim();
    println!(
        "{label:<44} {:>9.3} {:>8.2} {:>12} {:>14.1}  {}",
        m.wall,
        m.cpu,
        format!("{rate:.0} {unit}"),
        m.rss_mb(),
        if summary.starts_with("step ") {
            ""
        } else {
            summary
        }
    );
    let mut fields = vec![
        ("wall_s", format!("{:.4}", m.wall)),
        ("cpu_s", format!("{:.2}", m.cpu)),
        ("throughput", format!("{rate:.0}")),
        ("unit", unit.to_string()),
        ("rss_mb", format!("{:.1}", m.rss_mb())),
        ("rss_own", m.rss_own.to_string()),
        ("count", format!("{count:.0}")),
    ];
    fields.extend(tag.iter().cloned());
    common::result(name, &fields);
}

/// `key=value` in a line of words, as a number.
fn field(text: &str, key: &str) -> Option<f64> {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// The number before `suffix` in a poll summary ("…, 50000 new items, …").
fn summary_count(summary: &str, suffix: &str) -> f64 {
    summary
        .lines()
        .last()
        .unwrap_or("")
        .split([',', ':'])
        .find_map(|p| p.trim().strip_suffix(suffix.trim()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Runs `tinbao poll --once --all` in the bench folder.
fn poll_once(dir: &Path, wrap: &[String]) -> Measured {
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend([env!("CARGO_BIN_EXE_tinbao"), "poll", "--once", "--all"].map(String::from));
    let m = measure::run(&argv, dir, &[("RUST_LOG", "error".into())]);
    assert_eq!(m.status, 0, "tinbao poll failed: {}", m.stdout);
    m
}

/// Re-executes this bench as the worker for `stage`, in the bench folder.
fn run_worker(dir: &Path, stage: &str) -> Measured {
    let exe = std::env::current_exe().expect("own path");
    let argv = vec![exe.to_string_lossy().into_owned()];
    let m = measure::run(
        &argv,
        dir,
        &[
            (WORKER_ENV, stage.to_string()),
            ("RUST_LOG", "error".into()),
        ],
    );
    assert_eq!(m.status, 0, "worker {stage} failed: {}", m.stdout);
    m
}

/// The tools people use today, on the same feeds from the same server.
fn compare(py: &str, dir: &Path, urls: &[String], items: usize, tag: &[(&str, String)]) {
    let script = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench/compare")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let workers: usize = env_or("READER_WORKERS", 16);
    let reader_feeds: usize = env_or("READER_FEEDS", urls.len()).min(urls.len());
    let list = dir.join("reader-urls.txt");
    std::fs::write(&list, urls[..reader_feeds].join("\n")).expect("url list");
    let mut reader_tag = tag.to_vec();
    reader_tag.push(("feeds", reader_feeds.to_string()));
    for (round, name, label) in [
        ("cold", "reader_cold", "reader update_feeds, cold"),
        (
            "again",
            "reader_unchanged",
            "reader update_feeds, unchanged",
        ),
    ] {
        let argv = [
            py.to_string(),
            script("reader_ingest.py"),
            round.into(),
            "reader.sqlite".into(),
            list.to_string_lossy().into_owned(),
            workers.to_string(),
        ];
        let m = measure::run(&argv, dir, &[]);
        if m.status != 0 {
            println!("reader {round} failed (exit {}): {}", m.status, m.stdout);
            continue;
        }
        let (count, unit) = if round == "cold" {
            (field(&m.stdout, "entries").unwrap_or(0.0), "items/s")
        } else {
            (reader_feeds as f64, "feeds/s")
        };
        report(name, label, &m, count, unit, &reader_tag);
    }

    let Some(sink_bin) = find_tool("smtp-sink") else {
        println!("rss2email not run: Postfix's smtp-sink is not installed");
        return;
    };
    let sink = Sink::start(&sink_bin, dir);
    let r2e_feeds: usize = env_or("R2E_FEEDS", 100).min(urls.len());
    let mut config = format!(
        "[DEFAULT]\nfrom = ban-tin@tinbao.example.vn\nto = ban-doc@example.vn\n\
         email-protocol = smtp\nsmtp-server = 127.0.0.1\nsmtp-port = {}\nsmtp-ssl = False\n\
         same-server-fetch-interval = 0\nverbose = error\n",
        sink.port
    );
    for (f, url) in urls[..r2e_feeds].iter().enumerate() {
        config.push_str(&format!("\n[feed.f{f}]\nurl = {url}\n"));
    }
    std::fs::write(dir.join("r2e.cfg"), config).expect("rss2email config");
    let r2e = Path::new(py)
        .parent()
        .expect("venv bin")
        .join("r2e")
        .to_string_lossy()
        .into_owned();
    let mut r2e_tag = tag.to_vec();
    r2e_tag.push(("feeds", r2e_feeds.to_string()));
    for (name, label) in [
        ("r2e_cold", "rss2email run (1 mail/item), cold"),
        ("r2e_unchanged", "rss2email run, unchanged"),
    ] {
        let before = sink.received();
        let argv = [
            r2e.clone(),
            "-c".into(),
            "r2e.cfg".into(),
            "-d".into(),
            "r2e.json".into(),
            "run".into(),
        ];
        let m = measure::run(&argv, dir, &[]);
        let mails = sink.received() - before;
        if m.status != 0 {
            println!("rss2email failed (exit {})", m.status);
            continue;
        }
        let (count, unit) = if name == "r2e_cold" {
            if mails != r2e_feeds * items {
                println!(
                    "WARNING: rss2email sent {mails} mails for {} items",
                    r2e_feeds * items
                );
            }
            (mails as f64, "items/s")
        } else {
            (r2e_feeds as f64, "feeds/s")
        };
        let mut t = r2e_tag.clone();
        t.push(("mails", mails.to_string()));
        report(name, label, &m, count, unit, &t);
    }
}

/// The measured stages that are not CLI commands, run in the bench folder.
fn worker(stage: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = Arc::new(Config::load(Path::new("feeds.toml")).expect("config"));
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("store");
        let refresher = Refresher::new(store.clone(), config.clone()).expect("refresher");
        match stage {
            "cluster" => {
                let n = refresher.cluster_new_items().await.expect("cluster");
                println!("clustered={n}");
            }
            _ => incremental(&store, &refresher, config.clone()).await,
        }
        store.close().await;
    });
}

/// As the daemon: all merged feeds once, then a poll round, clustering, and the merged feeds
/// its changes touch. One `step` line each, with that step's own peak RSS.
async fn incremental(store: &Store, refresher: &Refresher, config: Arc<Config>) {
    let publisher = Publisher::new(store.clone(), config, Site::default());
    let step = |name: &str, t: Instant, cpu: f64, count: usize| {
        println!(
            "step {name} wall_s={} cpu_s={} rss_kb={} count={count}",
            t.elapsed().as_secs_f64(),
            measure::self_cpu() - cpu,
            measure::vm_hwm_kb("self").unwrap_or(0)
        );
        measure::reset_peak();
    };
    measure::reset_peak();
    let (t, cpu) = (Instant::now(), measure::self_cpu());
    let all = publisher
        .regenerate(&publisher.all_filters())
        .await
        .expect("regenerate");
    step("regen_all", t, cpu, all.rendered);

    let (t, cpu) = (Instant::now(), measure::self_cpu());
    let polled = refresher.poll_round(true).await.expect("poll");
    assert_eq!(polled.new, 1, "one new item: {polled}");
    step("poll_one_new", t, cpu, polled.polled);

    let (t, cpu) = (Instant::now(), measure::self_cpu());
    let clustered = refresher.cluster_new_items().await.expect("cluster");
    step("cluster_one_new", t, cpu, clustered);

    let (t, cpu) = (Instant::now(), measure::self_cpu());
    let filters = publisher.filters_for_feeds(&polled.changed_feeds);
    let done = publisher.regenerate(&filters).await.expect("regenerate");
    step("regen_changed", t, cpu, done.rendered);
}
