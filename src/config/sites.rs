//! Article-body rules per site, for `full_text = true`: which elements of a site's article page
//! make its body and which inside them to drop. The shipped rules (`full_text.toml` in this
//! folder, compiled in) come after the operator's own `full_text.toml` beside feeds.toml, so an
//! operator's rule for a host wins. Selectors are checked when the file is read.

use super::{ConfigError, Problem, line_col};
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// One site's rule: `hosts` (each matching itself and its subdomains), the `body` selector and
/// the `remove` selectors applied inside what it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRule {
    pub hosts: Vec<String>,
    pub body: String,
    pub remove: Vec<String>,
}

impl SiteRule {
    /// Whether the rule covers `host` (`baolaocai.vn` covers `www.baolaocai.vn`).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            host == *h
                || host
                    .strip_suffix(h.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// The rules compiled into the binary.
pub const SHIPPED: &str = include_str!("full_text.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    site: Vec<Spanned<RawSite>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    hosts: Spanned<Vec<String>>,
    body: Spanned<String>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
}

/// The rules in `text` (the file named `file` in errors), every problem at its place.
pub fn parse(text: &str, file: &str) -> Result<Vec<SiteRule>, ConfigError> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        Problem {
            line: Some(line),
            column: Some(column),
            message,
        }
    };
    let raw: RawRules = toml::from_str(text).map_err(|e| ConfigError {
        file: file.to_string(),
        problems: vec![match e.span() {
            Some(span) => at(span.start, e.message().trim().to_string()),
            None => Problem {
                line: None,
                column: None,
                message: e.message().trim().to_string(),
            },
        }],
    })?;
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for site in raw.site {
        let site = site.into_inner();
        let hosts: Vec<String> = site
            .hosts
            .get_ref()
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        if hosts.is_empty()
            || hosts
                .iter()
                .any(|h| h.is_empty() || h.contains(['/', ':', ' ']))
        {
            problems.push(at(
                site.hosts.span().start,
                "hosts must be host names like \"baolaocai.vn\" (no scheme, port or path)".into(),
            ));
        }
        let mut check = |what: &str, s: &Spanned<String>| {
            if let Some(e) = crate::reader::html_source::selector_error(s.get_ref()) {
                problems.push(at(
                    s.span().start,
                    format!("{what} selector {:?}: {e}", s.get_ref()),
                ));
            }
        };
        check("body", &site.body);
        for r in &site.remove {
            check("remove", r);
        }
        rules.push(SiteRule {
            hosts,
            body: site.body.get_ref().trim().to_string(),
            remove: site
                .remove
                .iter()
                .map(|r| r.get_ref().trim().to_string())
                .collect(),
        });
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(ConfigError {
            file: file.to_string(),
            problems,
        })
    }
}

/// The operator's rules at `path` (if the file exists) followed by the shipped ones.
pub fn load(path: &Path) -> Result<Vec<SiteRule>, ConfigError> {
    let mut rules = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(ConfigError {
                file: path.display().to_string(),
                problems: vec![Problem {
                    line: None,
                    column: None,
                    message: format!("cannot read: {e}"),
                }],
            });
        }
    };
    rules.extend(shipped());
    Ok(rules)
}

/// The shipped rules (checked by a test, so never refused here).
pub fn shipped() -> Vec<SiteRule> {
    parse(SHIPPED, "full_text.toml (shipped)").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_parse() {
        let rules = parse(SHIPPED, "shipped").expect("shipped rules are valid");
        assert!(rules.iter().any(|r| r.covers("vnexpress.net")));
        assert!(rules.iter().any(|r| r.covers("www.vnexpress.net")));
        assert!(!rules.iter().any(|r| r.covers("notvnexpress.net")));
    }

    #[test]
    fn a_bad_rule_is_refused_at_its_place() {
        let text = "[[site]]\nhosts = [\"baolaocai.vn\"]\nbody = \"div..x\"\n\n[[site]]\nhosts = [\"http://x.vn/\"]\nbody = \"div\"\n";
        let e = parse(text, "full_text.toml").unwrap_err().to_string();
        assert!(
            e.contains("full_text.toml:3:8: body selector \"div..x\""),
            "{e}"
        );
        assert!(
            e.contains("full_text.toml:6:9: hosts must be host names"),
            "{e}"
        );
        let e = parse("[[site]]\nhost = []\n", "full_text.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("full_text.toml:2:1:"), "{e}");
    }

    #[test]
    fn the_operators_rules_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full_text.toml");
        assert_eq!(
            load(&path).unwrap(),
            shipped(),
            "no file: the shipped rules"
        );
        std::fs::write(
            &path,
            "[[site]]\nhosts = [\"VnExpress.net\"]\nbody = \"div.x\"\n",
        )
        .unwrap();
        let rules = load(&path).unwrap();
        let first = rules.iter().find(|r| r.covers("vnexpress.net")).unwrap();
        assert_eq!(first.body, "div.x");
        assert_eq!(rules.len(), shipped().len() + 1);
    }
}
