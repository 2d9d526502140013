//! The `[[feed]]` tables: ids, URLs, the category and province they name, their filter rules,
//! and how they are read (a feed document or a section page's selectors, full text or not).

use super::super::raw::{self, S};
use super::super::*;
use super::{Validator, nfc};

impl Validator<'_> {
    pub(super) fn feeds(
        &mut self,
        raw: &[S<raw::RawFeed>],
        categories: &[Category],
        provinces: &[Province],
    ) -> Vec<FeedSource> {
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for f in raw {
            let f = f.get_ref();
            let id = f.id.get_ref();
            if !is_slug(id) {
                self.problem(
                    &f.id,
                    format!("feed id {id:?} must be lower-case a-z, 0-9 and single hyphens"),
                );
            } else if !ids.insert(id.clone()) {
                self.problem(
                    &f.id,
                    format!("feed id {id:?} is used twice; ids must be unique"),
                );
            }
            let url = self.http_url(f.url.get_ref(), Some(f.url.span().start), "feed url");
            let category = f.category.get_ref();
            if !categories.iter().any(|c| &c.slug == category) {
                self.problem(
                    &f.category,
                    format!(
                        "feed {id:?} names category {category:?}, which no [[category]] defines"
                    ),
                );
            }
            if let Some(p) = &f.province {
                if !is_slug(p.get_ref()) {
                    self.problem(
                        p,
                        format!("province {:?} must be a slug like \"lao-cai\"", p.get_ref()),
                    );
                } else if !provinces.is_empty() && !provinces.iter().any(|x| &x.slug == p.get_ref())
                {
                    self.problem(
                        p,
                        format!(
                            "feed {id:?} names province {:?}, which no [[province]] defines",
                            p.get_ref()
                        ),
                    );
                }
            }
            out.push(FeedSource {
                id: id.clone(),
                url,
                category: category.clone(),
                province: f.province.as_ref().map(|p| p.get_ref().clone()),
                title: f.title.as_ref().map(|t| nfc(t.get_ref())),
                enabled: f.enabled.unwrap_or(true),
                skip: self.rule(f.skip.as_ref(), "skip"),
                keep: self.rule(f.keep.as_ref(), "keep"),
                html: self.html(id, f.kind.as_ref(), f.html.as_ref()),
                full_text: self.full_text(f.full_text.as_ref()),
            });
        }
        out
    }

    /// `kind` and its `html` selectors: a section page needs `item`, `title` and `link`, each
    /// a CSS selector that parses; a feed document has no selectors.
    fn html(
        &mut self,
        id: &str,
        kind: Option<&S<String>>,
        html: Option<&S<raw::RawHtml>>,
    ) -> Option<HtmlSelectors> {
        match (kind.map(|k| k.get_ref().as_str()), html) {
            (None | Some("feed"), None) => None,
            (Some("html"), Some(h)) => {
                let h = h.get_ref();
                let mut ok = true;
                let mut check = |this: &mut Self, name: &str, value: &S<String>| {
                    if let Some(e) = crate::reader::html_source::selector_error(value.get_ref()) {
                        this.problem(
                            value,
                            format!("html.{name} selector {:?}: {e}", value.get_ref()),
                        );
                        ok = false;
                    }
                };
                check(self, "item", &h.item);
                check(self, "title", &h.title);
                check(self, "link", &h.link);
                if let Some(d) = &h.date {
                    check(self, "date", d);
                }
                if let Some(d) = &h.summary {
                    check(self, "summary", d);
                }
                ok.then(|| HtmlSelectors {
                    item: h.item.get_ref().trim().to_string(),
                    title: h.title.get_ref().trim().to_string(),
                    link: h.link.get_ref().trim().to_string(),
                    date: h.date.as_ref().map(|d| d.get_ref().trim().to_string()),
                    summary: h.summary.as_ref().map(|d| d.get_ref().trim().to_string()),
                })
            }
            (Some("html"), None) => {
                let k = kind.expect("matched Some");
                self.problem(
                    k,
                    format!(
                        "feed {id:?} has kind = \"html\" but no html = {{ item = \"…\", title = \"…\", link = \"…\" }}"
                    ),
                );
                None
            }
            (None | Some("feed"), Some(h)) => {
                self.problem(
                    h,
                    format!("feed {id:?} has html selectors but not kind = \"html\""),
                );
                None
            }
            (Some(other), _) => {
                let k = kind.expect("matched Some");
                self.problem(
                    k,
                    format!("feed kind {other:?} is unknown (\"feed\" or \"html\")"),
                );
                None
            }
        }
    }

    /// `full_text`: `true`, `false`, or a CSS selector that parses.
    pub(in crate::config) fn full_text(
        &mut self,
        value: Option<&S<raw::RawFullText>>,
    ) -> Option<FullText> {
        let value = value?;
        match value.get_ref() {
            raw::RawFullText::On(true) => Some(FullText::Auto),
            raw::RawFullText::On(false) => Some(FullText::Off),
            raw::RawFullText::Selector(selector) => {
                let selector = selector.trim();
                if selector.is_empty() {
                    self.problem(
                        value,
                        "full_text is an empty selector (true for automatic extraction)".into(),
                    );
                    return None;
                }
                match crate::reader::html_source::selector_error(selector) {
                    None => Some(FullText::Selector(selector.to_string())),
                    Some(e) => {
                        self.problem(value, format!("full_text selector {selector:?}: {e}"));
                        None
                    }
                }
            }
        }
    }
}
