DELETE FROM email_outbox WHERE kind = 'sign_in';
ALTER TABLE email_outbox DROP COLUMN kind;
ALTER TABLE email_outbox ALTER COLUMN key_id SET NOT NULL;
DROP TABLE sign_in_links;
