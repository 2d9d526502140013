//! The full-text stage, between polling and clustering: the article pages of the items that
//! feeds with `full_text` on put on the queue are fetched (under the poll's limits) and read
//! for their body (`article`), which replaces the item's feed text, so topic queries and
//! clustering see the whole article. A page that cannot be read (hangs, is not HTML, is too
//! large, loops, says less than the teaser) is an error of that item only: it keeps its feed
//! text, and the page is tried again later, a bounded number of times.

use super::article::{self, Body};
use super::refresh::Refresher;
use crate::storage::{ArticleDone, ArticleJob, MAX_ATTEMPTS};
use chrono::Utc;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use url::Url;

/// Pages claimed at a time.
const BATCH: usize = 200;

/// What one stage did, for its summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FullTextSummary {
    pub read: usize,
    pub failed: usize,
    /// Of the failed: pages given up for good (their items keep their feed text).
    pub given_up: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for FullTextSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} article bodies stored, {} pages failed ({} given up) ({:.2}s)",
            self.read,
            self.failed,
            self.given_up,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The wait before a failed page is tried again, by attempts made so far.
fn backoff(attempts: i64) -> chrono::Duration {
    match attempts {
        ..=1 => chrono::Duration::minutes(15),
        _ => chrono::Duration::hours(2),
    }
}

impl Refresher {
    /// Reads the article pages that are due, `polling.concurrency` at a time. Only a database
    /// error fails the stage; a page's trouble is recorded on its queue row.
    pub async fn fetch_full_texts(&self) -> anyhow::Result<FullTextSummary> {
        let started = Instant::now();
        let mut summary = FullTextSummary::default();
        loop {
            let now = Utc::now();
            let jobs = self.store.claim_articles(now, BATCH).await?;
            if jobs.is_empty() {
                break;
            }
            let mut done = futures_util::stream::iter(jobs)
                .map(|job| async move {
                    let outcome = self.read_article(&job).await;
                    (job, outcome)
                })
                .buffer_unordered(self.config.polling.concurrency.max(1));
            // The batch's outcomes in one transaction, not one per page.
            let mut finished = Vec::new();
            while let Some((job, outcome)) = done.next().await {
                match outcome {
                    Ok(None) => finished.push(ArticleDone::Dropped {
                        item_id: job.item_id,
                    }),
                    Ok(Some((body, signature))) => {
                        metrics::counter!("tinbao_article_bodies_total", "outcome" => "stored")
                            .increment(1);
                        summary.read += 1;
                        finished.push(ArticleDone::Stored {
                            item_id: job.item_id,
                            html: body.html,
                            text: body.text,
                            signature,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(
                            feed = job.feed_id,
                            url = job.url,
                            error,
                            "article page not read"
                        );
                        metrics::counter!("tinbao_article_bodies_total", "outcome" => "failed")
                            .increment(1);
                        summary.failed += 1;
                        summary.given_up += usize::from(job.attempts >= MAX_ATTEMPTS);
                        let retry_at = now + backoff(job.attempts);
                        finished.push(ArticleDone::Failed {
                            job,
                            error,
                            retry_at,
                        });
                    }
                }
            }
            drop(done);
            self.store.finish_articles(&finished).await?;
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// One page: its body and signature, `None` when its feed no longer wants full text, or
    /// why it could not be read.
    async fn read_article(&self, job: &ArticleJob) -> Result<Option<(Body, Vec<u8>)>, String> {
        let Some(how) = self.config.full_text(&job.feed_id).cloned() else {
            return Ok(None);
        };
        let url = Url::parse(&job.url).map_err(|e| format!("bad article link {}: {e}", job.url))?;
        let page = self
            .fetcher
            .fetch_page(&url)
            .await
            .map_err(|e| e.to_string())?;
        let site = page
            .final_url
            .host_str()
            .and_then(|h| self.config.site_rule(h))
            .cloned();
        let (title, feed_text) = (job.title.clone(), job.text.clone());
        tokio::task::spawn_blocking(move || {
            let body = article::extract(
                &page.body,
                page.content_type.as_deref(),
                &page.final_url,
                &how,
                site.as_ref(),
            )?;
            if body.text.chars().count() <= feed_text.chars().count() {
                return Err(format!(
                    "the page's body ({} characters, by {}) says no more than the feed's text",
                    body.text.chars().count(),
                    body.how
                ));
            }
            let signature = crate::cluster::signature(&title, &body.text).to_bytes();
            Ok(Some((body, signature)))
        })
        .await
        .map_err(|e| format!("reading the page failed: {e}"))?
    }
}
