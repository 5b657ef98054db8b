//! Domain operations shared by the HTTP routes and the Rust control API
//! (message creation with Chatwoot's validations and side effects, status
//! changes, deletion, delivery-status updates). Each runs under the state
//! lock and enqueues its webhooks before releasing it, so webhook order is
//! creation order.

use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::errors::ApiError;
use crate::state::{Attachment, Blob, Message, Sender, State, now, random_token};
use crate::views;
use crate::webhooks::emit;

/// Chatwoot `Message::NUMBER_OF_PERMITTED_ATTACHMENTS`.
pub(crate) const MAX_ATTACHMENTS: usize = 15;
/// Chatwoot content length validation.
pub(crate) const MAX_CONTENT: usize = 150_000;

/// An uploaded file: (filename, mime type, bytes).
pub(crate) type Upload = (String, String, Bytes);

pub(crate) struct NewMessage {
    pub content: Option<String>,
    pub message_type: u8,
    pub private: bool,
    pub source_id: Option<String>,
    pub content_type: String,
    pub content_attributes: Map<String, Value>,
    /// The token owner (outgoing sender; also who "reopens").
    pub user_id: Option<i64>,
    pub files: Vec<Upload>,
}

fn file_type(mime: &str) -> &'static str {
    match mime.split('/').next().unwrap_or_default() {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    }
}

/// `Messages::MessageBuilder#perform` + `Message` validations and callbacks.
pub(crate) fn create_message(
    shared: &Arc<Shared>,
    st: &mut State,
    conv_pk: i64,
    nm: NewMessage,
) -> Result<i64, ApiError> {
    let conv = st
        .conversations
        .get(&conv_pk)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let inbox = st
        .inboxes
        .get(&conv.inbox_id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    if nm.message_type == 0 && !inbox.is_api() {
        return Err(ApiError::unprocessable(
            "Incoming messages are only allowed in Api inboxes",
        ));
    }
    let mut errors: Vec<String> = Vec::new();
    if nm
        .content
        .as_deref()
        .is_some_and(|c| c.chars().count() > MAX_CONTENT)
    {
        errors.push(format!(
            "Content is too long (maximum is {MAX_CONTENT} characters)"
        ));
    }
    if nm.files.len() > MAX_ATTACHMENTS {
        errors.push("Attachments exceeded maximum allowed".into());
    }
    let t = now();
    let limit = shared.config().message_rate_limit;
    let recent = st
        .conversation_messages(conv_pk)
        .filter(|m| t - m.created_at < 60.0)
        .count();
    if recent >= limit {
        errors.push("Too many messages".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "Validation failed: {}",
            errors.join(", ")
        )));
    }

    // InReplyTo resolution: either key fills the other when the target exists.
    let mut attrs = nm.content_attributes;
    if let Some(target) = attrs.get("in_reply_to").and_then(as_i64) {
        if let Some(m) = st.conversation_messages(conv_pk).find(|m| m.id == target) {
            let sid = m.source_id.clone();
            attrs.insert("in_reply_to".into(), json!(target));
            attrs.insert("in_reply_to_external_id".into(), json!(sid));
        }
    } else {
        let ext = attrs
            .get("in_reply_to_external_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let target = ext.and_then(|ext| {
            st.conversation_messages(conv_pk)
                .find(|m| m.source_id.as_deref() == Some(ext.as_str()))
                .map(|m| m.id)
        });
        if let Some(id) = target {
            attrs.insert("in_reply_to".into(), json!(id));
        }
    }

    let id = st.next_id("messages");
    let mut attachments = Vec::new();
    for (filename, mime, bytes) in nm.files {
        let token = random_token(22);
        attachments.push(Attachment {
            id: st.next_id("attachments"),
            file_type: file_type(&mime).into(),
            token: token.clone(),
            filename: if filename.is_empty() {
                "file".into()
            } else {
                filename
            },
            file_size: bytes.len(),
        });
        st.blobs.insert(
            token,
            Blob {
                content_type: mime,
                bytes,
            },
        );
    }
    let sender = match nm.message_type {
        0 => Sender::Contact(conv.contact_id),
        2 => Sender::None,
        _ => nm.user_id.map(Sender::User).unwrap_or(Sender::None),
    };
    st.messages.insert(
        id,
        Message {
            id,
            account_id: conv.account_id,
            conversation_pk: conv_pk,
            inbox_id: conv.inbox_id,
            content: nm.content,
            message_type: nm.message_type,
            content_type: nm.content_type,
            private: nm.private,
            status: "sent".into(),
            source_id: nm.source_id,
            content_attributes: Value::Object(attrs),
            sender,
            attachments,
            created_at: t,
            updated_at: t,
        },
    );
    if let Some(c) = st.conversations.get_mut(&conv_pk) {
        c.last_activity_at = t;
        c.updated_at = t;
    }
    if nm.message_type == 0 {
        if let Some(c) = st.contacts.get_mut(&conv.contact_id) {
            c.last_activity_at = Some(t);
        }
        // Message#reopen_conversation (no agent bot in the double).
        if conv.status == "resolved" || conv.status == "snoozed" {
            change_status(shared, st, conv_pk, "open", None, None);
        }
    }
    if nm.message_type != 2 {
        let body = {
            let m = &st.messages[&id];
            views::message_webhook(st, &shared.base_url, m, "message_created")
        };
        emit(shared, st, conv.inbox_id, body, Some(id));
    }
    Ok(id)
}

pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Sets the status; when it changes, records an activity message (if a user
/// did it) and fires `conversation_status_changed`. Returns whether it changed.
pub(crate) fn change_status(
    shared: &Arc<Shared>,
    st: &mut State,
    conv_pk: i64,
    status: &str,
    snoozed_until: Option<i64>,
    by_user: Option<i64>,
) -> bool {
    let t = now();
    let Some(c) = st.conversations.get_mut(&conv_pk) else {
        return false;
    };
    let previous = c.status.clone();
    c.snoozed_until = if status == "snoozed" {
        snoozed_until
    } else {
        None
    };
    if previous == status {
        return false;
    }
    c.status = status.to_string();
    c.updated_at = t;
    let (inbox_id, account_id) = (c.inbox_id, c.account_id);
    if let Some(name) = by_user
        .and_then(|u| st.users.get(&u))
        .map(|u| u.name.clone())
    {
        let text = match status {
            "resolved" => format!("Conversation was marked resolved by {name}"),
            "open" => format!("Conversation was reopened by {name}"),
            "pending" => format!("Conversation was marked as pending by {name}"),
            _ => format!("Conversation was snoozed by {name}"),
        };
        let id = st.next_id("messages");
        st.messages.insert(
            id,
            Message {
                id,
                account_id,
                conversation_pk: conv_pk,
                inbox_id,
                content: Some(text),
                message_type: 2,
                content_type: "text".into(),
                private: false,
                status: "sent".into(),
                source_id: None,
                content_attributes: json!({}),
                sender: Sender::None,
                attachments: vec![],
                created_at: t,
                updated_at: t,
            },
        );
    }
    let mut body = views::conversation_push(st, &shared.base_url, &st.conversations[&conv_pk]);
    body["event"] = json!("conversation_status_changed");
    body["changed_attributes"] =
        json!([{"status": {"previous_value": previous, "current_value": status}}]);
    emit(shared, st, inbox_id, body, None);
    true
}

fn emit_updated(shared: &Arc<Shared>, st: &State, mid: i64) {
    let m = &st.messages[&mid];
    let body = views::message_webhook(st, &shared.base_url, m, "message_updated");
    emit(shared, st, m.inbox_id, body, Some(mid));
}

/// `DELETE .../messages/{id}`: content replaced, attributes reset to
/// `{deleted: true}`, attachments purged, `message_updated` fired.
pub(crate) fn delete_message(shared: &Arc<Shared>, st: &mut State, mid: i64) {
    let Some(m) = st.messages.get_mut(&mid) else {
        return;
    };
    m.content = Some("This message was deleted".into());
    m.content_type = "text".into();
    m.content_attributes = json!({"deleted": true});
    m.updated_at = now();
    let tokens: Vec<String> = m.attachments.drain(..).map(|a| a.token).collect();
    for t in tokens {
        st.blobs.remove(&t);
    }
    emit_updated(shared, st, mid);
}

/// `Messages::StatusUpdateService`: read→delivered is ignored; `failed`
/// stores `external_error`, any other status clears it.
pub(crate) fn update_status(
    shared: &Arc<Shared>,
    st: &mut State,
    mid: i64,
    status: &str,
    external_error: Option<String>,
) {
    let Some(m) = st.messages.get_mut(&mid) else {
        return;
    };
    if m.status == "read" && status == "delivered" {
        return;
    }
    let before = (m.status.clone(), m.content_attributes.clone());
    m.status = status.to_string();
    if let Some(attrs) = m.content_attributes.as_object_mut() {
        if status == "failed" {
            if let Some(e) = external_error {
                attrs.insert("external_error".into(), json!(e));
            }
        } else {
            attrs.remove("external_error");
        }
    }
    if (m.status.clone(), m.content_attributes.clone()) != before {
        m.updated_at = now();
        emit_updated(shared, st, mid);
    }
}

/// `MessagesController#retry`: the status back to `sent` (clearing
/// `external_error`), then the content attributes emptied; each change
/// fires `message_updated`. Nothing is sent for an API inbox: the webhook
/// receiver is the one to send it again.
pub(crate) fn retry_message(shared: &Arc<Shared>, st: &mut State, mid: i64) {
    update_status(shared, st, mid, "sent", None);
    let Some(m) = st.messages.get_mut(&mid) else {
        return;
    };
    if m.content_attributes != json!({}) {
        m.content_attributes = json!({});
        m.updated_at = now();
        emit_updated(shared, st, mid);
    }
}

/// Webhook delivery failure handler (`Webhooks::Trigger#update_message_status`).
/// Does not fire another webhook (keeps a dead receiver from looping).
pub(crate) fn mark_failed(shared: &Arc<Shared>, mid: i64, error: &str) {
    let mut st = shared.state.lock().expect("state lock");
    if let Some(m) = st.messages.get_mut(&mid) {
        m.status = "failed".into();
        if let Some(attrs) = m.content_attributes.as_object_mut() {
            attrs.insert("external_error".into(), json!(error));
        }
        m.updated_at = now();
    }
}
