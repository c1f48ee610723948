-- The ledger writer inserts a ledger row and a document for every render. A foreign key runs a
-- trigger per inserted row (a locking lookup of the referenced row through SPI): on a batch of
-- 22 renders the three checks below took more server time than the inserts themselves, and
-- dropping them raised the hot render by about a quarter on PostgreSQL.
--
-- What they guarded is guarded otherwise:
-- * a row is never written for a user that does not exist: the only writers (the ledger batch,
--   grants, account creation) hold the user's row lock in the same transaction, having found
--   the row (a batch answers a missing user `UnknownUser` and writes nothing for it);
-- * a document's template exists: the render looked it up to render it;
-- * the referenced rows never go away: nothing deletes users or templates or changes their ids,
--   and the triggers below refuse it, once per statement, at no cost to the inserts.
-- SQLite keeps its foreign keys: there the check is an in-process B-tree probe.
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_user_id_fkey;
ALTER TABLE documents DROP CONSTRAINT documents_user_id_fkey;
ALTER TABLE documents DROP CONSTRAINT documents_template_id_fkey;

CREATE FUNCTION refuse_removing_referenced_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted and their ids never change: ledger rows and documents refer to them', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER users_are_kept BEFORE DELETE OR UPDATE OF id ON users
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removing_referenced_rows();
CREATE TRIGGER templates_are_kept BEFORE DELETE OR UPDATE OF id ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_removing_referenced_rows();
