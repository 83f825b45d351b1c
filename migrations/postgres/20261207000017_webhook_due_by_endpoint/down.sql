DROP INDEX webhook_deliveries_due_by_endpoint_idx;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
