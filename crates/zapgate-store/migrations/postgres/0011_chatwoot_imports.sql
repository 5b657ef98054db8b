-- The history import of an instance's Chatwoot integration (one row per
-- instance, the last one started): its window, where it stands, and the
-- lease of the process running it, so it resumes after a restart.
CREATE TABLE chatwoot_imports (
    instance_id     TEXT PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL,
    state           TEXT NOT NULL,
    days            INTEGER NOT NULL,
    contacts        INTEGER NOT NULL,
    since_secs      BIGINT NOT NULL,
    until_secs      BIGINT NOT NULL,
    chats           BIGINT NOT NULL,
    last_chat       TEXT NULL,
    messages_done   BIGINT NOT NULL,
    messages_total  BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT NULL,
    error           TEXT NULL,
    locked_until    BIGINT NOT NULL
);
