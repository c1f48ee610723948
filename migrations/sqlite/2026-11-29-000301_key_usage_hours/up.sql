-- Requests per key per clock hour (`hour_start`, unix ms), for the dashboard's 24-hour chart.
-- Written by the usage flush in the same transaction as api_keys.usage_count; the sweeper
-- deletes hours older than 48 h.
CREATE TABLE key_usage_hours (
    key_id     TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    count      BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, hour_start)
);
CREATE INDEX key_usage_hours_start ON key_usage_hours (hour_start);
