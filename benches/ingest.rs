//! Ingest benchmark (issue 2): 1,000 feeds x 50 Vietnamese items served over loopback from 20
//! addresses (127.0.0.11-30, so per-host limits apply as with real newspapers), polled by the
//! release `tinbao poll --once --all` twice: cold, then with every feed unchanged (all 304). Prints
//! wall time, items/s and the child's peak RSS for each round.
//!
//! Run: `cargo bench --bench ingest` (options: FEEDS=1000 ITEMS=50).

mod common;

use common::{feed_doc, serve_feeds};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const HOSTS: usize = 20;

fn main() {
    let feeds: usize = std::env::var("FEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let items: usize = std::env::var("ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let docs: Arc<Vec<String>> = Arc::new((0..feeds).map(|f| feed_doc(f, items)).collect());
    let bytes: usize = docs.iter().map(String::len).sum();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ips: Vec<String> = (0..HOSTS).map(|h| format!("127.0.0.{}", 11 + h)).collect();
    let ports = runtime.block_on(serve_feeds(&ips, docs.clone()));

    let dir = tempfile::tempdir().expect("temp dir");
    // WRAP="perf record -g -o /tmp/perf.data" runs each round under a profiler.
    let wrap: Vec<String> = std::env::var("WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut config = String::from(
        "[database]\nurl = \"sqlite://bench.db\"\n\n[polling]\nconcurrency = 64\nper_host = 4\n\n[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n",
    );
    for f in 0..feeds {
        let (ip, port) = &ports[f % HOSTS];
        config.push_str(&format!("\n[[feed]]\nid = \"feed-{f}\"\nurl = \"http://{ip}:{port}/feed/{f}\"\ncategory = \"thoi-su\"\n"));
    }
    std::fs::write(dir.path().join("feeds.toml"), config).expect("write config");

    println!(
        "ingest benchmark: {feeds} feeds x {items} items ({:.1} MB of feeds), {HOSTS} loopback hosts, per_host = 4",
        bytes as f64 / 1e6
    );
    println!(
        "{:<22} {:>9} {:>8} {:>12} {:>14}  summary",
        "round", "wall (s)", "CPU (s)", "items/s", "peak RSS (MB)"
    );
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for round in ["cold", "unchanged (all 304)"].into_iter().take(rounds) {
        let (wall, rss_kb, cpu, summary) = poll_once(dir.path(), &wrap);
        let new: f64 = summary
            .split(", ")
            .find_map(|p| p.strip_suffix(" new items"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let rate = if new > 0.0 {
            format!("{:.0}", new / wall)
        } else {
            "-".into()
        };
        println!(
            "{round:<22} {wall:>9.3} {cpu:>8.2} {rate:>12} {:>14.1}  {summary}",
            rss_kb as f64 / 1024.0
        );
    }
    drop(runtime);
}

/// Runs `tinbao poll --once --all` as a child; returns wall seconds, its peak RSS (KiB), its
/// CPU seconds (user + system) and its summary line.
// The child is reaped with wait4 (not Child::wait) to read its own resource usage.
#[allow(clippy::zombie_processes)]
fn poll_once(dir: &std::path::Path, wrap: &[String]) -> (f64, i64, f64, String) {
    let started = Instant::now();
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend([env!("CARGO_BIN_EXE_tinbao"), "poll", "--once", "--all"].map(String::from));
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tinbao");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Read the output before reaping: the pipe must not fill up.
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    assert_eq!(status, 0, "tinbao poll failed");
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu_secs = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    (
        started.elapsed().as_secs_f64(),
        usage.ru_maxrss,
        cpu_secs,
        out.trim().to_string(),
    )
}
