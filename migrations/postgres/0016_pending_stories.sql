-- The items waiting for their story, as clustering reads them: one narrow row per item (its
-- feed, canonical URL, date and signature), written by the poll beside the item and deleted when
-- the item's story is stored in story_index. An item's story is read from story_index from now
-- on, and items.cluster_id and items.signature go: each was written into the item's own row,
-- after its HTML, so storing a story (or reading a signature) read and rewrote the whole row.
--
-- The story index is keyed in publication order (on SQLite that key is also the rows' order on
-- disk), the order clustering stores stories in, and by item id with a unique index.
CREATE TABLE pending_stories (
    item_id       BIGINT PRIMARY KEY,
    feed_id       TEXT NOT NULL,
    canonical_url TEXT,
    published_at  BIGINT NOT NULL,
    signature     BYTEA
);
CREATE INDEX pending_stories_order ON pending_stories (published_at, item_id);
INSERT INTO pending_stories (item_id, feed_id, canonical_url, published_at, signature)
SELECT id, feed_id, canonical_url, published_at, signature FROM items WHERE cluster_id IS NULL;

-- Every clustered item has its row there already (0012 copied them, clustering writes both);
-- this keeps any that might not.
INSERT INTO story_index (item_id, feed_id, published_at, cluster_id, signature)
SELECT id, feed_id, published_at, cluster_id, signature FROM items
WHERE cluster_id IS NOT NULL AND id NOT IN (SELECT item_id FROM story_index);
ALTER TABLE story_index DROP CONSTRAINT story_index_pkey;
ALTER TABLE story_index ADD PRIMARY KEY (published_at, item_id);
CREATE UNIQUE INDEX story_index_item ON story_index (item_id);
CREATE INDEX story_index_cluster ON story_index (cluster_id);
DROP INDEX story_index_published;

DROP INDEX items_unclustered;
DROP INDEX items_cluster;
ALTER TABLE items DROP COLUMN cluster_id;
ALTER TABLE items DROP COLUMN signature;
