-- Idempotent sends: one row per instance and Idempotency-Key, kept 24 h.
-- `response` stays NULL while the send runs (or after its process died).
CREATE TABLE idempotency_keys (
    instance_id  TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (instance_id, idem_key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
