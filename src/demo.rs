//! `tinbao demo`: the embedded default. Serves the bundled sample feeds (samples/, written for
//! the project) from a loopback HTTP server, writes `demo/feeds.toml` pointing at it, and polls
//! them into `demo/tinbao.db`. No network is needed. Running it again shows deduplication: the
//! same stories are not stored twice.

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

/// The demo's feeds.toml, pointing at the sample server.
pub fn config_text(samples_base: &str) -> String {
    let mut text = String::from(
        "# Written by `tinbao demo`: the bundled sample feeds, served on loopback.\n\n\
         [database]\nurl = \"sqlite://tinbao.db\"\n\n[polling]\ninterval = \"15m\"\n",
    );
    for (slug, title) in CATEGORIES {
        text.push_str(&format!(
            "\n[[category]]\nslug = \"{slug}\"\ntitle = \"{title}\"\n"
        ));
    }
    for (file, _, id, category, province, _) in SAMPLES {
        text.push_str(&format!(
            "\n[[feed]]\nid = \"{id}\"\nurl = \"{samples_base}/samples/{file}\"\ncategory = \"{category}\"\nprovince = \"{province}\"\n"
        ));
    }
    text
}

/// Runs the demo in `dir`: serve, configure, poll, show.
pub async fn run(dir: &Path) -> anyhow::Result<i32> {
    std::fs::create_dir_all(dir)?;
    let base = serve_samples().await?;
    let config_path = dir.join("feeds.toml");
    std::fs::write(&config_path, config_text(&base))?;
    println!(
        "Serving {} bundled sample feeds at {base}/samples/",
        SAMPLES.len()
    );
    let config = crate::cli::load_config(&config_path)?;
    crate::cli::poll(config.clone(), true, true).await?;
    println!();
    crate::cli::feeds(config, false).await?;
    println!(
        "\nStored in {}. Run `tinbao demo` again: nothing is stored twice.",
        dir.join("tinbao.db").display()
    );
    println!(
        "Look around: tinbao --config {} feeds --json",
        config_path.display()
    );
    Ok(0)
}
