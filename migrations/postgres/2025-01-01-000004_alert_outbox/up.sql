-- When each key last had a high-usage alert enqueued: the at-most-once-per-24h rule is a
-- conditional write to this row, so concurrent instances enqueue once.
CREATE TABLE key_alerts (
    key_id        TEXT PRIMARY KEY,
    last_alert_at BIGINT NOT NULL
);

-- The durable email outbox. A worker claims a due row by setting locked_until (a lease) with a
-- conditional UPDATE, sends it, then sets sent_at; a failure records last_error and reschedules.
CREATE TABLE email_outbox (
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
    created_at      BIGINT NOT NULL
);
-- The worker's poll: unsent rows by due time.
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at, id) WHERE sent_at IS NULL;
