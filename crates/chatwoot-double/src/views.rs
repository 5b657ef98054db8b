//! JSON renderings of the stored records, one function per Chatwoot view
//! (jbuilder partials, `push_event_data`, `webhook_data`). The shapes follow
//! /work/shared/chatwoot/examples: integer `message_type` in API responses and
//! `conversation.messages[]`, string `message_type` at the webhook root,
//! unix-second integers for most `created_at`, ISO strings in webhooks.

use serde_json::{Value, json};

use crate::state::{
    Attachment, Contact, ContactInbox, Conversation, Inbox, Message, Sender, State,
};

pub(crate) fn iso(ts: f64) -> String {
    let secs = ts.floor() as i64;
    let nanos = ((ts - ts.floor()) * 1e9) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn secs(ts: f64) -> i64 {
    ts.floor() as i64
}

pub(crate) fn message_type_name(t: u8) -> &'static str {
    match t {
        0 => "incoming",
        1 => "outgoing",
        2 => "activity",
        _ => "template",
    }
}

/// Full inbox object (`inboxes/_inbox.json.jbuilder`). `hmac_token` and
/// `secret` are admin-only; `secret` only exists on v4.13+ (signing on).
pub(crate) fn inbox(i: &Inbox, admin: bool, signing: bool) -> Value {
    let attr = |k: &str, d: Value| i.attrs.get(k).cloned().unwrap_or(d);
    let mut v = json!({
        "id": i.id,
        "avatar_url": "",
        "channel_id": i.channel_id,
        "name": i.name,
        "channel_type": i.channel_type,
        "greeting_enabled": attr("greeting_enabled", json!(false)),
        "greeting_message": attr("greeting_message", Value::Null),
        "working_hours_enabled": attr("working_hours_enabled", json!(false)),
        "enable_email_collect": attr("enable_email_collect", json!(true)),
        "csat_survey_enabled": attr("csat_survey_enabled", json!(false)),
        "csat_config": attr("csat_config", json!({})),
        "enable_auto_assignment": attr("enable_auto_assignment", json!(true)),
        "auto_assignment_config": {},
        "out_of_office_message": attr("out_of_office_message", Value::Null),
        "working_hours": [],
        "timezone": attr("timezone", json!("UTC")),
        "callback_webhook_url": null,
        "allow_messages_after_resolved": attr("allow_messages_after_resolved", json!(true)),
        "lock_to_single_conversation": attr("lock_to_single_conversation", json!(false)),
        "sender_name_type": attr("sender_name_type", json!("friendly")),
        "business_name": attr("business_name", Value::Null),
    });
    if i.is_api() {
        let o = v.as_object_mut().expect("object");
        o.insert("webhook_url".into(), json!(i.webhook_url));
        o.insert("inbox_identifier".into(), json!(i.inbox_identifier));
        o.insert(
            "additional_attributes".into(),
            i.additional_attributes.clone(),
        );
        o.insert("provider".into(), Value::Null);
        o.insert("hmac_mandatory".into(), json!(i.hmac_mandatory));
        if admin {
            o.insert("hmac_token".into(), json!(i.hmac_token));
            if signing {
                o.insert("secret".into(), json!(i.secret));
            }
        }
    }
    v
}

/// Inbox as embedded in `contact.contact_inboxes[]`.
pub(crate) fn inbox_slim(i: &Inbox) -> Value {
    json!({
        "id": i.id, "avatar_url": "", "channel_id": i.channel_id, "name": i.name,
        "channel_type": i.channel_type, "provider": null,
    })
}

/// Inbox model `as_json` as embedded in the create response's `contact_inbox`.
pub(crate) fn inbox_model(i: &Inbox) -> Value {
    let attr = |k: &str, d: Value| i.attrs.get(k).cloned().unwrap_or(d);
    json!({
        "id": i.id,
        "channel_id": i.channel_id,
        "account_id": i.account_id,
        "name": i.name,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.created_at),
        "channel_type": i.channel_type,
        "enable_auto_assignment": attr("enable_auto_assignment", json!(true)),
        "greeting_enabled": attr("greeting_enabled", json!(false)),
        "greeting_message": attr("greeting_message", Value::Null),
        "email_address": null,
        "working_hours_enabled": attr("working_hours_enabled", json!(false)),
        "out_of_office_message": attr("out_of_office_message", Value::Null),
        "timezone": attr("timezone", json!("UTC")),
        "enable_email_collect": attr("enable_email_collect", json!(true)),
        "csat_survey_enabled": attr("csat_survey_enabled", json!(false)),
        "allow_messages_after_resolved": attr("allow_messages_after_resolved", json!(true)),
        "auto_assignment_config": {},
        "lock_to_single_conversation": attr("lock_to_single_conversation", json!(false)),
        "portal_id": null,
        "sender_name_type": attr("sender_name_type", json!("friendly")),
        "business_name": attr("business_name", Value::Null),
    })
}

/// Contact (`contacts/_contact.json.jbuilder`) with its `contact_inboxes`.
pub(crate) fn contact(st: &State, c: &Contact) -> Value {
    let cis: Vec<Value> = st
        .contact_inboxes
        .values()
        .filter(|ci| ci.contact_id == c.id)
        .filter_map(|ci| {
            st.inboxes
                .get(&ci.inbox_id)
                .map(|i| json!({"source_id": ci.source_id, "inbox": inbox_slim(i)}))
        })
        .collect();
    json!({
        "additional_attributes": c.additional_attributes,
        "availability_status": "offline",
        "email": c.email,
        "id": c.id,
        "name": c.name,
        "phone_number": c.phone_number,
        "blocked": c.blocked,
        "identifier": c.identifier,
        "thumbnail": c.avatar_url.as_deref().unwrap_or_default(),
        "custom_attributes": c.custom_attributes,
        "last_activity_at": c.last_activity_at.map(secs),
        "created_at": secs(c.created_at),
        "contact_inboxes": cis,
    })
}

/// Contact as a sender / `meta.sender` (`push_event_data`): has `type: "contact"`.
pub(crate) fn contact_push(c: &Contact) -> Value {
    json!({
        "additional_attributes": c.additional_attributes,
        "custom_attributes": c.custom_attributes,
        "email": c.email,
        "id": c.id,
        "identifier": c.identifier,
        "name": c.name,
        "phone_number": c.phone_number,
        "thumbnail": c.avatar_url.as_deref().unwrap_or_default(),
        "blocked": c.blocked,
        "type": "contact",
    })
}

pub(crate) fn user_push(st: &State, id: i64) -> Value {
    let name = st
        .users
        .get(&id)
        .map(|u| u.name.clone())
        .unwrap_or_default();
    json!({
        "id": id, "name": name, "available_name": name, "avatar_url": "",
        "type": "user", "availability_status": "online", "thumbnail": "",
    })
}

fn sender_push(st: &State, s: Sender) -> Value {
    match s {
        Sender::Contact(id) => st
            .contacts
            .get(&id)
            .map(contact_push)
            .unwrap_or(Value::Null),
        Sender::User(id) => user_push(st, id),
        Sender::None => Value::Null,
    }
}

pub(crate) fn attachment(base: &str, m: &Message, a: &Attachment) -> Value {
    let data_url = format!(
        "{base}/rails/active_storage/blobs/redirect/{}/{}",
        a.token, a.filename
    );
    let thumb = if a.file_type == "image" {
        data_url.clone()
    } else {
        String::new()
    };
    json!({
        "id": a.id, "message_id": m.id, "file_type": a.file_type, "account_id": m.account_id,
        "extension": null, "data_url": data_url, "thumb_url": thumb, "file_size": a.file_size,
        "width": null, "height": null,
    })
}

fn display_id(st: &State, m: &Message) -> i64 {
    st.conversations
        .get(&m.conversation_pk)
        .map(|c| c.display_id)
        .unwrap_or_default()
}

/// Message as returned by the account API (`messages/_message.json.jbuilder`).
pub(crate) fn message(st: &State, base: &str, m: &Message) -> Value {
    let mut v = json!({
        "id": m.id,
        "content": m.content,
        "inbox_id": m.inbox_id,
        "conversation_id": display_id(st, m),
        "message_type": m.message_type,
        "content_type": m.content_type,
        "status": m.status,
        "content_attributes": m.content_attributes,
        "created_at": secs(m.created_at),
        "private": m.private,
        "source_id": m.source_id,
        "sender": sender_push(st, m.sender),
    });
    if !m.attachments.is_empty() {
        v["attachments"] = m
            .attachments
            .iter()
            .map(|a| attachment(base, m, a))
            .collect();
    }
    v
}

/// Message `push_event_data` as embedded in `conversation.messages[]`.
pub(crate) fn message_push(st: &State, base: &str, m: &Message) -> Value {
    let conv = st.conversations.get(&m.conversation_pk);
    let ci_source = conv
        .and_then(|c| st.contact_inboxes.get(&c.contact_inbox_id))
        .map(|ci| ci.source_id.clone());
    let (sender_type, sender_id) = match m.sender {
        Sender::Contact(id) => (json!("Contact"), json!(id)),
        Sender::User(id) => (json!("User"), json!(id)),
        Sender::None => (Value::Null, Value::Null),
    };
    let mut v = json!({
        "id": m.id,
        "content": m.content,
        "account_id": m.account_id,
        "inbox_id": m.inbox_id,
        "conversation_id": display_id(st, m),
        "message_type": m.message_type,
        "created_at": secs(m.created_at),
        "updated_at": iso(m.updated_at),
        "private": m.private,
        "status": m.status,
        "source_id": m.source_id,
        "content_type": m.content_type,
        "content_attributes": m.content_attributes,
        "sender_type": sender_type,
        "sender_id": sender_id,
        "external_source_ids": {},
        "additional_attributes": {},
        "processed_message_content": m.content,
        "sentiment": {},
        "conversation": {
            "assignee_id": null,
            "unread_count": 0,
            "last_activity_at": conv.map(|c| secs(c.last_activity_at)),
            "contact_inbox": { "source_id": ci_source },
        },
    });
    if !m.attachments.is_empty() {
        v["attachments"] = m
            .attachments
            .iter()
            .map(|a| attachment(base, m, a))
            .collect();
    }
    v["sender"] = sender_push(st, m.sender);
    v
}

/// Last "chat" message (not activity, not private) — what Chatwoot puts in
/// `conversation.messages`.
fn last_chat_message<'a>(st: &'a State, c: &Conversation) -> Option<&'a Message> {
    st.conversation_messages(c.pk)
        .filter(|m| m.message_type != 2 && !m.private)
        .last()
}

pub(crate) fn contact_inbox(ci: &ContactInbox) -> Value {
    json!({
        "id": ci.id, "contact_id": ci.contact_id, "inbox_id": ci.inbox_id,
        "source_id": ci.source_id, "created_at": iso(ci.created_at),
        "updated_at": iso(ci.created_at), "hmac_verified": false,
        "pubsub_token": ci.pubsub_token,
    })
}

fn can_reply(st: &State, c: &Conversation) -> bool {
    let Some(window) = st
        .inboxes
        .get(&c.inbox_id)
        .and_then(|i| i.additional_attributes.get("agent_reply_time_window"))
        .and_then(Value::as_f64)
        .filter(|w| *w > 0.0)
    else {
        return true;
    };
    st.conversation_messages(c.pk)
        .filter(|m| m.message_type == 0)
        .last()
        .is_some_and(|m| crate::state::now() - m.created_at <= window * 3600.0)
}

/// Conversation as returned by the account API (`conversations/_conversation`).
/// `with_messages = false` renders `messages: []` like the create response.
pub(crate) fn conversation(st: &State, base: &str, c: &Conversation, with_messages: bool) -> Value {
    let sender = st
        .contacts
        .get(&c.contact_id)
        .map(contact_push)
        .unwrap_or(Value::Null);
    let channel = st
        .inboxes
        .get(&c.inbox_id)
        .map(|i| i.channel_type.clone())
        .unwrap_or_default();
    let last = last_chat_message(st, c).map(|m| message_push(st, base, m));
    let messages: Vec<Value> = if with_messages {
        last.iter().cloned().collect()
    } else {
        vec![]
    };
    json!({
        "meta": { "sender": sender, "channel": channel, "assignee": null, "hmac_verified": false },
        "id": c.display_id,
        "messages": messages,
        "account_id": c.account_id,
        "uuid": c.uuid,
        "additional_attributes": c.additional_attributes,
        "agent_last_seen_at": 0,
        "assignee_last_seen_at": 0,
        "can_reply": can_reply(st, c),
        "contact_last_seen_at": 0,
        "custom_attributes": c.custom_attributes,
        "inbox_id": c.inbox_id,
        "labels": [],
        "muted": false,
        "snoozed_until": c.snoozed_until,
        "status": c.status,
        "created_at": secs(c.created_at),
        "updated_at": c.updated_at,
        "timestamp": secs(c.last_activity_at),
        "first_reply_created_at": 0,
        "unread_count": 0,
        "last_non_activity_message": last,
        "last_activity_at": secs(c.last_activity_at),
        "priority": null,
        "waiting_since": 0,
        "sla_policy_id": null,
        "contact_inbox": st.contact_inboxes.get(&c.contact_inbox_id).map(contact_inbox),
    })
}

/// Conversation `push_event_data` (webhook `conversation` / status events).
pub(crate) fn conversation_push(st: &State, base: &str, c: &Conversation) -> Value {
    let sender = st
        .contacts
        .get(&c.contact_id)
        .map(contact_push)
        .unwrap_or(Value::Null);
    let channel = st
        .inboxes
        .get(&c.inbox_id)
        .map(|i| i.channel_type.clone())
        .unwrap_or_default();
    let messages: Vec<Value> = last_chat_message(st, c)
        .map(|m| message_push(st, base, m))
        .into_iter()
        .collect();
    json!({
        "additional_attributes": c.additional_attributes,
        "can_reply": can_reply(st, c),
        "channel": channel,
        "contact_inbox": st.contact_inboxes.get(&c.contact_inbox_id).map(contact_inbox),
        "id": c.display_id,
        "inbox_id": c.inbox_id,
        "messages": messages,
        "labels": [],
        "meta": { "sender": sender, "assignee": null, "team": null, "hmac_verified": false },
        "status": c.status,
        "custom_attributes": c.custom_attributes,
        "snoozed_until": c.snoozed_until,
        "unread_count": 0,
        "first_reply_created_at": 0,
        "priority": null,
        "waiting_since": 0,
        "agent_last_seen_at": 0,
        "contact_last_seen_at": 0,
        "last_activity_at": secs(c.last_activity_at),
        "timestamp": secs(c.last_activity_at),
        "created_at": secs(c.created_at),
        "updated_at": c.updated_at,
    })
}

/// `MessageContentPresenter`: outside the web widget, a CSAT survey's
/// content is replaced by the survey request with its link (FRONTEND_URL is
/// the double's own URL).
fn webhook_content(st: &State, base: &str, m: &Message) -> Option<String> {
    let widget = st
        .inboxes
        .get(&m.inbox_id)
        .is_some_and(|i| i.channel_type == "Channel::WebWidget");
    match st.conversations.get(&m.conversation_pk) {
        Some(c) if m.content_type == "input_csat" && !widget => Some(format!(
            "Please rate this conversation, {base}/survey/responses/{}",
            c.uuid
        )),
        _ => m.content.clone(),
    }
}

/// Message `webhook_data` (root of `message_created` / `message_updated`).
pub(crate) fn message_webhook(st: &State, base: &str, m: &Message, event: &str) -> Value {
    let account = st
        .accounts
        .get(&m.account_id)
        .map(|a| json!({"id": a.id, "name": a.name}))
        .unwrap_or(Value::Null);
    let inbox = st
        .inboxes
        .get(&m.inbox_id)
        .map(|i| json!({"id": i.id, "name": i.name}))
        .unwrap_or(Value::Null);
    let sender = match m.sender {
        Sender::Contact(id) => st
            .contacts
            .get(&id)
            .map(|c| {
                json!({
                    "account": account, "additional_attributes": c.additional_attributes,
                    "avatar": "", "custom_attributes": c.custom_attributes, "email": c.email,
                    "id": c.id, "identifier": c.identifier, "name": c.name,
                    "phone_number": c.phone_number, "thumbnail": c.avatar_url.as_deref().unwrap_or_default(), "blocked": c.blocked,
                })
            })
            .unwrap_or(Value::Null),
        Sender::User(id) => st
            .users
            .get(&id)
            .map(|u| json!({"id": u.id, "name": u.name, "email": u.email, "type": "user"}))
            .unwrap_or(Value::Null),
        Sender::None => Value::Null,
    };
    let conversation = st
        .conversations
        .get(&m.conversation_pk)
        .map(|c| conversation_push(st, base, c))
        .unwrap_or(Value::Null);
    let mut v = json!({
        "account": account,
        "additional_attributes": {},
        "content_attributes": m.content_attributes,
        "content_type": m.content_type,
        "content": webhook_content(st, base, m),
        "conversation": conversation,
        "created_at": iso(m.created_at),
        "id": m.id,
        "inbox": inbox,
        "message_type": message_type_name(m.message_type),
        "private": m.private,
        "sender": sender,
        "source_id": m.source_id,
        "event": event,
    });
    if !m.attachments.is_empty() {
        v["attachments"] = m
            .attachments
            .iter()
            .map(|a| attachment(base, m, a))
            .collect();
    }
    v
}
