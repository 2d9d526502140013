-- When each source feed says it last changed (its own updated/lastBuildDate, else its newest
-- item's date), as merged Atom feeds carry it in each entry's <source> (RFC 4287 4.2.11).
-- Feeds polled before this column existed start from their newest stored item.
ALTER TABLE feeds ADD COLUMN source_updated_at BIGINT;
UPDATE feeds SET source_updated_at = (
    SELECT MAX(COALESCE(i.updated_at, i.published_at)) FROM items i WHERE i.feed_id = feeds.id
);
