DROP INDEX credit_ledger_reason;
CREATE INDEX documents_user_created ON documents (user_id, created_at DESC, id DESC);
