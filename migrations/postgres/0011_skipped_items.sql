-- Items the operator's skip/keep rules left out of the feed's last parsed document (shown by
-- `tinbao feeds`); the rules live in feeds.toml.
ALTER TABLE feeds ADD COLUMN last_skipped BIGINT NOT NULL DEFAULT 0;
