-- The history import of an instance's Chatwoot integration (one row per
-- instance, the last one started): its window, where it stands, and the
-- lease of the process running it, so it resumes after a restart.
CREATE TABLE chatwoot_imports (
    instance_id     TEXT PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    integration_id  TEXT NOT NULL,
    state           TEXT NOT NULL,
    days            INTEGER NOT NULL,
    contacts        INTEGER NOT NULL,
    since_secs      INTEGER NOT NULL,
    until_secs      INTEGER NOT NULL,
    chats           INTEGER NOT NULL,
    last_chat       TEXT NULL,
    messages_done   INTEGER NOT NULL,
    messages_total  INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER NULL,
    error           TEXT NULL,
    locked_until    INTEGER NOT NULL
);
