-- GET /api/v1/keys?status=active|expiring reads one page: equality on user and status, then
-- the list order. (status=revoked and the unfiltered list use api_keys_user_created.)
CREATE INDEX api_keys_user_status_created ON api_keys (user_id, status, created_at DESC, id DESC);
