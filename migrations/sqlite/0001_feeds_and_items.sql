-- Sources from feeds.toml and their polling state. Times are Unix seconds, UTC.
CREATE TABLE feeds (
    id               TEXT PRIMARY KEY,          -- the stable id from feeds.toml
    url              TEXT NOT NULL,
    category         TEXT NOT NULL,
    province         TEXT,
    configured_title TEXT,
    active           INTEGER NOT NULL DEFAULT 1, -- 0 once removed from feeds.toml (items stay)
    title            TEXT,                      -- as the source names itself
    site_url         TEXT,
    format           TEXT,
    etag             TEXT,
    last_modified    TEXT,
    body_hash        TEXT,                      -- skips re-parsing an unchanged body without validators
    last_fetch_at    INTEGER,
    last_success_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    error_count      INTEGER NOT NULL DEFAULT 0,
    next_poll_at     INTEGER NOT NULL DEFAULT 0,
    moved_to         TEXT,                      -- a permanent redirect target, for the operator
    ttl_seconds      INTEGER,                   -- RSS <ttl>: a lower bound on the interval
    created_at       INTEGER NOT NULL
);
CREATE INDEX feeds_due ON feeds (active, next_poll_at);

-- Each item once per source. item_key: "g:" GUID, "l:" canonical link, or "h:" content hash.
CREATE TABLE items (
    id             INTEGER PRIMARY KEY,
    feed_id        TEXT NOT NULL REFERENCES feeds (id),
    item_key       TEXT NOT NULL,
    guid           TEXT,
    url            TEXT,
    canonical_url  TEXT,
    title          TEXT NOT NULL,
    summary_html   TEXT NOT NULL,
    content_html   TEXT NOT NULL,
    text           TEXT NOT NULL,
    authors        TEXT NOT NULL,                -- JSON array of names
    categories     TEXT NOT NULL,                -- JSON array
    image_url      TEXT,
    published_at   INTEGER NOT NULL,
    date_estimated INTEGER NOT NULL DEFAULT 0,   -- 1 when published_at is the first-seen time
    updated_at     INTEGER,
    first_seen_at  INTEGER NOT NULL,
    changed_at     INTEGER NOT NULL,             -- last time the stored text changed
    content_hash   TEXT NOT NULL,
    UNIQUE (feed_id, item_key)
);
CREATE INDEX items_published ON items (published_at);
CREATE INDEX items_feed_published ON items (feed_id, published_at);
CREATE INDEX items_canonical ON items (canonical_url);

-- Items removed by retention: never accepted as new again.
CREATE TABLE item_tombstones (
    feed_id   TEXT NOT NULL,
    item_key  TEXT NOT NULL,
    pruned_at INTEGER NOT NULL,
    PRIMARY KEY (feed_id, item_key)
);
