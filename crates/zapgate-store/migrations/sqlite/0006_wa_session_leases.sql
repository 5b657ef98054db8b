-- Which zapgate process runs the WhatsApp Web session of an instance. Several
-- processes may share one database; only the lease holder may connect the
-- session. The holder renews expires_at (Unix milliseconds) well before it
-- passes; an expired lease is taken over by the next process that asks.
CREATE TABLE wa_session_leases (
    instance_id TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
