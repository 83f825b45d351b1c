-- Webhook endpoints (admin) and their deliveries. A dispatcher follows the
-- change feed from `webhook_dispatch`'s position and writes a delivery per
-- event and endpoint that takes it, in the transaction that moves the
-- position: after a crash, every event is either dispatched or still ahead.
CREATE TABLE webhook_endpoints (
    id TEXT NOT NULL PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Space-separated event types; empty takes every type.
    event_types TEXT NOT NULL,
    -- `whsec_` and base64: Standard Webhooks' signing secret.
    secret TEXT NOT NULL,
    disabled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT NOT NULL PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event's id: the `webhook-id` of every attempt.
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending, delivered or failed.
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    -- While a worker sends it: no other takes it before then.
    leased_until TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);

-- Where the dispatcher is in the feed: one row.
CREATE TABLE webhook_dispatch (
    name TEXT NOT NULL PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq INTEGER NOT NULL
);
INSERT INTO webhook_dispatch (name, tx, seq) VALUES ('feed', 0, 0);
