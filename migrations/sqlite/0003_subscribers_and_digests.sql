-- Subscribers and what they follow.
CREATE TABLE subscribers (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL DEFAULT 'active',  -- pending | active | paused | unsubscribed | bouncing
    schedule       TEXT NOT NULL,                   -- a [digest.schedules] name, or 'immediate'
    timezone       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_tick_at   INTEGER,                         -- the last schedule tick handled
    cursor_item_id INTEGER NOT NULL DEFAULT 0,      -- items with a larger id are new to them
    failed_digests INTEGER NOT NULL DEFAULT 0       -- permanent failures in a row (bouncing at 3)
);

CREATE TABLE topics (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    spec          TEXT NOT NULL                     -- as written: category=… province=… query=…
);
CREATE INDEX topics_subscriber ON topics (subscriber_id);

-- The outbox: one digest per subscriber per schedule tick.
CREATE TABLE digests (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    tick_at         INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending', -- pending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    message_id      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (subscriber_id, tick_at)
);
CREATE INDEX digests_due ON digests (state, next_attempt_at);

-- The ledger: each item reaches a subscriber in at most one digest.
CREATE TABLE deliveries (
    subscriber_id  INTEGER NOT NULL,
    item_id        INTEGER NOT NULL,
    digest_id      INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    topic_position INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, item_id)
);
CREATE INDEX deliveries_digest ON deliveries (digest_id);

-- Per-installation settings, e.g. the secret that signs subscribers' links.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
