//! The only module that speaks SQL. One file per table family (`feeds`, `items`, …); callers get
//! plain Rust values and never see a query.
//!
//! Two databases, chosen by the URL's scheme: SQLite (bundled; one process, one writer) and
//! PostgreSQL (several `tinbao` processes sharing one database). Each statement is written once,
//! with SQLite's `?N` placeholders and SQL both accept (`ON CONFLICT`, `RETURNING`, `TRUE`/`FALSE`,
//! Unix-second integers, TEXT); [`Dialect::sql`] gives PostgreSQL its `$N` form. A body is
//! written once and compiled for both pools by [`on_pool!`] (and helper functions by
//! [`both_dialects!`]), so neither database is a second-class copy. The schema lives in
//! `migrations/sqlite` and `migrations/postgres`: the same versions and the same tables and
//! columns (a test checks), types differing only where the databases do (BIGINT, BOOLEAN, BYTEA).
//!
//! Work shared between processes is claimed, not assumed: a due feed or a due digest is taken
//! with a lease (owner + expiry; `FOR UPDATE SKIP LOCKED` on PostgreSQL), released when done, and
//! taken over by another process once it expires (its holder crashed).

/// Runs `$body` once per database kind, with `$pool` the concrete pool and `Db` naming its
/// `sqlx::Database` (so `Db::sql("…")`, `QueryBuilder::<Db>` and `d::helper` work in both).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::storage::Pool::Sqlite($pool) => {
                #[allow(dead_code, unused_imports)]
                type Db = ::sqlx::Sqlite;
                $body
            }
            $crate::storage::Pool::Postgres($pool) => {
                #[allow(dead_code, unused_imports)]
                type Db = ::sqlx::Postgres;
                $body
            }
        }
    };
    ($store:expr, $d:ident, |$pool:ident| $body:expr) => {
        on_pool!($store, $d = self, |$pool| $body)
    };
    // `$d` names the `both_dialects!` modules of file `$m` (e.g. `super::subscribers`).
    ($store:expr, $d:ident = $($m:ident)::+, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::storage::Pool::Sqlite($pool) => {
                #[allow(dead_code, unused_imports)]
                type Db = ::sqlx::Sqlite;
                use $($m)::+::sqlite as $d;
                $body
            }
            $crate::storage::Pool::Postgres($pool) => {
                #[allow(dead_code, unused_imports)]
                type Db = ::sqlx::Postgres;
                use $($m)::+::postgres as $d;
                $body
            }
        }
    };
}

/// Compiles helper functions twice, into modules `sqlite` and `postgres` of the calling file,
/// with `Db` and `Conn` naming that database and its connection. Items meant for other files
/// are `pub(in crate::storage)`, and reached from their twins as `peers::file::helper`.
macro_rules! both_dialects {
    ($($item:item)*) => {
        pub(in crate::storage) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::storage::peers::sqlite as peers;
            #[allow(dead_code)]
            type Db = ::sqlx::Sqlite;
            #[allow(dead_code)]
            type Conn = ::sqlx::SqliteConnection;
            $($item)*
        }
        pub(in crate::storage) mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::storage::peers::postgres as peers;
            #[allow(dead_code)]
            type Db = ::sqlx::Postgres;
            #[allow(dead_code)]
            type Conn = ::sqlx::PgConnection;
            $($item)*
        }
    };
}

/// The select list and join of a stored item with its source, as a string literal (so that
/// `concat!` can extend it into a `'static` statement).
macro_rules! story_columns {
    () => {
        story_columns!("")
    };
    // `$extra`: more columns, first in the list (each followed by ", ").
    ($extra:literal) => {
        concat!(
            "SELECT ",
            $extra,
            "i.id, COALESCE(s.cluster_id, i.id) AS cluster_id, i.feed_id, i.url, i.title, i.text,
            i.summary_html, i.content_html, i.authors, i.image_url, i.published_at, i.changed_at,
            COALESCE(f.configured_title, f.title, f.id) AS feed_title, f.url AS feed_url, f.site_url,
            f.source_updated_at, f.category, f.province
         FROM items i JOIN feeds f ON f.id = i.feed_id
         LEFT JOIN story_index s ON s.item_id = i.id "
        )
    };
}

mod articles;
mod clusters;
mod connect;
mod dialect;
mod digest_claims;
mod digests;
mod feeds;
mod items;
mod migrations;
mod poll_writes;
mod selfservice;
mod sent;
mod stories;
mod subscribers;
mod websub;

/// Each dialect's helpers of other files, for `both_dialects!` bodies (`peers::articles::…`).
mod peers {
    pub(in crate::storage) mod sqlite {
        pub(in crate::storage) use super::super::articles::sqlite as articles;
    }
    pub(in crate::storage) mod postgres {
        pub(in crate::storage) use super::super::articles::postgres as articles;
    }
}

pub use articles::{ArticleDone, ArticleJob, MAX_ATTEMPTS};
pub use clusters::{Assignment, ClusterRow};
pub use digests::{DIGEST_TEXT_CHARS, DigestItem, NewDigest, PendingDigest};
pub use feeds::{FeedRow, FeedState, FeedUpdate};
pub use items::{ItemRow, StoreCounts};
pub use selfservice::{NewToken, SignUp, TokenRow};
pub use stories::{StoryFilter, StoryMember, StoryRow, StoryText};
pub use subscribers::{NewSubscriber, Subscriber, SubscriberError};
pub use websub::{NewWebSub, WebSubJob, WebSubRow};

use connect::{host_name, open_postgres, open_sqlite, process_running, sqlite_path};
pub(crate) use dialect::{AnyRow, Dialect, Pool, Turn, secs, time};
use migrations::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, migrator};

use anyhow::Context;
use sqlx::Transaction;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A lease's length unless the config says otherwise.
const DEFAULT_LEASE_SECS: i64 = 300;

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite has one writer; taking turns here avoids busy errors under concurrent polls.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Successful polls go to the group-commit writer (see `store_poll`).
    poll_jobs: tokio::sync::mpsc::Sender<poll_writes::PollJob>,
    /// This process's name on the leases it takes (unique per `Store::open`).
    owner: Arc<str>,
    /// How long a lease lasts, in seconds (`[database] lease`).
    lease_secs: Arc<std::sync::atomic::AtomicI64>,
    /// SQLite: where delivered digests are recorded first (see `sent`).
    sent_log: Option<Arc<sent::SentLog>>,
}

impl Store {
    /// Opens the database at `url` and applies pending migrations: `sqlite://PATH` (created if
    /// needed; a relative path is taken relative to `base_dir`, the config file's folder) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (the database must exist).
    pub async fn open(url: &str, base_dir: &Path) -> anyhow::Result<Store> {
        let (pool, file) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Pool::Postgres(open_postgres(url).await?), None)
        } else {
            let path = sqlite_path(url, base_dir)?;
            (Pool::Sqlite(open_sqlite(&path).await?), Some(path))
        };
        let (poll_jobs, jobs) = tokio::sync::mpsc::channel(256);
        let mut nonce = [0u8; 6];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let owner = format!("{}/{}/{nonce}", host_name(), std::process::id());
        let mut store = Store {
            pool,
            write_gate: Arc::default(),
            poll_jobs,
            owner: owner.into(),
            lease_secs: Arc::new(DEFAULT_LEASE_SECS.into()),
            sent_log: None,
        };
        store.migrate().await.context("applying migrations")?;
        if let Some(file) = &file {
            // Before any lease is released: a stopped process's delivered digests are sent.
            store
                .apply_sent_logs_left(file)
                .await
                .context("applying the sent logs of stopped processes")?;
            let log = sent::SentLog::new(file, std::process::id(), &nonce);
            store.sent_log = Some(Arc::new(log));
        }
        store
            .release_dead_leases()
            .await
            .context("releasing the leases of stopped processes")?;
        // The writer's own handle has a dead sender, so the writer stops once every `Store`
        // handed out is dropped.
        let (closed, _) = tokio::sync::mpsc::channel(1);
        let writer = Store {
            poll_jobs: closed,
            ..store.clone()
        };
        tokio::spawn(poll_writes::poll_writer(writer, jobs));
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => migrator(SQLITE_MIGRATIONS).run(pool).await?,
            // sqlx takes an advisory lock around this, so processes starting together are safe.
            Pool::Postgres(pool) => migrator(POSTGRES_MIGRATIONS).run(pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction; on SQLite, taking the single-writer turn first.
    async fn write<DB: Dialect>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> anyhow::Result<(Turn, Transaction<'static, DB>)> {
        if DB::POSTGRES {
            return Ok((None, pool.begin().await?));
        }
        let turn = self.write_turn::<DB>().await;
        Ok((turn, pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// The single-writer turn alone (SQLite; nothing on PostgreSQL), for a write that is one
    /// statement and so its own transaction.
    async fn write_turn<DB: Dialect>(&self) -> Turn {
        if DB::POSTGRES {
            return None;
        }
        Some(self.write_gate.clone().lock_owned().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// How long this process's leases on feeds and digests last: longer than one piece of work
    /// takes (a poll, a batch of sends), short enough that a crashed process's work is soon
    /// taken over.
    pub fn set_lease(&self, lease: Duration) {
        let secs = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX).max(1);
        self.lease_secs
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long a lease lasts.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.lease_secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// When a lease taken at `now` runs out (Unix seconds).
    fn lease_until(&self, now: chrono::DateTime<chrono::Utc>) -> i64 {
        secs(now).saturating_add(self.lease_secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// This process's lease owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Closes the pool after giving up this process's remaining leases (work cut short by a
    /// stop is then taken at once by another process, or by this one's next start).
    pub async fn close(&self) {
        // Delivered digests are recorded before their leases are given up. If they cannot be,
        // the leases stay (until they run out, or the next start here applies the log and
        // releases them), so nobody takes those digests for undelivered meanwhile.
        match self.flush_sent().await {
            Ok(()) => {
                if let Some(log) = &self.sent_log {
                    log.remove();
                }
                if let Err(e) = self.release_leases_of(&self.owner).await {
                    tracing::warn!(error = format!("{e:#}"), "releasing leases failed");
                }
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "recording sent digests failed; the next start applies them"
            ),
        }
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

impl Store {
    /// Clears every lease held by `owner`.
    async fn release_leases_of(&self, owner: &str) -> anyhow::Result<()> {
        on_pool!(self, |pool| {
            let (_turn, mut tx) = self.write(pool).await?;
            for sql in [
                Db::sql(
                    "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
                ),
                Db::sql(
                    "UPDATE digests SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
                ),
                Db::sql(
                    "UPDATE cluster_lease SET lease_owner = NULL, lease_until = NULL
                     WHERE lease_owner = ?1",
                ),
            ] {
                sqlx::query(sql).bind(owner).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Releases the leases of processes of this machine that no longer run (a crash or
    /// SIGKILL), so a restart takes their work at once instead of after the lease runs out.
    /// Leases of other machines' processes are left to expire. Linux only (`/proc`).
    async fn release_dead_leases(&self) -> anyhow::Result<()> {
        if process_running("self").is_none() {
            return Ok(());
        }
        let owners: Vec<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(Db::sql(
                "SELECT lease_owner FROM feeds WHERE lease_owner IS NOT NULL
                 UNION SELECT lease_owner FROM digests WHERE lease_owner IS NOT NULL
                 UNION SELECT lease_owner FROM cluster_lease WHERE lease_owner IS NOT NULL",
            ))
            .fetch_all(pool)
            .await?
        });
        let host = format!("{}/", host_name());
        for owner in owners {
            let Some(pid) = owner
                .strip_prefix(&host)
                .and_then(|rest| rest.split('/').next())
            else {
                continue;
            };
            if process_running(pid) == Some(false) {
                tracing::info!(owner = %owner, "releasing the leases of a stopped process");
                self.release_leases_of(&owner).await?;
            }
        }
        Ok(())
    }
}
