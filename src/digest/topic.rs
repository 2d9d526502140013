//! A subscriber's topic: categories, provinces and an optional query in the topic language,
//! written as `category=thoi-su,kinh-te province=lao-cai query="Lào Cai" lũ` (`query=` takes the
//! rest of the line). Parsed and validated against the config; pure.

use crate::config::Config;
use crate::text::Query;
use std::fmt;

#[derive(Debug, Clone)]
pub struct Topic {
    /// Empty means every category.
    pub categories: Vec<String>,
    /// Empty means every province.
    pub provinces: Vec<String>,
    pub query: Option<Query>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic {spec:?}: {reason}")]
pub struct TopicError {
    pub spec: String,
    pub reason: String,
}

impl Topic {
    pub fn parse(spec: &str, config: &Config) -> Result<Topic, TopicError> {
        let fail = |reason: String| TopicError {
            spec: spec.to_string(),
            reason,
        };
        let mut topic = Topic {
            categories: Vec::new(),
            provinces: Vec::new(),
            query: None,
        };
        let mut rest = spec.trim();
        while !rest.is_empty() {
            if let Some(q) = rest.strip_prefix("query=") {
                let q = q.trim();
                topic.query = Some(Query::parse(q).map_err(|e| fail(format!("query: {e}")))?);
                break;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            rest = tail.trim_start();
            let Some((key, value)) = word.split_once('=') else {
                return Err(fail(format!(
                    "expected key=value, found {word:?} (keys: category, province, query)"
                )));
            };
            let values: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect();
            match key {
                "category" => {
                    for v in &values {
                        if config.category(v).is_none() {
                            let known: Vec<&str> =
                                config.categories.iter().map(|c| c.slug.as_str()).collect();
                            return Err(fail(format!(
                                "unknown category {v:?} (known: {})",
                                known.join(", ")
                            )));
                        }
                    }
                    topic.categories.extend(values);
                }
                "province" => {
                    let known = config.feeds.iter().filter_map(|f| f.province.as_deref());
                    let mut known: Vec<&str> = config
                        .provinces
                        .iter()
                        .map(|p| p.slug.as_str())
                        .chain(known)
                        .collect();
                    known.sort_unstable();
                    known.dedup();
                    for v in &values {
                        if !known.contains(&v.as_str()) {
                            return Err(fail(format!(
                                "unknown province {v:?} (known: {})",
                                known.join(", ")
                            )));
                        }
                    }
                    topic.provinces.extend(values);
                }
                other => {
                    return Err(fail(format!(
                        "unknown key {other:?} (keys: category, province, query)"
                    )));
                }
            }
        }
        if topic.categories.is_empty() && topic.provinces.is_empty() && topic.query.is_none() {
            return Err(fail(
                "a topic needs a category, a province or a query".into(),
            ));
        }
        Ok(topic)
    }

    /// Whether an item from a feed of `category` and `province` passes the topic's filters
    /// (the query is checked separately, through the shared index).
    pub fn admits(&self, category: &str, province: Option<&str>) -> bool {
        (self.categories.is_empty() || self.categories.iter().any(|c| c == category))
            && (self.provinces.is_empty()
                || province.is_some_and(|p| self.provinces.iter().any(|x| x == p)))
    }

    /// A heading for the digest section: "Thời sự · Lào Cai · “Lào Cai” lũ".
    pub fn describe(&self, config: &Config) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.categories.is_empty() {
            parts.push(
                self.categories
                    .iter()
                    .map(|c| config.category(c).map_or(c.clone(), |x| x.title.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if !self.provinces.is_empty() {
            parts.push(
                self.provinces
                    .iter()
                    .map(|p| province_name(config, p))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if let Some(q) = &self.query {
            parts.push(curly_quotes(q.source()));
        }
        parts.join(" · ")
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.categories.is_empty() {
            parts.push(format!("category={}", self.categories.join(",")));
        }
        if !self.provinces.is_empty() {
            parts.push(format!("province={}", self.provinces.join(",")));
        }
        if let Some(q) = &self.query {
            parts.push(format!("query={}", q.source()));
        }
        write!(f, "{}", parts.join(" "))
    }
}

/// Straight quotes as typographic ones, opening and closing in turn.
fn curly_quotes(text: &str) -> String {
    let mut open = true;
    text.chars()
        .map(|c| match c {
            '"' => {
                open = !open;
                if open { '”' } else { '“' }
            }
            c => c,
        })
        .collect()
}

pub fn province_name(config: &Config, slug: &str) -> String {
    config
        .provinces
        .iter()
        .find(|p| p.slug == slug)
        .map_or(slug.to_string(), |p| p.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        let text = "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[province]]\nslug = \"lao-cai\"\nname = \"Lào Cai\"\n\
                    [[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n";
        Config::parse(text, Path::new("feeds.toml"), &|_| None).unwrap()
    }

    #[test]
    fn a_full_topic_parses_with_the_query_taking_the_rest() {
        let t = Topic::parse(
            "category=thoi-su province=lao-cai query=\"Lào Cai\" lũ",
            &config(),
        )
        .unwrap();
        assert_eq!(t.categories, ["thoi-su"]);
        assert_eq!(t.provinces, ["lao-cai"]);
        assert!(t.query.as_ref().unwrap().matches("Mưa lũ ở Lào Cai"));
        assert_eq!(t.describe(&config()), "Thời sự · Lào Cai · “Lào Cai” lũ");
        assert_eq!(
            t.to_string(),
            "category=thoi-su province=lao-cai query=\"Lào Cai\" lũ"
        );
    }

    #[test]
    fn unknown_keys_categories_and_bad_queries_are_refused_with_a_reason() {
        let c = config();
        assert!(
            Topic::parse("categori=thoi-su", &c)
                .unwrap_err()
                .reason
                .contains("unknown key")
        );
        assert!(
            Topic::parse("category=the-thao", &c)
                .unwrap_err()
                .reason
                .contains("known: thoi-su")
        );
        assert!(
            Topic::parse("query=\"Lào Cai", &c)
                .unwrap_err()
                .reason
                .starts_with("query: column")
        );
        assert!(Topic::parse("", &c).is_err());
    }

    #[test]
    fn filters_admit_only_matching_sources() {
        let t = Topic::parse("province=lao-cai", &config()).unwrap();
        assert!(t.admits("thoi-su", Some("lao-cai")));
        assert!(!t.admits("thoi-su", Some("yen-bai")));
        assert!(!t.admits("thoi-su", None));
    }
}
