-- Accounts and the credit ledger. Timestamps are unix milliseconds (BIGINT), ids are TEXT, in
-- both backends, so one diesel schema serves PostgreSQL and SQLite.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    created_at BIGINT NOT NULL
);

-- Every balance change, in the same transaction as the change: sum(delta) = users.balance.
CREATE TABLE credit_ledger (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    delta         BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    reason        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX credit_ledger_user ON credit_ledger (user_id, seq);
