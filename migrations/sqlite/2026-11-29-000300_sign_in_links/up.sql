-- One-time sign-in links. Only the token's SHA-256 is kept; `used_at` is set by the one
-- conditional UPDATE that consumes a link, so of two concurrent exchanges one wins.
CREATE TABLE sign_in_links (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    token_hash BLOB NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
-- The per-address limit counts a user's links of the last hour; the sweeper deletes by age.
CREATE INDEX sign_in_links_user_created ON sign_in_links (user_id, created_at);
CREATE INDEX sign_in_links_created ON sign_in_links (created_at);

-- The outbox carries sign-in emails too: they name no key, and `kind` tells the outbox to
-- blank a sign-in email's body (its link is a credential) once it is sent or abandoned.
-- SQLite cannot drop a NOT NULL: the table is rebuilt with the same rows.
CREATE TABLE email_outbox_new (
    id              TEXT PRIMARY KEY,
    key_id          TEXT,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    sent_at         BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    abandoned_at    BIGINT,
    kind            TEXT NOT NULL DEFAULT 'key_alert'
);
INSERT INTO email_outbox_new (id, key_id, to_address, subject, body, attempts, next_attempt_at,
        locked_until, sent_at, last_error, created_at, abandoned_at)
    SELECT id, key_id, to_address, subject, body, attempts, next_attempt_at,
        locked_until, sent_at, last_error, created_at, abandoned_at
    FROM email_outbox;
DROP TABLE email_outbox;
ALTER TABLE email_outbox_new RENAME TO email_outbox;
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
