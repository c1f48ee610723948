-- No balance exceeds 2^53 - 1 (the largest integer every JSON client reads exactly). The store
-- checks this before writing; these constraints keep any other writer honest too. NOT VALID:
-- rows written before the limit existed are not re-checked, every new or updated row is.
ALTER TABLE users
    ADD CONSTRAINT users_balance_limit CHECK (balance <= 9007199254740991) NOT VALID;
ALTER TABLE credit_ledger
    ADD CONSTRAINT credit_ledger_balance_limit CHECK (balance_after <= 9007199254740991) NOT VALID;
