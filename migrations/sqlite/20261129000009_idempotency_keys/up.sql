-- The answers given to requests sent with an `Idempotency-Key` (IETF
-- draft-ietf-httpapi-idempotency-key-header), per caller: a repeat of the
-- request is answered from here and changes nothing. A row is written in the
-- same transaction as the change it answers, so after a crash there are both
-- or neither. Rows past `expires_at` are ignored and pruned.
CREATE TABLE idempotency_keys (
    -- `role:subject` of the token that sent the request: keys are scoped per caller.
    caller TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- SHA-256 of the method, path and body, to tell a repeat from a reuse.
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    -- What the change touched (space-separated patient ids, and records as
    -- `kind/id`), for the audit record of each answer sent again.
    patient_ids TEXT NOT NULL,
    records TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (caller, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
