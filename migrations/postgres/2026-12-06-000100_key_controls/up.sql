-- Key controls (docs/api.md, "Key controls"). NULL is "not set": no expiry, any network, no monthly
-- limit, every scope.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN allowed_networks TEXT;
ALTER TABLE api_keys ADD COLUMN monthly_credit_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
-- Which expiry reminders were sent (days before: 7, then 1), so each goes once.
ALTER TABLE api_keys ADD COLUMN expiry_reminded_days INTEGER;

-- Credits a limited key spent per UTC calendar month (`month`: its first unix ms). Written by
-- the ledger batch in the transaction of the debit, read under the payer's lock.
CREATE TABLE key_monthly_spend (
    key_id TEXT NOT NULL,
    month  BIGINT NOT NULL,
    spent  BIGINT NOT NULL CHECK (spent >= 0),
    PRIMARY KEY (key_id, month)
);

-- The reminder sweep's scan: live keys with an expiry.
CREATE INDEX api_keys_expires_at ON api_keys (expires_at) WHERE expires_at IS NOT NULL;
