-- What the last stored document's entries became (see `reader::skim`): a changed document is
-- read for its new and edited entries only. NULL: read the next document whole.
ALTER TABLE feeds ADD COLUMN entry_memory BYTEA;
