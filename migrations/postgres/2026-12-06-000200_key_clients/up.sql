-- Where each key is used (docs/signals.md): one row per client, a network (IPv4 /24 or
-- IPv6 /48, never a full address) and a user agent's first product token. Written by the usage
-- flush in the same transaction as api_keys.usage_count; at most 50 rows per key (the least
-- recently seen go first); the sweeper deletes rows not seen for 30 days.
CREATE TABLE key_clients (
    seq BIGSERIAL PRIMARY KEY,
    key_id     TEXT NOT NULL,
    network    TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    requests   BIGINT NOT NULL CHECK (requests >= 0),
    browser    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX key_clients_client ON key_clients (key_id, network, user_agent);
CREATE INDEX key_clients_recent ON key_clients (key_id, last_seen, seq);
CREATE INDEX key_clients_last_seen ON key_clients (last_seen);

-- The last time each leak signal was raised for a key: at most one per key per signal per 24 h,
-- checked and recorded in the transaction that writes the event and queues the email.
CREATE TABLE key_signals (
    key_id  TEXT NOT NULL,
    signal  TEXT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, signal)
);
