//! Reads for merged feeds: which stored items make up the stories of a category, a province or
//! everything.

use super::{AnyRow, Store, secs, time};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

/// Which items a merged feed draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoryFilter {
    All,
    Category(String),
    Province(String),
}

/// A stored item with what a merged feed needs of its source.
#[derive(Debug, Clone)]
pub struct StoryRow {
    pub id: i64,
    /// The story it belongs to (its own id until clustered).
    pub cluster_id: i64,
    pub feed_id: String,
    pub url: Option<String>,
    pub title: String,
    /// Plain text of the summary or content: what topic queries match.
    pub text: String,
    pub summary_html: String,
    pub content_html: String,
    pub authors: Vec<String>,
    pub image_url: Option<String>,
    pub published_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub feed_title: String,
    pub feed_url: String,
    pub site_url: Option<String>,
    /// When the source feed says it last changed.
    pub source_updated: Option<DateTime<Utc>>,
    pub category: String,
    pub province: Option<String>,
}

const STORY_COLUMNS: &str = story_columns!();

/// What a topic is matched against: an item's words and where it comes from, without its HTML.
#[derive(Debug, Clone)]
pub struct StoryText {
    pub id: i64,
    pub cluster_id: i64,
    pub title: String,
    pub text: String,
    pub category: String,
    pub province: Option<String>,
}

impl Store {
    /// Items of `filter` published since `since`, newest first, at most `limit`.
    pub async fn stories(
        &self,
        filter: &StoryFilter,
        since: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoryRow>> {
        on_pool!(self, d, |pool| {
            let mut q = QueryBuilder::<Db>::new(STORY_COLUMNS);
            let feeds = match filter {
                StoryFilter::All => None,
                StoryFilter::Category(slug) => Some(("category", vec![slug.clone()])),
                StoryFilter::Province(slug) => Some(("province", vec![slug.clone()])),
            };
            d::push_newest(&mut q, secs(since), feeds, limit);
            let rows = q.build().fetch_all(pool).await?;
            rows.iter().map(story_row).collect()
        })
    }

    /// `stories` without the HTML and sources: what matching a topic needs, a third of the
    /// bytes. `categories` empty means every category.
    pub async fn story_texts(
        &self,
        categories: &[String],
        since: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoryText>> {
        on_pool!(self, d, |pool| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT i.id, COALESCE(s.cluster_id, i.id) AS cluster_id, i.title, i.text,
                    f.category, f.province
                 FROM items i JOIN feeds f ON f.id = i.feed_id
                 LEFT JOIN story_index s ON s.item_id = i.id ",
            );
            let feeds = (!categories.is_empty()).then(|| ("category", categories.to_vec()));
            d::push_newest(&mut q, secs(since), feeds, limit);
            let rows = q.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(StoryText {
                        id: r.col("id")?,
                        cluster_id: r.col("cluster_id")?,
                        title: r.col("title")?,
                        text: r.col("text")?,
                        category: r.col("category")?,
                        province: r.col("province")?,
                    })
                })
                .collect()
        })
    }

    /// The items with these ids, as `stories` reads them, newest first.
    pub async fn stories_by_id(&self, ids: &[i64]) -> anyhow::Result<Vec<StoryRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(400) {
            on_pool!(self, |pool| {
                let mut q = QueryBuilder::<Db>::new(STORY_COLUMNS);
                q.push("WHERE i.id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(pool).await? {
                    out.push(story_row(&r)?);
                }
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse((s.published_at, s.id)));
        Ok(out)
    }

    /// Every item of the given stories (clusters), whatever their category: its source and
    /// link, not its text (the merged feeds and digests name the other outlets from these).
    pub async fn story_members(&self, cluster_ids: &[i64]) -> anyhow::Result<Vec<StoryMember>> {
        let mut out = Vec::new();
        for chunk in cluster_ids.chunks(400) {
            on_pool!(self, |pool| {
                let mut q = QueryBuilder::<Db>::new(
                    "SELECT COALESCE(s.cluster_id, i.id) AS cluster_id, i.id, i.url, i.changed_at,
                        i.published_at, i.updated_at, i.first_seen_at,
                        COALESCE(f.configured_title, f.title, f.id) AS feed_title,
                        f.url AS feed_url, f.site_url
                     FROM items i JOIN feeds f ON f.id = i.feed_id
                     LEFT JOIN story_index s ON s.item_id = i.id ",
                );
                // Indexable (the story index's by story, then the primary key): a story's
                // members by their story, and an item not yet clustered, its own story, by id.
                q.push("WHERE i.id IN (SELECT item_id FROM story_index WHERE cluster_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")) OR (s.item_id IS NULL AND i.id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")) ORDER BY i.id");
                for r in q.build().fetch_all(pool).await? {
                    out.push(StoryMember {
                        cluster_id: r.col("cluster_id")?,
                        id: r.col("id")?,
                        url: r.col("url")?,
                        changed_at: time(r.col("changed_at")?),
                        published_at: time(r.col("published_at")?),
                        updated_at: r.col::<Option<i64>>("updated_at")?.map(time),
                        first_seen_at: time(r.col("first_seen_at")?),
                        feed_title: r.col("feed_title")?,
                        feed_url: r.col("feed_url")?,
                        site_url: r.col("site_url")?,
                    });
                }
            });
        }
        Ok(out)
    }
}

pub(super) fn story_row(r: &impl AnyRow) -> anyhow::Result<StoryRow> {
    let authors: String = r.col("authors")?;
    Ok(StoryRow {
        id: r.col("id")?,
        cluster_id: r.col("cluster_id")?,
        feed_id: r.col("feed_id")?,
        url: r.col("url")?,
        title: r.col("title")?,
        text: r.col("text")?,
        summary_html: r.col("summary_html")?,
        content_html: r.col("content_html")?,
        authors: serde_json::from_str(&authors).unwrap_or_default(),
        image_url: r.col("image_url")?,
        published_at: time(r.col("published_at")?),
        changed_at: time(r.col("changed_at")?),
        feed_title: r.col("feed_title")?,
        feed_url: r.col("feed_url")?,
        site_url: r.col("site_url")?,
        source_updated: r.col::<Option<i64>>("source_updated_at")?.map(time),
        category: r.col("category")?,
        province: r.col("province")?,
    })
}

/// One item of a story: its source and link.
#[derive(Debug, Clone)]
pub struct StoryMember {
    pub cluster_id: i64,
    pub id: i64,
    pub url: Option<String>,
    /// When tinbao last saw its text change (its first sighting if never edited).
    pub changed_at: DateTime<Utc>,
    /// The dates its source gave (publication, last update) and when tinbao first saw it.
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub feed_title: String,
    pub feed_url: String,
    pub site_url: Option<String>,
}

both_dialects! {
/// Ends a query over `items i` with its rows published since `since`, newest first, at most
/// `limit`; with `feeds` (a column of `feeds` and the values it may take), only the items of
/// those feeds. Those are read as the newest ids from each feed's `(feed_id, published_at)`
/// index (it holds the date and the id), then their rows: walking every item by date to keep
/// the few of one category read ten times the rows, and was most of a regeneration.
pub(super) fn push_newest(
    q: &mut QueryBuilder<Db>,
    since: i64,
    feeds: Option<(&str, Vec<String>)>,
    limit: usize,
) {
    let Some((column, values)) = feeds else {
        q.push("WHERE i.published_at >= ").push_bind(since);
        q.push(" ORDER BY i.published_at DESC, i.id DESC LIMIT ").push_bind(limit as i64);
        return;
    };
    q.push("WHERE i.id IN (SELECT id FROM items WHERE published_at >= ").push_bind(since);
    q.push(format!(" AND feed_id IN (SELECT id FROM feeds WHERE {column} IN ("));
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    q.push(")) ORDER BY published_at DESC, id DESC LIMIT ").push_bind(limit as i64);
    q.push(") ORDER BY i.published_at DESC, i.id DESC");
}
}
