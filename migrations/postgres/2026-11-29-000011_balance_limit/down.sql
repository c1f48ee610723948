ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_balance_limit;
ALTER TABLE users DROP CONSTRAINT users_balance_limit;
