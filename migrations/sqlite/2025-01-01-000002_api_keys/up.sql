-- API keys: only the SHA-256 of the full key and its preview are stored, never the key.
-- The state columns hold exactly one canonical form per domain KeyState, so a compare-and-set
-- compares all three.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    preview      TEXT NOT NULL,
    key_hash     BLOB NOT NULL,
    status       TEXT NOT NULL,
    revoked_at   BIGINT,
    revokes_at   BIGINT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    usage_count  BIGINT NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    CHECK (length(key_hash) = 32),
    CHECK (
        (status = 'active' AND revoked_at IS NULL AND revokes_at IS NULL)
        OR (status = 'expiring' AND revoked_at IS NULL AND revokes_at IS NOT NULL)
        OR (status = 'revoked' AND revoked_at IS NOT NULL AND revokes_at IS NULL)
    )
);
-- The authentication hot path: one unique index probe.
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
-- Listing a user's keys newest first.
CREATE INDEX api_keys_user_created ON api_keys (user_id, created_at DESC, id DESC);
-- Names are unique among a user's keys that are not revoked (backs the insert-time check).
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (user_id, name) WHERE status <> 'revoked';
