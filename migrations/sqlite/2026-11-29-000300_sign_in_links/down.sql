DELETE FROM email_outbox WHERE kind = 'sign_in';
CREATE TABLE email_outbox_old (
    id              TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    sent_at         BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    abandoned_at    BIGINT
);
INSERT INTO email_outbox_old SELECT id, key_id, to_address, subject, body, attempts,
    next_attempt_at, locked_until, sent_at, last_error, created_at, abandoned_at FROM email_outbox;
DROP TABLE email_outbox;
ALTER TABLE email_outbox_old RENAME TO email_outbox;
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
DROP TABLE sign_in_links;
