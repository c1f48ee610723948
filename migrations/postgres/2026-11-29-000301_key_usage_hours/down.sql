DROP TABLE key_usage_hours;
