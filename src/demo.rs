//! `tinbao demo`: the embedded default. Serves the bundled sample feeds (samples/, written for
//! the project, with stories that overlap across sources) from a loopback HTTP server, writes
//! `demo/feeds.toml` pointing at it, adds a demo subscriber, and runs the daemon on it: SQLite in
//! `demo/tinbao.db`, merged feeds served and written to `demo/public/`, the subscriber's digest
//! written as .eml into `demo/outbox/`. No network is needed. `--once` does one round and exits.

use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::path::Path;

/// The bundled sample feeds: (file name, content type, feed id, category, province, body).
const SAMPLES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "baolaocai-thoi-su.rss",
        RSS,
        "baolaocai-thoi-su",
        "thoi-su",
        "lao-cai",
        include_str!("../samples/baolaocai-thoi-su.rss"),
    ),
    (
        "baolaocai-xay-dung-dang.rss",
        RSS,
        "baolaocai-xay-dung-dang",
        "xay-dung-dang",
        "lao-cai",
        include_str!("../samples/baolaocai-xay-dung-dang.rss"),
    ),
    (
        "baoyenbai-thoi-su.atom",
        ATOM,
        "baoyenbai-thoi-su",
        "thoi-su",
        "yen-bai",
        include_str!("../samples/baoyenbai-thoi-su.atom"),
    ),
    (
        "baohagiang-xa-hoi.rss",
        RSS,
        "baohagiang-xa-hoi",
        "xa-hoi",
        "ha-giang",
        include_str!("../samples/baohagiang-xa-hoi.rss"),
    ),
    (
        "baolaichau-kinh-te.json",
        JSON,
        "baolaichau-kinh-te",
        "kinh-te",
        "lai-chau",
        include_str!("../samples/baolaichau-kinh-te.json"),
    ),
    (
        "vnexpress-thoi-su.rss",
        RSS,
        "vnexpress-thoi-su",
        "thoi-su",
        "ca-nuoc",
        include_str!("../samples/vnexpress-thoi-su.rss"),
    ),
];

const RSS: &str = "application/rss+xml; charset=utf-8";
const ATOM: &str = "application/atom+xml; charset=utf-8";
const JSON: &str = "application/feed+json; charset=utf-8";

const CATEGORIES: &[(&str, &str)] = &[
    ("thoi-su", "Thời sự"),
    ("xay-dung-dang", "Xây dựng Đảng"),
    ("xa-hoi", "Xã hội"),
    ("kinh-te", "Kinh tế"),
];

/// Starts the sample server on a loopback port; returns its base URL.
pub async fn serve_samples() -> anyhow::Result<String> {
    let app = axum::Router::new().route("/samples/{name}", axum::routing::get(sample));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "sample feed server stopped");
        }
    });
    Ok(format!("http://{addr}"))
}

async fn sample(UrlPath(name): UrlPath<String>) -> axum::response::Response {
    match SAMPLES.iter().find(|s| s.0 == name) {
        Some((_, content_type, _, _, _, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such sample").into_response(),
    }
}

/// The demo's feeds.toml, pointing at the sample server; digests go to `outbox/` as .eml files.
pub fn config_text(samples_base: &str, listen: &str) -> String {
    let mut text = format!(
        "# Written by `tinbao demo`: the bundled sample feeds, served on loopback.\n\n\
         [server]\nlisten = \"{listen}\"\nbase_url = \"http://{listen}/\"\n\
         # The samples are dated late November 2026: topic feeds reach back to them.\n\
         topic_days = 366\n\n\
         [database]\nurl = \"sqlite://tinbao.db\"\n\n[polling]\ninterval = \"15m\"\n\n\
         [smtp]\nurl = \"file://outbox\"\nfrom = \"Tin tỉnh – bản demo <ban-tin@example.vn>\"\n"
    );
    for (slug, title) in CATEGORIES {
        text.push_str(&format!(
            "\n[[category]]\nslug = \"{slug}\"\ntitle = \"{title}\"\n"
        ));
    }
    for (slug, name) in PROVINCES {
        text.push_str(&format!(
            "\n[[province]]\nslug = \"{slug}\"\nname = \"{name}\"\n"
        ));
    }
    for (file, _, id, category, province, _) in SAMPLES {
        text.push_str(&format!(
            "\n[[feed]]\nid = \"{id}\"\nurl = \"{samples_base}/samples/{file}\"\ncategory = \"{category}\"\nprovince = \"{province}\"\n"
        ));
    }
    text
}

const PROVINCES: &[(&str, &str)] = &[
    ("lao-cai", "Lào Cai"),
    ("yen-bai", "Yên Bái"),
    ("ha-giang", "Hà Giang"),
    ("lai-chau", "Lai Châu"),
    ("ca-nuoc", "Cả nước"),
];

/// The demo subscriber and what they follow.
const DEMO_SUBSCRIBER: &str = "ban-doc@example.vn";
const DEMO_TOPICS: &[&str] = &["province=lao-cai query=\"Lào Cai\"", "query=lũ OR sạt lở"];

/// Runs the demo in `dir`: serve the samples, configure, add the demo subscriber, then either
/// run the daemon (until Ctrl-C) or, with `once`, poll, publish and write the digest, and exit.
pub async fn run(dir: &Path, listen: &str, once: bool) -> anyhow::Result<i32> {
    std::fs::create_dir_all(dir)?;
    let base = serve_samples().await?;
    let config_path = dir.join("feeds.toml");
    std::fs::write(&config_path, config_text(&base, listen))?;
    println!(
        "Serving {} bundled sample feeds at {base}/samples/",
        SAMPLES.len()
    );
    let config = crate::cli::load_config(&config_path)?;
    let store = crate::cli::open_store(&config).await?;
    add_demo_subscriber(&store, &config).await?;
    if !once {
        println!(
            "Demo subscriber {DEMO_SUBSCRIBER}: digests are written to {}",
            dir.join("outbox").display()
        );
        println!(
            "Open http://{listen}/ (merged feeds: http://{listen}/feeds/all.xml). Ctrl-C stops."
        );
        store.close().await;
        return crate::worker::daemon::run(config_path, config).await;
    }
    // The same pass as `tinbao run --once --all`.
    let pass = crate::worker::once::pass(&store, config, true).await;
    store.close().await;
    println!(
        "merged feeds in {}, digests in {}",
        dir.join("public/feeds").display(),
        dir.join("outbox").display()
    );
    Ok(pass.exit_code())
}

/// Adds the demo subscriber once, dated a quarter of an hour back so the current tick of the
/// immediate schedule is owed to them at once.
async fn add_demo_subscriber(
    store: &crate::storage::Store,
    config: &crate::config::Config,
) -> anyhow::Result<()> {
    let topics: Vec<String> = DEMO_TOPICS.iter().map(|t| t.to_string()).collect();
    let new = crate::cli::validate_subscriber(config, DEMO_SUBSCRIBER, &topics, "immediate", None)
        .map_err(|e| anyhow::anyhow!(e))?;
    match store
        .add_subscriber(&new, chrono::Utc::now() - chrono::Duration::minutes(15))
        .await
    {
        Ok(_) | Err(crate::storage::SubscriberError::Exists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
