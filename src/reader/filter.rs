//! Skip and keep rules: which items of a feed are stored at all. Rules are queries in the topic
//! language (the same Vietnamese-aware matching as digests), over an item's title and plain
//! text, from the feed's `[[feed]]` entry and from its category. An item is stored when it
//! matches no `skip` rule and every `keep` rule there is: a feed's rules add to its category's.

use crate::config::Config;
use crate::model::NewItem;
use crate::text::Query;

/// The rules one feed's items pass through.
#[derive(Debug, Default)]
pub struct Rules {
    skip: Vec<Query>,
    keep: Vec<Query>,
    /// The rules as written, in order: what an entry remembered under them depends on.
    text: String,
}

impl Rules {
    /// The rules of feed `feed_id` and of its category. A rule that does not parse was refused
    /// when the config was loaded, so none is lost here.
    pub fn for_feed(config: &Config, feed_id: &str) -> Rules {
        let mut rules = Rules::default();
        let Some(feed) = config.feeds.iter().find(|f| f.id == feed_id) else {
            return rules;
        };
        let category = config.category(&feed.category);
        let skips = [category.and_then(|c| c.skip.as_ref()), feed.skip.as_ref()];
        let keeps = [category.and_then(|c| c.keep.as_ref()), feed.keep.as_ref()];
        for (kind, q) in skips
            .iter()
            .map(|q| ("skip", q))
            .chain(keeps.iter().map(|q| ("keep", q)))
        {
            if let Some(q) = q {
                rules.text.push_str(&format!("{kind} {q}\n"));
            }
        }
        rules.skip = skips
            .into_iter()
            .flatten()
            .filter_map(|q| Query::parse(q).ok())
            .collect();
        rules.keep = keeps
            .into_iter()
            .flatten()
            .filter_map(|q| Query::parse(q).ok())
            .collect();
        rules
    }

    /// The rules as written (empty for none).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.skip.is_empty() && self.keep.is_empty()
    }

    /// Whether `item` is to be stored.
    pub fn admits(&self, item: &NewItem) -> bool {
        if self.is_empty() {
            return true;
        }
        // As digests match a story: the title, then the text, never one phrase across both.
        let text = format!("{} \n {}", item.title, item.text);
        !self.skip.iter().any(|q| q.matches(&text)) && self.keep.iter().all(|q| q.matches(&text))
    }

    /// Drops from `items` what the rules skip; returns how many.
    pub fn apply(&self, items: &mut Vec<NewItem>) -> usize {
        let before = items.len();
        if !self.is_empty() {
            items.retain(|item| self.admits(item));
        }
        before - items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(category: &str, feed: &str) -> Config {
        let text = format!(
            "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n{category}\n\
             [[feed]]\nid = \"lc\"\nurl = \"https://baolaocai.vn/rss\"\ncategory = \"thoi-su\"\n{feed}\n\
             [[feed]]\nid = \"yb\"\nurl = \"https://baoyenbai.com.vn/rss\"\ncategory = \"thoi-su\"\n"
        );
        Config::parse(&text, Path::new("feeds.toml"), &|_| None).expect("valid config")
    }

    fn item(title: &str, text: &str) -> NewItem {
        NewItem {
            key: title.into(),
            guid: None,
            url: None,
            canonical_url: None,
            title: title.into(),
            summary_html: String::new(),
            content_html: String::new(),
            text: text.into(),
            authors: vec![],
            categories: vec![],
            image_url: None,
            published: chrono::DateTime::default(),
            date_estimated: false,
            updated: None,
            content_hash: String::new(),
            signature: vec![],
        }
    }

    fn titles(rules: &Rules, items: &[NewItem]) -> Vec<String> {
        let mut kept = items.to_vec();
        rules.apply(&mut kept);
        kept.into_iter().map(|i| i.title).collect()
    }

    #[test]
    fn a_feeds_rules_add_to_its_categorys() {
        let c = config(
            "skip = '\"quảng cáo\"'",
            "keep = '\"Lào Cai\" OR \"Sa Pa\"'\nskip = 'xổ số'",
        );
        let items = [
            item("Lào Cai đón khách", "Du lịch mùa đông."),
            item("Kết quả xổ số Lào Cai", "Hôm nay."),
            item("Sa Pa mưa đá", "Bài viết quảng cáo khách sạn."),
            item("Hà Nội tắc đường", "Giờ cao điểm."),
            item("Tin ngắn", "Nông dân Lào Cai thu hoạch."),
        ];
        assert_eq!(
            titles(&Rules::for_feed(&c, "lc"), &items),
            ["Lào Cai đón khách", "Tin ngắn"],
            "category skip, feed skip and feed keep all apply"
        );
        // The other feed of the category has only the category's rule.
        assert_eq!(
            titles(&Rules::for_feed(&c, "yb"), &items),
            [
                "Lào Cai đón khách",
                "Kết quả xổ số Lào Cai",
                "Hà Nội tắc đường",
                "Tin ngắn"
            ]
        );
    }

    #[test]
    fn rules_match_as_topics_do() {
        // Unmarked syllables match any diacritics; marked ones only themselves.
        let c = config("", "skip = 'xo so'");
        let rules = Rules::for_feed(&c, "lc");
        assert!(!rules.admits(&item("Kết quả xổ số", "")));
        let c = config("", "skip = 'lũ'");
        let rules = Rules::for_feed(&c, "lc");
        assert!(!rules.admits(&item("Lũ quét ở Bát Xát", "")));
        assert!(rules.admits(&item("Lu bu cuối năm", "")));
        // A feed without rules keeps everything, an unknown feed too.
        let c = config("", "");
        assert!(Rules::for_feed(&c, "lc").is_empty());
        assert!(Rules::for_feed(&c, "nowhere").is_empty());
    }
}
