//! `/`: an HTML index of the merged feeds with subscribe links and `<link rel="alternate">`
//! autodiscovery, and a link to the email sign-up when mail can be sent; `/opml`: the configured
//! sources by category (OPML 2.0), for importing into a feed reader.

use super::AppState;
use crate::publish::escape;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;

const INDEX: &str = include_str!("../../templates/index.html");

pub async fn index(State(state): State<AppState>) -> Response {
    let config = state.config();
    let base = config.server.base_url.to_string();
    // Links are built and escaped here (minijinja's HTML escaping would also escape every '/').
    let link = |path: &str| minijinja::Value::from_safe_string(escape(&format!("{base}{path}")));
    let feed = |path: String, title: String| {
        context! { title, rss => link(&format!("feeds/{path}.xml")), atom => link(&format!("feeds/{path}.atom")), json => link(&format!("feeds/{path}.json")) }
    };
    let categories: Vec<_> = config
        .categories
        .iter()
        .map(|c| feed(c.slug.clone(), c.title.clone()))
        .collect();
    let provinces: Vec<_> = state
        .site
        .names()
        .into_iter()
        .filter_map(|n| {
            n.strip_prefix("province/")
                .and_then(|n| n.strip_suffix(".xml"))
                .map(str::to_string)
        })
        .map(|slug| {
            let name = config
                .provinces
                .iter()
                .find(|p| p.slug == slug)
                .map_or(slug.clone(), |p| p.name.clone());
            feed(format!("province/{slug}"), name)
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let all = feed("all".into(), "Tất cả tin".into());
    let rendered = env
        .render_str(
            INDEX,
            context! {
                all, categories, provinces, opml => link("opml"), sources => config.feeds.len(),
                // Sign-up needs a way to send the confirmation email.
                subscribe => config.smtp.is_some().then(|| link("subscribe")),
            },
        )
        .unwrap_or_else(|e| format!("template error: {e}"));
    Html(rendered).into_response()
}

pub async fn opml(State(state): State<AppState>) -> Response {
    let config = state.config();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n<head><title>tinbao: nguồn tin</title></head>\n<body>\n",
    );
    for c in &config.categories {
        out.push_str(&format!(
            "<outline text=\"{0}\" title=\"{0}\">\n",
            escape(&c.title)
        ));
        for f in config
            .feeds
            .iter()
            .filter(|f| f.category == c.slug && f.enabled)
        {
            let title = f.title.clone().unwrap_or_else(|| f.id.clone());
            out.push_str(&format!(
                "<outline type=\"rss\" text=\"{0}\" title=\"{0}\" xmlUrl=\"{1}\"/>\n",
                escape(&title),
                escape(f.url.as_str())
            ));
        }
        out.push_str("</outline>\n");
    }
    out.push_str("</body>\n</opml>\n");
    ([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], out).into_response()
}
