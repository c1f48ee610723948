DROP TABLE email_outbox;
DROP TABLE key_alerts;
