//! The digest outbox: builds the digests subscribers are owed at a tick (a transaction per group
//! of subscribers: each digest with its item list, its ledger rows, the subscriber's tick and
//! cursor), and sends pending ones over SMTP. A 4xx or a dead server is retried with backoff
//! (state in the database, so it survives a restart); a 5xx fails that digest only, and
//! repeated failures mark the subscriber bouncing. The Message-ID is fixed per subscriber and
//! tick, so a resend after a crash is recognisable.
//!
//! Its parts: `build` (who is owed what, into the outbox or as .eml files), `send` (claiming
//! pending digests, sending them, recording each delivery), `view` (an email's content from the
//! stories a run has read), `mailer` (where the emails go: SMTP pool, SMTPS, files).

mod build;
mod mailer;
mod send;
mod view;

pub use super::smtp::SendError;
pub use mailer::{Delivered, Mailer};

use super::assemble::Due;
use super::links::Links;
use super::render::Templates;
use super::schedule::due_tick;
use crate::config::Config;
use crate::storage::{Store, Subscriber};
use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use view::Topics;

/// Permanent failures in a row before a subscriber is marked bouncing.
const BOUNCE_AFTER: i64 = 3;
/// How far back a digest looks for items, whatever the cursor says.
const LOOKBACK_DAYS: i64 = 14;
/// Digests sent at once (the SMTP pool's size). Also the most a crash can resend: a digest's
/// connection takes the next one only once its delivery is recorded.
const SEND_CONCURRENCY: usize = 8;
/// Digests in progress: as many being rendered as being sent, so that a connection does not
/// wait for a rendering (only `SEND_CONCURRENCY` of them hold a connection).
const IN_PROGRESS: usize = 2 * SEND_CONCURRENCY;
/// Connecting, and each SMTP command, may take this long before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Digests claimed from the outbox at a time (the next batch is claimed and prepared while the
/// current one sends; a stop takes effect at the next digest).
const SEND_BATCH: usize = 256;
/// How many times the sent-mark writer lets ready tasks run before it commits a group (each
/// commit costs the database's single writer ~0.3 ms; groups were 1.8 marks on average
/// without this, and the writer was busy most of the run).
const GATHER_YIELDS: usize = 16;
/// Subscribers whose digests are built in one transaction.
const BUILD_GROUP: usize = 256;

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

impl SendSummary {
    /// Whether some digest could not go out (it waits for a retry, or failed for good).
    pub fn undelivered(&self) -> bool {
        self.retried + self.failed > 0
    }
}

/// A digest run as operators read it: "2 subscribers due: 2 digests built, 0 owed nothing; 2
/// sent, 0 to retry, 0 failed".
pub fn run_summary(built: &BuildSummary, sent: &SendSummary) -> String {
    format!(
        "{} subscribers due: {} digests built, {} owed nothing; {} sent, {} to retry, {} failed",
        built.due, built.digests, built.empty, sent.sent, sent.retried, sent.failed
    )
}

enum Outcome {
    Sent,
    Retry,
    Failed,
    /// Its lease ran out mid-batch and another process has it.
    Skipped,
}

/// Which subscribers a build owes a digest, and for which tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ticks {
    /// Those whose schedule passed a tick since their last one (the daemon, `tinbao digest`).
    #[default]
    Schedule,
    /// Every active subscriber (or the one with this address), with now as their tick: each
    /// gets what matched since their last digest, and their schedule goes on from now.
    Now { to: Option<String> },
}

#[derive(Clone)]
pub struct Digester {
    store: Store,
    config: Arc<Config>,
    templates: Arc<Templates>,
    links: Links,
    ticks: Ticks,
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
            ticks: Ticks::Schedule,
        })
    }

    /// This digester with `ticks` deciding who is due.
    pub fn with_ticks(mut self, ticks: Ticks) -> Digester {
        self.ticks = ticks;
        self
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Subscribers owed a digest at `now`, with their topics parsed (a topic that no longer
    /// parses, e.g. after a category was removed, is skipped and logged).
    pub(super) async fn due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(Subscriber, Due)>> {
        let mut out = Vec::new();
        let mut parsed = Topics::default();
        for s in self.store.subscribers().await? {
            if s.status != "active" {
                continue;
            }
            let since = s.last_tick_at.unwrap_or(s.created_at);
            let tick = match &self.ticks {
                Ticks::Schedule => {
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
                    due_tick(schedule, tz, since, now)
                }
                Ticks::Now { to } => {
                    if to
                        .as_ref()
                        .is_some_and(|to| !to.eq_ignore_ascii_case(&s.email))
                    {
                        continue;
                    }
                    // Whole seconds, as ticks are stored. Each `--now` is a tick of its own:
                    // one in the same second as the last tick takes the next second, so what
                    // was stored since that digest is owed (the cursor decides what is new).
                    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
                    match s.last_tick_at {
                        Some(last) => Some(now.max(last + chrono::Duration::seconds(1))),
                        None => Some(now),
                    }
                }
            };
            let Some(tick) = tick else {
                continue;
            };
            let mut topics = Vec::with_capacity(s.topics.len());
            for spec in &s.topics {
                match parsed.parse(spec, &self.config) {
                    Ok(topic) => topics.push(topic.clone()),
                    Err(e) => tracing::warn!(subscriber = %s.email, error = %e, "topic skipped"),
                }
            }
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

    /// Builds the digests owed at `now` (when `build`) and sends every pending one, the sends
    /// starting as soon as the first group of digests is committed rather than after the last.
    /// `keep_going` is checked before each digest sent (see `send_due_while`); the build, once
    /// started, runs to its end. Each part's outcome is its own: a failed build still lets what
    /// is pending go out.
    pub async fn run_due(
        &self,
        mailer: &Mailer,
        now: DateTime<Utc>,
        build: bool,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> (anyhow::Result<BuildSummary>, anyhow::Result<SendSummary>) {
        if !build {
            let sent = self.send_while(mailer, now, keep_going, None).await;
            return (Ok(BuildSummary::default()), sent);
        }
        // Told after each committed group; the build's end drops the sender.
        let (progress, mut built) = tokio::sync::watch::channel(());
        let this = self.clone();
        let building = tokio::spawn(async move { this.build(now, Some(&progress)).await });
        let sent = self
            .send_while(mailer, now, keep_going, Some(&mut built))
            .await;
        let built = match building.await {
            Ok(built) => built,
            Err(e) => Err(anyhow::anyhow!("the digest build stopped: {e}")),
        };
        (built, sent)
    }

    pub(super) fn from(&self) -> anyhow::Result<lettre::message::Mailbox> {
        let from = self
            .config
            .smtp
            .as_ref()
            .map_or("tinbao <tinbao@localhost>", |s| s.from.as_str());
        from.parse().with_context(|| format!("smtp from {from:?}"))
    }

    pub(super) fn message_id(&self, subscriber_id: i64, tick: DateTime<Utc>) -> String {
        let host = self
            .config
            .server
            .base_url
            .host_str()
            .unwrap_or("localhost");
        format!("<digest.{subscriber_id}.{}@{host}>", tick.timestamp())
    }
}
