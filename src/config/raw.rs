//! The serde mirror of feeds.toml: exactly what the operator typed, with source spans kept on
//! every value that validation may complain about. Unknown keys are refused here. No defaults
//! and no checks live in this file; `config::validate` turns it into a working `Config`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: Option<RawServer>,
    pub database: Option<RawDatabase>,
    pub polling: Option<RawPolling>,
    pub smtp: Option<RawSmtp>,
    pub digest: Option<RawDigest>,
    pub publish: Option<RawPublish>,
    #[serde(default)]
    pub category: Vec<S<RawCategory>>,
    #[serde(default)]
    pub province: Vec<S<RawProvince>>,
    #[serde(default)]
    pub feed: Vec<S<RawFeed>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<S<String>>,
    pub base_url: Option<S<String>>,
    pub output_dir: Option<S<String>>,
    pub topic_days: Option<S<i64>>,
    pub websub: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub lease: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolling {
    pub interval: Option<S<String>>,
    pub min_interval: Option<S<String>>,
    pub max_interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub max_body: Option<S<String>>,
    pub per_host: Option<S<i64>>,
    pub concurrency: Option<S<i64>>,
    pub contact: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub url: Option<S<String>>,
    pub from: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDigest {
    pub timezone: Option<S<String>>,
    pub max_items: Option<S<i64>>,
    #[serde(default)]
    pub schedules: BTreeMap<String, S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    pub max_items: Option<S<i64>>,
    pub max_age: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub slug: S<String>,
    pub title: S<String>,
    pub skip: Option<S<String>>,
    pub keep: Option<S<String>>,
    pub full_text: Option<S<RawFullText>>,
}

/// `full_text = true | false | "CSS selector"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawFullText {
    On(bool),
    Selector(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvince {
    pub slug: S<String>,
    pub name: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    pub id: S<String>,
    pub url: S<String>,
    pub category: S<String>,
    pub province: Option<S<String>>,
    pub title: Option<S<String>>,
    pub enabled: Option<bool>,
    pub skip: Option<S<String>>,
    pub keep: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub html: Option<S<RawHtml>>,
    pub full_text: Option<S<RawFullText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHtml {
    pub item: S<String>,
    pub title: S<String>,
    pub link: S<String>,
    pub date: Option<S<String>>,
    pub summary: Option<S<String>>,
}
