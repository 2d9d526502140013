-- A digest's items, also as one list on its row ("item:topic,item:topic…", in the ledger's
-- order), written in the same transaction as its ledger rows. The sender reads one row per
-- digest instead of one per item; the ledger stays the record of what reached whom. NULL for
-- digests built before this column: their items are read from the ledger.
ALTER TABLE digests ADD COLUMN items TEXT;
