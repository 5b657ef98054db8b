//! The bridge's memory of what maps to what: `message_links` (a WhatsApp
//! message and its Chatwoot message, for replies, edits and deletions) and
//! `chat_links` (the Chatwoot contact and conversation of a WhatsApp chat).
//! Both are keyed by the integration, so a new activation starts afresh.

use sqlx::any::AnyRow;
use zapgate_core::{
    Result,
    jobs::{ChatLink, MessageLink},
    time::now_ms,
};

use crate::{SqlStore, conn::StoreQuery, rows::get};

pub(crate) const MESSAGE_COLUMNS: &str =
    "integration_id, wa_message_id, chatwoot_message_id, chatwoot_conversation_id, direction";

const CHAT_COLUMNS: &str = "integration_id, chat_jid, contact_id, source_id, conversation_id, \
    conversation_status, reconciled_message_id";

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
    let params = (0..chat_jids.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {CHAT_COLUMNS} FROM chat_links WHERE integration_id = $1 AND chat_jid IN ({params})"
    );
    let mut query = sqlx::query(&sql).bind(integration_id);
    for jid in chat_jids {
        query = query.bind(jid);
    }
    query.fetch_all_on(store).await?.iter().map(chat).collect()
}

/// The link most recently saved (`save_chat`) for the conversation.
pub(crate) async fn find_chat_by_conversation(
    store: &SqlStore,
    integration_id: &str,
    conversation_id: i64,
) -> Result<Option<ChatLink>> {
    sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chat_links WHERE integration_id = $1 AND conversation_id = $2 \
         ORDER BY updated_at DESC, chat_jid LIMIT 1"
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
