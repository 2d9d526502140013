//! The schema's history, embedded so the binary needs no migrations folder at run time: the
//! files of `migrations/sqlite` and `migrations/postgres`, in step, run by sqlx's migrator.

use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// Embedded so the binary needs no migrations folder at run time. Append-only; the same
/// versions and names in both lists (`migrations_are_in_step` checks).
pub(super) const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
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
    (
        11,
        "skipped items",
        include_str!("../../migrations/sqlite/0011_skipped_items.sql"),
    ),
    (
        12,
        "story index",
        include_str!("../../migrations/sqlite/0012_story_index.sql"),
    ),
    (
        13,
        "entry memory",
        include_str!("../../migrations/sqlite/0013_entry_memory.sql"),
    ),
    (
        14,
        "article queue",
        include_str!("../../migrations/sqlite/0014_article_queue.sql"),
    ),
    (
        15,
        "websub",
        include_str!("../../migrations/sqlite/0015_websub.sql"),
    ),
    (
        16,
        "pending stories",
        include_str!("../../migrations/sqlite/0016_pending_stories.sql"),
    ),
];

pub(super) const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
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
    (
        11,
        "skipped items",
        include_str!("../../migrations/postgres/0011_skipped_items.sql"),
    ),
    (
        12,
        "story index",
        include_str!("../../migrations/postgres/0012_story_index.sql"),
    ),
    (
        13,
        "entry memory",
        include_str!("../../migrations/postgres/0013_entry_memory.sql"),
    ),
    (
        14,
        "article queue",
        include_str!("../../migrations/postgres/0014_article_queue.sql"),
    ),
    (
        15,
        "websub",
        include_str!("../../migrations/postgres/0015_websub.sql"),
    ),
    (
        16,
        "pending stories",
        include_str!("../../migrations/postgres/0016_pending_stories.sql"),
    ),
];

pub(super) fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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

    /// A store from before the waiting rows: its clustered items keep their stories (one that
    /// the story index missed gains its row there), its unclustered item waits with the
    /// signature the poll stored, and the items lose the two columns.
    #[tokio::test]
    async fn a_store_from_before_the_waiting_rows_keeps_its_stories_and_waiting_items() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("old.db");
        let pool = super::super::connect::open_sqlite(&path)
            .await
            .expect("open");
        let before = SQLITE_MIGRATIONS
            .iter()
            .position(|(v, _, _)| *v == 16)
            .expect("version 16");
        migrator(&SQLITE_MIGRATIONS[..before])
            .run(&pool)
            .await
            .expect("old schema");
        let statements = [
            "INSERT INTO feeds (id, url, category, next_poll_at, created_at)
             VALUES ('a', 'http://a/', 'x', 0, 0)",
            "INSERT INTO items (id, feed_id, item_key, title, summary_html, content_html, text,
                authors, categories, published_at, first_seen_at, changed_at, content_hash,
                cluster_id, signature)
             VALUES (1, 'a', 'g:1', 't', '', '', '', '[]', '[]', 10, 10, 10, 'h1', 1, NULL),
                    (2, 'a', 'g:2', 't', '', '', '', '[]', '[]', 20, 20, 20, 'h2', 1, NULL),
                    (3, 'a', 'g:3', 't', '', '', '', '[]', '[]', 30, 30, 30, 'h3', NULL, x'0102')",
            "INSERT INTO story_index (item_id, feed_id, published_at, cluster_id, signature)
             VALUES (1, 'a', 10, 1, x'01')",
        ];
        for statement in statements {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .expect(statement);
        }
        pool.close().await;

        let store =
            crate::storage::Store::open(&format!("sqlite://{}", path.display()), dir.path())
                .await
                .expect("migrated");
        let crate::storage::Pool::Sqlite(pool) = &store.pool else {
            panic!("a SQLite store");
        };
        let stories: Vec<(i64, i64)> =
            sqlx::query_as("SELECT item_id, cluster_id FROM story_index ORDER BY item_id")
                .fetch_all(pool)
                .await
                .expect("story index");
        assert_eq!(stories, [(1, 1), (2, 1)]);
        let waiting: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT item_id, signature FROM pending_stories")
                .fetch_all(pool)
                .await
                .expect("waiting rows");
        assert_eq!(waiting, [(3, vec![1, 2])]);
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('items')")
                .fetch_all(pool)
                .await
                .expect("columns");
        assert!(columns.contains(&"content_hash".to_string()), "{columns:?}");
        assert!(
            !columns
                .iter()
                .any(|c| c == "cluster_id" || c == "signature"),
            "{columns:?}"
        );
        store.close().await;
    }
}
