//! A merged feed's entries: the stories of a filter (or of a topic), newest first, each once,
//! shown through its first stored item with the other outlets that carried it.

use super::{Publisher, TOPIC_ROWS};
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

    /// The stories of `filter` (and `province`, if given) since `since` whose title or text
    /// matches `query`, as a merged feed shows them: newest first, each story once.
    pub async fn topic_entries(
        &self,
        query: &crate::text::Query,
        filter: &StoryFilter,
        province: Option<&str>,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Entry>> {
        let mut index = crate::text::QueryIndex::<u32>::new();
        index.insert(0, query);
        let rows = self.store.stories(filter, since, TOPIC_ROWS).await?;
        let (mut scratch, mut hits, mut text) = (Default::default(), Vec::new(), String::new());
        let rows = rows
            .into_iter()
            .filter(|r| province.is_none_or(|p| r.province.as_deref() == Some(p)))
            .filter(|r| {
                text.clear();
                text.push_str(&r.title);
                text.push_str(" \n ");
                text.push_str(&r.text);
                hits.clear();
                index.matches_into(&text, &mut scratch, &mut hits);
                !hits.is_empty()
            })
            .collect();
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
