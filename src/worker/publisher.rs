//! Regenerates merged feeds: picks each feed's stories from storage (one entry per story, naming
//! its other sources), renders them (`publish`), keeps them in the serving `Site`, and writes
//! the files to `output_dir` atomically (temp file + rename) and only when their bytes changed,
//! so a plain web server can serve them too. Only the feeds whose sources changed are redone.
//!
//! Several processes may share one database, each serving its own copy: the process that polled
//! a feed regenerates its merged feeds and logs the feed in the database (`announce`); the others
//! read the log every tick and regenerate the same ones (`follow`). Regeneration reads only the
//! database, so any process renders the same bytes, and files are replaced atomically.

mod entries;

use crate::config::Config;
use crate::publish::site::{Document, Site};
use crate::publish::{self, FeedMeta, Format};
use crate::storage::{Store, StoryFilter};
use anyhow::Context;
use chrono::Utc;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a regeneration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regenerated {
    /// Documents (feed × format) rendered.
    pub rendered: usize,
    /// Of those, documents whose bytes changed (and were written).
    pub changed: usize,
}

#[derive(Clone)]
pub struct Publisher {
    store: Store,
    config: Arc<Config>,
    pub site: Site,
    /// Whether `site` is served (the daemon): else only the files are written, and documents
    /// are not compressed for an HTTP server that does not exist.
    serving: bool,
    follow: Arc<tokio::sync::Mutex<Follow>>,
}

/// Most stored items a topic feed reads (newest first) before matching.
const TOPIC_ROWS: usize = 20_000;

/// How far this process has read the log of other processes' changes.
#[derive(Default)]
struct Follow {
    /// The last entry read; `None` until the first `follow`, which starts at the log's end.
    last: Option<i64>,
    /// This process's own entries: already regenerated here.
    own: std::collections::HashSet<i64>,
}

impl Publisher {
    pub fn new(store: Store, config: Arc<Config>, site: Site) -> Publisher {
        Publisher {
            store,
            config,
            site,
            serving: true,
            follow: Arc::default(),
        }
    }

    /// A publisher that only writes the merged feeds' files (`run --once`: no HTTP server).
    pub fn files_only(store: Store, config: Arc<Config>) -> Publisher {
        Publisher {
            serving: false,
            ..Publisher::new(store, config, Site::default())
        }
    }

    /// Logs these source feeds as regenerated here, for the other processes' `follow`.
    pub async fn announce(&self, feed_ids: &BTreeSet<String>) -> anyhow::Result<()> {
        let ids: Vec<String> = feed_ids.iter().cloned().collect();
        let logged = self.store.log_feed_changes(&ids, Utc::now()).await?;
        self.follow.lock().await.own.extend(logged);
        Ok(())
    }

    /// Regenerates the merged feeds of every source whose items changed since they were last
    /// written (the marks polls leave in the database, so a process killed before publishing
    /// leaves them to the next), logs those sources for the other processes, and clears the
    /// marks. Returns what was rendered and the sources it covered.
    pub async fn catch_up(&self) -> anyhow::Result<(Regenerated, BTreeSet<String>)> {
        let marks = self.store.unpublished_feeds().await?;
        let feeds: BTreeSet<String> = marks.iter().map(|(id, _)| id.clone()).collect();
        let mut filters = self.filters_for_feeds(&feeds);
        // A merged feed never written (a fresh output_dir, a new category) is written now.
        let feeds_dir = self.output_dir().join("feeds");
        filters.extend(self.all_filters().into_iter().filter(|f| {
            let name = format!("{}.{}", self.meta(f).path, Format::Rss.extension());
            !feeds_dir.join(name).exists()
        }));
        if filters.is_empty() {
            return Ok((Regenerated::default(), feeds));
        }
        let done = self.regenerate(&filters).await?;
        if !feeds.is_empty() {
            self.announce(&feeds).await?;
        }
        self.store.published(&marks).await?;
        Ok((done, feeds))
    }

    /// Regenerates the merged feeds whose sources other processes logged since the last call.
    pub async fn follow(&self) -> anyhow::Result<Regenerated> {
        let mut follow = self.follow.lock().await;
        let Some(last) = follow.last else {
            follow.last = Some(self.store.last_feed_change().await?);
            return Ok(Regenerated::default());
        };
        let entries = self.store.feed_changes_after(last).await?;
        let Some((newest, _)) = entries.last() else {
            return Ok(Regenerated::default());
        };
        follow.last = Some(*newest);
        let theirs: BTreeSet<String> = entries
            .into_iter()
            .filter(|(id, _)| !follow.own.remove(id))
            .map(|(_, feed)| feed)
            .collect();
        drop(follow);
        self.regenerate(&self.filters_for_feeds(&theirs)).await
    }

    /// Every merged feed: all, each category, each province.
    pub fn all_filters(&self) -> BTreeSet<StoryFilter> {
        let mut filters = BTreeSet::from([StoryFilter::All]);
        filters.extend(
            self.config
                .categories
                .iter()
                .map(|c| StoryFilter::Category(c.slug.clone())),
        );
        filters.extend(self.provinces().into_keys().map(StoryFilter::Province));
        filters
    }

    /// The merged feeds a change in these source feeds affects.
    pub fn filters_for_feeds<'a>(
        &self,
        feed_ids: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<StoryFilter> {
        let mut filters = BTreeSet::new();
        for id in feed_ids {
            if let Some(f) = self.config.feeds.iter().find(|f| &f.id == id) {
                filters.insert(StoryFilter::All);
                filters.insert(StoryFilter::Category(f.category.clone()));
                if let Some(p) = &f.province {
                    filters.insert(StoryFilter::Province(p.clone()));
                }
            }
        }
        filters
    }

    /// Province slugs and names: the declared ones, else those the feeds name.
    fn provinces(&self) -> HashMap<String, String> {
        let mut out: HashMap<String, String> = self
            .config
            .provinces
            .iter()
            .map(|p| (p.slug.clone(), p.name.clone()))
            .collect();
        for f in &self.config.feeds {
            if let Some(p) = &f.province {
                out.entry(p.clone()).or_insert_with(|| p.clone());
            }
        }
        out
    }

    /// Renders the given merged feeds in every format and stores those that changed.
    pub async fn regenerate(&self, filters: &BTreeSet<StoryFilter>) -> anyhow::Result<Regenerated> {
        let mut done = Regenerated::default();
        let now = Utc::now();
        let mut changed_topics: Vec<String> = Vec::new();
        for filter in filters {
            let meta = self.meta(filter);
            let entries = self
                .entries(filter, now)
                .await
                .with_context(|| format!("reading stories for {}", meta.path))?;
            let last_modified = entries
                .iter()
                .map(|e| e.updated.max(e.published))
                .max()
                .unwrap_or_default();
            for format in Format::ALL {
                let name = format!("{}.{}", meta.path, format.extension());
                let body = publish::render(&meta, &entries, format);
                done.rendered += 1;
                let changed_file = self.write_file(&name, body.as_bytes())?;
                let changed_site = self.serving
                    && !self.site.holds(&name, &body)
                    && self.site.put(
                        &name,
                        Document::new(format.content_type(), body, last_modified),
                    );
                if changed_file || changed_site {
                    done.changed += 1;
                }
                if changed_file {
                    changed_topics.push(meta.url(format));
                }
            }
        }
        // The hub's subscribers to a changed document are owed its new content.
        if self.config.server.websub && !changed_topics.is_empty() {
            self.store
                .websub_changed(&changed_topics, now)
                .await
                .context("recording changed feeds for their WebSub subscribers")?;
        }
        Ok(done)
    }

    fn meta(&self, filter: &StoryFilter) -> FeedMeta {
        let (path, title, description) = match filter {
            StoryFilter::All => (
                "all".to_string(),
                "Tất cả tin".to_string(),
                "Tin mới từ mọi nguồn".to_string(),
            ),
            StoryFilter::Category(slug) => {
                let name = self
                    .config
                    .category(slug)
                    .map_or(slug.clone(), |c| c.title.clone());
                (slug.clone(), name.clone(), format!("Tin {name} từ các báo"))
            }
            StoryFilter::Province(slug) => {
                let name = self
                    .provinces()
                    .get(slug)
                    .cloned()
                    .unwrap_or_else(|| slug.clone());
                (
                    format!("province/{slug}"),
                    name.clone(),
                    format!("Tin {name} từ các báo"),
                )
            }
        };
        FeedMeta {
            path,
            title: format!("{title} – tinbao"),
            description,
            base_url: self.config.server.base_url.to_string(),
            language: "vi".into(),
            query: None,
            hub: self.hub_url(),
        }
    }

    /// The WebSub hub's URL, when this server is one.
    fn hub_url(&self) -> Option<String> {
        let server = &self.config.server;
        server.websub.then(|| format!("{}websub", server.base_url))
    }

    /// Writes `output_dir/feeds/NAME` if its bytes differ; returns whether it did.
    fn write_file(&self, name: &str, body: &[u8]) -> anyhow::Result<bool> {
        let path = self.output_dir().join("feeds").join(name);
        if std::fs::read(&path).is_ok_and(|old| old == body) {
            return Ok(false);
        }
        write_atomically(&path, body)?;
        Ok(true)
    }

    fn output_dir(&self) -> PathBuf {
        self.config.output_dir()
    }
}

/// Writes through a temporary file in the same folder and renames it into place, so a reader
/// (or a web server) never sees a half-written feed.
pub fn write_atomically(path: &Path, body: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("output path has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("feed"),
        std::process::id()
    ));
    std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
