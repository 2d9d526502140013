//! The digest outbox: builds the digests subscribers are owed at a tick (a transaction per group
//! of subscribers: each digest with its item list, its ledger rows, the subscriber's tick and
//! cursor), and sends pending ones over SMTP. A 4xx or a dead server is retried with backoff
//! (state in the database, so it survives a restart); a 5xx fails that digest only, and
//! repeated failures mark the subscriber bouncing. The Message-ID is fixed per subscriber and
//! tick, so a resend after a crash is recognisable.

use super::assemble::{Due, assemble};
use super::links::{Links, Purpose};
use super::render::{
    DigestView, PreparedStory, Rendered, Section, Story, Templates, render, render_8bit,
};
use super::schedule::due_tick;
pub use super::smtp::SendError;
use super::smtp::{Pool, Relay, Session, chain};
use super::topic::{Topic, province_name};
use crate::config::Config;
use crate::storage::{DigestItem, NewDigest, PendingDigest, Store, StoryMember, Subscriber};
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

/// Where digests go.
#[derive(Clone)]
pub enum Mailer {
    /// `smtp://` (plain or STARTTLS): our own connection pool (see `digest::smtp`).
    Pool(Arc<Pool>),
    /// `smtps://` (implicit TLS): lettre's pooled transport.
    Smtps(AsyncSmtpTransport<Tokio1Executor>),
    /// `file://DIR`: each message written as DIR/<id>.eml.
    File(AsyncFileTransport<Tokio1Executor>),
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
        if let Some(relay) = Relay::from_url(url, SMTP_TIMEOUT)? {
            return Ok(Mailer::Pool(Arc::new(Pool::new(relay, SEND_CONCURRENCY))));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .with_context(|| format!("smtp url {url:?}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new().max_size(SEND_CONCURRENCY as u32),
            )
            .build();
        Ok(Mailer::Smtps(transport))
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_rendered(|_| Ok(Rendered::from_message(&message)))
            .await
            .map(drop)
    }

    /// Renders with `render(eight_bit)` (`eight_bit`: the server takes 8-bit bodies), then
    /// sends. For the pool, rendering happens before a connection is free, in the form the
    /// relay's connections have announced so far, and again only if the connection it gets
    /// says otherwise. A rendering error is transient: an operator's template fix lets the
    /// retry through. The connection stays this send's until the returned `Delivered` is
    /// dropped.
    pub async fn send_rendered(
        &self,
        render: impl Fn(bool) -> anyhow::Result<Rendered>,
    ) -> Result<Delivered<'_>, SendError> {
        let rendering = |e: anyhow::Error| SendError {
            transient: true,
            message: format!("rendering: {e:#}"),
        };
        match self {
            Mailer::Pool(pool) => {
                let early = pool.eight_bit_hint().map(|guess| (guess, render(guess)));
                let mut session = pool.session().await?;
                let eight_bit = session.eight_bit();
                let message = match early {
                    Some((guess, message)) if guess == eight_bit => message,
                    _ => render(eight_bit),
                }
                .map_err(rendering)?;
                session.send(&message.envelope, message.data).await?;
                Ok(Delivered(Some(session)))
            }
            Mailer::Smtps(t) => {
                let message = render(false).map_err(rendering)?;
                t.send_raw(&message.envelope, message.data.as_bytes())
                    .await
                    .map(|_| Delivered(None))
                    .map_err(|e| SendError::from(&e))
            }
            Mailer::File(t) => {
                // A file has no transport limits: UTF-8 bodies, readable in any text editor.
                let message = render(true).map_err(rendering)?;
                let sent = t.send_raw(&message.envelope, message.data.as_bytes()).await;
                sent.map(|_| Delivered(None)).map_err(|e| SendError {
                    transient: true,
                    message: chain(&e),
                })
            }
        }
    }

    /// Closes idle connections (QUIT), at the end of a run.
    pub async fn close(&self) {
        match self {
            Mailer::Pool(pool) => pool.close_idle().await,
            Mailer::Smtps(t) => t.shutdown().await,
            Mailer::File(_) => {}
        }
    }
}

/// A message the server accepted. For the pool, its connection takes no other message until
/// this is dropped: the outbox records the delivery first, so no more digests than the pool has
/// connections are ever delivered but not yet recorded (what a crash can resend).
pub struct Delivered<'a>(#[allow(dead_code)] Option<Session<'a>>);

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
    async fn due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(Subscriber, Due)>> {
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

    /// Builds the digests owed at `now` into the outbox.
    pub async fn build_due(&self, now: DateTime<Utc>) -> anyhow::Result<BuildSummary> {
        self.build(now, None).await
    }

    /// `build_due`, telling `progress` each time a group of digests is committed.
    async fn build(
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

    /// `send_due`, checking `keep_going` before each digest: a stopping daemon finishes the sends
    /// in flight and leaves the rest pending for its next start.
    ///
    /// Claiming a batch, minting its links and preparing its emails runs one batch ahead of the
    /// sends (a channel of one batch between them), so the connections never wait for the
    /// database between batches.
    pub async fn send_due_while(
        &self,
        mailer: &Mailer,
        now: DateTime<Utc>,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> anyhow::Result<SendSummary> {
        self.send_while(mailer, now, keep_going, None).await
    }

    /// `send_due_while`; with `built`, while a build is committing groups of digests: an empty
    /// outbox then means waiting for the next group, until the build has ended.
    async fn send_while(
        &self,
        mailer: &Mailer,
        now: DateTime<Utc>,
        keep_going: &(dyn Fn() -> bool + Sync),
        mut built: Option<&mut tokio::sync::watch::Receiver<()>>,
    ) -> anyhow::Result<SendSummary> {
        let marks = SentMarks::start(self.store.clone());
        let (ready, mut queue) = tokio::sync::mpsc::channel::<Ready>(SEND_BATCH);
        let produce = async move {
            let mut shelf = Shelf::default();
            while keep_going() {
                // Whatever the build commits after this point wakes the wait below.
                if let Some(built) = built.as_mut() {
                    built.borrow_and_update();
                }
                let batch = self.store.due_digests(now, SEND_BATCH).await?;
                let claimed = Utc::now();
                if batch.is_empty() {
                    let Some(b) = built.as_mut() else { break };
                    if b.changed().await.is_err() {
                        // The build has ended: one more claim sees all it committed.
                        built = None;
                    }
                    continue;
                }
                // Each email's manage and unsubscribe links, minted for the batch in one write.
                let ids: Vec<i64> = batch.iter().map(|d| d.subscriber_id).collect();
                let links = self
                    .links
                    .mint_email_links(&self.store, &ids, Utc::now())
                    .await?;
                // The batch's stories: read and prepared once for the whole run.
                let wanted: Vec<i64> = batch
                    .iter()
                    .flat_map(|d| d.items.iter().map(|(id, _)| *id))
                    .collect();
                shelf.stories.stock(&self.store, wanted).await?;
                for (d, links) in batch.into_iter().zip(links) {
                    let mut view = self.view(
                        &mut shelf,
                        &d.email,
                        &d.timezone,
                        d.subscriber_id,
                        d.tick_at,
                        &d.topics,
                        &d.items,
                    )?;
                    view.manage_url = links.manage;
                    view.unsubscribe_url = links.unsubscribe;
                    if ready.send((d, view, claimed)).await.is_err() {
                        // The sending side stopped on an error; it reports it.
                        return Ok(());
                    }
                }
            }
            anyhow::Ok(())
        };
        // Owns the receiving end: if sending stops on an error, the producer's next hand-over
        // fails and it stops too.
        let send = async move {
            // A stop takes effect at the next digest: what is claimed but not yet sent is left
            // to the lease (released when the store closes, or when it runs out).
            let queued = futures_util::stream::poll_fn(|cx| queue.poll_recv(cx))
                .take_while(|_| std::future::ready(keep_going()));
            // Each send is its own task, so rendering spreads over the cores.
            let mut outcomes = queued
                .map(|(d, view, claimed)| {
                    let (this, mailer, marks) = (self.clone(), mailer.clone(), marks.clone());
                    tokio::spawn(async move {
                        this.send_one(&mailer, &marks, d, view, now, claimed).await
                    })
                })
                .buffer_unordered(IN_PROGRESS);
            let mut summary = SendSummary::default();
            while let Some(outcome) = outcomes.next().await {
                match outcome.context("a send task failed")?? {
                    Outcome::Sent => summary.sent += 1,
                    Outcome::Retry => summary.retried += 1,
                    Outcome::Failed => summary.failed += 1,
                    Outcome::Skipped => {}
                }
            }
            anyhow::Ok(summary)
        };
        let (produced, sent) = futures_util::future::join(produce, send).await;
        // What the sent log holds goes into the outbox before the run reports.
        let flushed = self.store.flush_sent().await;
        produced?;
        let sent = sent?;
        flushed?;
        Ok(sent)
    }

    async fn send_one(
        &self,
        mailer: &Mailer,
        marks: &SentMarks,
        d: PendingDigest,
        view: DigestView,
        now: DateTime<Utc>,
        claimed: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let (id, email, attempts, failures) = (d.id, d.email.clone(), d.attempts, d.failures);
        // A slow relay can make a batch outlast its lease; past half of it, each send first
        // makes sure the digest is still this process's (and extends the lease), so another
        // process that took it over is never doubled.
        if Utc::now() - claimed > self.store.lease() / 2
            && !self.store.renew_digest_lease(id, Utc::now()).await?
        {
            tracing::info!(to = %email, "digest left to the process that took it over");
            return Ok(Outcome::Skipped);
        }
        let from = self.from()?;
        let templates = &self.templates;
        let result = mailer
            .send_rendered(|eight_bit| match eight_bit {
                true => render_8bit(&view, templates, &from),
                false => render(&view, templates, &from).map(|m| Rendered::from_message(&m)),
            })
            .await;
        if let Err(e) = &result {
            let kind = if e.transient {
                "transient"
            } else {
                "permanent"
            };
            metrics::counter!("tinbao_smtp_errors_total", "kind" => kind).increment(1);
        }
        Ok(match result {
            Ok(delivered) => {
                // Recorded while the connection is still this send's (see `Delivered`).
                marks.record(id, failures > 0).await?;
                drop(delivered);
                Outcome::Sent
            }
            Err(e) if e.transient => {
                // From the run's own clock, so this run never picks the digest up again.
                let next = now + backoff(attempts + 1);
                tracing::warn!(to = %email, error = %e.message, retry_at = %next, "digest not sent; will retry");
                self.store.retry_digest(id, &e.message, next).await?;
                Outcome::Retry
            }
            Err(e) => {
                tracing::warn!(to = %email, error = %e.message, "digest refused permanently");
                self.store.fail_digest(id, &e.message, BOUNCE_AFTER).await?;
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
    /// newest first, capped at `max_items`. `items` are (item id, topic position), their
    /// stories on `shelf`.
    #[allow(clippy::too_many_arguments)]
    fn view(
        &self,
        shelf: &mut Shelf,
        email: &str,
        timezone: &str,
        subscriber_id: i64,
        tick: DateTime<Utc>,
        topic_specs: &[String],
        items: &[(i64, usize)],
    ) -> anyhow::Result<DigestView> {
        let tz = Tz::from_str(timezone).unwrap_or(self.config.digest.timezone);
        for spec in topic_specs {
            // A spec that no longer parses titles its stories "Tin mới" (`parsed` says why).
            let _ = shelf.topics.parse(spec, &self.config);
        }
        let parsed: Vec<Option<&(Topic, String)>> =
            topic_specs.iter().map(|s| shelf.topics.get(s)).collect();
        let mut ordered: Vec<(usize, &DigestItem)> = items
            .iter()
            .filter_map(|(id, position)| Some((*position, &shelf.stories.read.get(id)?.0)))
            .collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.published_at.cmp(&a.1.published_at)));
        let mut seen_clusters = std::collections::HashSet::new();
        let mut shown: Vec<(usize, i64)> = Vec::new();
        let mut more = 0;
        for (position, item) in ordered {
            if !seen_clusters.insert(item.cluster_id) {
                continue;
            }
            if shown.len() >= self.config.digest.max_items {
                more += 1;
                continue;
            }
            shown.push((position, item.id));
        }
        let mut sections: Vec<Section> = Vec::new();
        for (position, id) in shown {
            let title = parsed
                .get(position)
                .copied()
                .flatten()
                .map_or("Tin mới", |(_, title)| title.as_str());
            if sections.last().is_none_or(|s| s.title != title) {
                sections.push(Section {
                    title: title.to_string(),
                    stories: Vec::new(),
                });
            }
            let story = shelf.stories.prepared(id, tz, &self.templates)?;
            if let Some(section) = sections.last_mut() {
                section.stories.push(story);
            }
        }
        let base = self.config.server.base_url.to_string();
        let topics: Vec<&Topic> = parsed.iter().flatten().map(|(t, _)| t).collect();
        // Placeholders: the sender puts fresh links in; a dry run stores no tokens.
        let [manage_url, unsubscribe_url] =
            [Purpose::Manage, Purpose::Unsubscribe].map(|p| self.links.url(p, "dry-run"));
        Ok(DigestView {
            to: email.to_string(),
            tick,
            timezone: tz,
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
    fn place(&self, topics: &[&Topic]) -> String {
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

/// A claimed digest with its email's content, and when its batch was claimed.
type Ready = (PendingDigest, DigestView, DateTime<Utc>);

/// Records each delivered digest before its send task ends (so a crash resends at most the
/// digests in flight). On SQLite, a line in the store's sent log (`Store::record_sent`), applied
/// to the outbox in bulk before the next claim. Otherwise (PostgreSQL) "sent" marks written in
/// groups: each send waits until its own mark is committed, but the sends that end while a
/// commit is under way share the next one.
#[derive(Clone)]
enum SentMarks {
    Log(Store),
    Grouped(tokio::sync::mpsc::UnboundedSender<SentMark>),
}

/// A digest delivered: its id, whether its subscriber had failures to reset, and who waits.
type SentMark = (i64, bool, tokio::sync::oneshot::Sender<Result<(), String>>);

impl SentMarks {
    /// The group writer task ends when the last handle is dropped.
    fn start(store: Store) -> SentMarks {
        if store.has_sent_log() {
            return SentMarks::Log(store);
        }
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<SentMark>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut group = vec![first];
                // Let the tasks that are ready run first: sends finishing at about the same
                // time then share this commit instead of each waiting for one of their own.
                for _ in 0..GATHER_YIELDS {
                    tokio::task::yield_now().await;
                }
                while let Ok(next) = queue.try_recv() {
                    group.push(next);
                }
                let ids: Vec<i64> = group.iter().map(|(id, _, _)| *id).collect();
                let clear = group.iter().any(|(_, clear, _)| *clear);
                let written = store
                    .mark_digests_sent(&ids, clear, Utc::now())
                    .await
                    .map_err(|e| format!("{e:#}"));
                for (_, _, done) in group {
                    let _ = done.send(written.clone());
                }
            }
        });
        SentMarks::Grouped(jobs)
    }

    async fn record(&self, digest_id: i64, clear_failures: bool) -> anyhow::Result<()> {
        let jobs = match self {
            SentMarks::Log(store) => {
                return store
                    .record_sent(digest_id, clear_failures, Utc::now())
                    .await;
            }
            SentMarks::Grouped(jobs) => jobs,
        };
        let (done, written) = tokio::sync::oneshot::channel();
        jobs.send((digest_id, clear_failures, done))
            .map_err(|_| anyhow::anyhow!("the sent-mark writer stopped"))?;
        written
            .await
            .map_err(|_| anyhow::anyhow!("the sent-mark writer stopped"))?
            .map_err(|e| anyhow::anyhow!("recording digest {digest_id} as sent: {e}"))
    }
}

/// What a run has read and prepared for its digests' emails, kept for the whole run.
#[derive(Default)]
struct Shelf {
    topics: Topics,
    stories: Stories,
}

/// Topic specs as written, each parsed once per run (thousands of subscribers follow the same
/// few hundred), with its section title; a spec that no longer parses keeps the reason.
#[derive(Default)]
struct Topics(HashMap<String, Result<(Topic, String), String>>);

impl Topics {
    fn parse(&mut self, spec: &str, config: &Config) -> Result<&Topic, &str> {
        if !self.0.contains_key(spec) {
            let parsed = Topic::parse(spec, config)
                .map(|t| {
                    let title = t.describe(config);
                    (t, title)
                })
                .map_err(|e| e.to_string());
            self.0.insert(spec.to_string(), parsed);
        }
        match &self.0[spec] {
            Ok((topic, _)) => Ok(topic),
            Err(e) => Err(e),
        }
    }

    /// A spec `parse` has seen, if it parsed: the topic and its section title.
    fn get(&self, spec: &str) -> Option<&(Topic, String)> {
        self.0.get(spec)?.as_ref().ok()
    }
}

/// Other outlets carrying a story: (name, link).
type Outlets = Vec<(String, Option<String>)>;

/// The stories a run's digests show. Thousands of digests carry the same few hundred stories:
/// each is read, and rendered for each timezone, once per run.
#[derive(Default)]
struct Stories {
    /// Each item read, with the other outlets carrying its story.
    read: HashMap<i64, (DigestItem, Outlets)>,
    prepared: HashMap<(i64, Tz), PreparedStory>,
}

impl Stories {
    /// Reads the items in `wanted` that are not read yet, with the other outlets of their
    /// stories: two queries.
    async fn stock(&mut self, store: &Store, wanted: Vec<i64>) -> anyhow::Result<()> {
        let mut missing: Vec<i64> = wanted
            .into_iter()
            .filter(|id| !self.read.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let items = store.digest_items(&missing).await?;
        let mut clusters: Vec<i64> = items.iter().map(|i| i.cluster_id).collect();
        clusters.sort_unstable();
        clusters.dedup();
        let mut members: HashMap<i64, Vec<StoryMember>> = HashMap::new();
        for m in store.story_members(&clusters).await? {
            members.entry(m.cluster_id).or_default().push(m);
        }
        for item in items {
            let also = members
                .get(&item.cluster_id)
                .into_iter()
                .flatten()
                .filter(|m| m.id != item.id && m.url != item.url)
                .map(|m| (m.feed_title.clone(), m.url.clone()))
                .collect();
            self.read.insert(item.id, (item, also));
        }
        Ok(())
    }

    /// Item `id` (read) as shown to readers in `tz`.
    fn prepared(
        &mut self,
        id: i64,
        tz: Tz,
        templates: &Templates,
    ) -> anyhow::Result<PreparedStory> {
        if let Some(done) = self.prepared.get(&(id, tz)) {
            return Ok(done.clone());
        }
        let (item, also) = self
            .read
            .get(&id)
            .with_context(|| format!("item {id} was not read"))?;
        let story = Story {
            title: item.title.clone(),
            url: item.url.clone(),
            source: item.feed_title.clone(),
            summary: shorten(&item.text, 300),
            published: item.published_at,
            also: also.clone(),
        };
        let done = templates.prepare(&story, tz)?;
        self.prepared.insert((id, tz), done.clone());
        Ok(done)
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
