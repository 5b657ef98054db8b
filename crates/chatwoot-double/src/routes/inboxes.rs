//! `/inboxes`: API-channel inbox provisioning as Chatwoot's
//! `InboxesController` does it (admin-only writes, account inbox limit → 402,
//! allowed channel types, `Channel::Api` editable attrs, synchronous delete).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{bool_param, json_body};
use crate::Shared;
use crate::auth::Ctx;
use crate::errors::{ApiError, ApiResult, ok};
use crate::state::{Inbox, now, random_token};
use crate::views;

/// `inbox_attributes` Chatwoot permits on create/update.
const INBOX_ATTRS: &[&str] = &[
    "greeting_enabled",
    "greeting_message",
    "enable_email_collect",
    "csat_survey_enabled",
    "enable_auto_assignment",
    "working_hours_enabled",
    "out_of_office_message",
    "timezone",
    "allow_messages_after_resolved",
    "lock_to_single_conversation",
    "portal_id",
    "sender_name_type",
    "business_name",
    "csat_config",
];

fn channel_class(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "api" => "Channel::Api",
        "web_widget" => "Channel::WebWidget",
        "email" => "Channel::Email",
        "line" => "Channel::Line",
        "telegram" => "Channel::Telegram",
        "whatsapp" => "Channel::Whatsapp",
        "sms" => "Channel::Sms",
        _ => return None,
    })
}

fn apply_attrs(inbox: &mut Inbox, body: &Map<String, Value>) {
    for k in INBOX_ATTRS {
        if let Some(v) = body.get(*k) {
            inbox.attrs.insert((*k).to_string(), v.clone());
        }
    }
}

fn apply_channel(inbox: &mut Inbox, ch: &Map<String, Value>) {
    if !inbox.is_api() {
        return;
    }
    if let Some(v) = ch.get("webhook_url") {
        inbox.webhook_url = v.as_str().unwrap_or_default().to_string();
    }
    if let Some(b) = bool_param(ch, "hmac_mandatory") {
        inbox.hmac_mandatory = b;
    }
    if let Some(v @ Value::Object(_)) = ch.get("additional_attributes") {
        inbox.additional_attributes = v.clone();
    }
}

pub(crate) async fn create(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let limit = st.accounts[&ctx.account_id].inbox_limit;
    let count = st
        .inboxes
        .values()
        .filter(|i| i.account_id == ctx.account_id)
        .count();
    if limit.is_some_and(|l| count >= l) {
        return Err(ApiError(
            StatusCode::PAYMENT_REQUIRED,
            json!({"error": "Account limit exceeded. Upgrade to a higher plan"}),
        ));
    }
    ctx.require_admin()?;
    // `permitted_params[:channel][:type]` on a missing channel is a NoMethodError → 500.
    let Some(Value::Object(channel)) = body.get("channel") else {
        return Err(ApiError::internal());
    };
    let class = channel
        .get("type")
        .and_then(Value::as_str)
        .and_then(channel_class);
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut errors = Vec::new();
    if class.is_none() {
        errors.push(("channel", "Channel must exist".to_string()));
    }
    if name.is_empty() {
        errors.push(("name", "Name can't be blank".to_string()));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(&errors));
    }
    let id = st.next_id("inboxes");
    let channel_id = st.next_id("channels");
    let mut inbox = Inbox {
        id,
        account_id: ctx.account_id,
        channel_id,
        name,
        channel_type: class.unwrap_or_default().to_string(),
        webhook_url: String::new(),
        inbox_identifier: random_token(24),
        hmac_token: random_token(24),
        hmac_mandatory: false,
        additional_attributes: json!({}),
        secret: random_token(24),
        attrs: Map::new(),
        created_at: now(),
    };
    apply_attrs(&mut inbox, &body);
    apply_channel(&mut inbox, channel);
    let out = views::inbox(&inbox, ctx.is_admin(), shared.config().signing);
    st.inboxes.insert(id, inbox);
    ok(out)
}

pub(crate) async fn list(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let st = shared.state.lock().expect("state lock");
    let signing = shared.config().signing;
    let payload: Vec<Value> = st
        .inboxes
        .values()
        .filter(|i| i.account_id == ctx.account_id)
        .map(|i| views::inbox(i, ctx.is_admin(), signing))
        .collect();
    ok(json!({ "payload": payload }))
}

pub(crate) async fn show(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = ctx.id("id")?;
    let st = shared.state.lock().expect("state lock");
    let inbox = st
        .inbox_in(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    ok(views::inbox(inbox, ctx.is_admin(), shared.config().signing))
}

pub(crate) async fn update(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let id = ctx.id("id")?;
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let mut inbox = st
        .inbox_in(ctx.account_id, id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    ctx.require_admin()?;
    if let Some(name) = body.get("name") {
        let name = name.as_str().unwrap_or_default().trim().to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(&[("name", "Name can't be blank".into())]));
        }
        inbox.name = name;
    }
    apply_attrs(&mut inbox, &body);
    if let Some(Value::Object(ch)) = body.get("channel") {
        apply_channel(&mut inbox, ch);
    }
    let out = views::inbox(&inbox, ctx.is_admin(), shared.config().signing);
    st.inboxes.insert(id, inbox);
    ok(out)
}

pub(crate) async fn destroy(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = ctx.id("id")?;
    let mut st = shared.state.lock().expect("state lock");
    st.inbox_in(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    ctx.require_admin()?;
    st.inboxes.remove(&id);
    let convs: Vec<i64> = st
        .conversations
        .values()
        .filter(|c| c.inbox_id == id)
        .map(|c| c.pk)
        .collect();
    for pk in convs {
        st.conversations.remove(&pk);
        let mids: Vec<i64> = st.conversation_messages(pk).map(|m| m.id).collect();
        for mid in mids {
            if let Some(m) = st.messages.remove(&mid) {
                for a in m.attachments {
                    st.blobs.remove(&a.token);
                }
            }
        }
    }
    st.contact_inboxes.retain(|_, ci| ci.inbox_id != id);
    ok(json!({"message": "Your inbox deletion request will be processed in some time."}))
}
