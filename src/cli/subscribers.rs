//! `tinbao subscribers add|list|remove|import`: the operator's side of the subscriber list.

use super::{SubscribersAction, open_store};
use crate::config::Config;
use anyhow::Context;
use chrono::Utc;
use std::io::Write;
use std::sync::Arc;

/// `tinbao subscribers …`.
pub async fn subscribers(config: Arc<Config>, action: SubscribersAction) -> anyhow::Result<i32> {
    let store = open_store(&config).await?;
    match action {
        SubscribersAction::Add {
            email,
            topics,
            schedule,
            timezone,
        } => {
            let new = validate_subscriber(&config, &email, &topics, &schedule, timezone.as_deref());
            match new {
                Err(reason) => {
                    eprintln!("tinbao: {reason}");
                    Ok(1)
                }
                Ok(new) => match store.add_subscriber(&new, Utc::now()).await {
                    Ok(id) => {
                        println!(
                            "added {} (#{id}, {}, {} topics)",
                            new.email,
                            new.schedule,
                            new.topics.len()
                        );
                        Ok(0)
                    }
                    Err(e) => {
                        eprintln!("tinbao: {e}");
                        Ok(1)
                    }
                },
            }
        }
        SubscribersAction::List { json } => {
            let all = store.subscribers().await?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &all)?;
                writeln!(out)?;
            } else {
                for s in &all {
                    writeln!(
                        out,
                        "{:<32} {:<12} {:<10} {}",
                        s.email,
                        s.status,
                        s.schedule,
                        s.topics.join(" | ")
                    )?;
                }
            }
            Ok(0)
        }
        SubscribersAction::Remove { email } => {
            let email = crate::digest::email::SubscriberEmail::parse(&email)
                .map(|e| e.to_string())
                .unwrap_or(email);
            if store.remove_subscriber(&email).await? {
                println!("removed {email}");
                Ok(0)
            } else {
                eprintln!("tinbao: {email} is not a subscriber");
                Ok(1)
            }
        }
        SubscribersAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (mut added, mut refused) = (0, 0);
            for (n, record) in csv_records(&text).into_iter().enumerate() {
                let line = n + 1;
                if line == 1
                    && record
                        .first()
                        .is_some_and(|f| f.eq_ignore_ascii_case("email"))
                {
                    continue;
                }
                let [email, schedule, topics @ ..] = record.as_slice() else {
                    eprintln!(
                        "{}:{line}: expected email,schedule,topic[,topic…]",
                        file.display()
                    );
                    refused += 1;
                    continue;
                };
                let result = match validate_subscriber(&config, email, topics, schedule, None) {
                    Ok(new) => store
                        .add_subscriber(&new, Utc::now())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(reason) => Err(reason),
                };
                match result {
                    Ok(()) => added += 1,
                    Err(reason) => {
                        eprintln!("{}:{line}: {reason}", file.display());
                        refused += 1;
                    }
                }
            }
            println!("imported {added} subscribers, refused {refused}");
            Ok(if refused > 0 { 1 } else { 0 })
        }
    }
}

/// Checks an operator's (or a form's) input for a new subscriber; the reason says what is wrong.
pub fn validate_subscriber(
    config: &Config,
    email: &str,
    topics: &[String],
    schedule: &str,
    timezone: Option<&str>,
) -> Result<crate::storage::NewSubscriber, String> {
    let email = crate::digest::email::SubscriberEmail::parse(email)?;
    if schedule != "immediate" && !config.digest.schedules.contains_key(schedule) {
        let mut known: Vec<&str> = config.digest.schedules.keys().map(String::as_str).collect();
        known.push("immediate");
        return Err(format!(
            "unknown schedule {schedule:?} (known: {})",
            known.join(", ")
        ));
    }
    if topics.is_empty() {
        return Err("at least one topic is needed".into());
    }
    let mut specs = Vec::new();
    for t in topics {
        let topic = crate::digest::topic::Topic::parse(t, config).map_err(|e| e.to_string())?;
        specs.push(topic.to_string());
    }
    let timezone = match timezone {
        Some(tz) => tz
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("unknown timezone {tz:?}"))?
            .name()
            .to_string(),
        None => config.digest.timezone.name().to_string(),
    };
    Ok(crate::storage::NewSubscriber {
        email: email.to_string(),
        status: "active".into(),
        schedule: schedule.into(),
        timezone,
        topics: specs,
    })
}

/// Records of a CSV text (RFC 4180: quoted fields, doubled quotes inside), blank lines skipped.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field).trim().to_string()),
            (false, '\n') => {
                record.push(std::mem::take(&mut field).trim().to_string());
                if record.iter().any(|f| !f.is_empty()) {
                    records.push(std::mem::take(&mut record));
                }
                record.clear();
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    record.push(field.trim().to_string());
    if record.iter().any(|f| !f.is_empty()) {
        records.push(record);
    }
    records
}
