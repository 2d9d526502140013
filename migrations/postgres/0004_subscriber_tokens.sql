-- PostgreSQL twin of migrations/sqlite/0004.
CREATE TABLE subscriber_tokens (
    selector      TEXT PRIMARY KEY,
    hash          TEXT NOT NULL,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX subscriber_tokens_subscriber ON subscriber_tokens (subscriber_id);
CREATE INDEX subscriber_tokens_expiry ON subscriber_tokens (expires_at);
