-- Change events, written in the transaction of the change they describe
-- (domain::events). `tx` is the writing transaction's id: the feed hands out
-- only events of transactions older than the oldest still in flight
-- (`pg_snapshot_xmin`), in (tx, seq) order, so a reader that follows
-- positions never skips an event that commits late (docs/ARCHITECTURE.md,
-- "The event feed").
CREATE TABLE events (
    seq SERIAL PRIMARY KEY,
    tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    patient_id TEXT
);
CREATE INDEX events_position_idx ON events (tx, seq);
CREATE INDEX events_patient_idx ON events (patient_id, tx, seq);
