//! The one fetch → parse → store sequence for a feed, and a poll round over many feeds. Every
//! failure ends as data on the feed's row (error, count, next try); one feed's trouble never
//! stops the others.

use super::fetcher::{FetchOutcome, Fetched, Fetcher};
use super::filter::Rules;
use super::html_source;
use super::parser::{self, ParseContext};
use super::schedule::{self, Outcome};
use super::skim::Memory;
use crate::config::Config;
use crate::model::NewItem;
use crate::storage::{FeedRow, FeedUpdate, Store, StoreCounts};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use url::Url;

/// How one feed's poll ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedResult {
    /// 304, or a body identical to the last one.
    NotModified,
    Stored(StoreCounts),
    Failed(String),
}

/// What a poll round did, for the one-line summary.
#[derive(Debug, Clone, Default)]
pub struct PollSummary {
    pub polled: usize,
    pub not_modified: usize,
    pub failed: usize,
    pub new: usize,
    pub updated: usize,
    pub elapsed: Duration,
    /// Feeds that gained or changed items: their merged feeds need regenerating.
    pub changed_feeds: std::collections::BTreeSet<String>,
}

impl std::fmt::Display for PollSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "polled {} feeds: {} not modified, {} failed, {} new items, {} updated ({:.2}s)",
            self.polled,
            self.not_modified,
            self.failed,
            self.new,
            self.updated,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Everything a refresh needs, passed as values.
#[derive(Clone)]
pub struct Refresher {
    pub store: Store,
    pub fetcher: Fetcher,
    pub config: std::sync::Arc<Config>,
    /// The story index kept between clustering rounds (see `cluster_new_items`).
    pub(super) stories: super::clustering::Kept,
}

impl Refresher {
    pub fn new(store: Store, config: std::sync::Arc<Config>) -> anyhow::Result<Refresher> {
        let fetcher = Fetcher::new(&config.polling)?;
        // The lease on claimed feeds (and digests: the store is shared) follows the config.
        store.set_lease(config.database.lease);
        Ok(Refresher {
            store,
            fetcher,
            config,
            stories: Default::default(),
        })
    }

    /// Polls the due feeds (or all active feeds), `polling.concurrency` at a time, then prunes
    /// items past retention. Feeds are claimed a few at a time as fetch slots free up (a lease
    /// each, see `Store::claim_due_feeds`), so processes sharing a database split the due feeds
    /// between them and none is fetched twice at once.
    pub async fn poll_round(&self, all: bool) -> anyhow::Result<PollSummary> {
        let started = Instant::now();
        let concurrency = self.config.polling.concurrency.max(1);
        let mut summary = PollSummary::default();
        let error_slot: std::sync::Arc<std::sync::Mutex<Option<anyhow::Error>>> =
            Default::default();
        let claims = Claims {
            refresher: self.clone(),
            all,
            batch: concurrency,
            error: error_slot.clone(),
            queue: Default::default(),
            seen: Default::default(),
            done: false,
        };
        // The claim future owns its state (no borrows), so the round stays `Send`.
        let claims = futures_util::stream::unfold(claims, |mut claims| async move {
            let feed = claims.next().await?;
            Some((feed, claims))
        });
        let mut results = std::pin::pin!(
            claims
                .map(|feed| async move {
                    let id = feed.id.clone();
                    (id, self.refresh(feed).await)
                })
                .buffer_unordered(concurrency)
        );
        while let Some((id, result)) = results.next().await {
            summary.polled += 1;
            // Long rounds report progress (stderr, via the log).
            if summary.polled % 500 == 0 {
                tracing::info!("polled {} feeds", summary.polled);
            }
            match result {
                FeedResult::NotModified => summary.not_modified += 1,
                FeedResult::Stored(c) => {
                    summary.new += c.new;
                    summary.updated += c.updated;
                    if c.new + c.updated > 0 {
                        summary.changed_feeds.insert(id);
                    }
                }
                FeedResult::Failed(e) => {
                    tracing::warn!(feed = %id, error = %e, "poll failed");
                    summary.failed += 1;
                }
            }
        }
        if let Some(e) = error_slot.lock().ok().and_then(|mut e| e.take()) {
            return Err(e.context("claiming due feeds"));
        }
        metrics::counter!("tinbao_items_ingested_total", "kind" => "new")
            .increment(summary.new as u64);
        metrics::counter!("tinbao_items_ingested_total", "kind" => "updated")
            .increment(summary.updated as u64);
        metrics::counter!("tinbao_polls_total", "result" => "failed")
            .increment(summary.failed as u64);
        metrics::counter!("tinbao_polls_total", "result" => "ok")
            .increment((summary.polled - summary.failed) as u64);
        let now = Utc::now();
        let retention = chrono::Duration::from_std(self.config.database.retention)
            .unwrap_or(chrono::Duration::days(180));
        let pruned = self.store.prune_items(now - retention, now).await?;
        if pruned > 0 {
            tracing::info!(pruned, "items past retention pruned (tombstones kept)");
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Polls one feed and records the outcome on its row. Never returns an error: a failure of
    /// any step, the database included, is reported as `FeedResult::Failed`.
    pub async fn refresh(&self, feed: FeedRow) -> FeedResult {
        let now = Utc::now();
        let started = Instant::now();
        let result = self.try_refresh(&feed, now).await;
        metrics::histogram!("tinbao_fetch_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(result) => result,
            Err(failure) => {
                let error_count = feed.error_count + 1;
                let next = schedule::next_poll(
                    &self.config.polling,
                    &feed.id,
                    Outcome::Failed {
                        error_count,
                        retry_after: failure.retry_after,
                    },
                    now,
                );
                let update = FeedUpdate {
                    fetched_at: now,
                    status: failure.status,
                    error: Some(failure.message.clone()),
                    next_poll_at: next,
                    ..FeedUpdate::default()
                };
                if let Err(e) = self.store.record_failure(&feed.id, &update).await {
                    return FeedResult::Failed(format!(
                        "{}; and recording it failed: {e:#}",
                        failure.message
                    ));
                }
                FeedResult::Failed(failure.message)
            }
        }
    }

    async fn try_refresh(&self, feed: &FeedRow, now: DateTime<Utc>) -> Result<FeedResult, Failure> {
        let url = Url::parse(&feed.url)
            .map_err(|e| Failure::msg(format!("bad URL {}: {e}", feed.url)))?;
        let outcome = self
            .fetcher
            .fetch(&url, &feed.validators)
            .await
            .map_err(|e| Failure {
                status: e.status(),
                retry_after: e.retry_after(),
                message: e.to_string(),
            })?;
        match outcome {
            FetchOutcome::NotModified(fetched) => {
                self.record_unchanged(feed, &fetched, now).await?;
                Ok(FeedResult::NotModified)
            }
            FetchOutcome::Body(fetched) => {
                let body_hash = hash_bytes(&fetched.body);
                if feed.body_hash.as_deref() == Some(body_hash.as_str()) {
                    self.record_unchanged(feed, &fetched, now).await?;
                    return Ok(FeedResult::NotModified);
                }
                self.store_body(feed, fetched, body_hash, now).await
            }
        }
    }

    async fn store_body(
        &self,
        feed: &FeedRow,
        mut fetched: Fetched,
        body_hash: String,
        now: DateTime<Utc>,
    ) -> Result<FeedResult, Failure> {
        let ctx = ParseContext {
            base: Some(fetched.final_url.clone()),
            http_charset: fetched.charset(),
            timezone: self.config.digest.timezone,
            now,
        };
        let body = std::mem::take(&mut fetched.body);
        let rules = Rules::for_feed(&self.config, &feed.id);
        let known = feed.entry_memory.as_deref().and_then(Memory::from_bytes);
        let html = self
            .config
            .feeds
            .iter()
            .find(|f| f.id == feed.id)
            .and_then(|f| f.html.clone());
        // Parsing, sanitising and matching the rules are CPU work: off the async workers. Only
        // the entries the last stored document did not hold unchanged are read.
        let (mut parsed, skipped, fresh_skipped, memory) = tokio::task::spawn_blocking(move || {
            if let Some(selectors) = html {
                // A section page: read whole with the operator's selectors.
                return html_source::extract(&body, &ctx, &selectors).map(|mut parsed| {
                    let skipped = rules.apply(&mut parsed.items);
                    (parsed, skipped, skipped, None)
                });
            }
            let salt = parser::salt(&ctx, rules.text());
            parser::parse_remembering(&body, &ctx, known.as_ref(), salt).map(|mut read| {
                let skipped = read.apply(|item| rules.admits(item));
                let fresh_skipped = skipped - read.unchanged_skipped;
                (read.parsed, skipped, fresh_skipped, read.memory)
            })
        })
        .await
        .map_err(|e| Failure::msg(format!("parser crashed: {e}")))?
        .map_err(|e| Failure {
            status: Some(fetched.status),
            retry_after: None,
            message: format!("parse error: {e}"),
        })?;
        if fresh_skipped > 0 {
            metrics::counter!("tinbao_items_skipped_total").increment(fresh_skipped as u64);
        }
        parsed.items = self.signed(&feed.id, parsed.items).await?;
        let items_last_week = self
            .store
            .items_last_week(&feed.id, now)
            .await
            .map_err(Failure::db)?;
        let dated_new = parsed
            .items
            .iter()
            .filter(|i| !i.date_estimated && i.published > now - chrono::Duration::days(7))
            .count() as u32;
        let ttl = parsed.ttl.map(|m| Duration::from_secs(u64::from(m) * 60));
        let outcome = Outcome::Ok {
            items_last_week: Some(items_last_week.max(dated_new)),
            ttl,
            max_age: fetched.max_age,
        };
        let update = FeedUpdate {
            fetched_at: now,
            status: Some(fetched.status),
            error: None,
            next_poll_at: schedule::next_poll(&self.config.polling, &feed.id, outcome, now),
            validators: Some(fetched.validators.clone()),
            body_hash: Some(body_hash),
            title: parsed.title.clone(),
            site_url: parsed.link.clone(),
            format: Some(parsed.format.to_string()),
            moved_to: fetched.moved_to.as_ref().map(Url::to_string),
            ttl,
            source_updated: parsed.updated,
            skipped,
            entry_memory: Some(memory.map(|m| m.to_bytes())),
            full_text: self.config.full_text(&feed.id).is_some(),
        };
        let counts = self
            .store
            .store_poll(&feed.id, parsed.items, update)
            .await
            .map_err(Failure::db)?;
        Ok(FeedResult::Stored(counts))
    }

    /// `items` with the near-duplicate signatures of those the store will write (new, or with
    /// changed text), computed off the async workers. A changed document is mostly items
    /// already stored: they are not signed again.
    async fn signed(
        &self,
        feed_id: &str,
        mut items: Vec<NewItem>,
    ) -> Result<Vec<NewItem>, Failure> {
        let known = self
            .store
            .known_items(feed_id, &items)
            .await
            .map_err(Failure::db)?;
        tokio::task::spawn_blocking(move || {
            for item in &mut items {
                let written = match known.get(&item.key) {
                    None => true,
                    Some(hash) => hash.as_deref().is_some_and(|h| h != item.content_hash),
                };
                if written {
                    item.signature = crate::cluster::signature(&item.title, &item.text).to_bytes();
                }
            }
            items
        })
        .await
        .map_err(|e| Failure::msg(format!("signing items failed: {e}")))
    }

    async fn record_unchanged(
        &self,
        feed: &FeedRow,
        fetched: &Fetched,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let items_last_week = self
            .store
            .items_last_week(&feed.id, now)
            .await
            .map_err(Failure::db)?;
        let outcome = Outcome::Ok {
            items_last_week: Some(items_last_week),
            ttl: feed.ttl,
            max_age: fetched.max_age,
        };
        // A 304 may omit the validators: keep the ones that earned it.
        let validators = crate::model::Validators {
            etag: fetched
                .validators
                .etag
                .clone()
                .or_else(|| feed.validators.etag.clone()),
            last_modified: fetched
                .validators
                .last_modified
                .clone()
                .or_else(|| feed.validators.last_modified.clone()),
        };
        let update = FeedUpdate {
            fetched_at: now,
            status: Some(fetched.status),
            next_poll_at: schedule::next_poll(&self.config.polling, &feed.id, outcome, now),
            validators: Some(validators),
            moved_to: fetched.moved_to.as_ref().map(Url::to_string),
            ttl: feed.ttl,
            ..FeedUpdate::default()
        };
        self.store
            .record_unchanged(&feed.id, &update)
            .await
            .map_err(Failure::db)
    }
}

/// The feeds of one poll round, claimed in small batches as they are needed.
struct Claims {
    refresher: Refresher,
    all: bool,
    batch: usize,
    /// Where a failed claim is reported (the round then ends with that error).
    error: std::sync::Arc<std::sync::Mutex<Option<anyhow::Error>>>,
    queue: std::collections::VecDeque<FeedRow>,
    /// Feeds already handed out this round: one that comes back due (its next poll already
    /// passed) waits for the next round rather than looping.
    seen: std::collections::HashSet<String>,
    done: bool,
}

impl Claims {
    async fn next(&mut self) -> Option<FeedRow> {
        let (all, batch) = (self.all, self.batch);
        loop {
            if let Some(feed) = self.queue.pop_front() {
                return Some(feed);
            }
            if self.done {
                return None;
            }
            // `--all` takes every active feed in one claim: done feeds stay claimable for it.
            let limit = if all { usize::MAX >> 1 } else { batch };
            let claimed = match self
                .refresher
                .store
                .claim_due_feeds(Utc::now(), all, limit)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    self.done = true;
                    return None;
                }
            };
            self.done = all || claimed.is_empty();
            for feed in claimed {
                if self.seen.insert(feed.id.clone()) {
                    self.queue.push_back(feed);
                } else {
                    self.done = true;
                    if let Err(e) = self.refresher.store.release_feed(&feed.id).await {
                        tracing::warn!(feed = %feed.id, error = format!("{e:#}"), "releasing a feed failed");
                    }
                }
            }
        }
    }
}

/// Why a refresh failed, with what the scheduler needs from it.
struct Failure {
    status: Option<u16>,
    retry_after: Option<Duration>,
    message: String,
}

impl Failure {
    fn msg(message: String) -> Failure {
        Failure {
            status: None,
            retry_after: None,
            message,
        }
    }

    fn db(e: anyhow::Error) -> Failure {
        Failure::msg(format!("database: {e:#}"))
    }
}

fn hash_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
