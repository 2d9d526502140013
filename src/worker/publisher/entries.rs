//! A merged feed's entries: the stories of a filter (or of a topic), newest first, each once,
//! shown through its first stored item with the other outlets that carried it.

use super::{Publisher, TOPIC_ROWS};
use crate::digest::topic::Topic;
use crate::publish::{self, Entry, Label, Source};
use crate::storage::{StoryFilter, StoryMember, StoryRow};
use chrono::{DateTime, Utc};

impl Publisher {
    /// The feed's stories: newest first, one entry per story, at most `max_items`.
    pub(super) async fn entries(
        &self,
        filter: &StoryFilter,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Entry>> {
        let publish = &self.config.publish;
        let since =
            now - chrono::Duration::from_std(publish.max_age).unwrap_or(chrono::Duration::days(14));
        // Several items may be one story: read more than needed, then keep one per story.
        let rows = self
            .store
            .stories(filter, since, publish.max_items * 4)
            .await?;
        self.entries_of(rows).await
    }

    /// The stories since `since` that any of `topics` brings (its categories and provinces,
    /// and its query over title and text, through the digests' matcher), as a merged feed shows
    /// them: newest first, each story once. Matching reads only the items' words; the HTML of
    /// the stories shown is read after.
    pub async fn topic_entries(
        &self,
        topics: &[Topic],
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Entry>> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut index = crate::text::QueryIndex::<usize>::new();
        for (i, t) in topics.iter().enumerate() {
            if let Some(q) = &t.query {
                index.insert(i, q);
            }
        }
        // Every topic names its categories: read only those.
        let mut categories: Vec<String> = Vec::new();
        if topics.iter().all(|t| !t.categories.is_empty()) {
            categories = topics.iter().flat_map(|t| t.categories.clone()).collect();
            categories.sort_unstable();
            categories.dedup();
        }
        let texts = self
            .store
            .story_texts(&categories, since, TOPIC_ROWS)
            .await?;
        let (mut scratch, mut hits, mut text) = (Default::default(), Vec::new(), String::new());
        let max = self.config.publish.max_items;
        let (mut clusters, mut ids) = (Vec::new(), Vec::new());
        for r in &texts {
            let admitting: Vec<usize> = (0..topics.len())
                .filter(|&i| topics[i].admits(&r.category, r.province.as_deref()))
                .collect();
            if admitting.is_empty() {
                continue;
            }
            let matched = admitting.iter().any(|&i| topics[i].query.is_none()) || {
                text.clear();
                text.push_str(&r.title);
                text.push_str(" \n ");
                text.push_str(&r.text);
                hits.clear();
                index.matches_into(&text, &mut scratch, &mut hits);
                admitting.iter().any(|i| hits.contains(i))
            };
            if !matched {
                continue;
            }
            if !clusters.contains(&r.cluster_id) {
                if clusters.len() == max {
                    continue;
                }
                clusters.push(r.cluster_id);
            }
            ids.push(r.id);
        }
        drop(texts);
        let rows = self.store.stories_by_id(&ids).await?;
        self.entries_of(rows).await
    }

    /// One entry per story of `rows` (newest first), at most `max_items`.
    async fn entries_of(&self, rows: Vec<StoryRow>) -> anyhow::Result<Vec<Entry>> {
        let publish = &self.config.publish;
        let mut order: Vec<i64> = Vec::new();
        for r in &rows {
            if !order.contains(&r.cluster_id) {
                order.push(r.cluster_id);
                if order.len() == publish.max_items {
                    break;
                }
            }
        }
        let members = self.store.story_members(&order).await?;
        let host = self
            .config
            .server
            .base_url
            .host_str()
            .unwrap_or("localhost")
            .to_string();
        Ok(order
            .iter()
            .filter_map(|id| self.entry(*id, &members, &rows, &host))
            .collect())
    }

    /// One story: shown through its first stored item that belongs to this feed, with the other
    /// members as further sources.
    fn entry(
        &self,
        cluster: i64,
        members: &[StoryMember],
        rows: &[StoryRow],
        host: &str,
    ) -> Option<Entry> {
        let shown = rows
            .iter()
            .filter(|r| r.cluster_id == cluster)
            .min_by_key(|r| r.id)?;
        let story: Vec<&StoryMember> = members.iter().filter(|m| m.cluster_id == cluster).collect();
        let mut also: Vec<Source> = Vec::new();
        // Another source is another article: the same link filed in two sections is not one.
        for m in story.iter().filter(|m| m.id != shown.id) {
            let same_article = m.url.is_some() && m.url == shown.url;
            let listed = also.iter().any(|s| s.link == m.url);
            if !same_article && !listed {
                also.push(source(m));
            }
        }
        let updated = publish::story_updated(&story)
            .map_or(shown.published_at, |u| u.max(shown.published_at));
        Some(Entry {
            guid: format!("tag:{host},2026:tinbao/story/{cluster}"),
            title: shown.title.clone(),
            link: shown.url.clone(),
            summary_html: shown.summary_html.clone(),
            content_html: shown.content_html.clone(),
            published: shown.published_at,
            updated,
            authors: shown.authors.clone(),
            category: Label {
                slug: shown.category.clone(),
                name: self
                    .config
                    .category(&shown.category)
                    .map_or(shown.category.clone(), |c| c.title.clone()),
            },
            source: Source {
                title: shown.feed_title.clone(),
                feed_url: shown.feed_url.clone(),
                site_url: shown.site_url.clone(),
                link: None,
                updated: shown.source_updated,
            },
            also,
            image: shown.image_url.clone(),
        })
    }
}

fn source(r: &StoryMember) -> Source {
    Source {
        title: r.feed_title.clone(),
        feed_url: r.feed_url.clone(),
        site_url: r.site_url.clone(),
        link: r.url.clone(),
        updated: None,
    }
}
