-- WebSub (W3C Recommendation), tinbao as the hub of its own merged feeds: each verified
-- subscription of a callback to a topic (a feed's URL) until expires_at, and the content
-- distribution owed to it. `owed` counts the topic's changes, `sent` the last count delivered;
-- due_at is when to deliver next (NULL: nothing owed). A claim pushes due_at out by a lease, so
-- a process that dies mid-delivery gives the delivery back.
CREATE TABLE websub_subscriptions (
    id            INTEGER PRIMARY KEY,
    topic         TEXT NOT NULL,
    callback      TEXT NOT NULL,
    callback_host TEXT NOT NULL,
    secret        TEXT,
    lease_secs    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    owed          INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    due_at        INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    failing_since INTEGER,
    last_error    TEXT,
    delivered_at  INTEGER,
    UNIQUE (topic, callback)
);
CREATE INDEX websub_subscriptions_due ON websub_subscriptions (due_at);
CREATE INDEX websub_subscriptions_host ON websub_subscriptions (callback_host);
