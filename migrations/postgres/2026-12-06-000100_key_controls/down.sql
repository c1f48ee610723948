DROP INDEX api_keys_expires_at;
DROP TABLE key_monthly_spend;
ALTER TABLE api_keys DROP COLUMN expiry_reminded_days;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE api_keys DROP COLUMN monthly_credit_limit;
ALTER TABLE api_keys DROP COLUMN allowed_networks;
ALTER TABLE api_keys DROP COLUMN expires_at;
