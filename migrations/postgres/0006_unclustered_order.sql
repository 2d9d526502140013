-- New items are clustered in publication order, a batch at a time, each batch against the
-- stories of its own few days. In id order, a batch of a long first poll spanned the whole
-- history and every batch reread it (quadratic). The waiting items get their own index in that
-- order; the story index leaves them out, so a planner has only the one to choose for them.
DROP INDEX items_unclustered;
DROP INDEX items_cluster;
CREATE INDEX items_cluster ON items (cluster_id) WHERE cluster_id IS NOT NULL;
CREATE INDEX items_unclustered ON items (published_at, id) WHERE cluster_id IS NULL;
