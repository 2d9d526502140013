-- One story carried by several sources is one cluster, named by its first item's id.
ALTER TABLE items ADD COLUMN cluster_id INTEGER;
-- MinHash signature of the item's title and text (see src/cluster.rs), for near-duplicates.
ALTER TABLE items ADD COLUMN signature BLOB;
CREATE INDEX items_cluster ON items (cluster_id);
CREATE INDEX items_unclustered ON items (id) WHERE cluster_id IS NULL;
