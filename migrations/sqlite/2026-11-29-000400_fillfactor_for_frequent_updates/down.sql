-- PostgreSQL only (fillfactor, for HOT updates); SQLite has no such setting. Kept so that both
-- stores list the same migrations.
SELECT 1;
