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
/// are `pub(in crate::storage)`.
macro_rules! both_dialects {
    ($($item:item)*) => {
        pub(in crate::storage) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(dead_code)]
            type Db = ::sqlx::Sqlite;
            #[allow(dead_code)]
            type Conn = ::sqlx::SqliteConnection;
            $($item)*
        }
        pub(in crate::storage) mod postgres {
            #[allow(unused_imports)]
            use super::*;
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
            "i.id, COALESCE(i.cluster_id, i.id) AS cluster_id, i.feed_id, i.url, i.title, i.text,
            i.summary_html, i.content_html, i.authors, i.image_url, i.published_at, i.changed_at,
            COALESCE(f.configured_title, f.title, f.id) AS feed_title, f.url AS feed_url, f.site_url,
            f.source_updated_at, f.category, f.province
         FROM items i JOIN feeds f ON f.id = i.feed_id "
        )
    };
}

mod digests;
mod feeds;
mod items;
mod selfservice;
mod sent;
mod stories;
mod subscribers;

pub use digests::{DIGEST_TEXT_CHARS, DigestItem, NewDigest, PendingDigest};
pub use feeds::{FeedRow, FeedState, FeedUpdate};
pub use items::{ItemRow, StoreCounts};
pub use selfservice::{NewToken, SignUp, TokenRow};
pub use stories::{ClusterRow, StoryFilter, StoryMember, StoryRow};
pub use subscribers::{NewSubscriber, Subscriber, SubscriberError};

use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{SqlStr, Transaction};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// Embedded so the binary needs no migrations folder at run time. Append-only; the same
/// versions and names in both lists (`migrations_are_in_step` checks).
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
    (
        4,
        "subscriber tokens",
        include_str!("../../migrations/sqlite/0004_subscriber_tokens.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../../migrations/sqlite/0005_leases.sql"),
    ),
    (
        6,
        "unclustered order",
        include_str!("../../migrations/sqlite/0006_unclustered_order.sql"),
    ),
    (
        7,
        "digest item lists",
        include_str!("../../migrations/sqlite/0007_digest_item_lists.sql"),
    ),
    (
        8,
        "pending digests index",
        include_str!("../../migrations/sqlite/0008_pending_digests_index.sql"),
    ),
    (
        9,
        "unpublished feeds",
        include_str!("../../migrations/sqlite/0009_unpublished_feeds.sql"),
    ),
    (
        10,
        "source feeds' updated",
        include_str!("../../migrations/sqlite/0010_source_updated.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "feeds and items",
        include_str!("../../migrations/postgres/0001_feeds_and_items.sql"),
    ),
    (
        2,
        "clusters",
        include_str!("../../migrations/postgres/0002_clusters.sql"),
    ),
    (
        3,
        "subscribers and digests",
        include_str!("../../migrations/postgres/0003_subscribers_and_digests.sql"),
    ),
    (
        4,
        "subscriber tokens",
        include_str!("../../migrations/postgres/0004_subscriber_tokens.sql"),
    ),
    (
        5,
        "leases",
        include_str!("../../migrations/postgres/0005_leases.sql"),
    ),
    (
        6,
        "unclustered order",
        include_str!("../../migrations/postgres/0006_unclustered_order.sql"),
    ),
    (
        7,
        "digest item lists",
        include_str!("../../migrations/postgres/0007_digest_item_lists.sql"),
    ),
    (
        8,
        "pending digests index",
        include_str!("../../migrations/postgres/0008_pending_digests_index.sql"),
    ),
    (
        9,
        "unpublished feeds",
        include_str!("../../migrations/postgres/0009_unpublished_feeds.sql"),
    ),
    (
        10,
        "source feeds' updated",
        include_str!("../../migrations/postgres/0010_source_updated.sql"),
    ),
];

/// A lease's length unless the config says otherwise.
const DEFAULT_LEASE_SECS: i64 = 300;

/// The connection pool of one of the two databases.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What differs between the two databases beyond sqlx's own types.
pub(crate) trait Dialect: sqlx::Database {
    const POSTGRES: bool;
    /// `text` (written with `?N` placeholders) in this database's form. For PostgreSQL: `$N`,
    /// and `/*FOR UPDATE SKIP LOCKED*/` made live (a comment to SQLite, whose single writer
    /// needs no row locks). Translated once per statement.
    fn sql(text: &'static str) -> &'static str;
}

impl Dialect for sqlx::Sqlite {
    const POSTGRES: bool = false;
    fn sql(text: &'static str) -> &'static str {
        text
    }
}

impl Dialect for sqlx::Postgres {
    const POSTGRES: bool = true;
    fn sql(text: &'static str) -> &'static str {
        // Keyed by the literal's address: each call site's statement is translated once and
        // kept for the life of the process (a bounded set: the statements in this module).
        static CACHE: LazyLock<RwLock<HashMap<(usize, usize), &'static str>>> =
            LazyLock::new(Default::default);
        let key = (text.as_ptr() as usize, text.len());
        if let Some(done) = CACHE.read().ok().and_then(|c| c.get(&key).copied()) {
            return done;
        }
        let done: &'static str = Box::leak(to_postgres(text).into_boxed_str());
        if let Ok(mut cache) = CACHE.write() {
            cache.insert(key, done);
        }
        done
    }
}

/// `?N` → `$N` outside string literals; the SKIP LOCKED marker made live.
fn to_postgres(text: &str) -> String {
    let text = text.replace("/*FOR UPDATE SKIP LOCKED*/", "FOR UPDATE SKIP LOCKED");
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A type both databases decode (`i64`, `String`, `bool`, `Vec<u8>`, and their `Option`s).
pub(crate) trait Column:
    Sized
    + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A result row of either database, read by column name: row mappers are written once.
pub(crate) trait AnyRow {
    fn col<T: Column>(&self, name: &str) -> anyhow::Result<T>;
}

impl AnyRow for sqlx::sqlite::SqliteRow {
    fn col<T: Column>(&self, name: &str) -> anyhow::Result<T> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

impl AnyRow for sqlx::postgres::PgRow {
    fn col<T: Column>(&self, name: &str) -> anyhow::Result<T> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

/// The single-writer turn held by a SQLite write transaction (`None` on PostgreSQL).
pub(crate) type Turn = Option<tokio::sync::OwnedMutexGuard<()>>;

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite has one writer; taking turns here avoids busy errors under concurrent polls.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// Successful polls go to the group-commit writer (see `store_poll`).
    poll_jobs: tokio::sync::mpsc::Sender<items::PollJob>,
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
        tokio::spawn(items::poll_writer(writer, jobs));
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
                 UNION SELECT lease_owner FROM digests WHERE lease_owner IS NOT NULL",
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

/// Whether process `pid` of this machine runs; `None` where that cannot be told (no `/proc`).
fn process_running(pid: &str) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self").exists().then(|| proc.join(pid).exists())
}

/// This machine's name, for lease owners.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace('/', "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = list
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
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

async fn open_sqlite(path: &Path) -> anyhow::Result<SqlitePool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        // sqlx pings a connection each time it leaves the pool unless told not to: for SQLite an
        // extra round trip to the connection's thread before every statement or transaction,
        // and a local file connection does not go stale.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("opening database {}", path.display()))
}

async fn open_postgres(url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("database url {}", redact(url)))?
        .application_name("tinbao");
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                nodelay::set(conn).await;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))
}

/// TCP_NODELAY for PostgreSQL connections. sqlx 0.9.0 no longer sets it (sqlx issue #4335, fixed
/// by PR #4336, not yet released): a statement larger than one TCP segment (an ingest batch of
/// items with their HTML) then waits ~40 ms for the server's delayed ACK before its last segment
/// goes out (Nagle), which made PostgreSQL ingest twenty times slower than SQLite's. sqlx does
/// not expose its socket, so the connection's own socket is found by its local port among this
/// process's descriptors. Remove once sqlx sets it again.
mod nodelay {
    /// Best effort: on failure the connection works, only slower.
    pub(super) async fn set(conn: &mut sqlx::PgConnection) {
        let ports: Result<(Option<i32>, Option<i32>), _> =
            sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
                .fetch_one(conn)
                .await;
        if let Ok((Some(local), Some(server))) = ports
            && let (Ok(local), Ok(server)) = (u16::try_from(local), u16::try_from(server))
        {
            on_socket(local, server);
        }
    }

    #[cfg(target_os = "linux")]
    fn on_socket(local: u16, server: u16) {
        use std::os::fd::{FromRawFd, RawFd};
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            if !std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            {
                continue;
            }
            // SAFETY: `fd` was just listed as open in this process; `ManuallyDrop` never closes
            // it, and only socket options are read or set (harmless if it was reused meanwhile).
            let socket =
                std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
            let ours = socket.local_addr().is_ok_and(|a| a.port() == local)
                && socket.peer_addr().is_ok_and(|a| a.port() == server);
            if ours {
                let _ = socket.set_nodelay(true);
                return;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn on_socket(_local: u16, _server: u16) {}
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn sqlite_path(url: &str, base_dir: &Path) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .with_context(|| {
            format!("database url must start with sqlite:// or postgres://, not {url:?}")
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_string_literals() {
        assert_eq!(
            to_postgres(
                "SELECT '?1', x FROM t WHERE a = ?1 AND b IN (?2, ?10) /*FOR UPDATE SKIP LOCKED*/"
            ),
            "SELECT '?1', x FROM t WHERE a = $1 AND b IN ($2, $10) FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(
            to_postgres("SELECT ? , 'it''s ?3'"),
            "SELECT ? , 'it''s ?3'"
        );
    }

    #[test]
    fn the_translation_is_made_once_per_statement() {
        let translated: Vec<&str> = (0..2)
            .map(|_| <sqlx::Postgres as Dialect>::sql("SELECT ?1"))
            .collect();
        assert_eq!(translated[0], "SELECT $1");
        assert_eq!(translated[0].as_ptr(), translated[1].as_ptr());
    }

    #[test]
    fn both_migration_lists_have_the_same_versions_and_names() {
        let names = |l: &[(i64, &str, &str)]| {
            l.iter()
                .map(|(v, n, _)| (*v, n.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(SQLITE_MIGRATIONS), names(POSTGRES_MIGRATIONS));
        for dir in ["sqlite", "postgres"] {
            let mut files: Vec<String> = std::fs::read_dir(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(dir),
            )
            .expect("migrations folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
            files.sort();
            assert_eq!(files.len(), SQLITE_MIGRATIONS.len(), "{dir}: {files:?}");
        }
    }
}
