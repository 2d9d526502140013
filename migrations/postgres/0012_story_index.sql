-- The clustered items as clustering reads them: one narrow row per item (its feed, date, story
-- and signature), so loading the last days' items reads a few pages instead of the items' text.
-- An item's signature lives in items.signature until it is clustered, then here (items.signature
-- of items clustered before this table existed is copied here and no longer read).
CREATE TABLE story_index (
    item_id      BIGINT PRIMARY KEY,
    feed_id      TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    cluster_id   BIGINT NOT NULL,
    signature    BYTEA
);
CREATE INDEX story_index_published ON story_index (published_at);
INSERT INTO story_index (item_id, feed_id, published_at, cluster_id, signature)
SELECT id, feed_id, published_at, cluster_id, signature FROM items WHERE cluster_id IS NOT NULL;

-- One process clusters at a time: the holder of this lease (as for feeds and digests). Every
-- stored batch of assignments bumps the generation, so a process that keeps the story index in
-- memory between rounds knows when another process clustered meanwhile.
CREATE TABLE cluster_lease (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    lease_owner TEXT,
    lease_until BIGINT,
    generation  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO cluster_lease (id) VALUES (1);
