-- Webhook endpoints' upkeep: a rotated secret keeps signing beside the new
-- one until `previous_secret_until`; an endpoint failing since
-- `failing_since` for longer than WEBHOOK_DISABLE_AFTER_HOURS is disabled,
-- with the reason.
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until TIMESTAMP;
ALTER TABLE webhook_endpoints ADD COLUMN failing_since TIMESTAMP;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;
