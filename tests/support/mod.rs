//! Test helpers: a fixture HTTP server serving feed documents over loopback with configurable
//! behaviour, and `TestApp`, a temp directory with a feeds.toml, a SQLite file and a Refresher.

pub mod db;
pub mod fixture;
pub mod samples;
pub mod smtp;
pub mod webdriver;

use std::sync::Arc;
use tinbao::config::Config;
use tinbao::reader::refresh::Refresher;
use tinbao::storage::Store;

pub use fixture::{FixtureServer, Route};

pub struct TestApp {
    /// The folder of the config, database and output files (removed when the app is dropped).
    pub dir: tempfile::TempDir,
    pub config: Arc<Config>,
    pub store: Store,
    pub refresher: Refresher,
    /// The database's URL (absolute), for `db::execute` / `db::scalar`.
    pub db_url: String,
    /// The test's own PostgreSQL database when running on PostgreSQL (dropped after the app).
    #[allow(dead_code)] // held, not read: dropping it drops the database
    pub pg: Option<db::PgDatabase>,
}

/// A feeds.toml with one category and the given `(id, url)` feeds, plus extra `[polling]` lines.
pub fn feeds_toml(feeds: &[(&str, String)], polling: &str) -> String {
    let mut text = format!(
        "[database]\nurl = \"sqlite://tinbao.db\"\n\n[polling]\nconcurrency = 16\n{polling}\n\n[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n"
    );
    for (id, url) in feeds {
        text.push_str(&format!("\n[[feed]]\nid = \"{id}\"\nurl = \"{url}\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n"));
    }
    text
}

impl TestApp {
    /// An app on SQLite, or, inside `db::each_database`'s PostgreSQL run, on a fresh
    /// PostgreSQL database (the config's `sqlite://tinbao.db` replaced by its URL).
    pub async fn start(config_text: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("feeds.toml");
        let pg = match db::current() {
            Some(_) => db::PgDatabase::create().await,
            None => None,
        };
        let config_text = match &pg {
            Some(pg) => {
                assert!(
                    config_text.contains("sqlite://tinbao.db"),
                    "test config names its database"
                );
                config_text.replace("sqlite://tinbao.db", &pg.url)
            }
            None => config_text.to_string(),
        };
        std::fs::write(&config_path, &config_text).expect("write config");
        let config = Arc::new(Config::load(&config_path).expect("valid test config"));
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("open store");
        store
            .sync_feeds(&config.feeds, chrono::Utc::now())
            .await
            .expect("sync feeds");
        let refresher = Refresher::new(store.clone(), config.clone()).expect("refresher");
        let db_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}", dir.path().join("tinbao.db").display()),
        };
        TestApp {
            dir,
            config,
            store,
            refresher,
            db_url,
            pg,
        }
    }

    pub async fn poll_all(&self) -> tinbao::reader::refresh::PollSummary {
        self.refresher.poll_round(true).await.expect("poll round")
    }

    /// Runs `sql` on the app's database (see `db::execute`).
    pub async fn execute(&self, sql: &str) {
        db::execute(&self.db_url, sql).await
    }

    /// A query's single integer on the app's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        db::scalar(&self.db_url, sql).await
    }

    pub async fn feed(&self, id: &str) -> tinbao::storage::FeedState {
        self.store
            .feed_states()
            .await
            .expect("states")
            .into_iter()
            .find(|s| s.id == id)
            .expect("feed exists")
    }
}

/// feeds.toml for tests that run the binary with mail: one category, SMTP at `smtp`, and each of
/// `feeds` served by `fixtures` at `/<id>.rss`.
pub fn daemon_toml(fixtures: &FixtureServer, smtp: &str, feeds: &[&str]) -> String {
    let mut text = format!(
        "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"sqlite://tinbao.db\"\n\
         [smtp]\nurl = \"{smtp}\"\nfrom = \"Tin tỉnh <ban-tin@example.vn>\"\n[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n"
    );
    for f in feeds {
        text.push_str(&format!("\n[[feed]]\nid = \"{f}\"\nurl = \"{}\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n", fixtures.url(&format!("/{f}.rss"))));
    }
    text
}

/// The real binary in `dir` with `args`, its environment cleared of what would redirect it.
pub fn tinbao_command(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tinbao"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("TINBAO_DATABASE_URL")
        .env_remove("TINBAO_CONFIG")
        .env_remove("TINBAO_TEST_HOLD_BEFORE")
        .env("RUST_LOG", "warn");
    command
}

/// Runs the binary to its end off the test's runtime, which keeps serving the fixtures.
pub async fn run_tinbao(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = tinbao_command(dir, args);
    tokio::task::spawn_blocking(move || command.output().expect("run tinbao"))
        .await
        .expect("the binary's task")
}

/// An RSS 2.0 document with `n` Vietnamese items whose guids start with `prefix`.
pub fn rss_doc(title: &str, prefix: &str, n: usize) -> String {
    let mut items = String::new();
    for i in 0..n {
        items.push_str(&format!(
            "<item><title>Tin {prefix} số {i}: Lào Cai xây dựng nông thôn mới</title><link>https://baolaocai.vn/{prefix}/{i}.html</link>\
             <guid>{prefix}-{i}</guid><description><![CDATA[<p>Huyện Bảo Thắng, tỉnh Lào Cai: bài {i}.</p>]]></description>\
             <pubDate>Sat, 28 Nov 2026 0{}:00:00 +0700</pubDate></item>",
            i % 10
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>{title}</title><link>https://baolaocai.vn/</link>{items}</channel></rss>"
    )
}

/// Serves tinbao's own HTTP router on a loopback port; returns its base URL ("http://…/").
pub async fn spawn_http(state: tinbao::http::AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let app = tinbao::http::router(state);
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// Whether an external client program is usable; when CI demands the real clients
/// (TINBAO_REQUIRE_CLIENTS=1) a missing one is a failure, elsewhere the test says it skipped.
pub fn client_available(program: &str, probe: &[&str]) -> bool {
    let ok = std::process::Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("TINBAO_REQUIRE_CLIENTS").is_err(),
            "{program} is required (TINBAO_REQUIRE_CLIENTS is set) but not usable"
        );
        eprintln!("SKIPPED: {program} is not installed");
    }
    ok
}

/// The app database in `dir`, opened separately (as an operator's sqlite3 would).
pub async fn database(dir: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("tinbao.db").display()))
        .await
        .expect("open the app database")
}

/// Dates every subscriber 15 minutes back, so the current tick of the immediate schedule is
/// owed to them (tests that run the real binary cannot choose its clock).
pub async fn backdate_subscribers(pool: &sqlx::SqlitePool) {
    sqlx::query("UPDATE subscribers SET created_at = created_at - 900")
        .execute(pool)
        .await
        .expect("backdate subscribers");
}

/// `tinbao run` (the real binary) as a child in `dir` on port 0, its stderr written to `log`:
/// the child and its base URL, from the first line it prints ("listening on http://…/").
pub fn spawn_daemon(dir: &std::path::Path, log: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tinbao"))
        .arg("run")
        .current_dir(dir)
        .env("TINBAO_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).expect("create the daemon's log"))
        .spawn()
        .expect("start tinbao run");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the daemon's first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {line:?}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    (child, base)
}
