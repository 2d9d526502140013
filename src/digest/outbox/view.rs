//! A digest email's content: the stories a run has read (each read and rendered once per run and
//! timezone), grouped under their topics' titles, one per story, with the subject's place.

use super::Digester;
use crate::config::Config;
use crate::digest::links::Purpose;
use crate::digest::render::{DigestView, PreparedStory, Section, Story, Templates};
use crate::digest::topic::{Topic, province_name};
use crate::storage::{DigestItem, Store, StoryMember};
use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::str::FromStr;

impl Digester {
    /// The email's content: stories grouped by topic, one per story (other outlets named),
    /// newest first, capped at `max_items`. `items` are (item id, topic position), their
    /// stories on `shelf`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn view(
        &self,
        shelf: &mut Shelf,
        email: &str,
        timezone: &str,
        subscriber_id: i64,
        tick: DateTime<Utc>,
        topic_specs: &[String],
        items: &[(i64, usize)],
    ) -> anyhow::Result<DigestView> {
        let tz = Tz::from_str(timezone).unwrap_or(self.config.digest.timezone);
        for spec in topic_specs {
            // A spec that no longer parses titles its stories "Tin mới" (`parsed` says why).
            let _ = shelf.topics.parse(spec, &self.config);
        }
        let parsed: Vec<Option<&(Topic, String)>> =
            topic_specs.iter().map(|s| shelf.topics.get(s)).collect();
        let mut ordered: Vec<(usize, &DigestItem)> = items
            .iter()
            .filter_map(|(id, position)| Some((*position, &shelf.stories.read.get(id)?.0)))
            .collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.published_at.cmp(&a.1.published_at)));
        let mut seen_clusters = std::collections::HashSet::new();
        let mut shown: Vec<(usize, i64)> = Vec::new();
        let mut more = 0;
        for (position, item) in ordered {
            if !seen_clusters.insert(item.cluster_id) {
                continue;
            }
            if shown.len() >= self.config.digest.max_items {
                more += 1;
                continue;
            }
            shown.push((position, item.id));
        }
        let mut sections: Vec<Section> = Vec::new();
        for (position, id) in shown {
            let title = parsed
                .get(position)
                .copied()
                .flatten()
                .map_or("Tin mới", |(_, title)| title.as_str());
            if sections.last().is_none_or(|s| s.title != title) {
                sections.push(Section {
                    title: title.to_string(),
                    stories: Vec::new(),
                });
            }
            let story = shelf.stories.prepared(id, tz, &self.templates)?;
            if let Some(section) = sections.last_mut() {
                section.stories.push(story);
            }
        }
        let base = self.config.server.base_url.to_string();
        let topics: Vec<&Topic> = parsed.iter().flatten().map(|(t, _)| t).collect();
        // Placeholders: the sender puts fresh links in; a dry run stores no tokens.
        let [manage_url, unsubscribe_url] =
            [Purpose::Manage, Purpose::Unsubscribe].map(|p| self.links.url(p, "dry-run"));
        Ok(DigestView {
            to: email.to_string(),
            tick,
            timezone: tz,
            place: self.place(&topics),
            sections,
            more,
            more_url: (more > 0).then(|| format!("{base}feeds/all.xml")),
            manage_url,
            unsubscribe_url,
            base_url: base,
            message_id: self.message_id(subscriber_id, tick),
        })
    }

    /// The subject's place: the one province all topics name, else the one category, else a
    /// general label.
    fn place(&self, topics: &[&Topic]) -> String {
        let mut provinces: Vec<&String> = topics.iter().flat_map(|t| &t.provinces).collect();
        provinces.dedup();
        if provinces.len() == 1 && topics.iter().all(|t| !t.provinces.is_empty()) {
            return province_name(&self.config, provinces[0]);
        }
        let mut categories: Vec<&String> = topics.iter().flat_map(|t| &t.categories).collect();
        categories.dedup();
        if categories.len() == 1 && topics.iter().all(|t| !t.categories.is_empty()) {
            return self
                .config
                .category(categories[0])
                .map_or(categories[0].clone(), |c| c.title.clone());
        }
        "các tỉnh".to_string()
    }
}

/// What a run has read and prepared for its digests' emails, kept for the whole run.
#[derive(Default)]
pub(super) struct Shelf {
    pub(super) topics: Topics,
    pub(super) stories: Stories,
}

/// Topic specs as written, each parsed once per run (thousands of subscribers follow the same
/// few hundred), with its section title; a spec that no longer parses keeps the reason.
#[derive(Default)]
pub(super) struct Topics(HashMap<String, Result<(Topic, String), String>>);

impl Topics {
    pub(super) fn parse(&mut self, spec: &str, config: &Config) -> Result<&Topic, &str> {
        if !self.0.contains_key(spec) {
            let parsed = Topic::parse(spec, config)
                .map(|t| {
                    let title = t.describe(config);
                    (t, title)
                })
                .map_err(|e| e.to_string());
            self.0.insert(spec.to_string(), parsed);
        }
        match &self.0[spec] {
            Ok((topic, _)) => Ok(topic),
            Err(e) => Err(e),
        }
    }

    /// A spec `parse` has seen, if it parsed: the topic and its section title.
    fn get(&self, spec: &str) -> Option<&(Topic, String)> {
        self.0.get(spec)?.as_ref().ok()
    }
}

/// Other outlets carrying a story: (name, link).
type Outlets = Vec<(String, Option<String>)>;

/// The stories a run's digests show. Thousands of digests carry the same few hundred stories:
/// each is read, and rendered for each timezone, once per run.
#[derive(Default)]
pub(super) struct Stories {
    /// Each item read, with the other outlets carrying its story.
    read: HashMap<i64, (DigestItem, Outlets)>,
    prepared: HashMap<(i64, Tz), PreparedStory>,
}

impl Stories {
    /// Reads the items in `wanted` that are not read yet, with the other outlets of their
    /// stories: two queries.
    pub(super) async fn stock(&mut self, store: &Store, wanted: Vec<i64>) -> anyhow::Result<()> {
        let mut missing: Vec<i64> = wanted
            .into_iter()
            .filter(|id| !self.read.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let items = store.digest_items(&missing).await?;
        let mut clusters: Vec<i64> = items.iter().map(|i| i.cluster_id).collect();
        clusters.sort_unstable();
        clusters.dedup();
        let mut members: HashMap<i64, Vec<StoryMember>> = HashMap::new();
        for m in store.story_members(&clusters).await? {
            members.entry(m.cluster_id).or_default().push(m);
        }
        for item in items {
            let also = members
                .get(&item.cluster_id)
                .into_iter()
                .flatten()
                .filter(|m| m.id != item.id && m.url != item.url)
                .map(|m| (m.feed_title.clone(), m.url.clone()))
                .collect();
            self.read.insert(item.id, (item, also));
        }
        Ok(())
    }

    /// Item `id` (read) as shown to readers in `tz`.
    fn prepared(
        &mut self,
        id: i64,
        tz: Tz,
        templates: &Templates,
    ) -> anyhow::Result<PreparedStory> {
        if let Some(done) = self.prepared.get(&(id, tz)) {
            return Ok(done.clone());
        }
        let (item, also) = self
            .read
            .get(&id)
            .with_context(|| format!("item {id} was not read"))?;
        let story = Story {
            title: item.title.clone(),
            url: item.url.clone(),
            source: item.feed_title.clone(),
            summary: shorten(&item.text, 300),
            published: item.published_at,
            also: also.clone(),
        };
        let done = templates.prepare(&story, tz)?;
        self.prepared.insert((id, tz), done.clone());
        Ok(done)
    }
}

/// At most `max` characters, cut at a word boundary, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let end = cut.rfind(' ').unwrap_or(cut.len());
    format!("{}…", cut[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(shorten("Lào Cai mưa lớn", 9), "Lào Cai…");
        assert_eq!(shorten("ngắn", 10), "ngắn");
    }
}
