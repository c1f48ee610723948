-- A user's documents are listed through their ledger rows, on credit_ledger_user: every render
-- is charged, and its ledger row's reason names the document (`document_render:<id>`). A
-- per-user index of documents made each render write a second scattered page (and the
-- checkpoint copy and sync it). The reason index finds a list cursor's row; document ids begin
-- with their creation time, so it grows at its end.
DROP INDEX documents_user_created;
CREATE INDEX credit_ledger_reason ON credit_ledger (reason);
