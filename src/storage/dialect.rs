//! What differs between the two databases, and the values both speak: the pool of either, SQL
//! written once with `?N` placeholders (PostgreSQL gets `$N`), row reading by column name, and
//! times as Unix seconds.

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

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
}
