//! What the subscribe and manage forms share: reading a urlencoded body, a topic's fields
//! (categories, provinces, keywords in the topic language) validated with messages in
//! Vietnamese, schedule choices, and the preview of the last 7 days' matching stories through
//! the digests' own matcher (`digest::assemble`).

use crate::config::Config;
use crate::digest::assemble::{Due, assemble};
use crate::digest::schedule::IMMEDIATE_BATCH;
use crate::digest::topic::{Topic, province_name};
use crate::storage::Store;
use crate::text::{Query, QueryErrorKind};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use unicode_normalization::UnicodeNormalization;

/// Longest keyword query accepted.
const MAX_QUERY: usize = 200;
/// Most topics one subscriber may have.
pub const MAX_TOPICS: usize = 10;
/// Stories listed in a preview (the count covers all).
const PREVIEW_SHOWN: usize = 10;
/// How far back a preview looks.
const PREVIEW_DAYS: i64 = 7;

/// A urlencoded form body, in order, repeated names kept.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// A problem with one field: its element id (for the error summary's link) and a message.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub fn errors_value(errors: &[FieldError]) -> Value {
    errors
        .iter()
        .map(|e| context! { field => &e.field, message => &e.message })
        .collect::<Vec<_>>()
        .into()
}

/// One topic's fields as submitted (or as stored, for the manage page).
#[derive(Debug, Clone, Default)]
pub struct TopicInput {
    pub categories: Vec<String>,
    pub provinces: Vec<String>,
    pub query: String,
    pub remove: bool,
}

/// What is wrong with one topic: the topic as a whole, or its keywords.
#[derive(Debug, Clone, Default)]
pub struct TopicProblem {
    pub topic: Option<String>,
    pub query: Option<String>,
}

impl TopicInput {
    /// Fields `t{i}_category`, `t{i}_province`, `t{i}_query`, `t{i}_remove`.
    pub fn from_form(form: &Form, i: usize) -> TopicInput {
        let query: String = form
            .get(&format!("t{i}_query"))
            .unwrap_or_default()
            .nfc()
            .collect();
        TopicInput {
            categories: form.all(&format!("t{i}_category")),
            provinces: form.all(&format!("t{i}_province")),
            query: query.split_whitespace().collect::<Vec<_>>().join(" "),
            remove: form.get(&format!("t{i}_remove")).is_some(),
        }
    }

    /// A stored spec back as fields; `None` if it no longer parses.
    pub fn from_spec(spec: &str, config: &Config) -> Option<TopicInput> {
        let topic = Topic::parse(spec, config).ok()?;
        Some(TopicInput {
            categories: topic.categories,
            provinces: topic.provinces,
            query: topic
                .query
                .map(|q| q.source().to_string())
                .unwrap_or_default(),
            remove: false,
        })
    }

    pub fn is_blank(&self) -> bool {
        self.categories.is_empty() && self.provinces.is_empty() && self.query.is_empty()
    }

    /// The topic, validated, with the spec to store.
    pub fn validate(&self, config: &Config) -> Result<(Topic, String), TopicProblem> {
        let mut problem = TopicProblem::default();
        if self.is_blank() {
            problem.topic =
                Some("Hãy chọn ít nhất một chuyên mục, một tỉnh hoặc nhập từ khóa.".into());
            return Err(problem);
        }
        if let Some(c) = self
            .categories
            .iter()
            .find(|c| config.category(c).is_none())
        {
            problem.topic = Some(format!("Không có chuyên mục “{c}”."));
        }
        let known = provinces(config);
        if let Some(p) = self
            .provinces
            .iter()
            .find(|p| !known.iter().any(|(slug, _)| slug == *p))
        {
            problem.topic = Some(format!("Không có tỉnh “{p}”."));
        }
        if self.query.chars().count() > MAX_QUERY {
            problem.query = Some(format!("Từ khóa quá dài (tối đa {MAX_QUERY} ký tự)."));
        } else if !self.query.is_empty()
            && let Err(e) = Query::parse(&self.query)
        {
            problem.query = Some(format!(
                "Từ khóa chưa đúng (ở ký tự thứ {}): {}.",
                e.column,
                query_reason(e.reason)
            ));
        }
        if problem.topic.is_some() || problem.query.is_some() {
            return Err(problem);
        }
        let spec = self.spec();
        Topic::parse(&spec, config)
            .map(|t| (t, spec))
            .map_err(|e| TopicProblem {
                topic: Some(format!("Chủ đề không hợp lệ: {}.", e.reason)),
                query: None,
            })
    }

    fn spec(&self) -> String {
        let mut parts = Vec::new();
        if !self.categories.is_empty() {
            parts.push(format!("category={}", self.categories.join(",")));
        }
        if !self.provinces.is_empty() {
            parts.push(format!("province={}", self.provinces.join(",")));
        }
        if !self.query.is_empty() {
            parts.push(format!("query={}", self.query));
        }
        parts.join(" ")
    }

    /// The fieldset's template values.
    pub fn view(
        &self,
        index: usize,
        legend: &str,
        removable: bool,
        problem: Option<&TopicProblem>,
        config: &Config,
    ) -> Value {
        let categories: Vec<Value> = config
            .categories
            .iter()
            .map(|c| context! { slug => &c.slug, title => &c.title, checked => self.categories.contains(&c.slug) })
            .collect();
        let provinces: Vec<Value> = provinces(config)
            .into_iter()
            .map(|(slug, name)| {
                let checked = self.provinces.contains(&slug);
                context! { slug, name, checked }
            })
            .collect();
        // A topic that stands as it is can be followed in a feed reader too.
        let feed = (!self.remove && !self.is_blank() && problem.is_none())
            .then(|| self.validate(config).ok())
            .flatten()
            .map(|(topic, _)| super::topic::feed_url(config, &topic));
        context! {
            index,
            legend,
            categories,
            provinces,
            feed,
            query => &self.query,
            remove => self.remove,
            removable,
            error => problem.and_then(|p| p.topic.clone()),
            query_error => problem.and_then(|p| p.query.clone()),
        }
    }
}

pub(super) fn query_reason(kind: QueryErrorKind) -> &'static str {
    match kind {
        QueryErrorKind::Empty => "chưa có từ nào",
        QueryErrorKind::UnbalancedQuote => "thiếu dấu ngoặc kép đóng",
        QueryErrorKind::EmptyPhrase => "cặp ngoặc kép trống",
        QueryErrorKind::DanglingOr => "OR phải đứng giữa hai từ",
        QueryErrorKind::DanglingMinus => "sau dấu “-” cần một từ để loại trừ",
        QueryErrorKind::ExclusionInOr => "không thể loại trừ (-) trong một vế của OR",
        QueryErrorKind::OnlyExclusions => "cần ít nhất một từ để tìm, không chỉ từ loại trừ",
    }
}

/// Every province a topic may name (configured, or named by a feed), by name.
pub fn provinces(config: &Config) -> Vec<(String, String)> {
    let mut slugs: Vec<&str> = config
        .provinces
        .iter()
        .map(|p| p.slug.as_str())
        .chain(config.feeds.iter().filter_map(|f| f.province.as_deref()))
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    let mut out: Vec<(String, String)> = slugs
        .into_iter()
        .map(|s| (s.to_string(), province_name(config, s)))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Whether `name` is a schedule a subscriber may choose.
pub fn valid_schedule(config: &Config, name: &str) -> bool {
    name == "immediate" || config.digest.schedules.contains_key(name)
}

pub fn default_schedule(config: &Config) -> String {
    if config.digest.schedules.contains_key("daily") {
        "daily".into()
    } else {
        config
            .digest
            .schedules
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "immediate".into())
    }
}

/// A schedule described for people, with its next run in the operator's timezone.
pub fn schedule_label(config: &Config, name: &str) -> String {
    let tz = config.digest.timezone;
    match name {
        "immediate" => format!(
            "Ngay khi có tin mới (gom mỗi {} phút)",
            IMMEDIATE_BATCH / 60
        ),
        name => {
            let base = match name {
                "daily" => "Hằng ngày".to_string(),
                "weekly" => "Hằng tuần".to_string(),
                other => format!("Lịch “{other}”"),
            };
            match config
                .digest
                .schedules
                .get(name)
                .and_then(|s| s.upcoming(tz).next())
            {
                Some(next) => format!("{base} (lần tới: {})", next.format("%H:%M %d/%m")),
                None => base,
            }
        }
    }
}

/// The schedule radio buttons, `chosen` checked.
pub fn schedules_value(config: &Config, chosen: &str) -> Value {
    config
        .digest
        .schedules
        .keys()
        .map(String::as_str)
        .chain(["immediate"])
        .map(|name| context! { name, label => schedule_label(config, name), checked => name == chosen })
        .collect::<Vec<_>>()
        .into()
}

/// The stories of the last 7 days that `topics` would bring, counted, the newest listed.
pub async fn preview(
    store: &Store,
    config: &Config,
    topics: Vec<Topic>,
    now: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let stories = store
        .stories_after(0, now - chrono::Duration::days(PREVIEW_DAYS))
        .await?;
    let due = Due {
        subscriber_id: 0,
        tick: now,
        cursor: 0,
        topics,
    };
    let owed = assemble(&[due], &stories);
    let ids: std::collections::HashSet<i64> = owed
        .first()
        .into_iter()
        .flatten()
        .map(|(id, _)| *id)
        .collect();
    let mut matched: Vec<_> = stories.iter().filter(|s| ids.contains(&s.id)).collect();
    matched.sort_by_key(|s| std::cmp::Reverse(s.published_at));
    let mut clusters = std::collections::HashSet::new();
    matched.retain(|s| clusters.insert(s.cluster_id));
    let tz = config.digest.timezone;
    let shown: Vec<Value> = matched
        .iter()
        .take(PREVIEW_SHOWN)
        .map(|s| {
            let url = s
                .url
                .as_deref()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
            context! {
                title => &s.title,
                url,
                source => &s.feed_title,
                time => s.published_at.with_timezone(&tz).format("%H:%M %d/%m").to_string(),
            }
        })
        .collect();
    Ok(context! { count => matched.len(), stories => shown })
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
    fn a_topic_from_the_form_becomes_a_spec_the_digests_parse() {
        let form = Form::parse(
            "t0_category=thoi-su&t0_province=lao-cai&t0_query=%22L%C3%A0o+Cai%22++l%C5%A9%0A"
                .as_bytes(),
        );
        let (_, spec) = TopicInput::from_form(&form, 0).validate(&config()).unwrap();
        assert_eq!(
            spec,
            "category=thoi-su province=lao-cai query=\"Lào Cai\" lũ"
        );
        assert_eq!(
            TopicInput::from_spec(&spec, &config()).unwrap().query,
            "\"Lào Cai\" lũ"
        );
    }

    #[test]
    fn bad_fields_get_messages_in_vietnamese() {
        let c = config();
        let blank = TopicInput::default().validate(&c).unwrap_err();
        assert!(blank.topic.unwrap().starts_with("Hãy chọn"));
        let form = Form::parse(b"t0_category=the-thao&t0_query=%22lu");
        let p = TopicInput::from_form(&form, 0).validate(&c).unwrap_err();
        assert_eq!(p.topic.unwrap(), "Không có chuyên mục “the-thao”.");
        assert_eq!(
            p.query.unwrap(),
            "Từ khóa chưa đúng (ở ký tự thứ 1): thiếu dấu ngoặc kép đóng."
        );
        let form = Form::parse(b"t0_province=x%20category%3Dy");
        assert!(TopicInput::from_form(&form, 0).validate(&c).is_err());
    }

    #[test]
    fn only_configured_schedules_and_immediate_are_choices() {
        let c = config();
        assert!(valid_schedule(&c, "daily") && valid_schedule(&c, "immediate"));
        assert!(!valid_schedule(&c, "hourly"));
        assert!(schedule_label(&c, "daily").starts_with("Hằng ngày (lần tới: "));
    }
}
