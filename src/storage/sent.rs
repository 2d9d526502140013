//! The sent log (SQLite only): the durable record that a digest was delivered, written the moment
//! the SMTP server accepts it, before the `digests` table knows.
//!
//! Why: on SQLite every write goes through one writer, and a send that waits for its own "sent"
//! UPDATE to commit holds its SMTP connection idle behind claims, link tokens and other sends'
//! marks. Here a mark is one `write(2)` of a short line to a file of this process's own beside
//! the database; the marks are applied to `digests` in bulk (before each claim, at the end of a
//! run, when the store closes) and the file is emptied once all it holds is committed.
//!
//! Durability is SQLite's own as this store runs it (WAL, `synchronous = NORMAL`): a line handed
//! to the kernel survives the process being killed, as a committed WAL frame does; neither is
//! synced to the disk at once. A process that dies leaves its file; the next `Store::open` applies
//! it before releasing the dead process's leases, so its delivered digests are not sent again.
//! Applying a line twice changes nothing (only a pending digest becomes sent).
//!
//! PostgreSQL needs none of this: several processes share it, a mark must be visible to all of
//! them at once, and its commits do not queue behind one writer.

use super::{Store, time};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A delivered digest: its id, the Unix second it was accepted, and whether its subscriber's
/// count of refusals is to be reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    pub digest_id: i64,
    pub at: i64,
    pub clear_failures: bool,
}

impl Sent {
    fn line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.digest_id,
            self.at,
            u8::from(self.clear_failures)
        )
    }

    /// One line as `line` wrote it; `None` for anything else (a line cut short by a crash).
    fn parse(line: &str) -> Option<Sent> {
        let mut parts = line.split(' ');
        let sent = Sent {
            digest_id: parts.next()?.parse().ok()?,
            at: parts.next()?.parse().ok()?,
            clear_failures: match parts.next()? {
                "0" => false,
                "1" => true,
                _ => return None,
            },
        };
        parts.next().is_none().then_some(sent)
    }
}

/// The logs this process writes (several stores may open one database, as tests do): never
/// "left behind", whatever their pid says.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// This process's sent log.
pub(crate) struct SentLog {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// Opened at the first mark (a process that sends nothing leaves no file).
    file: Option<std::fs::File>,
    /// Marks written since the last `take`, not yet handed to the database.
    pending: Vec<Sent>,
    /// Marks taken and not yet reported committed (`committed`, `restore`).
    in_transit: usize,
    /// Lines were written since the file was last emptied.
    dirty: bool,
}

impl SentLog {
    /// This process's log beside `database`: `<database>.sent-<pid>-<nonce>`, created when the
    /// first delivery is recorded.
    pub(crate) fn new(database: &Path, pid: u32, nonce: &str) -> SentLog {
        let path = sibling(database, &format!("{pid}-{nonce}"));
        if let Ok(mut live) = LIVE.lock() {
            live.push(path.clone());
        }
        SentLog {
            path,
            state: Mutex::new(State {
                file: None,
                pending: Vec::new(),
                in_transit: 0,
                dirty: false,
            }),
        }
    }

    /// Records a delivery durably (see the module comment). Errors if the line cannot be
    /// written: the caller must then record it in the database itself.
    pub(crate) fn write(&self, sent: Sent) -> anyhow::Result<()> {
        let mut state = self.lock()?;
        let file = match &mut state.file {
            Some(file) => file,
            empty => empty.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .with_context(|| format!("creating the sent log {}", self.path.display()))?,
            ),
        };
        file.write_all(sent.line().as_bytes())
            .with_context(|| format!("writing the sent log {}", self.path.display()))?;
        state.pending.push(sent);
        state.dirty = true;
        Ok(())
    }

    /// The marks to apply now. Each `take` is followed by `committed` or, if applying failed,
    /// `restore`.
    pub(crate) fn take(&self) -> anyhow::Result<Vec<Sent>> {
        let mut state = self.lock()?;
        let taken = std::mem::take(&mut state.pending);
        state.in_transit += taken.len();
        Ok(taken)
    }

    /// `taken` is committed to the database. When nothing else is waiting, every line in the
    /// file is in the database, and the file is emptied.
    pub(crate) fn committed(&self, taken: &[Sent]) -> anyhow::Result<()> {
        let mut state = self.lock()?;
        state.in_transit = state.in_transit.saturating_sub(taken.len());
        if state.dirty && state.pending.is_empty() && state.in_transit == 0 {
            if let Some(file) = &state.file {
                file.set_len(0)
                    .with_context(|| format!("emptying the sent log {}", self.path.display()))?;
            }
            state.dirty = false;
        }
        Ok(())
    }

    /// Applying `taken` failed: keep them for the next attempt (their lines are still in the file).
    pub(crate) fn restore(&self, taken: Vec<Sent>) {
        if let Ok(mut state) = self.lock() {
            state.in_transit = state.in_transit.saturating_sub(taken.len());
            state.pending.splice(0..0, taken);
        }
    }

    /// Removes the file (a clean close, after everything was committed).
    pub(crate) fn remove(&self) {
        if let Ok(mut state) = self.lock()
            && state.file.take().is_some()
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| anyhow::anyhow!("the sent log's lock is poisoned"))
    }
}

impl Store {
    /// Whether deliveries are recorded in a sent log (`record_sent`) rather than straight in the
    /// database (`mark_digests_sent`).
    pub fn has_sent_log(&self) -> bool {
        self.sent_log.is_some()
    }

    /// Records that digest `digest_id` was delivered at `now`, durably, in this process's sent
    /// log; the `digests` table follows at the next `flush_sent` (which every claim runs first).
    /// Without a log (PostgreSQL) or if the log cannot be written, in the database at once.
    pub async fn record_sent(
        &self,
        digest_id: i64,
        clear_failures: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        if let Some(log) = &self.sent_log {
            let sent = Sent {
                digest_id,
                at: super::secs(now),
                clear_failures,
            };
            match log.write(sent) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "sent log not written; recording in the database"
                ),
            }
        }
        self.mark_digests_sent(&[digest_id], clear_failures, now)
            .await
    }

    /// Applies the sent log's marks to `digests`. On an error they stay for the next call.
    pub async fn flush_sent(&self) -> anyhow::Result<()> {
        let Some(log) = &self.sent_log else {
            return Ok(());
        };
        let taken = log.take()?;
        match self.apply_sent(&taken).await {
            Ok(()) => log.committed(&taken),
            Err(e) => {
                log.restore(taken);
                Err(e)
            }
        }
    }

    /// Marks as sent, grouped by the second they were accepted (one statement per group).
    async fn apply_sent(&self, marks: &[Sent]) -> anyhow::Result<()> {
        let mut by_second: std::collections::BTreeMap<i64, (Vec<i64>, bool)> = Default::default();
        for m in marks {
            let (ids, clear) = by_second.entry(m.at).or_default();
            ids.push(m.digest_id);
            *clear |= m.clear_failures;
        }
        for (at, (ids, clear)) in by_second {
            self.mark_digests_sent(&ids, clear, time(at)).await?;
        }
        Ok(())
    }

    /// Applies, then removes, the sent logs beside `database` that no running process writes
    /// (a crash or SIGKILL left them).
    pub(super) async fn apply_sent_logs_left(&self, database: &Path) -> anyhow::Result<()> {
        for (path, pid) in left_behind(database) {
            // A log with this process's own pid that is not one of its live logs was left by an
            // earlier process the pid was reused from.
            let running = pid.is_some_and(|p| {
                p != std::process::id() && super::process_running(&p.to_string()) == Some(true)
            });
            if running {
                continue;
            }
            let marks = read(&path)?;
            if !marks.is_empty() {
                tracing::info!(
                    log = %path.display(),
                    digests = marks.len(),
                    "recording the deliveries of a stopped process"
                );
                self.apply_sent(&marks).await?;
            }
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for SentLog {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| p != &self.path);
        }
    }
}

/// Logs beside `database` that this process does not write, with the pid that wrote each.
pub(crate) fn left_behind(database: &Path) -> Vec<(PathBuf, Option<u32>)> {
    let prefix = sibling(database, "");
    let (Some(dir), Some(prefix)) = (prefix.parent(), prefix.file_name()) else {
        return Vec::new();
    };
    let prefix = prefix.to_string_lossy().into_owned();
    let listed = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(listed) else {
        return Vec::new();
    };
    let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?;
            let pid = rest.split('-').next().and_then(|p| p.parse().ok());
            let path = dir.join(&name);
            (!live.contains(&path)).then_some((path, pid))
        })
        .collect()
}

/// The marks in a log file (lines cut short are skipped).
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<Sent>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(Sent::parse)
        .collect())
}

fn sibling(database: &Path, suffix: &str) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".sent-");
    name.push(suffix);
    database.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_and_a_line_cut_short_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tin.db");
        let log = SentLog::new(&db, 42, "ab");
        let a = Sent {
            digest_id: 7,
            at: 1_764_310_800,
            clear_failures: false,
        };
        let b = Sent {
            digest_id: 1234,
            at: 1_764_310_801,
            clear_failures: true,
        };
        log.write(a).unwrap();
        log.write(b).unwrap();
        let path = dir.path().join("tin.db.sent-42-ab");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"99 17643").unwrap();
        assert_eq!(read(&path).unwrap(), vec![a, b]);
        assert!(left_behind(&db).is_empty(), "this process's own log");
        drop(log);
        assert_eq!(left_behind(&db), vec![(path, Some(42))]);
    }

    #[test]
    fn the_file_is_emptied_only_when_every_mark_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tin.db");
        let log = SentLog::new(&db, 1, "x");
        assert!(
            !dir.path().join("tin.db.sent-1-x").exists(),
            "no file before a mark"
        );
        let path = dir.path().join("tin.db.sent-1-x");
        let mark = |id| Sent {
            digest_id: id,
            at: 0,
            clear_failures: false,
        };
        log.write(mark(1)).unwrap();
        let first = log.take().unwrap();
        log.write(mark(2)).unwrap();
        log.committed(&first).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2, "mark 2 is not committed yet");
        let second = log.take().unwrap();
        assert_eq!(second, vec![mark(2)]);
        log.restore(second);
        let again = log.take().unwrap();
        assert_eq!(again, vec![mark(2)], "a failed apply is retried");
        log.committed(&again).unwrap();
        assert!(read(&path).unwrap().is_empty());
        log.write(mark(3)).unwrap();
        assert_eq!(
            read(&path).unwrap(),
            vec![mark(3)],
            "appends after emptying"
        );
    }
}
