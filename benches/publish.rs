//! Merged-feed benchmark. Builds 34 categories x 100 stories (one generated source per
//! category, served on loopback and polled), then:
//!  1. times regenerating every merged feed (cold, then again with nothing changed);
//!  2. measures requests/s for /feeds/all.xml with wrk against `tinbao run` and against nginx
//!     serving the same file from disk, in the same run, and prints the ratio;
//!  3. the same for a topic feed (`/feeds/topic.xml?q=…`): one hot query, 1,000 distinct ones
//!     (each from its own client address), and nginx serving a file of the same bytes.
//!
//! Run: `cargo bench --bench publish` (needs `wrk` and `nginx` on PATH: Debian packages).

mod common;

use common::{feed_doc, measure, serve_feeds};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinbao::config::Config;
use tinbao::publish::site::Site;
use tinbao::reader::refresh::Refresher;
use tinbao::storage::Store;
use tinbao::worker::publisher::Publisher;

const CATEGORIES: usize = 34;
const ITEMS: usize = 100;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let docs: Arc<Vec<String>> = Arc::new((0..CATEGORIES).map(|c| feed_doc(c, ITEMS)).collect());
    let ports = runtime.block_on(serve_feeds(&["127.0.0.1".to_string()], docs));
    let (ip, port) = &ports[0];
    let mut config = String::from(
        "[database]\nurl = \"sqlite://bench.db\"\n[publish]\nmax_items = 100\nmax_age = \"3650d\"\n[server]\ntopic_days = 366\n",
    );
    for c in 0..CATEGORIES {
        config.push_str(&format!(
            "\n[[category]]\nslug = \"muc-{c}\"\ntitle = \"Chuyên mục {c}\"\n[[feed]]\nid = \"nguon-{c}\"\nurl = \"http://{ip}:{port}/feed/{c}\"\ncategory = \"muc-{c}\"\nprovince = \"tinh-{}\"\n",
            c % 5
        ));
    }
    let config_path = dir.path().join("feeds.toml");
    std::fs::write(&config_path, &config).expect("write config");
    let config = Arc::new(Config::load(&config_path).expect("config"));

    let (cold, unchanged, documents) = runtime.block_on(async {
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("store");
        store
            .sync_feeds(&config.feeds, chrono::Utc::now())
            .await
            .expect("sync");
        let polled = Refresher::new(store.clone(), config.clone())
            .expect("refresher")
            .poll_round(true)
            .await
            .expect("poll");
        assert_eq!(polled.new, CATEGORIES * ITEMS);
        let publisher = Publisher::new(store.clone(), config.clone(), Site::default());
        let filters = publisher.all_filters();
        // The regeneration's own peak: this process also holds the feed server's documents.
        let own_peak = measure::reset_peak();
        let t = Instant::now();
        let cpu = measure::self_cpu();
        let first = publisher.regenerate(&filters).await.expect("regenerate");
        let cold = t.elapsed();
        let cpu = measure::self_cpu() - cpu;
        let rss = measure::vm_hwm_kb("self").unwrap_or(0) as f64 / 1024.0;
        common::result(
            "regen_all",
            &[
                ("wall_s", format!("{:.4}", cold.as_secs_f64())),
                ("cpu_s", format!("{cpu:.3}")),
                (
                    "throughput",
                    format!("{:.0}", first.rendered as f64 / cold.as_secs_f64()),
                ),
                ("unit", "docs/s".into()),
                ("rss_mb", format!("{rss:.1}")),
                ("rss_own", own_peak.to_string()),
                ("count", first.rendered.to_string()),
            ],
        );
        let t = Instant::now();
        let second = publisher.regenerate(&filters).await.expect("regenerate");
        assert_eq!(second.changed, 0);
        let unchanged = t.elapsed();
        common::result(
            "regen_all_unchanged",
            &[
                ("wall_s", format!("{:.4}", unchanged.as_secs_f64())),
                (
                    "throughput",
                    format!("{:.0}", second.rendered as f64 / unchanged.as_secs_f64()),
                ),
                ("unit", "docs/s".into()),
                ("count", second.rendered.to_string()),
            ],
        );
        (cold, unchanged, first.rendered)
    });
    println!(
        "merged-feed benchmark: {CATEGORIES} categories x {ITEMS} stories (+ all + 5 provinces), 3 formats"
    );
    println!(
        "regenerate all ({documents} documents), cold:       {:>8.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "regenerate all ({documents} documents), unchanged:  {:>8.1} ms",
        unchanged.as_secs_f64() * 1e3
    );

    let all_xml = dir.path().join("public/feeds/all.xml");
    let size = std::fs::metadata(&all_xml).map(|m| m.len()).unwrap_or(0);
    let Some(served) = tinbao_rps(&config_path, dir.path()) else {
        return;
    };
    let (tinbao_rps, tinbao_kb) = (served.all, served.kb);
    // The topic feed's bytes as a static file, for nginx to serve beside all.xml.
    std::fs::write(
        dir.path().join("public/feeds/topic-copy.xml"),
        &served.topic_body,
    )
    .ok();
    let Some(nginx) = nginx_rps(dir.path(), &["all.xml", "topic-copy.xml"]) else {
        return;
    };
    let (nginx_rps, nginx_kb, nginx_topic) = (nginx.0[0], nginx.1, nginx.0[1]);
    let topic_kb = served.topic_body.len() as f64 / 1024.0;
    for (name, rps) in [
        ("serve_topic_hot", served.topic_hot),
        ("serve_topic_distinct", served.topic_distinct),
        ("serve_topic_nginx", nginx_topic),
    ] {
        common::result(
            name,
            &[
                ("wall_s", "10".into()),
                ("throughput", format!("{rps:.0}")),
                ("unit", "req/s".into()),
                ("size_kb", format!("{topic_kb:.0}")),
            ],
        );
    }
    println!(
        "serving a topic feed ({topic_kb:.0} KB, /feeds/topic.xml?q=\"Lào Cai\" \"mưa lũ\"), wrk -t2 -c64 -d10s:"
    );
    println!(
        "  tinbao, one hot query:                {:>10.0} req/s",
        served.topic_hot
    );
    println!(
        "  tinbao, 1,000 distinct queries:       {:>10.0} req/s  (more than the 512 kept: every request builds its feed; {} of them answered 429)",
        served.topic_distinct, served.topic_limited
    );
    println!("  nginx, a static file of the same size:{nginx_topic:>10.0} req/s");
    println!(
        "  ratio hot / nginx:                    {:>10.2}",
        served.topic_hot / nginx_topic
    );
    for (name, rps, kb) in [
        ("serve_tinbao", tinbao_rps, tinbao_kb),
        ("serve_nginx", nginx_rps, nginx_kb),
    ] {
        common::result(
            name,
            &[
                ("wall_s", "10".into()),
                ("throughput", format!("{rps:.0}")),
                ("unit", "req/s".into()),
                ("rss_mb", format!("{:.1}", kb as f64 / 1024.0)),
                ("size_kb", format!("{:.0}", size as f64 / 1024.0)),
            ],
        );
    }
    println!(
        "serving /feeds/all.xml ({:.0} KB), wrk -t2 -c64 -d10s, identity encoding:",
        size as f64 / 1024.0
    );
    println!("  tinbao run: {tinbao_rps:>10.0} req/s");
    println!("  nginx:      {nginx_rps:>10.0} req/s");
    println!(
        "  ratio:      {:>10.2}  (target >= 0.70)",
        tinbao_rps / nginx_rps
    );
    drop(runtime);
}

/// What the daemon served: requests/s for /feeds/all.xml, a hot topic query and 1,000 distinct
/// ones; its peak RSS (KiB); the topic feed's bytes; the distinct run's 429 answers.
struct Served {
    all: f64,
    topic_hot: f64,
    topic_distinct: f64,
    topic_limited: u64,
    kb: i64,
    topic_body: Vec<u8>,
}

/// Starts `tinbao run` on a free port, waits for it, runs wrk, stops it.
fn tinbao_rps(config_path: &std::path::Path, dir: &std::path::Path) -> Option<Served> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinbao"))
        .args(["--config", config_path.to_str()?, "run"])
        .env("TINBAO_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let base = line.trim().strip_prefix("listening on ")?.to_string();
    let all = wrk(&format!("{base}feeds/all.xml"), None)?.0;
    let encode = |q: &str| url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let hot = format!(
        "{base}feeds/topic.xml?q={}",
        encode("\"Lào Cai\" \"mưa lũ\"")
    );
    let topic_body = tokio::runtime::Runtime::new()
        .ok()?
        .block_on(async { reqwest::get(&hot).await.ok()?.bytes().await.ok() })?
        .to_vec();
    let topic_hot = wrk(&hot, None)?.0;
    // 1,000 distinct pairs of phrases, each from its own client (X-Forwarded-For, as behind a
    // reverse proxy on the same machine), so the per-client limit applies as it would.
    let mut paths = Vec::new();
    'pairs: for a in common::WORDS {
        for b in common::WORDS {
            if a != b {
                paths.push(format!(
                    "/feeds/topic.xml?q={}",
                    encode(&format!("\"{a}\" \"{b}\""))
                ));
                if paths.len() == 1000 {
                    break 'pairs;
                }
            }
        }
    }
    let script = dir.join("topics.lua");
    let list: String = paths.iter().map(|p| format!("  \"{p}\",\n")).collect();
    std::fs::write(
        &script,
        format!(
            "paths = {{\n{list}}}\ni = 0\nrequest = function()\n  i = i + 1\n  local n = (i % #paths) + 1\n  \
             return wrk.format(\"GET\", paths[n], {{ [\"X-Forwarded-For\"] = \"10.0.\" .. math.floor(n / 256) .. \".\" .. (n % 256) }})\nend\n"
        ),
    )
    .ok()?;
    let (topic_distinct, topic_limited) = wrk(&format!("{base}feeds/topic.xml"), Some(&script))?;
    let kb = measure::vm_hwm_kb(&child.id().to_string()).unwrap_or(0);
    // SIGTERM: the daemon's own graceful stop.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    Some(Served {
        all,
        topic_hot,
        topic_distinct,
        topic_limited,
        kb,
        topic_body,
    })
}

/// Serves the same output folder with nginx on a loopback port and runs wrk against each of
/// `files` (below /feeds/); returns their requests/s and the peak RSS of its master and workers
/// together (KiB).
fn nginx_rps(dir: &std::path::Path, files: &[&str]) -> Option<(Vec<f64>, i64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let root = dir.join("public");
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {pid}; error_log stderr error;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on; types {{ application/rss+xml xml; }}\n\
               client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            pid = dir.join("nginx.pid").display(),
            tmp = dir.display(),
            root = root.display()
        ),
    )
    .ok()?;
    let mut child = match Command::new("nginx")
        .args(["-c", conf.to_str()?, "-p", dir.to_str()?])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("nginx not available ({e}): install the Debian package nginx-light");
            return None;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut rps = Vec::new();
    for file in files {
        rps.push(wrk(&format!("http://127.0.0.1:{port}/feeds/{file}"), None)?.0);
    }
    let master = child.id().to_string();
    let kb: i64 = std::iter::once(master.clone())
        .chain(children_of(&master))
        .filter_map(|pid| measure::vm_hwm_kb(&pid))
        .sum();
    let _ = Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    Some((rps, kb))
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .to_string();
            (ppid == pid).then_some(name)
        })
        .collect()
}

/// wrk against `url` (with a Lua `script` choosing each request, if given): requests/s, and how
/// many answers were not 2xx or 3xx.
fn wrk(url: &str, script: Option<&std::path::Path>) -> Option<(f64, u64)> {
    let mut args = vec!["-t2".to_string(), "-c64".into(), "-d10s".into()];
    if let Some(script) = script {
        args.extend(["-s".into(), script.display().to_string()]);
    }
    args.push(url.to_string());
    let out = match Command::new("wrk").args(&args).output() {
        Ok(o) => o,
        Err(e) => {
            println!("wrk not available ({e}): install the Debian package wrk");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    let failed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some((rps, failed))
}
