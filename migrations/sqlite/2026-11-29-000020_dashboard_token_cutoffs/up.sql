-- The per-user cut-off of dashboard tokens: a token issued at or before `cutoff` (unix ms) is
-- refused. Sign-out raises it; a user who never signed out has no row.
CREATE TABLE dashboard_token_cutoffs (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    cutoff  BIGINT NOT NULL
);
