-- One-time sign-in links. Only the token's SHA-256 is kept; `used_at` is set by the one
-- conditional UPDATE that consumes a link, so of two concurrent exchanges one wins.
CREATE TABLE sign_in_links (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
-- The per-address limit counts a user's links of the last hour; the sweeper deletes by age.
CREATE INDEX sign_in_links_user_created ON sign_in_links (user_id, created_at);
CREATE INDEX sign_in_links_created ON sign_in_links (created_at);

-- The outbox carries sign-in emails too: they name no key, and `kind` tells the outbox to
-- blank a sign-in email's body (its link is a credential) once it is sent or abandoned.
ALTER TABLE email_outbox ALTER COLUMN key_id DROP NOT NULL;
ALTER TABLE email_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'key_alert';
