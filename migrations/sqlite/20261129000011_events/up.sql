-- Change events, written in the transaction of the change they describe
-- (domain::events). SQLite has one writer at a time, so `seq` is commit
-- order; `tx` is 0 (PostgreSQL's feed orders by the writing transaction).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tx BIGINT NOT NULL DEFAULT 0,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    patient_id TEXT
);
CREATE INDEX events_position_idx ON events (tx, seq);
CREATE INDEX events_patient_idx ON events (patient_id, tx, seq);
