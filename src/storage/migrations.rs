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
}
