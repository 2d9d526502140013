-- Article pages to fetch for their full text (feeds with full_text on): one row per item whose
-- feed text is a teaser, until its body is stored. due_at NULL: given up after its attempts
-- (the item keeps its feed text; last_error says why).
CREATE TABLE article_queue (
    item_id    INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    feed_id    TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER,
    last_error TEXT
);
CREATE INDEX article_queue_due ON article_queue (due_at);
CREATE INDEX article_queue_feed ON article_queue (feed_id);
