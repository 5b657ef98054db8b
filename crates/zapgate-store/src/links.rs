//! The bridge's memory of what maps to what: `message_links` (a WhatsApp
//! message and its Chatwoot message, for replies, edits and deletions) and
//! `chat_links` (the Chatwoot contact and conversation of a WhatsApp chat).
//! Both are keyed by the integration, so a new activation starts afresh.

use sqlx::any::AnyRow;
use zapgate_core::{
    Result,
    jobs::{AgentMessageLinks, AvatarRefresh, ChatLink, MessageLink, UnreadMessage},
    time::now_ms,
};

use crate::{SqlStore, conn::StoreQuery, params::Params, rows::get};

pub(crate) const MESSAGE_COLUMNS: &str =
    "integration_id, wa_message_id, chatwoot_message_id, chatwoot_conversation_id, direction";

const CHAT_COLUMNS: &str = "integration_id, chat_jid, contact_id, source_id, conversation_id, \
    conversation_status, reconciled_message_id";

/// Which of a conversation's chat links is its chat: the one most recently
/// saved.
const CONVERSATION_CHAT: &str = "ORDER BY updated_at DESC, chat_jid LIMIT 1";

/// A link already stored for the WhatsApp message is kept as it is.
pub(crate) async fn save_message(store: &SqlStore, link: &MessageLink) -> Result<()> {
    let sql = format!(
        "INSERT INTO message_links ({MESSAGE_COLUMNS}, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (integration_id, wa_message_id) DO NOTHING"
    );
    let query = sqlx::query(&sql)
        .bind(&link.integration_id)
        .bind(&link.wa_message_id)
        .bind(link.chatwoot_message_id)
        .bind(link.chatwoot_conversation_id)
        .bind(&link.direction)
        .bind(now_ms());
    store.write_turn().await.execute(query).await?;
    Ok(())
}

pub(crate) async fn find_message_by_wa(
    store: &SqlStore,
    integration_id: &str,
    wa_message_id: &str,
) -> Result<Option<MessageLink>> {
    sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM message_links \
         WHERE integration_id = $1 AND wa_message_id = $2"
    ))
    .bind(integration_id)
    .bind(wa_message_id)
    .fetch_optional_on(store)
    .await?
    .as_ref()
    .map(message)
    .transpose()
}

/// The customer's messages of a conversation after its newest `outbound`
/// link. The message store (same instance, same id) tells who wrote each and
/// whether it was the account itself; one it no longer holds counts as the
/// customer's. The newest outbound link is found by walking the
/// conversation's links back from the newest, not as `MAX(id)`: with the
/// direction filter PostgreSQL computes that by reading every link of the
/// conversation, so each reply cost more the longer the conversation.
pub(crate) async fn unread_inbound(
    store: &SqlStore,
    integration_id: &str,
    instance_id: &str,
    conversation_id: i64,
    limit: u32,
) -> Result<Vec<UnreadMessage>> {
    let rows = sqlx::query(
        "SELECT l.wa_message_id, m.sender FROM message_links l \
         LEFT JOIN messages m ON m.instance_id = $2 AND m.id = l.wa_message_id \
         WHERE l.integration_id = $1 AND l.chatwoot_conversation_id = $3 \
           AND l.direction = 'inbound' AND (m.from_me IS NULL OR m.from_me = 0) \
           AND l.id > COALESCE((SELECT o.id FROM message_links o \
               WHERE o.integration_id = $1 AND o.chatwoot_conversation_id = $3 \
                 AND o.direction = 'outbound' ORDER BY o.id DESC LIMIT 1), 0) \
         ORDER BY l.id DESC LIMIT $4",
    )
    .bind(integration_id)
    .bind(instance_id)
    .bind(conversation_id)
    .bind(i64::from(limit))
    .fetch_all_on(store)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(UnreadMessage {
                wa_message_id: get(row, "wa_message_id")?,
                sender: get(row, "sender")?,
            })
        })
        .collect()
}

/// When the chat's contact last got its picture, and which (`""`: none).
pub(crate) async fn avatar_refresh(
    store: &SqlStore,
    integration_id: &str,
    chat_jid: &str,
) -> Result<Option<AvatarRefresh>> {
    sqlx::query(
        "SELECT picture_url, refreshed_at FROM chatwoot_avatars \
         WHERE integration_id = $1 AND chat_jid = $2",
    )
    .bind(integration_id)
    .bind(chat_jid)
    .fetch_optional_on(store)
    .await?
    .map(|row| {
        Ok(AvatarRefresh {
            picture_url: get(&row, "picture_url")?,
            refreshed_at_ms: get(&row, "refreshed_at")?,
        })
    })
    .transpose()
}

pub(crate) async fn save_avatar_refresh(
    store: &SqlStore,
    integration_id: &str,
    chat_jid: &str,
    refresh: &AvatarRefresh,
) -> Result<()> {
    let query = sqlx::query(
        "INSERT INTO chatwoot_avatars (integration_id, chat_jid, picture_url, refreshed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (integration_id, chat_jid) \
         DO UPDATE SET picture_url = excluded.picture_url, refreshed_at = excluded.refreshed_at",
    )
    .bind(integration_id)
    .bind(chat_jid)
    .bind(&refresh.picture_url)
    .bind(refresh.refreshed_at_ms);
    store.write_turn().await.execute(query).await?;
    Ok(())
}

/// In the order they were stored.
pub(crate) async fn find_messages_by_chatwoot(
    store: &SqlStore,
    integration_id: &str,
    chatwoot_message_id: i64,
) -> Result<Vec<MessageLink>> {
    sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM message_links \
         WHERE integration_id = $1 AND chatwoot_message_id = $2 ORDER BY id"
    ))
    .bind(integration_id)
    .bind(chatwoot_message_id)
    .fetch_all_on(store)
    .await?
    .iter()
    .map(message)
    .collect()
}

/// [`find_messages_by_chatwoot`] and the chat of [`find_chat_by_conversation`]
/// in one statement: the message's links left-joined to a one-row probe
/// (so a row comes back when there is none), the chat as a scalar subquery.
pub(crate) async fn find_agent_message_links(
    store: &SqlStore,
    integration_id: &str,
    chatwoot_message_id: i64,
    conversation_id: i64,
) -> Result<AgentMessageLinks> {
    let sql = format!(
        "SELECT (SELECT chat_jid FROM chat_links \
           WHERE integration_id = $1 AND conversation_id = $3 {CONVERSATION_CHAT}) \
           AS conversation_chat, {MESSAGE_COLUMNS} \
         FROM (SELECT 1 AS one) probe LEFT JOIN message_links \
           ON message_links.integration_id = $1 AND chatwoot_message_id = $2 \
         ORDER BY message_links.id"
    );
    let rows = sqlx::query(&sql)
        .bind(integration_id)
        .bind(chatwoot_message_id)
        .bind(conversation_id)
        .fetch_all_on(store)
        .await?;
    let mut found = AgentMessageLinks::default();
    for row in &rows {
        found.conversation_chat = get(row, "conversation_chat")?;
        if get::<Option<String>>(row, "wa_message_id")?.is_some() {
            found.sent.push(message(row)?);
        }
    }
    Ok(found)
}

pub(crate) async fn find_chat(
    store: &SqlStore,
    integration_id: &str,
    chat_jid: &str,
) -> Result<Option<ChatLink>> {
    sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chat_links WHERE integration_id = $1 AND chat_jid = $2"
    ))
    .bind(integration_id)
    .bind(chat_jid)
    .fetch_optional_on(store)
    .await?
    .as_ref()
    .map(chat)
    .transpose()
}

/// One query for every form of a person's JID.
pub(crate) async fn find_chats(
    store: &SqlStore,
    integration_id: &str,
    chat_jids: &[String],
) -> Result<Vec<ChatLink>> {
    if chat_jids.is_empty() {
        return Ok(Vec::new());
    }
    let params = Params::numbered(2).list(chat_jids.len());
    let sql = format!(
        "SELECT {CHAT_COLUMNS} FROM chat_links WHERE integration_id = $1 AND chat_jid IN ({params})"
    );
    let mut query = sqlx::query(&sql).bind(integration_id);
    for jid in chat_jids {
        query = query.bind(jid);
    }
    query.fetch_all_on(store).await?.iter().map(chat).collect()
}

/// [`find_chats`] and whether the message was posted, in one round trip:
/// every inbound message asks both before it is posted. The probe row
/// makes one row come back even when no chat link matches; it has no
/// column of its own but `one`, so the chat columns need no qualifier.
pub(crate) async fn find_chats_unless_posted(
    store: &SqlStore,
    integration_id: &str,
    wa_message_id: &str,
    chat_jids: &[String],
) -> Result<Option<Vec<ChatLink>>> {
    let jids = match Params::numbered(3).list(chat_jids.len()) {
        // No JID: a condition that matches nothing.
        list if list.is_empty() => "NULL".to_owned(),
        list => list,
    };
    let sql = format!(
        "SELECT (SELECT m.chatwoot_message_id FROM message_links m \
         WHERE m.integration_id = $1 AND m.wa_message_id = $2) AS posted_message_id, \
         {CHAT_COLUMNS} FROM (SELECT 1 AS one) probe \
         LEFT JOIN chat_links c ON c.integration_id = $1 AND c.chat_jid IN ({jids})"
    );
    let mut query = sqlx::query(&sql).bind(integration_id).bind(wa_message_id);
    for jid in chat_jids {
        query = query.bind(jid);
    }
    let rows = query.fetch_all_on(store).await?;
    let posted = match rows.first() {
        Some(row) => get::<Option<i64>>(row, "posted_message_id")?.is_some(),
        None => false,
    };
    if posted {
        return Ok(None);
    }
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        if get::<Option<String>>(row, "chat_jid")?.is_some() {
            found.push(chat(row)?);
        }
    }
    Ok(Some(found))
}

/// The link most recently saved (`save_chat`) for the conversation.
pub(crate) async fn find_chat_by_conversation(
    store: &SqlStore,
    integration_id: &str,
    conversation_id: i64,
) -> Result<Option<ChatLink>> {
    sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chat_links WHERE integration_id = $1 AND conversation_id = $2 \
         {CONVERSATION_CHAT}"
    ))
    .bind(integration_id)
    .bind(conversation_id)
    .fetch_optional_on(store)
    .await?
    .as_ref()
    .map(chat)
    .transpose()
}

pub(crate) async fn save_chat(store: &SqlStore, link: &ChatLink) -> Result<()> {
    let sql = format!(
        "INSERT INTO chat_links ({CHAT_COLUMNS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (integration_id, chat_jid) DO UPDATE SET \
         contact_id = excluded.contact_id, source_id = excluded.source_id, \
         conversation_id = excluded.conversation_id, \
         conversation_status = excluded.conversation_status, \
         reconciled_message_id = excluded.reconciled_message_id, \
         updated_at = excluded.updated_at"
    );
    let query = sqlx::query(&sql)
        .bind(&link.integration_id)
        .bind(&link.chat_jid)
        .bind(link.contact_id)
        .bind(&link.source_id)
        .bind(link.conversation_id)
        .bind(&link.conversation_status)
        .bind(link.reconciled_message_id)
        .bind(now_ms());
    store.write_turn().await.execute(query).await?;
    Ok(())
}

/// Every link of the conversation takes the status. `updated_at` is left
/// alone: it records when a chat was last pointed at its conversation.
pub(crate) async fn set_conversation_status(
    store: &SqlStore,
    integration_id: &str,
    conversation_id: i64,
    status: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE chat_links SET conversation_status = $1 \
         WHERE integration_id = $2 AND conversation_id = $3",
    )
    .bind(status)
    .bind(integration_id)
    .bind(conversation_id)
    .execute_on(store)
    .await?;
    Ok(())
}

pub(crate) async fn forget_conversation(
    store: &SqlStore,
    integration_id: &str,
    conversation_id: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM chat_links WHERE integration_id = $1 AND conversation_id = $2")
        .bind(integration_id)
        .bind(conversation_id)
        .execute_on(store)
        .await?;
    Ok(())
}

/// The watermark only moves forward: an older message id changes nothing.
pub(crate) async fn set_reconciled(
    store: &SqlStore,
    integration_id: &str,
    conversation_id: i64,
    message_id: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE chat_links SET reconciled_message_id = $1 \
         WHERE integration_id = $2 AND conversation_id = $3 AND reconciled_message_id < $1",
    )
    .bind(message_id)
    .bind(integration_id)
    .bind(conversation_id)
    .execute_on(store)
    .await?;
    Ok(())
}

fn message(row: &AnyRow) -> Result<MessageLink> {
    Ok(MessageLink {
        integration_id: get(row, "integration_id")?,
        wa_message_id: get(row, "wa_message_id")?,
        chatwoot_message_id: get(row, "chatwoot_message_id")?,
        chatwoot_conversation_id: get(row, "chatwoot_conversation_id")?,
        direction: get(row, "direction")?,
    })
}

fn chat(row: &AnyRow) -> Result<ChatLink> {
    Ok(ChatLink {
        integration_id: get(row, "integration_id")?,
        chat_jid: get(row, "chat_jid")?,
        contact_id: get(row, "contact_id")?,
        source_id: get(row, "source_id")?,
        conversation_id: get(row, "conversation_id")?,
        conversation_status: get(row, "conversation_status")?,
        reconciled_message_id: get(row, "reconciled_message_id")?,
    })
}
