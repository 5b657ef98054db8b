-- The delivery claim visits each webhook with unfinished deliveries and
-- reads only its oldest few in id order, instead of numbering the whole
-- backlog per webhook: a claim then costs what it hands out, however far
-- delivery lags behind. The predicate matches the claim's `status IN`
-- term word for word (SQLite uses a partial index only then).
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (webhook_id, id)
    WHERE status IN ('queued', 'running');
DROP INDEX webhook_deliveries_unfinished_idx;
