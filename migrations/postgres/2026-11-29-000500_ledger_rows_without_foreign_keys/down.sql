DROP TRIGGER templates_are_kept ON templates;
DROP TRIGGER users_are_kept ON users;
DROP FUNCTION refuse_removing_referenced_rows();
ALTER TABLE documents ADD CONSTRAINT documents_template_id_fkey FOREIGN KEY (template_id) REFERENCES templates (id);
ALTER TABLE documents ADD CONSTRAINT documents_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
