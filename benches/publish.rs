//! Merged-feed benchmark. Builds 34 categories x 100 stories (one generated source per
//! category, served on loopback and polled), then:
//!  1. times regenerating every merged feed (cold, then again with nothing changed);
//!  2. measures requests/s for /feeds/all.xml with wrk against `tinbao run` and against nginx
//!     serving the same file from disk, in the same run, and prints the ratio.
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
        "[database]\nurl = \"sqlite://bench.db\"\n[publish]\nmax_items = 100\nmax_age = \"3650d\"\n",
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
    let Some((tinbao_rps, tinbao_kb)) = tinbao_rps(&config_path) else {
        return;
    };
    let Some((nginx_rps, nginx_kb)) = nginx_rps(dir.path()) else {
        return;
    };
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

/// Starts `tinbao run` on a free port, waits for it, runs wrk, stops it; returns requests/s and
/// the daemon's peak RSS (KiB).
fn tinbao_rps(config_path: &std::path::Path) -> Option<(f64, i64)> {
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
    let rps = wrk(&format!("{base}feeds/all.xml"))?;
    let kb = measure::vm_hwm_kb(&child.id().to_string()).unwrap_or(0);
    // SIGTERM: the daemon's own graceful stop.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    Some((rps, kb))
}

/// Serves the same output folder with nginx on a loopback port and runs wrk against it; returns
/// requests/s and the peak RSS of its master and workers together (KiB).
fn nginx_rps(dir: &std::path::Path) -> Option<(f64, i64)> {
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
    let rps = wrk(&format!("http://127.0.0.1:{port}/feeds/all.xml"))?;
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

fn wrk(url: &str) -> Option<f64> {
    let out = match Command::new("wrk")
        .args(["-t2", "-c64", "-d10s", url])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("wrk not available ({e}): install the Debian package wrk");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}
