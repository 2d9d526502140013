//! One pass of the whole pipeline, for cron and systemd timers: poll, full text, cluster, publish,
//! digests, each stage a summary line on stdout. Every stage starts from what the database says is
//! unfinished (unclustered items, feeds marked unpublished, digests pending), not from what this
//! process did, so a pass killed at any point is completed by the next one.

use super::publisher::Publisher;
use crate::config::Config;
use crate::digest::outbox::{Digester, Mailer, run_summary};
use crate::reader::refresh::Refresher;
use crate::storage::Store;
use chrono::Utc;
use std::sync::Arc;
use std::time::Instant;

/// What one pass did: its lines (already printed) and the stages that failed.
#[derive(Debug, Default)]
pub struct Pass {
    pub failed: Vec<String>,
}

impl Pass {
    /// 0, or 1 with the failed stages named on stderr (what cron mails).
    pub fn exit_code(&self) -> i32 {
        if self.failed.is_empty() {
            return 0;
        }
        eprintln!("tinbao: failed: {}", self.failed.join("; "));
        1
    }
}

/// `tinbao run --once [--all]`: exit code 0, or 1 naming the failed stages on stderr.
pub async fn run(config: Arc<Config>, all: bool) -> anyhow::Result<i32> {
    let store = Store::open(&config.database.url, &config.base_dir()).await?;
    store.set_lease(config.database.lease);
    let pass = pass(&store, config, all).await;
    store.close().await;
    Ok(pass.exit_code())
}

/// Runs the four stages over `store`. A stage's failure is recorded and the next stages still
/// run: new items still get published when the SMTP server is down, and pending digests still
/// go out when a feed server is.
pub async fn pass(store: &Store, config: Arc<Config>, all: bool) -> Pass {
    let mut pass = Pass::default();
    let fail = |pass: &mut Pass, stage: &str, e: anyhow::Error| {
        println!("{stage}: failed: {e:#}");
        pass.failed.push(format!("{stage}: {e:#}"));
    };

    let refresher = match store.sync_feeds(&config.feeds, Utc::now()).await {
        Ok(()) => Refresher::new(store.clone(), config.clone()),
        Err(e) => Err(e.context("recording the configured feeds")),
    };
    let refresher = match refresher {
        Ok(refresher) => refresher,
        // The database or the fetcher settings are unusable: no later stage could do better.
        Err(e) => {
            fail(&mut pass, "poll", e);
            return pass;
        }
    };
    match refresher.poll_round(all).await {
        Ok(summary) => {
            println!("poll: {summary}");
            if summary.polled > 0 && summary.failed == summary.polled {
                pass.failed
                    .push(format!("poll: all {} feeds failed", summary.polled));
            }
        }
        Err(e) => fail(&mut pass, "poll", e),
    }

    if !config.any_full_text() {
        println!("full text: skipped (no feed has full_text on)");
    } else {
        match refresher.fetch_full_texts().await {
            Ok(summary) => println!("full text: {summary}"),
            Err(e) => fail(&mut pass, "full text", e),
        }
    }

    crate::seam::hold_before("cluster").await;
    let started = Instant::now();
    match refresher.cluster_new_items().await {
        Ok(n) => println!(
            "cluster: {n} new items given their story ({:.2}s)",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => fail(&mut pass, "cluster", e),
    }
    // The story index it keeps is for a next round, which a single pass does not have: it goes
    // before the merged feeds are rendered, rather than with the pass.
    drop(refresher);

    crate::seam::hold_before("publish").await;
    let started = Instant::now();
    let publisher = Publisher::files_only(store.clone(), config.clone());
    match publisher.catch_up().await {
        Ok((done, feeds)) => println!(
            "publish: {} merged feeds of {} changed sources: {} documents rendered, {} written ({:.2}s)",
            done.rendered / crate::publish::Format::ALL.len(),
            feeds.len(),
            done.rendered,
            done.changed,
            started.elapsed().as_secs_f64()
        ),
        Err(e) => fail(&mut pass, "publish", e),
    }
    // The hub's subscribers (taken by a `tinbao run` sharing the database) get what changed.
    if config.server.websub {
        match crate::websub::deliver_due(store, &config, Utc::now()).await {
            Ok(d) if d.sent + d.retried + d.dropped > 0 => println!(
                "websub: {} delivered, {} to retry, {} subscriptions dropped",
                d.sent, d.retried, d.dropped
            ),
            Ok(_) => {}
            Err(e) => fail(&mut pass, "websub", e),
        }
    }

    let mailer = match &config.smtp {
        Some(smtp) => Mailer::from_url(&smtp.url, &config.base_dir()).map(Some),
        None => Ok(None),
    };
    match mailer {
        Ok(Some(mailer)) => match digests(store, config, &mailer).await {
            Ok(line) => println!("digests: {line}"),
            Err(e) => fail(&mut pass, "digests", e),
        },
        Ok(None) => println!("digests: skipped (no [smtp] url configured)"),
        Err(e) => fail(&mut pass, "digests", e),
    }
    pass
}

/// Builds the digests due by schedule and sends the outbox. Digests that could not go out stay
/// pending for the next pass, and make this stage fail so that cron reports it.
async fn digests(store: &Store, config: Arc<Config>, mailer: &Mailer) -> anyhow::Result<String> {
    let digester = Digester::new(store.clone(), config).await?;
    let (built, sent) = digester.run_due(mailer, Utc::now(), true, &|| true).await;
    mailer.close().await;
    let (built, sent) = (built?, sent?);
    let line = run_summary(&built, &sent);
    if sent.undelivered() {
        anyhow::bail!("{line}");
    }
    Ok(line)
}
