-- The audit trail: one row per audited request (docs/DOMAIN.md, "Audit
-- trail"). Append-only: see the next migration.
-- `id` is the request's own (its `x-request-id`, a UUIDv7): one record a
-- request, and ids in time order, so that a time range is an id range and
-- needs no index of its own (nor does an actor's search, given a range).
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT,
    actor_role TEXT,
    client_id TEXT,
    operation TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    records TEXT NOT NULL,
    changed TEXT NOT NULL,
    source TEXT,
    -- The patient, when the request touched exactly one (nearly all do):
    -- its record is then one row, one statement inside a write.
    patient_id TEXT
);
CREATE INDEX audit_events_patient_idx ON audit_events (patient_id, id);

-- The patients of a request that touched several (a list across patients).
-- No foreign key to audit_events: both are written together and pruned
-- together, and a key's check on every row was a third of the cost of
-- storing a read's record.
CREATE TABLE audit_event_patients (
    patient_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (patient_id, event_id)
);
