//! The digest outbox: builds the digests subscribers are owed at a tick (one transaction each:
//! the digest, its ledger rows, the subscriber's tick and cursor), and sends pending ones with
//! lettre. A 4xx or a dead server is retried with backoff (state in the database, so it survives
//! a restart); a 5xx fails that digest only, and repeated failures mark the subscriber bouncing.
//! The Message-ID is fixed per subscriber and tick, so a resend after a crash is recognisable.

use super::assemble::{Due, assemble};
use super::links::{Links, Purpose};
use super::render::{DigestView, Section, Story, Templates, render};
use super::schedule::due_tick;
use super::topic::{Topic, province_name};
use crate::config::Config;
use crate::storage::{PendingDigest, Store, StoryRow, Subscriber};
use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::StreamExt;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Permanent failures in a row before a subscriber is marked bouncing.
const BOUNCE_AFTER: i64 = 3;
/// How far back a digest looks for items, whatever the cursor says.
const LOOKBACK_DAYS: i64 = 14;
/// Digests sent at once (the SMTP pool's size).
const SEND_CONCURRENCY: usize = 8;
/// Digests taken from the outbox at a time; a stopping daemon finishes at most one batch.
const SEND_BATCH: usize = 64;

/// Where digests go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `file://DIR`: each message written as DIR/<id>.eml.
    File(AsyncFileTransport<Tokio1Executor>),
}

/// Why a send failed, and whether trying again later may help.
#[derive(Debug)]
pub struct SendError {
    pub transient: bool,
    pub message: String,
}

impl Mailer {
    pub fn from_url(url: &str, base_dir: &Path) -> anyhow::Result<Mailer> {
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = if Path::new(dir).is_absolute() {
                Path::new(dir).to_path_buf()
            } else {
                base_dir.join(dir)
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(Mailer::File(AsyncFileTransport::new(dir)));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .with_context(|| format!("smtp url {url:?}"))?
            .timeout(Some(Duration::from_secs(30)))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new().max_size(SEND_CONCURRENCY as u32),
            )
            .build();
        Ok(Mailer::Smtp(transport))
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| SendError {
                // 5xx is the recipient's (or message's) fault and will not change by waiting;
                // anything else (4xx, connection refused, timeout) may.
                transient: !e.is_permanent(),
                message: chain(&e),
            }),
            Mailer::File(t) => t.send(message).await.map(|_| ()).map_err(|e| SendError {
                transient: true,
                message: chain(&e),
            }),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    /// Subscribers whose tick was due.
    pub due: usize,
    pub digests: usize,
    /// Due ticks that owed nothing (no email).
    pub empty: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

enum Outcome {
    Sent,
    Retry,
    Failed,
}

#[derive(Clone)]
pub struct Digester {
    store: Store,
    config: Arc<Config>,
    templates: Arc<Templates>,
    links: Links,
}

impl Digester {
    /// Templates come from `templates/` beside the config when present (operators edit them
    /// without rebuilding), else the built-in copies.
    pub async fn new(store: Store, config: Arc<Config>) -> anyhow::Result<Digester> {
        let dir = config.base_dir().join("templates");
        let templates = if dir.is_dir() {
            Templates::load(&dir)?
        } else {
            Templates::builtin()
        };
        let links = Links::new(store.link_secret().await?, config.server.base_url.clone());
        Ok(Digester {
            store,
            config,
            templates: Arc::new(templates),
            links,
        })
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Subscribers owed a digest at `now`, with their topics parsed (a topic that no longer
    /// parses, e.g. after a category was removed, is skipped and logged).
    async fn due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(Subscriber, Due)>> {
        let mut out = Vec::new();
        for s in self.store.subscribers().await? {
            if s.status != "active" {
                continue;
            }
            let tz = Tz::from_str(&s.timezone).unwrap_or(self.config.digest.timezone);
            let schedule = match s.schedule.as_str() {
                "immediate" => None,
                name => match self.config.digest.schedules.get(name) {
                    Some(schedule) => Some(schedule),
                    None => {
                        tracing::warn!(subscriber = %s.email, schedule = name, "unknown schedule: no digest until it is fixed");
                        continue;
                    }
                },
            };
            let since = s.last_tick_at.unwrap_or(s.created_at);
            let Some(tick) = due_tick(schedule, tz, since, now) else {
                continue;
            };
            let topics = s
                .topics
                .iter()
                .filter_map(|spec| {
                    Topic::parse(spec, &self.config)
                        .inspect_err(
                            |e| tracing::warn!(subscriber = %s.email, error = %e, "topic skipped"),
                        )
                        .ok()
                })
                .collect();
            let due = Due {
                subscriber_id: s.id,
                tick,
                cursor: s.cursor_item_id,
                topics,
            };
            out.push((s, due));
        }
        Ok(out)
    }

    /// Builds the digests owed at `now` into the outbox.
    pub async fn build_due(&self, now: DateTime<Utc>) -> anyhow::Result<BuildSummary> {
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
        let dues: Vec<Due> = due.iter().map(|(_, d)| d.clone()).collect();
        let owed = assemble(&dues, &stories);
        let newest = stories.iter().map(|s| s.id).max().unwrap_or(0);
        for ((subscriber, d), items) in due.iter().zip(owed) {
            let cursor = newest.max(d.cursor);
            if items.is_empty() {
                self.store.pass_tick(subscriber.id, d.tick, cursor).await?;
                summary.empty += 1;
                continue;
            }
            let message_id = self.message_id(subscriber.id, d.tick);
            if self
                .store
                .create_digest(subscriber.id, d.tick, &message_id, &items, cursor, now)
                .await?
                .is_some()
            {
                summary.digests += 1;
            }
        }
        Ok(summary)
    }

    /// Sends every pending digest due at `now`. Each digest's outcome is recorded the moment
    /// its send ends, so a crash mid-run resends at most the digests in flight (recognisable by
    /// their Message-ID), never a whole batch.
    pub async fn send_due(
        &self,
        mailer: &Mailer,
        now: DateTime<Utc>,
    ) -> anyhow::Result<SendSummary> {
        self.send_due_while(mailer, now, &|| true).await
    }

    /// `send_due`, checking `keep_going` between batches: a stopping daemon finishes the batch in
    /// flight and leaves the rest pending for its next start.
    pub async fn send_due_while(
        &self,
        mailer: &Mailer,
        now: DateTime<Utc>,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> anyhow::Result<SendSummary> {
        let mut summary = SendSummary::default();
        while keep_going() {
            let batch = self.store.due_digests(now, SEND_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            // Each email's manage and unsubscribe links, minted for the whole batch in one write.
            let ids: Vec<i64> = batch.iter().map(|d| d.subscriber_id).collect();
            let links = self
                .links
                .mint_many(
                    &self.store,
                    &ids,
                    &[Purpose::Manage, Purpose::Unsubscribe],
                    Utc::now(),
                )
                .await?;
            let outcomes: Vec<anyhow::Result<Outcome>> =
                futures_util::stream::iter(batch.into_iter().zip(links))
                    .map(|(d, links)| self.send_one(mailer, d, links, now))
                    .buffer_unordered(SEND_CONCURRENCY)
                    .collect()
                    .await;
            for outcome in outcomes {
                match outcome? {
                    Outcome::Sent => summary.sent += 1,
                    Outcome::Retry => summary.retried += 1,
                    Outcome::Failed => summary.failed += 1,
                }
            }
        }
        Ok(summary)
    }

    async fn send_one(
        &self,
        mailer: &Mailer,
        d: PendingDigest,
        links: Vec<String>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let result = match self.message(&d, links).await {
            Ok(m) => mailer.send(m).await,
            Err(e) => Err(SendError {
                transient: true,
                message: format!("rendering: {e:#}"),
            }),
        };
        if let Err(e) = &result {
            let kind = if e.transient {
                "transient"
            } else {
                "permanent"
            };
            metrics::counter!("tinbao_smtp_errors_total", "kind" => kind).increment(1);
        }
        Ok(match result {
            Ok(()) => {
                self.store.mark_digest_sent(d.id, Utc::now()).await?;
                Outcome::Sent
            }
            Err(e) if e.transient => {
                // From the run's own clock, so this run never picks the digest up again.
                let next = now + backoff(d.attempts + 1);
                tracing::warn!(to = %d.email, error = %e.message, retry_at = %next, "digest not sent; will retry");
                self.store.retry_digest(d.id, &e.message, next).await?;
                Outcome::Retry
            }
            Err(e) => {
                tracing::warn!(to = %d.email, error = %e.message, "digest refused permanently");
                self.store
                    .fail_digest(d.id, &e.message, BOUNCE_AFTER)
                    .await?;
                Outcome::Failed
            }
        })
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
        let by_id: HashMap<i64, &StoryRow> = stories.iter().map(|s| (s.id, s)).collect();
        let dues: Vec<Due> = due.iter().map(|(_, d)| d.clone()).collect();
        let mut written = 0;
        for ((subscriber, d), items) in due.iter().zip(assemble(&dues, &stories)) {
            if items.is_empty() {
                continue;
            }
            let rows: Vec<(usize, StoryRow)> = items
                .iter()
                .filter_map(|(id, t)| by_id.get(id).map(|s| (*t, (*s).clone())))
                .collect();
            let view = self
                .view(
                    subscriber.id,
                    &subscriber.email,
                    &subscriber.timezone,
                    d.tick,
                    &subscriber.topics,
                    rows,
                )
                .await?;
            let message = render(&view, &self.templates, &self.from()?)?;
            let path = dir.join(format!(
                "digest-{}-{}.eml",
                subscriber.id,
                d.tick.timestamp()
            ));
            std::fs::write(&path, message.formatted())
                .with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
        Ok(written)
    }

    /// The digest email, with `links` (fresh manage and unsubscribe URLs) in it.
    async fn message(&self, d: &PendingDigest, links: Vec<String>) -> anyhow::Result<Message> {
        let rows = self.store.digest_stories(d.id).await?;
        let mut view = self
            .view(
                d.subscriber_id,
                &d.email,
                &d.timezone,
                d.tick_at,
                &d.topics,
                rows,
            )
            .await?;
        [view.manage_url, view.unsubscribe_url] =
            <[String; 2]>::try_from(links).map_err(|_| anyhow::anyhow!("two links minted"))?;
        render(&view, &self.templates, &self.from()?)
    }

    fn from(&self) -> anyhow::Result<lettre::message::Mailbox> {
        let from = self
            .config
            .smtp
            .as_ref()
            .map_or("tinbao <tinbao@localhost>", |s| s.from.as_str());
        from.parse().with_context(|| format!("smtp from {from:?}"))
    }

    fn message_id(&self, subscriber_id: i64, tick: DateTime<Utc>) -> String {
        let host = self
            .config
            .server
            .base_url
            .host_str()
            .unwrap_or("localhost");
        format!("<digest.{subscriber_id}.{}@{host}>", tick.timestamp())
    }

    /// The email's content: stories grouped by topic, one per story (other outlets named),
    /// newest first, capped at `max_items`.
    async fn view(
        &self,
        subscriber_id: i64,
        email: &str,
        timezone: &str,
        tick: DateTime<Utc>,
        topic_specs: &[String],
        rows: Vec<(usize, StoryRow)>,
    ) -> anyhow::Result<DigestView> {
        let topics: Vec<Option<Topic>> = topic_specs
            .iter()
            .map(|s| Topic::parse(s, &self.config).ok())
            .collect();
        let clusters: Vec<i64> = rows.iter().map(|(_, r)| r.cluster_id).collect();
        let members = self.store.cluster_members(&clusters).await?;
        let mut sections: Vec<Section> = Vec::new();
        let mut seen_clusters = std::collections::HashSet::new();
        let mut shown = 0;
        let mut more = 0;
        let mut ordered = rows;
        ordered.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.published_at.cmp(&a.1.published_at)));
        for (position, row) in ordered {
            if !seen_clusters.insert(row.cluster_id) {
                continue;
            }
            if shown >= self.config.digest.max_items {
                more += 1;
                continue;
            }
            shown += 1;
            let title = topics
                .get(position)
                .and_then(Option::as_ref)
                .map_or_else(|| "Tin mới".to_string(), |t| t.describe(&self.config));
            if sections.last().is_none_or(|s| s.title != title) {
                sections.push(Section {
                    title,
                    stories: Vec::new(),
                });
            }
            let also = members
                .iter()
                .filter(|m| m.cluster_id == row.cluster_id && m.id != row.id && m.url != row.url)
                .map(|m| (m.feed_title.clone(), m.url.clone()))
                .collect();
            if let Some(section) = sections.last_mut() {
                section.stories.push(Story {
                    title: row.title.clone(),
                    url: row.url.clone(),
                    source: row.feed_title.clone(),
                    summary: shorten(&row.text, 300),
                    published: row.published_at,
                    also,
                });
            }
        }
        let base = self.config.server.base_url.to_string();
        // Placeholders: `message` puts fresh links in; a dry run stores no tokens.
        let [manage_url, unsubscribe_url] =
            [Purpose::Manage, Purpose::Unsubscribe].map(|p| self.links.url(p, "dry-run"));
        Ok(DigestView {
            to: email.to_string(),
            tick,
            timezone: Tz::from_str(timezone).unwrap_or(self.config.digest.timezone),
            place: self.place(&topics),
            sections,
            more,
            more_url: (more > 0).then(|| format!("{base}feeds/all.xml")),
            manage_url,
            unsubscribe_url,
            base_url: base,
            message_id: self.message_id(subscriber_id, tick),
        })
    }

    /// The subject's place: the one province all topics name, else the one category, else a
    /// general label.
    fn place(&self, topics: &[Option<Topic>]) -> String {
        let topics: Vec<&Topic> = topics.iter().flatten().collect();
        let mut provinces: Vec<&String> = topics.iter().flat_map(|t| &t.provinces).collect();
        provinces.dedup();
        if provinces.len() == 1 && topics.iter().all(|t| !t.provinces.is_empty()) {
            return province_name(&self.config, provinces[0]);
        }
        let mut categories: Vec<&String> = topics.iter().flat_map(|t| &t.categories).collect();
        categories.dedup();
        if categories.len() == 1 && topics.iter().all(|t| !t.categories.is_empty()) {
            return self
                .config
                .category(categories[0])
                .map_or(categories[0].clone(), |c| c.title.clone());
        }
        "các tỉnh".to_string()
    }
}

/// Retry delay after `attempts` failures: 1, 2, 4 … minutes, at most 6 hours.
fn backoff(attempts: i64) -> chrono::Duration {
    let minutes = 1i64 << attempts.clamp(0, 9);
    chrono::Duration::minutes(minutes.min(360))
}

/// At most `max` characters, cut at a word boundary, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let end = cut.rfind(' ').unwrap_or(cut.len());
    format!("{}…", cut[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), chrono::Duration::minutes(2));
        assert_eq!(backoff(3), chrono::Duration::minutes(8));
        assert_eq!(backoff(50), chrono::Duration::minutes(360));
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(shorten("Lào Cai mưa lớn", 9), "Lào Cai…");
        assert_eq!(shorten("ngắn", 10), "ngắn");
    }
}
