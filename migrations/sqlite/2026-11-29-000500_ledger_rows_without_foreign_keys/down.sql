-- PostgreSQL only: there a foreign key costs a trigger per inserted ledger row and document (see
-- the PostgreSQL migration). SQLite keeps its foreign keys, an in-process B-tree probe per row.
-- Kept so that both stores list the same migrations.
SELECT 1;
