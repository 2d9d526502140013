//! `tinbao import opml FILE [--dry-run]`: another reader's subscriptions into feeds.toml.

use crate::config::{edit, opml};
use std::path::Path;

/// Feeds outside any OPML folder go into this category.
const FALLBACK: (&str, &str) = ("tong-hop", "Tổng hợp");

/// Exit 0 with what was added (or would be), 1 with every refusal; the file is unchanged on
/// any refusal.
pub fn import_opml(config_path: &Path, file: &Path, dry_run: bool) -> anyhow::Result<i32> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tinbao import: {}: {e}", file.display());
            return Ok(1);
        }
    };
    let outlines = match opml::parse(&bytes) {
        Ok(o) => o,
        Err(refusals) => {
            for r in &refusals {
                eprintln!("{}: {r}", file.display());
            }
            eprintln!(
                "tinbao import: nothing imported; {} unchanged",
                config_path.display()
            );
            return Ok(1);
        }
    };
    let current = match std::fs::read_to_string(config_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => anyhow::bail!("{}: {e}", config_path.display()),
    };
    let plan = match edit::add_outlines(&current, config_path, &outlines, FALLBACK) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "tinbao import: nothing imported; {} unchanged",
                config_path.display()
            );
            return Ok(1);
        }
    };
    for s in &plan.skipped {
        println!("skipped {s}");
    }
    for (slug, title) in &plan.categories {
        println!("new category {slug} ({title})");
    }
    for (id, url, category) in &plan.feeds {
        println!("new feed {id} in {category}: {url}");
    }
    let verb = if dry_run { "would add" } else { "added" };
    println!(
        "{}: {verb} {} feeds and {} categories; {} skipped",
        config_path.display(),
        plan.feeds.len(),
        plan.categories.len(),
        plan.skipped.len()
    );
    if dry_run {
        // The lines it would add, each marked `+` (the file's own lines all stay, in order).
        let mut old = current.lines().peekable();
        let mut added = String::new();
        for line in plan.text.lines() {
            if old.peek() == Some(&line) {
                old.next();
            } else {
                added.push_str(format!("+ {line}").trim_end());
                added.push('\n');
            }
        }
        if !added.is_empty() {
            print!("\n{added}");
        }
    } else if !plan.feeds.is_empty() {
        edit::write_atomically(config_path, &plan.text)?;
    }
    Ok(0)
}
