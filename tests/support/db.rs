//! The databases a storage test runs on: SQLite always, and PostgreSQL when `TINBAO_TEST_PG`
//! names an admin URL (e.g. `postgres://tinbao:tinbao@127.0.0.1:5432/postgres`). Each test gets
//! its own fresh PostgreSQL database, dropped when the test's app is. Without PostgreSQL the
//! test passes on SQLite and says what it skipped; with `TINBAO_REQUIRE_CLIENTS=1` (CI) a
//! missing PostgreSQL fails instead.

use std::sync::atomic::{AtomicUsize, Ordering};

tokio::task_local! {
    /// The database URL the apps of the running test use (`None`: SQLite in the app's folder).
    static DATABASE: Option<String>;
}

/// The database URL the current test body was asked to use, if not SQLite.
pub fn current() -> Option<String> {
    DATABASE.try_with(|d| d.clone()).ok().flatten()
}

/// Runs `body` on SQLite, then on a fresh PostgreSQL database when one is available.
pub async fn each_database(body: impl AsyncFn()) {
    eprintln!("-- on sqlite");
    DATABASE.scope(None, body()).await;
    match pg_admin_url() {
        Some(_) => {
            eprintln!("-- on postgres");
            DATABASE.scope(Some(String::from("postgres")), body()).await;
        }
        None => eprintln!("SKIPPED on postgres: TINBAO_TEST_PG is not set"),
    }
}

/// The admin URL from `TINBAO_TEST_PG`; a failure when CI requires it and it is missing.
pub fn pg_admin_url() -> Option<String> {
    let url = std::env::var("TINBAO_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("TINBAO_REQUIRE_CLIENTS").is_err(),
            "PostgreSQL is required (TINBAO_REQUIRE_CLIENTS is set) but TINBAO_TEST_PG is not set"
        );
    }
    url
}

/// A fresh PostgreSQL database, dropped (connections and all) when this is.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        let admin = pg_admin_url()?;
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "tinbao_test_{}_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("TINBAO_TEST_PG={admin} does not answer: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A statement run on the app's database by URL (as an operator's client would), for tests
/// that set up or inspect what the code under test cannot: `?`-free SQL both databases accept.
pub async fn execute(url: &str, sql: &str) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .expect(sql);
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .expect(sql);
        pool.close().await;
    }
}

/// A query's single integer (e.g. `SELECT COUNT(*) …`).
pub async fn scalar(url: &str, sql: &str) -> i64 {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .expect(sql);
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open");
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .expect(sql);
        pool.close().await;
        n
    }
}
