-- An email the mail server rejected permanently, several times, is given up: it keeps its row
-- (attempts, last_error) for operators, and the worker's poll no longer sees it.
ALTER TABLE email_outbox ADD COLUMN abandoned_at BIGINT;
DROP INDEX email_outbox_due;
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at, id)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
