-- Feeds whose stored items changed since their merged feeds were last written: a poll bumps the
-- count in the transaction that stores the items, a regeneration clears it (only if no poll
-- bumped it meanwhile). A process killed between the two leaves the mark for the next one.
ALTER TABLE feeds ADD COLUMN unpublished BIGINT NOT NULL DEFAULT 0;
CREATE INDEX feeds_unpublished ON feeds (unpublished) WHERE unpublished > 0;
