//! Opening either database: SQLite's file (WAL, one writer) or a PostgreSQL pool, with the
//! machine facts leases need (this host's name, whether a pid still runs).

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Whether process `pid` of this machine runs; `None` where that cannot be told (no `/proc`).
pub(super) fn process_running(pid: &str) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self").exists().then(|| proc.join(pid).exists())
}

/// This machine's name, for lease owners.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace('/', "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

pub(super) async fn open_sqlite(path: &Path) -> anyhow::Result<SqlitePool> {
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

pub(super) async fn open_postgres(url: &str) -> anyhow::Result<PgPool> {
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

pub(super) fn sqlite_path(url: &str, base_dir: &Path) -> anyhow::Result<PathBuf> {
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
