-- PostgreSQL twin of migrations/sqlite/0002.
ALTER TABLE items ADD COLUMN cluster_id BIGINT;
ALTER TABLE items ADD COLUMN signature BYTEA;
CREATE INDEX items_cluster ON items (cluster_id);
CREATE INDEX items_unclustered ON items (id) WHERE cluster_id IS NULL;
