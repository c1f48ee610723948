ALTER TABLE users RESET (fillfactor);
ALTER TABLE api_keys RESET (fillfactor);
ALTER TABLE key_usage_hours RESET (fillfactor);
