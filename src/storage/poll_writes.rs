//! The poll writer: one task that commits finished polls, several per transaction (group
//! commit), each under its own savepoint. A poll's writes: new items inserted, changed ones
//! updated in place (the story index follows), full-text items queued, and the feed's row.

use super::feeds::FeedUpdate;
use super::items::StoreCounts;
use super::{Dialect, Store, secs};
use crate::model::NewItem;
use sqlx::{Connection, QueryBuilder, Row};
use std::collections::HashMap;

/// One poll waiting to be written, and where to send the outcome.
pub(super) struct PollJob {
    pub(super) feed_id: String,
    pub(super) items: Vec<NewItem>,
    pub(super) update: FeedUpdate,
    pub(super) reply: tokio::sync::oneshot::Sender<anyhow::Result<StoreCounts>>,
}

/// Most polls committed in one transaction.
const GROUP_MAX: usize = 64;

/// The poll writer: takes the jobs that are waiting (at least one, at most `GROUP_MAX`) and
/// commits them in one transaction, each under its own savepoint. Runs until every `Store`
/// handle is gone.
pub(super) async fn poll_writer(store: Store, mut jobs: tokio::sync::mpsc::Receiver<PollJob>) {
    let mut batch = Vec::with_capacity(GROUP_MAX);
    while jobs.recv_many(&mut batch, GROUP_MAX).await > 0 {
        let results = match write_group(&store, &batch).await {
            Ok(results) => results,
            // The transaction itself failed: nothing of the group was stored.
            Err(e) => batch
                .iter()
                .map(|_| Err(anyhow::anyhow!("{e:#}")))
                .collect(),
        };
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

async fn write_group(
    store: &Store,
    batch: &[PollJob],
) -> anyhow::Result<Vec<anyhow::Result<StoreCounts>>> {
    on_pool!(store, d, |pool| d::write_group(store, pool, batch).await)
}

both_dialects! {
pub(super) async fn write_group(
    store: &Store,
    pool: &sqlx::Pool<Db>,
    batch: &[PollJob],
) -> anyhow::Result<Vec<anyhow::Result<StoreCounts>>> {
    let (_turn, mut tx) = store.write(pool).await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let mut savepoint = Connection::begin(&mut *tx).await?;
        match write_poll(&mut savepoint, &job.feed_id, &job.items, &job.update, store.owner()).await {
            Ok(counts) => {
                savepoint.commit().await?;
                results.push(Ok(counts));
            }
            Err(e) => {
                savepoint.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// One poll's writes, inside the caller's transaction.
async fn write_poll(
    tx: &mut Conn,
    feed_id: &str,
    items: &[NewItem],
    update: &FeedUpdate,
    owner: &str,
) -> anyhow::Result<StoreCounts> {
    let now = secs(update.fetched_at);
    let mut counts = StoreCounts::default();
    // A few statements per chunk, not one per item: each statement is a round trip to
    // SQLite's worker thread, which dominated ingest time when done per item.
    for chunk in items.chunks(INSERT_CHUNK) {
        let known = known_keys(&mut *tx, feed_id, chunk).await?;
        let (fresh, seen): (Vec<&NewItem>, Vec<&NewItem>) =
            chunk.iter().partition(|i| !known.contains_key(&i.key));
        counts.new += insert_items(&mut *tx, feed_id, &fresh, now).await?;
        let mut articles: Vec<&str> = if update.full_text {
            fresh.iter().map(|i| i.key.as_str()).collect()
        } else {
            Vec::new()
        };
        for item in seen {
            if known.get(&item.key).and_then(|h| h.as_deref()) != Some(item.content_hash.as_str()) {
                let changed = update_item(&mut *tx, feed_id, item, now).await?;
                counts.updated += changed;
                if changed > 0 && update.full_text {
                    articles.push(&item.key);
                }
            }
        }
        if !articles.is_empty() {
            peers::articles::enqueue_articles(&mut *tx, feed_id, &articles, now).await?;
        }
    }
    write_success(&mut *tx, feed_id, update, owner).await?;
    if counts.new + counts.updated > 0 {
        // Its merged feeds are stale until a regeneration clears this (see `Store::published`).
        sqlx::query(Db::sql("UPDATE feeds SET unpublished = unpublished + 1 WHERE id = ?1"))
            .bind(feed_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(counts)
}


/// The keys of `items` this feed already has (with their content hash) or has tombstoned
/// (hash `None`: never to be stored again).
pub(in crate::storage) async fn known_keys(
    tx: &mut Conn,
    feed_id: &str,
    items: &[NewItem],
) -> anyhow::Result<HashMap<String, Option<String>>> {
    let mut q =
        QueryBuilder::<Db>::new("SELECT item_key, content_hash FROM items WHERE feed_id = ");
    q.push_bind(feed_id).push(" AND item_key IN (");
    push_keys(&mut q, items);
    q.push(") UNION ALL SELECT item_key, NULL FROM item_tombstones WHERE feed_id = ");
    q.push_bind(feed_id).push(" AND item_key IN (");
    push_keys(&mut q, items);
    q.push(")");
    let rows = q.build().fetch_all(&mut *tx).await?;
    let mut known = HashMap::with_capacity(rows.len());
    for r in rows {
        let key: String = r.try_get(0)?;
        let hash: Option<String> = r.try_get(1)?;
        // A tombstone wins over a row (there should never be both).
        if hash.is_none() || !known.contains_key(&key) {
            known.insert(key, hash);
        }
    }
    Ok(known)
}

fn push_keys(q: &mut QueryBuilder<Db>, items: &[NewItem]) {
    let mut list = q.separated(", ");
    for item in items {
        list.push_bind(item.key.clone());
    }
}

/// Inserts new items in one statement; returns how many.
async fn insert_items(
    tx: &mut Conn,
    feed_id: &str,
    items: &[&NewItem],
    now: i64,
) -> anyhow::Result<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<Db>::new(
        "INSERT INTO items (feed_id, item_key, guid, url, canonical_url, title, summary_html,
            content_html, text, authors, categories, image_url, published_at, date_estimated,
            updated_at, first_seen_at, changed_at, content_hash) ",
    );
    q.push_values(items, |mut row, item| {
        row.push_bind(feed_id.to_string())
            .push_bind(item.key.clone())
            .push_bind(item.guid.clone())
            .push_bind(item.url.clone())
            .push_bind(item.canonical_url.clone())
            .push_bind(item.title.clone())
            .push_bind(item.summary_html.clone())
            .push_bind(item.content_html.clone())
            .push_bind(item.text.clone())
            .push_bind(json_list(&item.authors))
            .push_bind(json_list(&item.categories))
            .push_bind(item.image_url.clone())
            .push_bind(secs(item.published))
            .push_bind(item.date_estimated)
            .push_bind(item.updated.map(secs))
            .push_bind(now)
            .push_bind(now)
            .push_bind(item.content_hash.clone());
    });
    // Within one document keys are unique, so nothing here can conflict with itself.
    q.push(" ON CONFLICT (feed_id, item_key) DO NOTHING RETURNING id, item_key");
    let inserted: HashMap<String, i64> = q
        .build()
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("item_key")?, r.try_get("id")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    // Each new item waits for its story in its own narrow row, with the signature the parse
    // made (clustering reads these, never the item's row).
    let waiting: Vec<(i64, &NewItem)> = items
        .iter()
        .filter_map(|item| Some((*inserted.get(&item.key)?, *item)))
        .collect();
    if !waiting.is_empty() {
        let mut q = QueryBuilder::<Db>::new(
            "INSERT INTO pending_stories (item_id, feed_id, canonical_url, published_at, signature) ",
        );
        q.push_values(&waiting, |mut row, (id, item)| {
            row.push_bind(*id)
                .push_bind(feed_id.to_string())
                .push_bind(item.canonical_url.clone())
                .push_bind(secs(item.published))
                .push_bind(item.signature.clone());
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(inserted.len())
}

/// Updates a seen item whose text changed. The filing date of an item whose date was
/// estimated stays the first-seen one.
async fn update_item(
    tx: &mut Conn,
    feed_id: &str,
    item: &NewItem,
    now: i64,
) -> anyhow::Result<usize> {
    let changed = sqlx::query(Db::sql(
        "UPDATE items SET guid = ?3, url = ?4, canonical_url = ?5, title = ?6, summary_html = ?7,
            content_html = ?8, text = ?9, authors = ?10, categories = ?11, image_url = ?12,
            published_at = CASE WHEN ?14 THEN published_at ELSE ?13 END,
            date_estimated = CASE WHEN ?14 THEN date_estimated ELSE FALSE END,
            updated_at = ?15, changed_at = ?16, content_hash = ?17
         WHERE feed_id = ?1 AND item_key = ?2 AND content_hash <> ?17
         RETURNING id, published_at, canonical_url",
    ))
    .bind(feed_id)
    .bind(&item.key)
    .bind(&item.guid)
    .bind(&item.url)
    .bind(&item.canonical_url)
    .bind(&item.title)
    .bind(&item.summary_html)
    .bind(&item.content_html)
    .bind(&item.text)
    .bind(json_list(&item.authors))
    .bind(json_list(&item.categories))
    .bind(&item.image_url)
    .bind(secs(item.published))
    .bind(item.date_estimated)
    .bind(item.updated.map(secs))
    .bind(now)
    .bind(&item.content_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(changed) = changed else {
        return Ok(0);
    };
    let id: i64 = changed.try_get("id")?;
    let published_at: i64 = changed.try_get("published_at")?;
    let canonical_url: Option<String> = changed.try_get("canonical_url")?;
    // Its signature is where clustering reads it: in the story index once clustered (later items
    // compare with the text as it is now), else in its waiting row.
    sqlx::query(Db::sql(
        "UPDATE story_index SET signature = ?2, published_at = ?3 WHERE item_id = ?1",
    ))
    .bind(id)
    .bind(&item.signature)
    .bind(published_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(Db::sql(
        "UPDATE pending_stories SET signature = ?2, published_at = ?3, canonical_url = ?4
         WHERE item_id = ?1",
    ))
    .bind(id)
    .bind(&item.signature)
    .bind(published_at)
    .bind(canonical_url)
    .execute(&mut *tx)
    .await?;
    Ok(1)
}

/// The feed's row after a successful poll; this process's lease on it ends.
pub(in crate::storage) async fn write_success(
    tx: &mut Conn,
    feed_id: &str,
    u: &FeedUpdate,
    owner: &str,
) -> anyhow::Result<()> {
    let v = u.validators.clone().unwrap_or_default();
    sqlx::query(Db::sql(
        "UPDATE feeds SET last_fetch_at = ?2, last_success_at = ?2, last_status = ?3, last_error = NULL,
            error_count = 0, next_poll_at = ?4, etag = ?5, last_modified = ?6,
            body_hash = COALESCE(?7, body_hash), title = COALESCE(?8, title), site_url = COALESCE(?9, site_url),
            format = COALESCE(?10, format), moved_to = ?11, ttl_seconds = ?12,
            source_updated_at = COALESCE(?14, source_updated_at), last_skipped = ?15,
            entry_memory = CASE WHEN ?16 THEN ?17 ELSE entry_memory END,
            lease_until = CASE WHEN lease_owner = ?13 THEN NULL ELSE lease_until END,
            lease_owner = NULLIF(lease_owner, ?13)
         WHERE id = ?1",
    ))
    .bind(feed_id)
    .bind(secs(u.fetched_at))
    .bind(u.status.map(i64::from))
    .bind(secs(u.next_poll_at))
    .bind(&v.etag)
    .bind(&v.last_modified)
    .bind(&u.body_hash)
    .bind(&u.title)
    .bind(&u.site_url)
    .bind(&u.format)
    .bind(&u.moved_to)
    .bind(u.ttl.map(|t| t.as_secs() as i64))
    .bind(owner)
    .bind(u.source_updated.map(secs))
    .bind(u.skipped as i64)
    .bind(u.entry_memory.is_some())
    .bind(u.entry_memory.clone().flatten())
    .execute(tx)
    .await?;
    Ok(())
}
}

/// Rows per multi-row statement: 19 parameters each stays far below either database's limit.
pub(super) const INSERT_CHUNK: usize = 200;

/// A list of names as a JSON array (infallible, unlike serde's general `to_string`).
fn json_list(names: &[String]) -> String {
    serde_json::Value::from(names.to_vec()).to_string()
}
