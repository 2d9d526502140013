//! Storage on both databases: the two migration sets stay in step, and work is claimed with
//! leases so processes sharing a database never take the same feed or digest at once, while a
//! crashed process's work is taken over once its lease runs out.

use crate::support::db::{PgDatabase, each_database};
use crate::support::{TestApp, feeds_toml};
use chrono::{Duration, Utc};
use std::collections::BTreeSet;
use tinbao::storage::{NewDigest, Store};

/// Tables with their columns, and index names, as the database reports them.
type Shape = (BTreeSet<(String, String)>, BTreeSet<String>);

async fn sqlite_shape(url: &str) -> Shape {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    (columns.into_iter().collect(), indexes.into_iter().collect())
}

async fn postgres_shape(url: &str) -> Shape {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // Primary keys and UNIQUE constraints are implicit indexes in both; compare the named ones.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    (columns.into_iter().collect(), indexes.into_iter().collect())
}

#[tokio::test]
async fn both_migration_sets_make_the_same_tables_columns_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let lite = Store::open("sqlite://shape.db", dir.path()).await.unwrap();
    let lite_url = format!("sqlite://{}", dir.path().join("shape.db").display());
    let (columns, indexes) = sqlite_shape(&lite_url).await;
    lite.close().await;
    assert!(columns.contains(&("feeds".into(), "lease_until".into())));
    assert!(indexes.contains("pending_stories_order"));
    assert!(indexes.contains("story_index_item"));
    assert!(indexes.contains("story_index_cluster"));
    let Some(pg) = PgDatabase::create().await else {
        eprintln!("SKIPPED on postgres: TINBAO_TEST_PG is not set");
        return;
    };
    let store = Store::open(&pg.url, dir.path()).await.unwrap();
    let (pg_columns, pg_indexes) = postgres_shape(&pg.url).await;
    store.close().await;
    let only = |a: &BTreeSet<(String, String)>, b: &BTreeSet<(String, String)>| {
        a.difference(b).cloned().collect::<Vec<_>>()
    };
    assert!(
        columns == pg_columns,
        "only in sqlite: {:?}; only in postgres: {:?}",
        only(&columns, &pg_columns),
        only(&pg_columns, &columns)
    );
    assert_eq!(indexes, pg_indexes);
}

/// A second handle on the app's database, as another `tinbao` process would hold.
async fn another_process(app: &TestApp) -> Store {
    Store::open(&app.config.database.url, &app.config.base_dir())
        .await
        .expect("second store")
}

fn many_feeds(n: usize) -> String {
    let feeds: Vec<(String, String)> = (0..n)
        .map(|i| (format!("f{i:03}"), format!("http://127.0.0.1:9/f{i}")))
        .collect();
    let refs: Vec<(&str, String)> = feeds.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    feeds_toml(&refs, "")
}

#[tokio::test]
async fn processes_claim_disjoint_feeds_and_a_dead_ones_lease_expires() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(60)).await;
        let other = another_process(&app).await;
        app.store.set_lease(std::time::Duration::from_secs(60));
        other.set_lease(std::time::Duration::from_secs(60));
        let now = Utc::now();
        // Both claim at once, in small batches, until nothing is left.
        let claim_all = async |store: &Store| {
            let mut got = Vec::new();
            loop {
                let batch = store.claim_due_feeds(now, false, 7).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|f| f.id));
            }
        };
        let (a, b) = tokio::join!(claim_all(&app.store), claim_all(&other));
        let (a, b): (BTreeSet<String>, BTreeSet<String>) =
            (a.into_iter().collect(), b.into_iter().collect());
        assert_eq!(a.len() + b.len(), 60, "every due feed claimed once");
        assert!(a.is_disjoint(&b));
        // Held feeds stay held, even with `all`, until the lease runs out.
        assert!(
            app.store
                .claim_due_feeds(now, true, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let later = now + Duration::seconds(61);
        let taken = app.store.claim_due_feeds(later, false, 100).await.unwrap();
        assert_eq!(taken.len(), 60, "expired leases are taken over");
        other.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_recorded_poll_ends_the_lease_and_a_released_feed_is_claimable_again() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(2)).await;
        let now = Utc::now();
        let claimed = app.store.claim_due_feeds(now, false, 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let update = tinbao::storage::FeedUpdate {
            fetched_at: now,
            next_poll_at: now,
            error: Some("boom".into()),
            ..Default::default()
        };
        app.store.record_failure("f000", &update).await.unwrap();
        app.store.release_feed("f001").await.unwrap();
        let again = app.store.claim_due_feeds(now, false, 10).await.unwrap();
        assert_eq!(again.len(), 2, "both leases ended");
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM feeds WHERE lease_owner IS NOT NULL")
                .await,
            2
        );
        app.store.close().await;
        assert_eq!(
            app.scalar("SELECT COUNT(*) FROM feeds WHERE lease_owner IS NOT NULL")
                .await,
            0,
            "a closing store gives its leases up"
        );
    })
    .await;
}

#[tokio::test]
async fn a_due_digest_is_claimed_by_one_process_until_sent_or_expired() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(1)).await;
        let other = another_process(&app).await;
        let now = Utc::now();
        let (subscribers, item) = built_digests(&app, 5, now).await;
        // A second build of the same tick (another process) makes nothing and moves nothing.
        assert_eq!(
            other
                .create_digests(&[new_digest(subscribers[0], now, item, item + 100)], now)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            app.scalar("SELECT cursor_item_id FROM subscribers WHERE id = 1")
                .await,
            item
        );
        let (a, b) = tokio::join!(app.store.due_digests(now, 3), other.due_digests(now, 3));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len() + b.len(), 5, "each digest claimed once");
        let ids: BTreeSet<i64> = a.iter().chain(&b).map(|d| d.id).collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(
            a.first().map(|d| d.topics.clone()),
            Some(vec!["category=thoi-su".to_string()])
        );
        app.store.mark_digest_sent(a[0].id, now).await.unwrap();
        assert!(app.store.due_digests(now, 10).await.unwrap().is_empty());
        // `other` dies without sending: after the lease its digests are another's.
        let later = now + Duration::seconds(301);
        let taken = app.store.due_digests(later, 10).await.unwrap();
        assert_eq!(taken.len(), 4, "everything but the sent one");
        other.close().await;
    })
    .await;
}

/// A batch sent so slowly that its lease ran out must not be sent by two processes: the late
/// send's renewal fails once another process has taken the digest.
#[tokio::test]
async fn a_digest_whose_lease_ran_out_and_was_taken_over_is_not_renewed() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(1)).await;
        let other = another_process(&app).await;
        let now = Utc::now();
        let (subscribers, item) = subscribers_and_an_item(&app, 1, now).await;
        let digest = new_digest(subscribers[0], now, item, item);
        assert_eq!(app.store.create_digests(&[digest], now).await.unwrap(), 1);
        let claimed = app.store.due_digests(now, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            claimed[0].items,
            vec![(item, 0)],
            "the item list comes with the claim"
        );
        let id = claimed[0].id;
        // Still within the lease: renewing works and keeps others off.
        let soon = now + app.store.lease() / 2;
        assert!(app.store.renew_digest_lease(id, soon).await.unwrap());
        assert!(other.due_digests(soon, 10).await.unwrap().is_empty());
        // The renewed lease runs out; the other process takes the digest over.
        let late = soon + app.store.lease() + Duration::seconds(1);
        assert_eq!(other.due_digests(late, 10).await.unwrap().len(), 1);
        assert!(!app.store.renew_digest_lease(id, late).await.unwrap());
        assert!(other.renew_digest_lease(id, late).await.unwrap());
        other.mark_digest_sent(id, late).await.unwrap();
        assert!(!other.renew_digest_lease(id, late).await.unwrap(), "sent");
        other.close().await;
    })
    .await;
}

/// An item the ledger already holds for a subscriber (a race between processes can leave it
/// behind their cursor) goes into no second digest: the later tick passes without an email.
#[tokio::test]
async fn items_the_ledger_holds_are_not_owed_again() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(1)).await;
        let now = Utc::now();
        let (subscribers, item) = subscribers_and_an_item(&app, 1, now).await;
        let s = subscribers[0];
        let first = new_digest(s, now, item, item);
        assert_eq!(app.store.create_digests(&[first], now).await.unwrap(), 1);
        let later = now + Duration::hours(1);
        let again = new_digest(s, later, item, item);
        assert_eq!(app.store.create_digests(&[again], later).await.unwrap(), 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM digests").await, 1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM deliveries").await, 1);
        assert_eq!(
            app.scalar("SELECT last_tick_at FROM subscribers").await,
            later.timestamp(),
            "the tick passed"
        );
    })
    .await;
}

/// A digest built before digests carried their item list (migration 0007) is sent with the
/// items its ledger rows name.
#[tokio::test]
async fn a_digest_without_an_item_list_is_sent_from_its_ledger() {
    each_database(async || {
        let app = TestApp::start(&many_feeds(1)).await;
        let now = Utc::now();
        let (subscribers, item) = subscribers_and_an_item(&app, 1, now).await;
        let digest = new_digest(subscribers[0], now, item, item);
        assert_eq!(app.store.create_digests(&[digest], now).await.unwrap(), 1);
        app.execute("UPDATE digests SET items = NULL").await;
        let claimed = app.store.due_digests(now, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].items, vec![(item, 0)]);
    })
    .await;
}

/// `n` active subscribers following Thời sự, and one stored item: their ids and the item's.
async fn subscribers_and_an_item(
    app: &TestApp,
    n: usize,
    now: chrono::DateTime<Utc>,
) -> (Vec<i64>, i64) {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let new = tinbao::storage::NewSubscriber {
            email: format!("a{i}@example.vn"),
            status: "active".into(),
            schedule: "immediate".into(),
            timezone: "Asia/Ho_Chi_Minh".into(),
            topics: vec!["category=thoi-su".into()],
        };
        ids.push(app.store.add_subscriber(&new, now).await.unwrap());
    }
    app.execute(
        "INSERT INTO items (feed_id, item_key, title, summary_html, content_html, text, authors,
            categories, published_at, first_seen_at, changed_at, content_hash)
         VALUES ('f000', 'g:1', 'Tin', '', '', 'Tin', '[]', '[]', 1, 1, 1, 'h')",
    )
    .await;
    (ids, app.scalar("SELECT MAX(id) FROM items").await)
}

/// `n` subscribers (`subscribers_and_an_item`), each with a digest built at `now` owing the item.
async fn built_digests(app: &TestApp, n: usize, now: chrono::DateTime<Utc>) -> (Vec<i64>, i64) {
    let (subscribers, item) = subscribers_and_an_item(app, n, now).await;
    let all: Vec<NewDigest> = subscribers
        .iter()
        .map(|s| new_digest(*s, now, item, item))
        .collect();
    assert_eq!(app.store.create_digests(&all, now).await.unwrap(), n);
    (subscribers, item)
}

/// A digest for subscriber `s` at `tick` owing `item`, moving the cursor to `cursor`.
fn new_digest(s: i64, tick: chrono::DateTime<Utc>, item: i64, cursor: i64) -> NewDigest {
    NewDigest {
        subscriber_id: s,
        tick,
        message_id: format!("<d{s}.{}>", tick.timestamp()),
        items: vec![(item, 0)],
        cursor,
    }
}

/// A pid no Linux process can have (above the kernel's largest `pid_max`).
const DEAD_PID: u32 = 4_194_305;

/// SQLite records a delivery in the process's sent log first. A digest recorded there is in the
/// outbox as sent before anything is claimed again, even after its lease has run out, and the
/// log is emptied once what it holds is committed.
#[tokio::test]
async fn a_digest_in_the_sent_log_is_never_claimed_again() {
    let app = TestApp::start(&many_feeds(1)).await;
    assert!(app.store.has_sent_log(), "SQLite stores keep a sent log");
    let now = Utc::now();
    built_digests(&app, 2, now).await;
    let claimed = app.store.due_digests(now, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    app.store
        .record_sent(claimed[0].id, false, now)
        .await
        .unwrap();
    let log = sent_logs(&app);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        std::fs::read_to_string(&log[0]).unwrap(),
        format!("{} {} 0\n", claimed[0].id, now.timestamp())
    );
    let late = now + app.store.lease() + Duration::seconds(1);
    let again = app.store.due_digests(late, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![claimed[1].id],
        "only the digest not delivered"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM digests WHERE state = 'sent'")
            .await,
        1
    );
    assert_eq!(std::fs::read_to_string(&log[0]).unwrap(), "", "emptied");
    app.store.close().await;
    assert!(sent_logs(&app).is_empty(), "a clean close removes the log");
}

/// A process killed after the SMTP server accepted digests, before they reached the outbox,
/// leaves its sent log: the next start records them as sent before releasing the dead
/// process's leases, so they are not sent a second time. A line cut short is ignored.
#[tokio::test]
async fn the_sent_log_of_a_killed_process_is_applied_at_the_next_start() {
    let app = TestApp::start(&many_feeds(1)).await;
    let now = Utc::now();
    built_digests(&app, 3, now).await;
    let ids: Vec<i64> = app
        .store
        .due_digests(now, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    // Leased to a process of this machine that no longer runs.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    app.execute(&format!(
        "UPDATE digests SET lease_owner = '{}/{DEAD_PID}/x'",
        host.trim()
    ))
    .await;
    let left = app
        .dir
        .path()
        .join(format!("tinbao.db.sent-{DEAD_PID}-dead"));
    std::fs::write(
        &left,
        format!(
            "{} {} 0\n{} {} 1\n{} 17",
            ids[0],
            now.timestamp(),
            ids[1],
            now.timestamp(),
            ids[2]
        ),
    )
    .unwrap();
    let next = another_process(&app).await;
    assert!(!left.exists(), "applied, then removed");
    let states: Vec<(i64, String)> = sqlx::query_as("SELECT id, state FROM digests ORDER BY id")
        .fetch_all(&sqlx::SqlitePool::connect(&app.db_url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![
            (ids[0], "sent".to_string()),
            (ids[1], "sent".to_string()),
            (ids[2], "pending".to_string())
        ]
    );
    let owed: Vec<i64> = next
        .due_digests(now, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        owed,
        vec![ids[2]],
        "only the one not recorded is sent again"
    );
    next.close().await;
}

/// The sent logs beside an app's database.
fn sent_logs(app: &TestApp) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(app.dir.path())
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            name.starts_with("tinbao.db.sent-").then_some(path)
        })
        .collect()
}
