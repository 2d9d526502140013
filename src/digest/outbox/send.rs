//! Sending the outbox: pending digests claimed a batch at a time (the next batch prepared while
//! the current one sends), each sent on its own task and its delivery recorded before its
//! connection takes another, so a crash resends at most the digests in flight.

use super::view::Shelf;
use super::{
    BOUNCE_AFTER, Digester, GATHER_YIELDS, IN_PROGRESS, Mailer, Outcome, SEND_BATCH, SendSummary,
};
use crate::digest::render::{DigestView, Rendered, render, render_8bit};
use crate::storage::{PendingDigest, Store};
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

impl Digester {
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
    pub(super) async fn send_while(
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

/// Retry delay after `attempts` failures: 1, 2, 4 … minutes, at most 6 hours.
fn backoff(attempts: i64) -> chrono::Duration {
    let minutes = 1i64 << attempts.clamp(0, 9);
    chrono::Duration::minutes(minutes.min(360))
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
}
