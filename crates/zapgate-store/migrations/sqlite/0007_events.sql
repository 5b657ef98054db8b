-- RyzeAPI's events module: webhooks, the WebSocket setting, the event log
-- and the webhook deliveries that ride on it. Booleans are 0/1.

-- Up to three enabled per instance (checked by the store in the saving
-- transaction); disabled rows are kept with their delivery settings cleared.
CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY NOT NULL,
    instance_id           TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    label                 TEXT NOT NULL,
    enabled               INTEGER NOT NULL,
    url                   TEXT NOT NULL,
    authorization_sealed  BLOB NULL,
    by_events             INTEGER NOT NULL,
    events                TEXT NOT NULL,
    media_base64          INTEGER NOT NULL,
    signing_secret_sealed BLOB NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    CONSTRAINT webhooks_instance_label_key UNIQUE (instance_id, label)
);

CREATE TABLE websocket_configs (
    instance_id  TEXT PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    enabled      INTEGER NOT NULL,
    events       TEXT NOT NULL,
    media_base64 INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The last sequence given to an event of the instance. Taking the next one
-- locks the row until the event's transaction ends, so sequences commit in
-- order and a reader resuming "after N" never skips a later-committing N-1.
CREATE TABLE event_sequences (
    instance_id   TEXT PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    last_sequence INTEGER NOT NULL
);

CREATE TABLE event_log (
    id          TEXT PRIMARY KEY NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    sequence    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT event_log_sequence_key UNIQUE (instance_id, sequence),
    CONSTRAINT event_log_dedupe_key UNIQUE (instance_id, dedupe_key)
);

CREATE INDEX event_log_created_idx ON event_log (created_at);

-- status: queued | running | delivered | dead. run_at is when a queued one
-- is due (or a finished one was last tried); locked_until the lease of a
-- running one (Unix ms).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    instance_id     TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL REFERENCES event_log (id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    run_at          INTEGER NOT NULL,
    locked_until    INTEGER NULL,
    response_status INTEGER NULL,
    last_error      TEXT NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- The claim walks unfinished deliveries in id order.
CREATE INDEX webhook_deliveries_unfinished_idx ON webhook_deliveries (id)
    WHERE status IN ('queued', 'running');
-- Running deliveries per webhook (the per-webhook cap).
CREATE INDEX webhook_deliveries_running_idx ON webhook_deliveries (webhook_id)
    WHERE status = 'running';
CREATE INDEX webhook_deliveries_instance_idx ON webhook_deliveries (instance_id, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
