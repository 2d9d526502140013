//! Who is owed what: for each subscriber due a digest, the items stored since their cursor that
//! match any of their topics, each under the first topic it matches. Every due subscriber's
//! queries go into one `QueryIndex`, so an item is matched once, at a cost that follows its
//! text, not the number of subscribers. Pure.

use super::topic::Topic;
use crate::storage::StoryRow;
use crate::text::{MatchScratch, QueryIndex};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A subscriber due a digest.
#[derive(Debug, Clone)]
pub struct Due {
    pub subscriber_id: i64,
    pub tick: DateTime<Utc>,
    /// Items with a larger id are new to them.
    pub cursor: i64,
    pub topics: Vec<Topic>,
}

/// For each entry of `due`, in order: the `(item id, topic position)` pairs it is owed, by item id.
pub fn assemble(due: &[Due], stories: &[StoryRow]) -> Vec<Vec<(i64, usize)>> {
    // (subscriber index, topic position) for topics with a query, in one index.
    let mut index: QueryIndex<(u32, u32)> = QueryIndex::new();
    // Topics without a query, bucketed by category ("" = any category).
    let mut plain: HashMap<&str, Vec<(u32, u32)>> = HashMap::new();
    for (d, sub) in due.iter().enumerate() {
        for (t, topic) in sub.topics.iter().enumerate() {
            let key = (d as u32, t as u32);
            match &topic.query {
                Some(q) => index.insert(key, q),
                None if topic.categories.is_empty() => plain.entry("").or_default().push(key),
                None => {
                    for c in &topic.categories {
                        plain.entry(c.as_str()).or_default().push(key);
                    }
                }
            }
        }
    }
    let mut owed: Vec<HashMap<i64, usize>> = vec![HashMap::new(); due.len()];
    let mut scratch = MatchScratch::default();
    let mut hits = Vec::new();
    let mut text = String::new();
    for story in stories {
        text.clear();
        text.push_str(&story.title);
        text.push_str(" \n ");
        text.push_str(&story.text);
        hits.clear();
        index.matches_into(&text, &mut scratch, &mut hits);
        let by_filter = plain
            .get(story.category.as_str())
            .into_iter()
            .chain(plain.get(""))
            .flatten();
        for &(d, t) in hits.iter().chain(by_filter) {
            let sub = &due[d as usize];
            let topic = &sub.topics[t as usize];
            if story.id <= sub.cursor || !topic.admits(&story.category, story.province.as_deref()) {
                continue;
            }
            let slot = owed[d as usize].entry(story.id).or_insert(t as usize);
            *slot = (*slot).min(t as usize);
        }
    }
    owed.into_iter()
        .map(|m| {
            let mut v: Vec<(i64, usize)> = m.into_iter().collect();
            v.sort_unstable();
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn config() -> Config {
        let text = "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[category]]\nslug = \"kinh-te\"\ntitle = \"Kinh tế\"\n\
                    [[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n\
                    [[feed]]\nid = \"b\"\nurl = \"https://b.vn/rss\"\ncategory = \"kinh-te\"\nprovince = \"yen-bai\"\n";
        Config::parse(text, Path::new("feeds.toml"), &|_| None).unwrap()
    }

    fn story(id: i64, title: &str, category: &str, province: &str) -> StoryRow {
        StoryRow {
            id,
            cluster_id: id,
            feed_id: "a".into(),
            url: None,
            title: title.into(),
            text: String::new(),
            summary_html: String::new(),
            content_html: String::new(),
            authors: vec![],
            image_url: None,
            published_at: DateTime::default(),
            changed_at: DateTime::default(),
            feed_title: "A".into(),
            feed_url: "https://a.vn/rss".into(),
            site_url: None,
            source_updated: None,
            category: category.into(),
            province: Some(province.into()),
        }
    }

    fn due(cursor: i64, specs: &[&str]) -> Due {
        Due {
            subscriber_id: 1,
            tick: DateTime::default(),
            cursor,
            topics: specs
                .iter()
                .map(|s| Topic::parse(s, &config()).unwrap())
                .collect(),
        }
    }

    #[test]
    fn items_match_by_query_and_filters_and_respect_the_cursor() {
        let stories = [
            story(1, "Lũ quét ở Lào Cai", "thoi-su", "lao-cai"),
            story(2, "Lũ quét ở Lào Cai", "thoi-su", "lao-cai"),
            story(3, "Cai nghiện ở Lào", "thoi-su", "lao-cai"),
            story(4, "Giá quế tăng", "kinh-te", "yen-bai"),
            story(5, "Lào Cai: lú lẫn", "thoi-su", "lao-cai"),
        ];
        let subs = [
            due(1, &["query=\"Lào Cai\" lũ"]),
            due(0, &["category=kinh-te"]),
            due(
                0,
                &[
                    "province=yen-bai query=Lào Cai",
                    "category=thoi-su province=lao-cai",
                ],
            ),
        ];
        let owed = assemble(&subs, &stories);
        assert_eq!(
            owed[0],
            vec![(2, 0)],
            "item 1 is before the cursor; 3 and 5 do not match"
        );
        assert_eq!(owed[1], vec![(4, 0)]);
        assert_eq!(
            owed[2],
            vec![(1, 1), (2, 1), (3, 1), (5, 1)],
            "the first topic's province filter excludes them"
        );
    }

    #[test]
    fn an_item_matching_two_topics_is_owed_once_under_the_first() {
        let stories = [story(7, "Lũ ở Lào Cai", "thoi-su", "lao-cai")];
        let owed = assemble(&[due(0, &["category=thoi-su", "query=lũ"])], &stories);
        assert_eq!(owed[0], vec![(7, 0)]);
    }
}
