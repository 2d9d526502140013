-- Only pending digests are ever looked up by due time. With the index limited to them, marking
-- a digest sent removes one index entry instead of moving it (the "sent" mark is the hottest
-- write of a digest run), and a claim reads them in its own order (due time, then id).
DROP INDEX digests_due;
CREATE INDEX digests_due ON digests (next_attempt_at, id) WHERE state = 'pending';
