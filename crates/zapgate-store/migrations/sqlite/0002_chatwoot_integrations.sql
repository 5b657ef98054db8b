-- One Chatwoot integration per instance (spec §3.6). Secrets are sealed;
-- flags are 0/1 integers (portable through sqlx's Any driver).
CREATE TABLE chatwoot_integrations (
    bridge_integration_id TEXT PRIMARY KEY NOT NULL,
    instance_id           TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    chatwoot_base_url     TEXT NOT NULL,
    chatwoot_account_id   INTEGER NOT NULL,
    api_token_sealed      BLOB NOT NULL,
    chatwoot_inbox_id     INTEGER NOT NULL,
    chatwoot_inbox_name   TEXT NOT NULL,
    inbox_identifier      TEXT NULL,
    webhook_secret_sealed BLOB NOT NULL,
    inbox_secret_sealed   BLOB NULL,
    webhook_url_sealed    BLOB NOT NULL,
    status                TEXT NOT NULL,
    last_error            TEXT NOT NULL,
    sign_messages         INTEGER NOT NULL,
    ignore_groups         INTEGER NOT NULL,
    start_as_pending      INTEGER NOT NULL,
    reopen_resolved       INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    CONSTRAINT chatwoot_integrations_instance_key UNIQUE (instance_id)
);
