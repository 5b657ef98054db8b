-- An agent's reply marks the customer's messages of its conversation read
-- (markReadOnReply): they are found by conversation, newest first.
CREATE INDEX message_links_conversation_idx
    ON message_links (integration_id, chatwoot_conversation_id, id);

-- When each chat's Chatwoot contact last got its WhatsApp picture
-- (contactAvatars), and which: refreshed at most daily, and Chatwoot is
-- called only when the picture changed.
CREATE TABLE chatwoot_avatars (
    integration_id TEXT NOT NULL,
    chat_jid       TEXT NOT NULL,
    picture_url    TEXT NOT NULL,
    refreshed_at   BIGINT NOT NULL,
    PRIMARY KEY (integration_id, chat_jid)
);
