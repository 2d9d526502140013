//! Several instances on one PostgreSQL database: ingest and digest throughput
//! with 1, 2 and 3 `tinbao` processes (the release binary, as child processes) sharing one fresh
//! database each time. The processes split the work through leases (feeds, digests) and a
//! per-subscriber advisory lock (digest building); the totals say what that sharing costs or
//! gains on this machine.
//!
//!  - ingest: FEEDS (1,000) feeds x ITEMS (50) Vietnamese items served from 20 loopback addresses;
//!    N concurrent `tinbao poll --once` (every feed due once); wall time, items/s.
//!  - digest: 40 feeds x 50 items stored, SUBSCRIBERS (10,000) each following one tag syllable
//!    that 5 items carry; N concurrent `tinbao digest --now` building and sending every digest to
//!    Postfix's `smtp-sink` on loopback; wall time, digests/s.
//!
//! Run: `TINBAO_BENCH_PG=postgres://USER:PASS@127.0.0.1:5432/postgres cargo bench --bench instances`
//! (also reads TINBAO_TEST_PG; options FEEDS, ITEMS, SUBSCRIBERS, INSTANCES=1,2,3). The URL's
//! role must be allowed to create databases. Prints a table and one `RESULT` line per run.

mod common;

use common::serve_feeds;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTS: usize = 20;
const DIGEST_FEEDS: usize = 40;
const DIGEST_ITEMS: usize = 50;
/// Tag syllables in the digest items: each tag is carried by 2,000 / 400 = 5 items.
const TAGS: usize = 400;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An RSS document whose item `i` carries tag syllable `t{(feed * items + i) % TAGS}`.
fn doc(feed: usize, items: usize) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo số {feed}</title><link>https://bao{feed}.vn/</link>"
    );
    for i in 0..items {
        let tag = (feed * items + i) % TAGS;
        out.push_str(&format!(
            "<item><title>Tin {i} của báo {feed}: Lào Cai t{tag} xây dựng nông thôn mới</title>\
             <link>https://bao{feed}.vn/tin/{i}.html</link><guid>bao{feed}-{i}</guid>\
             <description><![CDATA[<p>Huyện Bảo Thắng, tỉnh Lào Cai, ủy ban nhân dân hỗ trợ người dân phát triển sản xuất, \
             đầu tư hạ tầng giao thông nông thôn năm 2026 (bài {i}, thẻ t{tag}).</p>]]></description>\
             <pubDate>Sat, 28 Nov 2026 {:02}:{:02}:00 +0700</pubDate></item>",
            i % 24,
            i % 60
        ));
    }
    out.push_str("</channel></rss>");
    out
}

struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin: &str, name: &str) -> Database {
        let pool = sqlx::PgPool::connect(admin)
            .await
            .expect("admin connection");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("create bench database");
        }
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Database {
            admin: admin.to_string(),
            name: name.to_string(),
            url: format!("{base}/{name}"),
        }
    }

    async fn execute(&self, sql: &str) {
        let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .expect(sql);
        pool.close().await;
    }

    async fn count(&self, sql: &str) -> i64 {
        let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .expect(sql);
        pool.close().await;
        n
    }

    async fn drop_it(self) {
        let pool = sqlx::PgPool::connect(&self.admin).await.expect("admin");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}

/// Writes feeds.toml (`urls` as feeds in 34 categories) and creates the feed rows.
async fn setup(dir: &Path, db: &Database, urls: &[String], smtp: &str) {
    let mut text = format!(
        "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"{}\"\n\
         [smtp]\nurl = \"{smtp}\"\nfrom = \"Tin tỉnh <ban-tin@example.vn>\"\n",
        db.url
    );
    for c in 0..34 {
        text.push_str(&format!(
            "\n[[category]]\nslug = \"c{c}\"\ntitle = \"Mục {c}\"\n"
        ));
    }
    for (f, url) in urls.iter().enumerate() {
        text.push_str(&format!(
            "\n[[feed]]\nid = \"f{f}\"\nurl = \"{url}\"\ncategory = \"c{}\"\nprovince = \"p{}\"\n",
            f % 34,
            f % 10
        ));
    }
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write feeds.toml");
    let config = tinbao::config::Config::load(&path).expect("valid bench config");
    let store = tinbao::storage::Store::open(&config.database.url, dir)
        .await
        .expect("open store");
    store
        .sync_feeds(&config.feeds, chrono::Utc::now())
        .await
        .expect("sync feeds");
    store.close().await;
}

/// Runs `n` copies of `tinbao ARGS` at once in `dir`; returns the wall time until all exited.
fn run_instances(dir: &Path, n: usize, args: &[&str]) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_tinbao"))
                .args(args)
                .current_dir(dir)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("instance-{i}.log"))).unwrap())
                .spawn()
                .expect("start tinbao")
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("wait for tinbao");
        assert!(
            status.success(),
            "tinbao {args:?} failed: see {}",
            dir.display()
        );
    }
    started.elapsed()
}

fn main() {
    let Some(admin) = ["TINBAO_BENCH_PG", "TINBAO_TEST_PG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    else {
        eprintln!(
            "instances bench: set TINBAO_BENCH_PG=postgres://USER:PASS@127.0.0.1:5432/postgres \
             (a role that may create databases); skipped"
        );
        return;
    };
    let Some(sink) = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("instances bench: needs Postfix's smtp-sink (Debian package postfix); skipped");
        return;
    };
    let feeds = env_num("FEEDS", 1000);
    let items = env_num("ITEMS", 50);
    let subscribers = env_num("SUBSCRIBERS", 10_000);
    let counts: Vec<usize> = std::env::var("INSTANCES")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ips: Vec<String> = (0..HOSTS).map(|h| format!("127.0.0.{}", 11 + h)).collect();
    let docs: Vec<String> = (0..feeds).map(|f| doc(f, items)).collect();
    let ports = runtime.block_on(serve_feeds(&ips, Arc::new(docs)));
    let url = |f: usize, ports: &[(String, u16)]| {
        let (ip, port) = &ports[f % HOSTS];
        format!("http://{ip}:{port}/feed/{f}")
    };
    let urls: Vec<String> = (0..feeds).map(|f| url(f, &ports)).collect();
    let digest_docs: Vec<String> = (0..DIGEST_FEEDS).map(|f| doc(f, DIGEST_ITEMS)).collect();
    let digest_ports = runtime.block_on(serve_feeds(&ips[..4], Arc::new(digest_docs)));
    let digest_urls: Vec<String> = (0..DIGEST_FEEDS)
        .map(|f| {
            let (ip, port) = &digest_ports[f % 4];
            format!("http://{ip}:{port}/feed/{f}")
        })
        .collect();

    let sink_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut sink = Command::new(sink)
        .args(["-u", "root", &format!("127.0.0.1:{sink_port}"), "256"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    std::thread::sleep(Duration::from_millis(300));
    let smtp = format!("smtp://127.0.0.1:{sink_port}");

    println!("instances | stage  | work                      | wall s | rate");
    for &n in &counts {
        let dir = tempfile::tempdir().expect("temp dir");
        let (wall, stored) = runtime.block_on(async {
            let db = Database::create(&admin, "tinbao_bench_ingest").await;
            setup(dir.path(), &db, &urls, &smtp).await;
            let wall = run_instances(dir.path(), n, &["poll", "--once"]);
            let stored = db.count("SELECT COUNT(*) FROM items").await;
            db.drop_it().await;
            (wall, stored)
        });
        let rate = stored as f64 / wall.as_secs_f64();
        println!(
            "{n:9} | ingest | {feeds} feeds, {stored} items | {:6.2} | {rate:.0} items/s",
            wall.as_secs_f64()
        );
        println!(
            "RESULT instances ingest n={n} feeds={feeds} items={stored} wall={:.3} items_per_s={rate:.0}",
            wall.as_secs_f64()
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let (wall, sent) = runtime.block_on(async {
            let db = Database::create(&admin, "tinbao_bench_digest").await;
            setup(dir.path(), &db, &digest_urls, &smtp).await;
            run_instances(dir.path(), 1, &["poll", "--once"]);
            db.execute(&format!(
                "INSERT INTO subscribers (email, status, schedule, timezone, created_at, cursor_item_id)
                 SELECT 'ban-doc-' || g || '@example.vn', 'active', 'immediate', 'Asia/Ho_Chi_Minh',
                        EXTRACT(EPOCH FROM now())::bigint - 900, 0
                 FROM generate_series(1, {subscribers}) g"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO topics (subscriber_id, position, spec)
                 SELECT id, 0, 'query=t' || (id % {TAGS}) FROM subscribers"
            ))
            .await;
            let wall = run_instances(dir.path(), n, &["digest", "--now"]);
            let sent = db
                .count("SELECT COUNT(*) FROM digests WHERE state = 'sent'")
                .await;
            db.drop_it().await;
            (wall, sent)
        });
        let rate = sent as f64 / wall.as_secs_f64();
        println!(
            "{n:9} | digest | {subscribers} subscribers, {sent} sent | {:6.2} | {rate:.0} digests/s",
            wall.as_secs_f64()
        );
        println!(
            "RESULT instances digest n={n} subscribers={subscribers} sent={sent} wall={:.3} digests_per_s={rate:.0}",
            wall.as_secs_f64()
        );
    }
    let _ = sink.kill();
    let _ = sink.wait();
}
