-- The bridge's durable queue and its memory of what maps to what.
--
-- bridge_jobs: ids only grow, so id order is enqueue order; jobs of one
-- (integration_id, chat_key) run one at a time in that order. No foreign key
-- to chatwoot_integrations: its row is replaced on re-activation, and the
-- bridge takes an integration's jobs itself (take_jobs) before deleting it.
-- status is queued | running | dead; run_at is the due time and
-- locked_until the lease of a running job (Unix ms).
CREATE TABLE bridge_jobs (
    id             BIGSERIAL PRIMARY KEY,
    integration_id TEXT NOT NULL,
    instance_id    TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    direction      TEXT NOT NULL,
    chat_key       TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL,
    payload        TEXT NOT NULL,
    status         TEXT NOT NULL,
    attempts       BIGINT NOT NULL,
    run_at         BIGINT NOT NULL,
    locked_until   BIGINT NULL,
    last_error     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT bridge_jobs_dedupe_key_key UNIQUE (dedupe_key)
);

CREATE INDEX bridge_jobs_due_idx ON bridge_jobs (status, run_at);
CREATE INDEX bridge_jobs_chat_idx ON bridge_jobs (integration_id, chat_key, id);
CREATE INDEX bridge_jobs_instance_idx ON bridge_jobs (instance_id, direction);

-- A WhatsApp message and its Chatwoot counterpart. One Chatwoot message may
-- map to several WhatsApp messages (a media split), so only the WhatsApp side
-- is unique. id only orders the rows (insert order).
CREATE TABLE message_links (
    id                       BIGSERIAL PRIMARY KEY,
    integration_id           TEXT NOT NULL,
    wa_message_id            TEXT NOT NULL,
    chatwoot_message_id      BIGINT NOT NULL,
    chatwoot_conversation_id BIGINT NOT NULL,
    direction                TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    CONSTRAINT message_links_wa_key UNIQUE (integration_id, wa_message_id)
);

CREATE INDEX message_links_chatwoot_idx ON message_links (integration_id, chatwoot_message_id);

-- Where a WhatsApp chat lives in Chatwoot.
CREATE TABLE chat_links (
    integration_id        TEXT NOT NULL,
    chat_jid              TEXT NOT NULL,
    contact_id            BIGINT NOT NULL,
    source_id             TEXT NOT NULL,
    conversation_id       BIGINT NOT NULL,
    conversation_status   TEXT NOT NULL,
    reconciled_message_id BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (integration_id, chat_jid)
);

CREATE INDEX chat_links_conversation_idx ON chat_links (integration_id, conversation_id);
