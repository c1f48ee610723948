DROP TABLE key_events;
ALTER TABLE api_keys DROP COLUMN revocation_reason;
