-- The message store: every message an instance sends or receives, kept
-- ZAPGATE_MESSAGE_RETENTION_DAYS (by created_at). Written with the event
-- log, in its transaction. Booleans are 0/1; media and extra are JSON.
CREATE TABLE messages (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    chat          TEXT NOT NULL,
    sender        TEXT NOT NULL,
    from_me       BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NULL,
    media         TEXT NULL,
    extra         TEXT NULL,
    quoted_id     TEXT NULL,
    source        TEXT NULL,
    status        TEXT NOT NULL,
    sent_at       BIGINT NOT NULL,
    edited_at     BIGINT NULL,
    revoked_at    BIGINT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE INDEX messages_created_at ON messages (created_at);

-- Each status a message reached, first time only.
CREATE TABLE message_statuses (
    instance_id TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (instance_id, message_id, status),
    FOREIGN KEY (instance_id, message_id) REFERENCES messages (instance_id, id) ON DELETE CASCADE
);
