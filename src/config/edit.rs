//! Adding feeds to an operator's feeds.toml without disturbing it: the file is edited as a
//! document (toml_edit), so its comments, order and formatting stay, and new `[[category]]` and
//! `[[feed]]` tables are appended. The result is validated like `tinbao check` before anything
//! is written, and written by replacing the file atomically.

use super::Config;
use super::opml::Outline;
use std::collections::HashSet;
use std::path::Path;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

/// What an import adds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(slug, title)` of the categories created.
    pub categories: Vec<(String, String)>,
    /// `(id, url, category)` of the feeds added.
    pub feeds: Vec<(String, String, String)>,
    /// Outlines left out, with why (already in the file, or twice in the list).
    pub skipped: Vec<String>,
    /// The new file's text.
    pub text: String,
}

/// A slug of `title`: its syllables without diacritics (`đ` as `d`), lower-case ASCII joined by
/// hyphens: "Thời sự – Chính trị" → "thoi-su-chinh-tri". Empty when nothing is left.
pub fn slug(title: &str) -> String {
    let mut parts = Vec::new();
    for word in title.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let base: String = crate::text::base_form(word)
            .chars()
            .map(|c| if c == 'đ' { 'd' } else { c })
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if !base.is_empty() {
            parts.push(base);
        }
    }
    let mut out = parts.join("-");
    out.truncate(60);
    out.trim_end_matches('-').to_string()
}

/// The URL as duplicates are compared: canonical form, without a trailing slash.
fn same_feed_key(url: &url::Url) -> String {
    crate::reader::normalize::canonical_link(url)
        .trim_end_matches('/')
        .to_string()
}

/// Adds `outlines` to the feeds.toml text `text` (read from `path`): folders become categories
/// (by slug: an existing category of that slug or title is used), feeds already in the file or
/// listed twice are skipped. `fallback` is the category of outlines outside any folder. The new
/// text must pass validation, else its problems are the error.
pub fn add_outlines(
    text: &str,
    path: &Path,
    outlines: &[Outline],
    fallback: (&str, &str),
) -> Result<Plan, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let current = Config::parse(text, path, &|_| None).map_err(|e| e.to_string())?;
    let mut known_urls: HashSet<String> = current
        .feeds
        .iter()
        .map(|f| same_feed_key(&f.url))
        .collect();
    let mut ids: HashSet<String> = current.feeds.iter().map(|f| f.id.clone()).collect();
    let mut categories: Vec<(String, String)> = current
        .categories
        .iter()
        .map(|c| (c.slug.clone(), c.title.clone()))
        .collect();
    let mut plan = Plan::default();
    for o in outlines {
        if !known_urls.insert(same_feed_key(&o.url)) {
            plan.skipped
                .push(format!("{}: {} is already a feed", o.place, o.url));
            continue;
        }
        let (folder_slug, folder_title) = match &o.folder {
            Some(title) if !slug(title).is_empty() => (slug(title), title.clone()),
            _ => (fallback.0.to_string(), fallback.1.to_string()),
        };
        let category = match categories
            .iter()
            .find(|(s, t)| *s == folder_slug || crate::text::nfc(t) == folder_title)
        {
            Some((s, _)) => s.clone(),
            None => {
                categories.push((folder_slug.clone(), folder_title.clone()));
                plan.categories
                    .push((folder_slug.clone(), folder_title.clone()));
                folder_slug
            }
        };
        let base = match slug(&o.title) {
            s if s.is_empty() => slug(o.url.host_str().unwrap_or("nguon")),
            s => s,
        };
        let id = (1..)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|id| !ids.contains(id))
            .expect("an unused id");
        ids.insert(id.clone());
        plan.feeds.push((id, o.url.to_string(), category));
    }
    let titles: std::collections::HashMap<&str, &str> = outlines
        .iter()
        .map(|o| (o.url.as_str(), o.title.as_str()))
        .collect();
    for (slug, title) in &plan.categories {
        let mut t = Table::new();
        t["slug"] = value(slug.as_str());
        t["title"] = value(title.as_str());
        tables(&mut doc, "category")?.push(t);
    }
    for (id, url, category) in &plan.feeds {
        let mut t = Table::new();
        t["id"] = value(id.as_str());
        t["url"] = value(url.as_str());
        t["category"] = value(category.as_str());
        if let Some(title) = titles.get(url.as_str()).filter(|t| !t.is_empty()) {
            t["title"] = value(*title);
        }
        tables(&mut doc, "feed")?.push(t);
    }
    plan.text = doc.to_string();
    Config::parse(&plan.text, path, &|_| None).map_err(|e| {
        format!("the file would not be valid after the import, so nothing was written:\n{e}")
    })?;
    Ok(plan)
}

/// The document's array of `[[name]]` tables, made if missing.
fn tables<'a>(doc: &'a mut DocumentMut, name: &str) -> Result<&'a mut ArrayOfTables, String> {
    let item = doc
        .entry(name)
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut()
        .ok_or_else(|| format!("`{name}` in the file is not a list of [[{name}]] tables"))
}

/// Replaces `path` with `text` atomically: a temporary file beside it, synced, then renamed
/// over it (keeping the file's permissions).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("feeds.toml");
    let tmp = path.with_file_name(format!(".{name}.tinbao-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
