//! `tinbao inspect URL --full-text [SELECTOR]`: one article page read for its body the way a
//! feed with `full_text` on would read it, without writing anything, so an operator can try a
//! selector (or see what the site rule or readability finds) before putting it in feeds.toml.

use crate::config::{Config, FullText};
use crate::reader::article;
use crate::reader::fetcher::Fetcher;
use anyhow::Context;
use std::io::Write;

/// Prints how the body was found, its length and its text (or, with `json`, its HTML too).
pub async fn inspect_article(
    config: &Config,
    source: &str,
    selector: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    let how = match selector.map(str::trim) {
        Some(s) if !s.is_empty() => {
            if let Some(e) = crate::reader::html_source::selector_error(s) {
                eprintln!("tinbao inspect: --full-text {s:?}: {e}");
                return Ok(2);
            }
            FullText::Selector(s.to_string())
        }
        _ => FullText::Auto,
    };
    let (bytes, url, content_type) = if source.starts_with("http://")
        || source.starts_with("https://")
    {
        let url = url::Url::parse(source).with_context(|| format!("invalid URL {source}"))?;
        let page = Fetcher::new(&config.polling)?.fetch_page(&url).await?;
        (page.body, page.final_url, page.content_type)
    } else {
        let path = std::fs::canonicalize(source).with_context(|| format!("reading {source}"))?;
        let url = url::Url::from_file_path(&path)
            .map_err(|()| anyhow::anyhow!("{source}: not a file path"))?;
        (
            std::fs::read(&path).with_context(|| format!("reading {source}"))?,
            url,
            None,
        )
    };
    let site = url.host_str().and_then(|h| config.site_rule(h));
    let body = match article::extract(&bytes, content_type.as_deref(), &url, &how, site) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("tinbao inspect: {source}: {e}");
            return Ok(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "url": url.as_str(),
            "found_by": body.how,
            "characters": body.text.chars().count(),
            "text": body.text,
            "html": body.html,
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{url} (body found by {}, {} characters)\n\n{}",
            body.how,
            body.text.chars().count(),
            body.text
        )?;
    }
    Ok(0)
}
