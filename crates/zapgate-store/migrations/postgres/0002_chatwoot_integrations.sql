-- One Chatwoot integration per instance (spec §3.6). Secrets are sealed;
-- flags are 0/1 integers (portable through sqlx's Any driver).
CREATE TABLE chatwoot_integrations (
    bridge_integration_id TEXT PRIMARY KEY NOT NULL,
    instance_id           TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    chatwoot_base_url     TEXT NOT NULL,
    chatwoot_account_id   BIGINT NOT NULL,
    api_token_sealed      BYTEA NOT NULL,
    chatwoot_inbox_id     BIGINT NOT NULL,
    chatwoot_inbox_name   TEXT NOT NULL,
    inbox_identifier      TEXT NULL,
    webhook_secret_sealed BYTEA NOT NULL,
    inbox_secret_sealed   BYTEA NULL,
    webhook_url_sealed    BYTEA NOT NULL,
    status                TEXT NOT NULL,
    last_error            TEXT NOT NULL,
    sign_messages         BIGINT NOT NULL,
    ignore_groups         BIGINT NOT NULL,
    start_as_pending      BIGINT NOT NULL,
    reopen_resolved       BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    CONSTRAINT chatwoot_integrations_instance_key UNIQUE (instance_id)
);
