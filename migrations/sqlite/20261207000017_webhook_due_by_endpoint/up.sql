-- A pass claims each active endpoint's due deliveries in turns
-- (store::webhooks::due_by_endpoint, one query an endpoint): each query
-- reads its endpoint's pending deliveries in the order they fall due,
-- from this index alone. It replaces the index of all endpoints' due
-- deliveries, which the pass read before and nothing reads now: beside
-- this one, a generic (prepared) plan took it and read past every other
-- endpoint's backlog.
DROP INDEX webhook_deliveries_due_idx;
CREATE INDEX webhook_deliveries_due_by_endpoint_idx
    ON webhook_deliveries (endpoint_id, status, next_attempt_at, id);
