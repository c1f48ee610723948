-- No balance exceeds 2^53 - 1 (the largest integer every JSON client reads exactly), and none is
-- ever a REAL: SQLite turns an overflowing integer sum into a floating-point value instead of
-- failing. The store checks before writing; these triggers refuse any write that slipped past.
-- (SQLite cannot add a CHECK to an existing table without rebuilding it.)
CREATE TRIGGER users_balance_limit_insert BEFORE INSERT ON users
WHEN typeof(NEW.balance) <> 'integer' OR NEW.balance > 9007199254740991
BEGIN
    SELECT RAISE(ABORT, 'balance out of range');
END;
CREATE TRIGGER users_balance_limit_update BEFORE UPDATE OF balance ON users
WHEN typeof(NEW.balance) <> 'integer' OR NEW.balance > 9007199254740991
BEGIN
    SELECT RAISE(ABORT, 'balance out of range');
END;
CREATE TRIGGER credit_ledger_amount_limit BEFORE INSERT ON credit_ledger
WHEN typeof(NEW.delta) <> 'integer'
    OR typeof(NEW.balance_after) <> 'integer'
    OR NEW.balance_after > 9007199254740991
BEGIN
    SELECT RAISE(ABORT, 'ledger amount out of range');
END;
