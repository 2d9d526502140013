//! Building digests: each due subscriber's owed items matched once for the run, written into
//! the outbox a group of subscribers per transaction, or rendered as .eml files (a dry run).

use super::view::Shelf;
use super::{BUILD_GROUP, BuildSummary, Digester, LOOKBACK_DAYS};
use crate::digest::assemble::{Due, assemble};
use crate::digest::render::render_8bit;
use crate::storage::NewDigest;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::path::Path;

impl Digester {
    /// Builds the digests owed at `now` into the outbox.
    pub async fn build_due(&self, now: DateTime<Utc>) -> anyhow::Result<BuildSummary> {
        self.build(now, None).await
    }

    /// `build_due`, telling `progress` each time a group of digests is committed.
    pub(super) async fn build(
        &self,
        now: DateTime<Utc>,
        progress: Option<&tokio::sync::watch::Sender<()>>,
    ) -> anyhow::Result<BuildSummary> {
        let due = self.due(now).await?;
        let mut summary = BuildSummary {
            due: due.len(),
            ..BuildSummary::default()
        };
        if due.is_empty() {
            return Ok(summary);
        }
        let from = due.iter().map(|(_, d)| d.cursor).min().unwrap_or(0);
        let stories = self
            .store
            .stories_after(from, now - chrono::Duration::days(LOOKBACK_DAYS))
            .await?;
        let newest = stories.iter().map(|s| s.id).max().unwrap_or(0);
        let dues: Vec<Due> = due.iter().map(|(_, d)| d.clone()).collect();
        // Matching is pure CPU: off the async workers, which go on serving and sending.
        let owed = tokio::task::spawn_blocking(move || assemble(&dues, &stories))
            .await
            .context("matching digests failed")?;
        let digests: Vec<NewDigest> = due
            .iter()
            .zip(owed)
            .map(|((subscriber, d), items)| NewDigest {
                subscriber_id: subscriber.id,
                tick: d.tick,
                message_id: self.message_id(subscriber.id, d.tick),
                items,
                cursor: newest.max(d.cursor),
            })
            .collect();
        summary.empty = digests.iter().filter(|d| d.items.is_empty()).count();
        // A transaction per group of subscribers: few statements each, and a crash loses at
        // most one group's work (rebuilt at the next start: nothing in it was recorded).
        for group in digests.chunks(BUILD_GROUP) {
            summary.digests += self.store.create_digests(group, now).await?;
            if let Some(progress) = progress {
                progress.send_replace(());
            }
        }
        Ok(summary)
    }

    /// Writes the digests owed at `now` as .eml files into `dir`, recording nothing.
    pub async fn dry_run(&self, now: DateTime<Utc>, dir: &Path) -> anyhow::Result<usize> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let due = self.due(now).await?;
        let from = due.iter().map(|(_, d)| d.cursor).min().unwrap_or(0);
        let stories = self
            .store
            .stories_after(from, now - chrono::Duration::days(LOOKBACK_DAYS))
            .await?;
        let dues: Vec<Due> = due.iter().map(|(_, d)| d.clone()).collect();
        let mut shelf = Shelf::default();
        let mut written = 0;
        for ((subscriber, d), owed) in due.iter().zip(assemble(&dues, &stories)) {
            if owed.is_empty() {
                continue;
            }
            let wanted: Vec<i64> = owed.iter().map(|(id, _)| *id).collect();
            shelf.stories.stock(&self.store, wanted).await?;
            let view = self.view(
                &mut shelf,
                &subscriber.email,
                &subscriber.timezone,
                subscriber.id,
                d.tick,
                &subscriber.topics,
                &owed,
            )?;
            // As a server with 8BITMIME gets it: UTF-8 bodies, readable in any text editor.
            let message = render_8bit(&view, &self.templates, &self.from()?)?;
            let path = dir.join(format!(
                "digest-{}-{}.eml",
                subscriber.id,
                d.tick.timestamp()
            ));
            std::fs::write(&path, message.data)
                .with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
        Ok(written)
    }
}
