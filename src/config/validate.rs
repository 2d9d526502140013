//! The second layer of feeds.toml: what the operator typed (`raw`, with spans) checked and turned
//! into working values, every problem collected with its place instead of stopping at the first.

use super::raw::{self, RawConfig, S};
use super::*;

mod feeds;

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl Validator<'_> {
    fn problem_at(&mut self, offset: Option<usize>, message: String) {
        let (line, column) = match offset {
            Some(o) => {
                let (l, c) = line_col(self.text, o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.problems.push(Problem {
            line,
            column,
            message,
        });
    }

    fn problem<T>(&mut self, value: &S<T>, message: String) {
        self.problem_at(Some(value.span().start), message);
    }

    /// Takes the override from `env` if set, else the file's value, else `default`.
    fn string(
        &self,
        value: Option<&S<String>>,
        env_value: Option<String>,
        default: &str,
    ) -> (String, Option<usize>) {
        if let Some(v) = env_value {
            return (v, None);
        }
        match value {
            Some(v) => (v.get_ref().clone(), Some(v.span().start)),
            None => (default.to_string(), None),
        }
    }

    fn duration(&mut self, value: Option<&S<String>>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(v) => match units::parse_duration(v.get_ref()) {
                Ok(d) if d.is_zero() => {
                    self.problem(v, "duration must be greater than zero".into());
                    default
                }
                Ok(d) => d,
                Err(e) => {
                    self.problem(v, e);
                    default
                }
            },
        }
    }

    fn positive(&mut self, value: Option<&S<i64>>, default: usize, max: usize) -> usize {
        match value {
            None => default,
            Some(v) => match usize::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 && n <= max => n,
                _ => {
                    self.problem(v, format!("must be a whole number from 1 to {max}"));
                    default
                }
            },
        }
    }

    pub(super) fn config(
        &mut self,
        raw: RawConfig,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Config {
        let server = self.server(raw.server.unwrap_or_default(), env);
        let database = self.database(raw.database.unwrap_or_default(), env);
        let polling = self.polling(raw.polling.unwrap_or_default(), &server.base_url);
        let smtp = self.smtp(raw.smtp, env);
        let digest = self.digest(raw.digest.unwrap_or_default());
        let publish = self.publish(raw.publish.unwrap_or_default());
        let categories = self.categories(&raw.category);
        let provinces = self.provinces(&raw.province);
        let feeds = self.feeds(&raw.feed, &categories, &provinces);
        Config {
            source: path.to_path_buf(),
            server,
            database,
            polling,
            smtp,
            digest,
            publish,
            categories,
            provinces,
            feeds,
            sites: super::sites::shipped(),
        }
    }

    fn server(
        &mut self,
        raw: raw::RawServer,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> ServerConfig {
        let (listen_text, at) =
            self.string(raw.listen.as_ref(), env("TINBAO_LISTEN"), "127.0.0.1:8080");
        let listen = listen_text.parse().unwrap_or_else(|_| {
            self.problem_at(
                at,
                format!("listen must be an address like \"127.0.0.1:8080\", not {listen_text:?}"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let (base_text, at) = self.string(raw.base_url.as_ref(), env("TINBAO_BASE_URL"), "");
        let base_url = if base_text.is_empty() {
            Url::parse(&format!("http://{listen}/")).unwrap_or_else(|_| fallback_url())
        } else {
            self.http_url(&base_text, at, "base_url")
        };
        let (out, _) = self.string(raw.output_dir.as_ref(), env("TINBAO_OUTPUT_DIR"), "public");
        let topic_days = match &raw.topic_days {
            None => 7,
            Some(d) if (1..=366).contains(d.get_ref()) => *d.get_ref(),
            Some(d) => {
                self.problem(
                    d,
                    format!("topic_days must be 1 to 366, not {}", d.get_ref()),
                );
                7
            }
        };
        ServerConfig {
            listen,
            base_url,
            output_dir: PathBuf::from(out),
            topic_days: Duration::from_secs(topic_days as u64 * 86_400),
            websub: raw.websub.as_ref().is_none_or(|w| *w.get_ref()),
        }
    }

    fn http_url(&mut self, text: &str, at: Option<usize>, what: &str) -> Url {
        match Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            Ok(u) => {
                self.problem_at(
                    at,
                    format!("{what} must be an http or https URL, not {:?}", u.scheme()),
                );
                fallback_url()
            }
            Err(e) => {
                self.problem_at(at, format!("{what} is not a valid URL ({e}): {text:?}"));
                fallback_url()
            }
        }
    }

    fn database(
        &mut self,
        raw: raw::RawDatabase,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> DatabaseConfig {
        let (url, at) = self.string(
            raw.url.as_ref(),
            env("TINBAO_DATABASE_URL"),
            "sqlite://tinbao.db",
        );
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            self.problem_at(
                at,
                format!("database url must start with sqlite:// or postgres://, not {url:?}"),
            );
        }
        let retention = self.duration(raw.retention.as_ref(), Duration::from_secs(180 * 86_400));
        let lease = self.duration(raw.lease.as_ref(), Duration::from_secs(5 * 60));
        DatabaseConfig {
            url,
            retention,
            lease,
        }
    }

    fn polling(&mut self, raw: raw::RawPolling, base_url: &Url) -> PollingConfig {
        let interval = self.duration(raw.interval.as_ref(), Duration::from_secs(15 * 60));
        let min_interval = self.duration(raw.min_interval.as_ref(), Duration::from_secs(5 * 60));
        let max_interval = self.duration(raw.max_interval.as_ref(), Duration::from_secs(6 * 3600));
        if min_interval > max_interval {
            let at = raw.min_interval.as_ref().map(|v| v.span().start);
            self.problem_at(at, "min_interval is longer than max_interval".into());
        }
        let timeout = self.duration(raw.timeout.as_ref(), Duration::from_secs(20));
        let connect_timeout = self.duration(
            raw.connect_timeout.as_ref(),
            Duration::from_secs(10).min(timeout),
        );
        let max_body = match raw.max_body.as_ref() {
            None => 10 << 20,
            Some(v) => units::parse_size(v.get_ref()).unwrap_or_else(|e| {
                self.problem(v, e);
                10 << 20
            }),
        };
        let per_host = self.positive(raw.per_host.as_ref(), 2, 64);
        let concurrency = self.positive(raw.concurrency.as_ref(), 32, 1024);
        let contact = raw.contact.as_ref().map(|c| {
            let url = self.http_url(c.get_ref(), Some(c.span().start), "contact");
            url.to_string()
        });
        // The User-Agent names tinbao and where a feed's owner can reach the operator: the
        // contact URL if given, else the operator's public base URL.
        let contact = contact.unwrap_or_else(|| base_url.to_string());
        let user_agent = format!("tinbao/{} (+{contact})", env!("CARGO_PKG_VERSION"));
        PollingConfig {
            interval,
            min_interval,
            max_interval,
            timeout,
            connect_timeout,
            max_body,
            per_host,
            concurrency,
            user_agent,
        }
    }

    fn smtp(
        &mut self,
        raw: Option<raw::RawSmtp>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<SmtpConfig> {
        let raw = raw.unwrap_or_default();
        let (url, at) = self.string(raw.url.as_ref(), env("TINBAO_SMTP_URL"), "");
        if url.is_empty() {
            return None;
        }
        if !(url.starts_with("smtp://")
            || url.starts_with("smtps://")
            || url.starts_with("file://"))
        {
            self.problem_at(
                at,
                format!("smtp url must start with smtp://, smtps:// or file://, not {url:?}"),
            );
        }
        let (from, at) = self.string(raw.from.as_ref(), env("TINBAO_SMTP_FROM"), "");
        if from.parse::<lettre::message::Mailbox>().is_err() {
            self.problem_at(at, format!("smtp from must be an address like \"Tin tỉnh <ban-tin@example.vn>\", not {from:?}"));
        }
        Some(SmtpConfig { url, from })
    }

    fn digest(&mut self, raw: raw::RawDigest) -> DigestConfig {
        let timezone = match raw.timezone.as_ref() {
            None => chrono_tz::Asia::Ho_Chi_Minh,
            Some(v) => Tz::from_str(v.get_ref()).unwrap_or_else(|_| {
                self.problem(
                    v,
                    format!(
                        "unknown timezone {:?} (use an IANA name like \"Asia/Ho_Chi_Minh\")",
                        v.get_ref()
                    ),
                );
                chrono_tz::Asia::Ho_Chi_Minh
            }),
        };
        let max_items = self.positive(raw.max_items.as_ref(), 40, 1000);
        let mut schedules = BTreeMap::new();
        for (name, expr) in &raw.schedules {
            if !is_slug(name) || name == "immediate" {
                self.problem(expr, format!("schedule name {name:?} must be a slug (a-z, 0-9, -) other than \"immediate\""));
                continue;
            }
            match cron::Schedule::from_str(expr.get_ref()) {
                Ok(s) => {
                    schedules.insert(name.clone(), s);
                }
                Err(e) => self.problem(
                    expr,
                    format!("schedule {name:?} is not a valid cron expression ({e}); write 6 fields, seconds first: \"0 0 7 * * *\""),
                ),
            }
        }
        // With no schedules configured, the two everyone expects.
        if raw.schedules.is_empty() {
            for (name, expr) in [("daily", "0 0 7 * * *"), ("weekly", "0 0 7 * * Mon")] {
                if let Ok(s) = cron::Schedule::from_str(expr) {
                    schedules.insert(name.to_string(), s);
                }
            }
        }
        DigestConfig {
            timezone,
            max_items,
            schedules,
        }
    }

    fn publish(&mut self, raw: raw::RawPublish) -> PublishConfig {
        PublishConfig {
            max_items: self.positive(raw.max_items.as_ref(), 100, 10_000),
            max_age: self.duration(raw.max_age.as_ref(), Duration::from_secs(14 * 86_400)),
        }
    }

    fn categories(&mut self, raw: &[S<raw::RawCategory>]) -> Vec<Category> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for c in raw {
            let c = c.get_ref();
            let slug = c.slug.get_ref();
            if !is_slug(slug) {
                self.problem(
                    &c.slug,
                    format!(
                        "category slug {slug:?} must be lower-case a-z, 0-9 and single hyphens"
                    ),
                );
            } else if slug == "all" {
                self.problem(
                    &c.slug,
                    "category slug \"all\" is reserved for the feed of every category".into(),
                );
            } else if !seen.insert(slug.clone()) {
                self.problem(&c.slug, format!("category {slug:?} is defined twice"));
            }
            if c.title.get_ref().trim().is_empty() {
                self.problem(&c.title, "category title is empty".into());
            }
            out.push(Category {
                slug: slug.clone(),
                title: nfc(c.title.get_ref()),
                skip: self.rule(c.skip.as_ref(), "skip"),
                keep: self.rule(c.keep.as_ref(), "keep"),
                full_text: self.full_text(c.full_text.as_ref()),
            });
        }
        out
    }

    /// A `skip`/`keep` rule: a query in the topic language, NFC; a query that does not parse is a
    /// problem at its place.
    fn rule(&mut self, value: Option<&S<String>>, key: &str) -> Option<String> {
        let value = value?;
        let text = nfc(value.get_ref());
        match crate::text::Query::parse(&text) {
            Ok(_) => Some(text),
            Err(e) => {
                self.problem(value, format!("{key} rule {text:?}: {e}"));
                None
            }
        }
    }

    fn provinces(&mut self, raw: &[S<raw::RawProvince>]) -> Vec<Province> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in raw {
            let p = p.get_ref();
            let slug = p.slug.get_ref();
            if !is_slug(slug) {
                self.problem(
                    &p.slug,
                    format!(
                        "province slug {slug:?} must be lower-case a-z, 0-9 and single hyphens"
                    ),
                );
            } else if !seen.insert(slug.clone()) {
                self.problem(&p.slug, format!("province {slug:?} is defined twice"));
            }
            out.push(Province {
                slug: slug.clone(),
                name: nfc(p.name.get_ref()),
            });
        }
        out
    }
}

pub(super) fn nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.trim().nfc().collect()
}

fn fallback_url() -> Url {
    Url::parse("http://127.0.0.1:8080/").expect("constant URL parses")
}
