//! The operator-editable templates (built in, or a folder beside the config) and the values
//! they see: each story prepared once (its two pieces), each email's context.

use super::{DigestView, PreparedStory, Section, Story};
use anyhow::{Context as _, bail};
use chrono::{Datelike, Weekday};
use chrono_tz::Tz;
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// File names of the digest templates, in the operator's folder and in `templates/`.
pub const SUBJECT_TEMPLATE: &str = "digest_subject.txt";
pub const TEXT_TEMPLATE: &str = "digest.txt";
pub const HTML_TEMPLATE: &str = "digest.html";
pub const STORY_TEXT_TEMPLATE: &str = "digest_story.txt";
pub const STORY_HTML_TEMPLATE: &str = "digest_story.html";

/// The copies compiled into the binary, used for any file the operator's folder lacks.
const BUILTIN: [(&str, &str); 5] = [
    (
        SUBJECT_TEMPLATE,
        include_str!("../../../templates/digest_subject.txt"),
    ),
    (TEXT_TEMPLATE, include_str!("../../../templates/digest.txt")),
    (
        HTML_TEMPLATE,
        include_str!("../../../templates/digest.html"),
    ),
    (
        STORY_TEXT_TEMPLATE,
        include_str!("../../../templates/digest_story.txt"),
    ),
    (
        STORY_HTML_TEMPLATE,
        include_str!("../../../templates/digest_story.html"),
    ),
];

/// The compiled digest templates. Cheap to share; load once and reuse for every email.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from: the operator's file, or `None` for the built-in copy.
    origins: Vec<(&'static str, Option<PathBuf>)>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn builtin() -> Templates {
        let sources = BUILTIN.map(|(name, source)| (name, source.to_string(), None));
        // The built-in copies are fixed at build time and parsed by the unit tests.
        Templates::compile(sources).expect("built-in digest templates are valid")
    }

    /// The templates in `dir`, each file missing there replaced by its built-in copy. The files
    /// are read now: edits take effect at the next load, without rebuilding.
    pub fn load(dir: &Path) -> anyhow::Result<Templates> {
        if !dir.is_dir() {
            bail!("template folder {} does not exist", dir.display());
        }
        let mut sources = Vec::with_capacity(BUILTIN.len());
        for (name, builtin) in BUILTIN {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((name, text, Some(path))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    sources.push((name, builtin.to_string(), None));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("reading template {}", path.display()));
                }
            }
        }
        Templates::compile(sources)
    }

    /// Which templates came from the operator's folder (for a log line at start-up).
    pub fn overridden(&self) -> Vec<&Path> {
        self.origins
            .iter()
            .filter_map(|(_, path)| path.as_deref())
            .collect()
    }

    fn compile(
        sources: impl IntoIterator<Item = (&'static str, String, Option<PathBuf>)>,
    ) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .context("template syntax settings")?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_formatter(escape_for_email);
        let mut origins = Vec::new();
        for (name, source, path) in sources {
            env.add_template_owned(name, source)
                .with_context(|| match &path {
                    Some(path) => format!("template {}", path.display()),
                    None => format!("built-in template {name}"),
                })?;
            origins.push((name, path));
        }
        Ok(Templates { env, origins })
    }

    /// `story` as shown in emails to readers in `tz`, with its pieces rendered: prepare once,
    /// place in any number of `DigestView`s.
    pub fn prepare(&self, story: &Story, tz: Tz) -> anyhow::Result<PreparedStory> {
        let mut fields = story_fields(story, tz);
        let ctx = context! { story => Value::from(fields.clone()) };
        let html = self.render(STORY_HTML_TEMPLATE, &ctx)?;
        let text = self.render(STORY_TEXT_TEMPLATE, &ctx)?;
        // One plain map (a merged context would search two maps at every lookup, in every email).
        fields.insert("html", Value::from_safe_string(html));
        fields.insert("text", Value::from(text));
        Ok(PreparedStory(Value::from(fields)))
    }

    pub(super) fn render(&self, name: &str, ctx: &Value) -> anyhow::Result<String> {
        let origin = self
            .origins
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, path)| path.as_deref());
        let describe = || match origin {
            Some(path) => format!("rendering template {}", path.display()),
            None => format!("rendering built-in template {name}"),
        };
        let template = self.env.get_template(name).with_context(describe)?;
        template.render(ctx).with_context(describe)
    }
}

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which makes every link in the HTML
/// part unreadable to a person viewing the source and to naive link checkers. Escaping `& < > " '`
/// is enough for text and for double-quoted attribute values.
fn escape_for_email(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() => {
            Ok(out.write_str(&escape_html(text))?)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

pub(super) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

pub(super) fn template_context(view: &DigestView) -> Value {
    let tz = view.timezone;
    let local = view.tick.with_timezone(&tz);
    let count: usize = view.sections.iter().map(|s| s.stories.len()).sum();
    let sections: Vec<Value> = view.sections.iter().map(section_value).collect();
    context! {
        to => &view.to,
        place => &view.place,
        date => local.format("%d/%m").to_string(),
        date_long => format!("{}, ngày {}", weekday_vi(local.weekday()), local.format("%d/%m/%Y")),
        count,
        more => view.more,
        total => count + view.more,
        more_url => web_link(view.more_url.as_deref()),
        manage_url => &view.manage_url,
        unsubscribe_url => &view.unsubscribe_url,
        base_url => &view.base_url,
        sections,
    }
}

fn section_value(section: &Section) -> Value {
    let stories: Vec<Value> = section.stories.iter().map(|s| s.0.clone()).collect();
    context! {
        title => &section.title,
        count => stories.len(),
        stories,
    }
}

fn story_fields(story: &Story, tz: Tz) -> BTreeMap<&'static str, Value> {
    let also: Vec<Value> = story
        .also
        .iter()
        .map(|(name, url)| context! { name, url => web_link(url.as_deref()) })
        .collect();
    let also_names = story
        .also
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    BTreeMap::from([
        ("title", Value::from(story.title.as_str())),
        ("url", Value::from(web_link(story.url.as_deref()))),
        ("source", Value::from(story.source.as_str())),
        ("summary", Value::from(story.summary.as_str())),
        (
            "time",
            Value::from(
                story
                    .published
                    .with_timezone(&tz)
                    .format("%H:%M %d/%m")
                    .to_string(),
            ),
        ),
        ("also", Value::from(also)),
        ("also_names", Value::from(also_names)),
    ])
}

/// Only http and https links reach an email: a `javascript:` or `data:` link from a feed would
/// be a trap for the reader, so the story is shown without a link instead.
pub(super) fn web_link(url: Option<&str>) -> Option<String> {
    let url = url?.trim();
    let scheme = url.split_once(':')?.0;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        .then(|| url.to_string())
}

fn weekday_vi(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ Nhật",
    }
}
