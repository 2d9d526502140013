-- Subscribers' link tokens (confirm, manage, unsubscribe). A token is 24 random bytes, base64url:
-- the first 8 are a selector (looked up here), the rest a secret of 128 bits. Only a SHA-256 of
-- the whole token is kept, so a copy of the database opens no one's subscription.
CREATE TABLE subscriber_tokens (
    selector      TEXT PRIMARY KEY,                 -- hex of the token's first 8 bytes
    hash          TEXT NOT NULL,                    -- hex SHA-256 of the whole token
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,                    -- confirm | manage | unsubscribe
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX subscriber_tokens_subscriber ON subscriber_tokens (subscriber_id);
CREATE INDEX subscriber_tokens_expiry ON subscriber_tokens (expires_at);
