//! Full-text benchmark. Generates 1,000 article pages in the shape of provincial papers' (menus,
//! a lead, 6-14 paragraphs of varied Vietnamese text, a related-stories box, a footer, scripts)
//! and 20 teaser feeds of 50 items linking to them, then:
//!  1. extraction alone, each side a whole process measured from outside over the same 1,000
//!     page files: tinbao's readability (dom_smoothie) and CSS-selector paths, and Python
//!     readability-lxml (the classic port of the same algorithm) when the bench venv has it;
//!  2. the whole `run --once --all` pass over loopback with `full_text = true` against the same
//!     pass with it off: what reading 1,000 article pages adds.
//!
//! Run: `cargo bench --bench full_text` (`bench/run full_text` installs readability-lxml in
//! `target/bench-env/`; `COMPARE_PY=path/to/python` names another interpreter).

mod common;

use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use common::text::{Rng, item};
use common::{env_or, measure, result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const FEEDS: usize = 20;
const ITEMS: usize = 50;

/// Article page `n`: its own words in the article body, the site's chrome around it.
fn page(n: usize) -> String {
    let mut rng = Rng((n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (title, lead) = item(n / ITEMS, n % ITEMS);
    let paragraphs = 6 + rng.below(9);
    let body: String = (0..paragraphs)
        .map(|p| format!("<p>{}</p>", item(n / ITEMS + 1000 + p, n % ITEMS).1))
        .collect();
    let menu: String = (0..30)
        .map(|m| format!("<li><a href=\"/muc-{m}/\">Chuyên mục {m}</a></li>"))
        .collect();
    let related: String = (1..=10)
        .map(|r| {
            format!(
                "<li><a href=\"/bai/{}.html\">{}</a></li>",
                n + r,
                item(n + r, 0).0
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <script>window.dataLayer=[];</script><link rel=\"stylesheet\" href=\"/s.css\"></head><body>\
         <header><a class=\"logo\" href=\"/\">Báo tỉnh</a><ul class=\"menu\">{menu}</ul></header>\
         <main><div class=\"breadcrumb\"><a href=\"/\">Trang chủ</a> / <a href=\"/xa-hoi/\">Xã hội</a></div>\
         <article class=\"detail\"><h1 class=\"detail__title\">{title}</h1>\
         <div class=\"detail__time\">05/12/2026 - 07:30</div><p class=\"detail__sapo\">{lead}</p>\
         <div class=\"detail__content\">{body}<figure><img src=\"/anh/{n}.jpg\" alt=\"{title}\">\
         <figcaption>Ảnh: Báo tỉnh</figcaption></figure></div>\
         <div class=\"share\"><a href=\"#\">Chia sẻ</a><a href=\"#\">In bài</a></div></article>\
         <aside class=\"related\"><h3>Tin cùng chuyên mục</h3><ul>{related}</ul></aside></main>\
         <footer><p>Cơ quan của Đảng bộ tỉnh. Giấy phép số 123/GP-BTTTT.</p><p>Địa chỉ: số 1 đường Hoàng Liên.</p></footer>\
         <script src=\"/app.js\"></script></body></html>"
    )
}

/// Feed `f`: 50 items whose description is a one-line teaser of its article.
fn feed(f: usize, base: &str) -> String {
    let items: String = (0..ITEMS)
        .map(|i| {
            let n = f * ITEMS + i;
            let (title, lead) = item(f, i);
            let teaser: String = lead.split(' ').take(12).collect::<Vec<_>>().join(" ");
            format!(
                "<item><title>{title}</title><link>{base}/bai/{n}.html</link><guid>bai-{n}</guid>\
                 <pubDate>Sat, 05 Dec 2026 07:{:02}:00 +0700</pubDate><description>{teaser}</description></item>",
                i % 60
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Báo {f}</title>\
         <link>{base}/</link><description>Tin</description>{items}</channel></rss>"
    )
}

struct Site {
    pages: Vec<String>,
    feeds: Vec<String>,
}

async fn serve_page(UrlPath(name): UrlPath<String>, State(site): State<Arc<Site>>) -> Response {
    let n: Option<usize> = name.strip_suffix(".html").and_then(|n| n.parse().ok());
    match n.and_then(|n| site.pages.get(n)) {
        Some(p) => Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(p.clone().into())
            .unwrap(),
        None => Response::builder().status(404).body("".into()).unwrap(),
    }
}

async fn serve_feed(UrlPath(f): UrlPath<usize>, State(site): State<Arc<Site>>) -> Response {
    match site.feeds.get(f) {
        Some(d) => Response::builder()
            .header("content-type", "application/rss+xml; charset=utf-8")
            .body(d.clone().into())
            .unwrap(),
        None => Response::builder().status(404).body("".into()).unwrap(),
    }
}

/// `full_text extract DIR SELECTOR|-`: the child process measured in step 1.
fn extract_dir(dir: &Path, selector: &str) {
    let how = match selector {
        "-" => tinbao::config::FullText::Auto,
        s => tinbao::config::FullText::Selector(s.to_string()),
    };
    let url = url::Url::parse("https://baotinh.vn/bai/1.html").unwrap();
    let mut times = Vec::new();
    let mut chars = 0usize;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let started = Instant::now();
        let body = tinbao::reader::article::extract(&bytes, Some("text/html"), &url, &how, None)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        chars += body.text.chars().count();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "pages={} median_ms={:.3} p95_ms={:.3} chars={chars}",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 95 / 100]
    );
}

const PEER: &str = r#"
import sys, os, time, statistics
from readability import Document
from lxml import html as lh
d = sys.argv[1]
times, chars = [], 0
for name in sorted(os.listdir(d)):
    data = open(os.path.join(d, name), 'rb').read().decode('utf-8')
    t = time.perf_counter()
    summary = Document(data).summary(html_partial=True)
    text = lh.fromstring(summary).text_content()
    times.append((time.perf_counter() - t) * 1000)
    chars += len(text.strip())
times.sort()
print("pages=%d median_ms=%.3f p95_ms=%.3f chars=%d" % (len(times), times[len(times)//2], times[len(times)*95//100], chars))
"#;

fn field(out: &str, key: &str) -> String {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or("-")
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("extract") {
        extract_dir(Path::new(&args[2]), &args[3]);
        return;
    }
    let runs: usize = env_or("RUNS", 3);
    let tmp = tempfile::tempdir().unwrap();
    let pages: Vec<String> = (0..FEEDS * ITEMS).map(page).collect();
    let page_dir = tmp.path().join("pages");
    std::fs::create_dir_all(&page_dir).unwrap();
    for (n, p) in pages.iter().enumerate() {
        std::fs::write(page_dir.join(format!("{n:04}.html")), p).unwrap();
    }
    let bytes: usize = pages.iter().map(String::len).sum();
    println!(
        "{} article pages, {:.1} KB each on average",
        pages.len(),
        bytes as f64 / pages.len() as f64 / 1024.0
    );

    // 1. Extraction alone, whole processes over the same files.
    let me = std::env::current_exe().unwrap();
    let dir = page_dir.display().to_string();
    let python = std::env::var("COMPARE_PY").unwrap_or_else(|_| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-env/py/bin/python");
        venv.display().to_string()
    });
    let peer_ok = std::process::Command::new(&python)
        .args(["-c", "import readability, lxml"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut sides: Vec<(&str, Vec<String>)> = vec![
        (
            "tinbao readability",
            vec![
                me.display().to_string(),
                "extract".into(),
                dir.clone(),
                "-".into(),
            ],
        ),
        (
            "tinbao selector",
            vec![
                me.display().to_string(),
                "extract".into(),
                dir.clone(),
                "div.detail__content".into(),
            ],
        ),
    ];
    if peer_ok {
        sides.push((
            "readability-lxml",
            vec![python.clone(), "-c".into(), PEER.into(), dir.clone()],
        ));
    } else {
        println!(
            "readability-lxml: not installed in {python} (bench/run full_text installs it); no peer figure"
        );
    }
    println!(
        "\n1. extraction of {} pages, one process each, median of {runs} runs",
        pages.len()
    );
    let mut medians = Vec::new();
    for (name, argv) in &sides {
        let mut got: Vec<measure::Measured> = (0..runs)
            .map(|_| measure::run(argv, tmp.path(), &[]))
            .collect();
        assert!(got.iter().all(|m| m.status == 0), "{name} failed");
        got.sort_by(|a, b| a.wall.total_cmp(&b.wall));
        let m = got[runs / 2].clone();
        println!(
            "{name:<20} wall {:>6.2} s  cpu {:>6.2} s  peak {:>6.1} MB  per page: median {} ms, p95 {} ms  text {} chars",
            m.wall,
            m.cpu,
            m.rss_mb(),
            field(&m.stdout, "median_ms"),
            field(&m.stdout, "p95_ms"),
            field(&m.stdout, "chars")
        );
        result(
            &format!("full_text_extract_{}", name.replace(' ', "_")),
            &[
                ("wall_s", format!("{:.2}", m.wall)),
                ("cpu_s", format!("{:.2}", m.cpu)),
                ("rss_mb", format!("{:.1}", m.rss_mb())),
                ("median_ms", field(&m.stdout, "median_ms")),
            ],
        );
        medians.push((name.to_string(), m));
    }
    if let (Some(ours), Some(peer)) = (
        medians.iter().find(|(n, _)| n == "tinbao readability"),
        medians.iter().find(|(n, _)| n == "readability-lxml"),
    ) {
        println!(
            "readability: tinbao {:.1}x faster (wall), {:.1}x (cpu) than readability-lxml",
            peer.1.wall / ours.1.wall,
            peer.1.cpu / ours.1.cpu
        );
    }

    // 2. The whole pass with full text on and off.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let site = Arc::new(Site {
        feeds: (0..FEEDS).map(|f| feed(f, &base)).collect(),
        pages,
    });
    let app = axum::Router::new()
        .route("/bai/{name}", axum::routing::get(serve_page))
        .route("/feed/{f}", axum::routing::get(serve_feed))
        .with_state(site);
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/tinbao");
    assert!(
        bin.is_file(),
        "build the binary first: cargo build --release"
    );
    println!("\n2. run --once --all: {FEEDS} feeds x {ITEMS} teaser items, median of {runs} runs");
    let mut passes = Vec::new();
    for (name, full_text) in [
        ("full text off", ""),
        ("full text on", "full_text = true\n"),
    ] {
        let mut got = Vec::new();
        for r in 0..runs {
            let dir = tmp.path().join(format!("pass-{}-{r}", full_text.len()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut config = format!(
                "[database]\nurl = \"sqlite://tinbao.db\"\n[polling]\nconcurrency = 32\nper_host = 32\n\
                 [[category]]\nslug = \"xa-hoi\"\ntitle = \"Xã hội\"\n{full_text}"
            );
            for f in 0..FEEDS {
                config += &format!(
                    "[[feed]]\nid = \"bao-{f}\"\nurl = \"{base}/feed/{f}\"\ncategory = \"xa-hoi\"\n"
                );
            }
            std::fs::write(dir.join("feeds.toml"), config).unwrap();
            let argv = vec![
                bin.display().to_string(),
                "run".into(),
                "--once".into(),
                "--all".into(),
            ];
            let m = measure::run(&argv, &dir, &[("RUST_LOG", "warn".into())]);
            assert_eq!(m.status, 0, "{}", m.stdout);
            got.push(m);
        }
        got.sort_by(|a, b| a.wall.total_cmp(&b.wall));
        let m = got[runs / 2].clone();
        let line = m
            .stdout
            .lines()
            .find(|l| l.starts_with("full text:"))
            .unwrap_or("");
        println!(
            "{name:<14} wall {:>6.2} s  cpu {:>6.2} s  peak {:>6.1} MB  {line}",
            m.wall,
            m.cpu,
            m.rss_mb()
        );
        result(
            &format!("full_text_pass_{}", name.replace(' ', "_")),
            &[
                ("wall_s", format!("{:.2}", m.wall)),
                ("cpu_s", format!("{:.2}", m.cpu)),
                ("rss_mb", format!("{:.1}", m.rss_mb())),
            ],
        );
        passes.push(m);
    }
    let n = (FEEDS * ITEMS) as f64;
    println!(
        "full text adds {:.2} s wall, {:.2} s cpu: {:.2} ms cpu per article",
        passes[1].wall - passes[0].wall,
        passes[1].cpu - passes[0].cpu,
        (passes[1].cpu - passes[0].cpu) / n * 1000.0
    );
}
