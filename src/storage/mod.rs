//! The only module that speaks SQL. One file per table family (`feeds`, `items`); callers get
//! plain Rust values and never see a query. SQLite (bundled) today; the schema uses portable
//! types (Unix-second integers, TEXT) so PostgreSQL can follow with the same versions.

mod digests;
mod feeds;
mod items;
mod stories;
mod subscribers;

pub use digests::PendingDigest;
pub use feeds::{FeedRow, FeedState, FeedUpdate};
pub use items::{ItemRow, StoreCounts};
pub use stories::{ClusterRow, StoryFilter, StoryRow};
pub use subscribers::{NewSubscriber, Subscriber, SubscriberError};

use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{SqlStr, Transaction};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Embedded so the binary needs no migrations folder at run time. Append-only.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "feeds and items",
        include_str!("../../migrations/sqlite/0001_feeds_and_items.sql"),
    ),
    (
        2,
        "clusters",
        include_str!("../../migrations/sqlite/0002_clusters.sql"),
    ),
    (
        3,
        "subscribers and digests",
        include_str!("../../migrations/sqlite/0003_subscribers_and_digests.sql"),
    ),
];

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// SQLite has one writer; taking turns here avoids busy errors under concurrent polls.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Successful polls go to the group-commit writer (see `store_poll`).
    poll_jobs: tokio::sync::mpsc::Sender<items::PollJob>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// A relative SQLite path is taken relative to `base_dir` (the config file's folder).
    pub async fn open(url: &str, base_dir: &Path) -> anyhow::Result<Store> {
        let path = sqlite_path(url, base_dir)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        let (poll_jobs, jobs) = tokio::sync::mpsc::channel(256);
        let store = Store {
            pool,
            write_gate: Arc::default(),
            poll_jobs,
        };
        store.migrate().await.context("applying migrations")?;
        // The writer's own handle has a dead sender, so the writer stops once every `Store`
        // handed out is dropped.
        let (closed, _) = tokio::sync::mpsc::channel(1);
        let writer = Store {
            poll_jobs: closed,
            ..store.clone()
        };
        tokio::spawn(items::poll_writer(writer, jobs));
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrations = SQLITE_MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect::<Vec<_>>();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction, taking the single-writer turn first.
    async fn write(
        &self,
    ) -> anyhow::Result<(
        tokio::sync::OwnedMutexGuard<()>,
        Transaction<'static, sqlx::Sqlite>,
    )> {
        let guard = self.write_gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((guard, tx))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_path(url: &str, base_dir: &Path) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .with_context(|| format!("only sqlite:// databases are supported so far, not {url:?}"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    anyhow::ensure!(!rest.is_empty(), "database url {url:?} names no file");
    let path = PathBuf::from(rest);
    Ok(if path.is_absolute() {
        path
    } else {
        base_dir.join(path)
    })
}

/// Unix seconds, the storage form of every time.
pub(crate) fn secs(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn time(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}
