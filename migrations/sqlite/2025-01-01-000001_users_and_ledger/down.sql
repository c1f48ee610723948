DROP TABLE credit_ledger;
DROP TABLE users;
