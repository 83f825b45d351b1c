-- Backend clients (SMART Backend Services): systems that sign an assertion
-- with a key of their JWKS and get a short access token for their role,
-- narrowed to their scopes. Registered by an admin; disabled, never deleted,
-- so that the audit trail's `client_id`s keep naming one.
CREATE TABLE clients (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    -- integration, scheduler or clinician: never admin or patient.
    role TEXT NOT NULL CHECK (role IN ('integration', 'scheduler', 'clinician')),
    -- The client's public keys: a JWKS held here, or the https URL it is at.
    jwks TEXT,
    jwks_url TEXT,
    -- Space-separated SMART v2 scopes, canonical (`system/Patient.rs`).
    scopes TEXT NOT NULL,
    disabled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
);

-- The `jti` of every assertion exchanged for a token, kept until the
-- assertion expires: a replay is refused in every process sharing the
-- database, as the primary key takes each only once.
CREATE TABLE client_assertions (
    client_id TEXT NOT NULL REFERENCES clients (id),
    jti TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expires_idx ON client_assertions (expires_at);
