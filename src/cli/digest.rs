//! `tinbao digest [--now [--to EMAIL]] [--dry-run DIR]`: digests by schedule, or now.

use super::open_store;
use crate::config::Config;
use chrono::Utc;
use std::path::PathBuf;
use std::sync::Arc;

/// `tinbao digest [--now [--to EMAIL]] [--dry-run DIR]`.
pub async fn digest(
    config: Arc<Config>,
    now_tick: bool,
    to: Option<String>,
    dry_run: Option<PathBuf>,
) -> anyhow::Result<i32> {
    use crate::digest::outbox::{Digester, Mailer, Ticks, run_summary};
    let store = open_store(&config).await?;
    if let Some(email) = &to {
        let subscribers = store.subscribers().await?;
        match subscribers
            .iter()
            .find(|s| s.email.eq_ignore_ascii_case(email))
        {
            None => {
                eprintln!("tinbao: no subscriber {email} (see `tinbao subscribers list`)");
                store.close().await;
                return Ok(1);
            }
            Some(s) if s.status != "active" => {
                eprintln!(
                    "tinbao: {email} is {}, not active: nothing to send",
                    s.status
                );
                store.close().await;
                return Ok(1);
            }
            Some(_) => {}
        }
    }
    let ticks = if now_tick {
        Ticks::Now { to }
    } else {
        Ticks::Schedule
    };
    let digester = Digester::new(store.clone(), config.clone())
        .await?
        .with_ticks(ticks);
    let now = Utc::now();
    if let Some(dir) = dry_run {
        let written = digester.dry_run(now, &dir).await?;
        store.close().await;
        println!(
            "wrote {written} digests to {} (nothing recorded as sent)",
            dir.display()
        );
        return Ok(0);
    }
    let Some(smtp) = &config.smtp else {
        eprintln!("tinbao: no [smtp] url configured; use --dry-run DIR to see the digests");
        store.close().await;
        return Ok(1);
    };
    let mailer = Mailer::from_url(&smtp.url, &config.base_dir())?;
    let (built, sent) = digester.run_due(&mailer, now, true, &|| true).await;
    mailer.close().await;
    store.close().await;
    let (built, sent) = (built?, sent?);
    println!("{}", run_summary(&built, &sent));
    Ok(if sent.undelivered() { 1 } else { 0 })
}
