-- Idempotency-Key records, one per user and key value, for 24 hours (docs/idempotency.md).
-- Nothing here is readable without the Idempotency-Key value: `lookup` and `request` are
-- derived from it (HKDF / HMAC-SHA256, with the user's id), `sealed` is the first response
-- under ChaCha20-Poly1305 with a key derived from it. `sealed` is NULL while the first request
-- runs. The sweeper deletes rows whose `expires_at` (unix ms) has passed.
CREATE TABLE idempotency_records (
    lookup     BLOB PRIMARY KEY,
    request    BLOB NOT NULL,
    sealed     BLOB,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CHECK (length(lookup) = 32),
    CHECK (length(request) = 32)
);
CREATE INDEX idempotency_records_expires_at ON idempotency_records (expires_at);
