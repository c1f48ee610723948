-- Why a key was revoked (user, rotation, leaked, operator); NULL while active and for keys
-- revoked before reasons were recorded. A key expiring by rotation already carries `rotation`.
ALTER TABLE api_keys ADD COLUMN revocation_reason TEXT;
UPDATE api_keys SET revocation_reason = 'rotation' WHERE status = 'expiring';

-- Each key's audit trail, written in the transaction of the change it records. `detail` is a
-- JSON object whose members depend on `kind`; `seq` orders the trail and is its page cursor.
CREATE TABLE key_events (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id TEXT NOT NULL,
    kind   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at     BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX key_events_key ON key_events (key_id, seq);
