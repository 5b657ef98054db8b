//! `/conversations/{id}/messages`: create (JSON or multipart with repeated
//! `attachments[]` parts and `content_attributes` as a JSON string), list
//! (`MessageFinder`: latest 20, `before` 20, `after` up to 100 with
//! `id >= after`), status PATCH (API inboxes only) and delete.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::{bool_param, json_body, str_param};
use crate::Shared;
use crate::auth::Ctx;
use crate::errors::{ApiError, ApiResult, ok};
use crate::ops::{self, NewMessage, Upload};
use crate::views;

fn message_type_code(s: Option<&str>) -> Result<u8, ApiError> {
    match s.unwrap_or("outgoing") {
        "incoming" => Ok(0),
        "outgoing" => Ok(1),
        "activity" => Ok(2),
        "template" => Ok(3),
        other => Err(ApiError::unprocessable(format!(
            "'{other}' is not a valid message_type"
        ))),
    }
}

/// Reads a multipart body into (params, files).
async fn read_multipart(mut mp: Multipart) -> Result<(Map<String, Value>, Vec<Upload>), ApiError> {
    let mut params = Map::new();
    let mut files = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|_| ApiError::bad_request())? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "attachments[]" || name == "attachments" {
            let filename = field.file_name().unwrap_or("file").to_string();
            let mime = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = field.bytes().await.map_err(|_| ApiError::bad_request())?;
            files.push((filename, mime, bytes));
        } else {
            let text = field.text().await.map_err(|_| ApiError::bad_request())?;
            params.insert(name, Value::String(text));
        }
    }
    Ok((params, files))
}

pub(crate) async fn create(ctx: Ctx, State(shared): State<Arc<Shared>>, req: Request) -> ApiResult {
    let id = ctx.id("id")?;
    let is_multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (params, files) = if is_multipart {
        let mp = Multipart::from_request(req, &shared)
            .await
            .map_err(|_| ApiError::bad_request())?;
        read_multipart(mp).await?
    } else {
        let bytes = Bytes::from_request(req, &shared)
            .await
            .map_err(|_| ApiError::bad_request())?;
        (json_body(&bytes)?, Vec::new())
    };
    let content_attributes = match params.get("content_attributes") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if !s.trim().is_empty() => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::unprocessable(format!(
                    "unexpected token at '{s}'"
                )));
            }
        },
        _ => Map::new(),
    };
    let nm = NewMessage {
        content: match params.get("content") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        message_type: message_type_code(params.get("message_type").and_then(Value::as_str))?,
        private: bool_param(&params, "private").unwrap_or(false),
        source_id: str_param(&params, "source_id"),
        content_type: str_param(&params, "content_type").unwrap_or_else(|| "text".into()),
        content_attributes,
        user_id: Some(ctx.user_id),
        files,
    };
    let mut st = shared.state.lock().expect("state lock");
    let pk = st
        .conversation_pk(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let mid = ops::create_message(&shared, &mut st, pk, nm)?;
    ok(views::message(&st, &shared.base_url, &st.messages[&mid]))
}

pub(crate) async fn list(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let id = ctx.id("id")?;
    let st = shared.state.lock().expect("state lock");
    let pk = st
        .conversation_pk(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let after = q.get("after").and_then(|s| s.parse::<i64>().ok());
    let before = q.get("before").and_then(|s| s.parse::<i64>().ok());
    let all: Vec<_> = st.conversation_messages(pk).collect();
    let picked: Vec<_> = match (after, before) {
        (Some(a), Some(b)) => all
            .into_iter()
            .filter(|m| m.id >= a && m.id < b)
            .take(1000)
            .collect(),
        (Some(a), None) => all.into_iter().filter(|m| m.id >= a).take(100).collect(),
        (None, Some(b)) => {
            let v: Vec<_> = all.into_iter().filter(|m| m.id < b).collect();
            v[v.len().saturating_sub(20)..].to_vec()
        }
        (None, None) => all[all.len().saturating_sub(20)..].to_vec(),
    };
    let c = &st.conversations[&pk];
    let contact = st
        .contacts
        .get(&c.contact_id)
        .map(views::contact_push)
        .unwrap_or(Value::Null);
    let payload: Vec<Value> = picked
        .into_iter()
        .map(|m| views::message(&st, &shared.base_url, m))
        .collect();
    ok(json!({
        "meta": {
            "labels": [], "additional_attributes": c.additional_attributes, "contact": contact,
            "assignee": null, "agent_last_seen_at": null, "assignee_last_seen_at": null,
        },
        "payload": payload,
    }))
}

const MESSAGE_STATUSES: &[&str] = &["sent", "delivered", "read", "failed"];

pub(crate) async fn update(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let id = ctx.id("id")?;
    let mid = ctx.id("mid")?;
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let pk = st
        .conversation_pk(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let inbox_id = st.conversations[&pk].inbox_id;
    st.messages
        .get(&mid)
        .filter(|m| m.conversation_pk == pk)
        .ok_or_else(ApiError::not_found)?;
    if !st.inboxes.get(&inbox_id).is_some_and(|i| i.is_api()) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            json!({"error": "Message status update is only allowed for API inboxes"}),
        ));
    }
    let status = str_param(&body, "status").ok_or_else(|| ApiError::param_missing("status"))?;
    if !MESSAGE_STATUSES.contains(&status.as_str()) {
        return Err(ApiError::unprocessable(format!(
            "'{status}' is not a valid status"
        )));
    }
    ops::update_status(
        &shared,
        &mut st,
        mid,
        &status,
        str_param(&body, "external_error"),
    );
    ok(views::message(&st, &shared.base_url, &st.messages[&mid]))
}

pub(crate) async fn destroy(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let mid = ctx.id("mid")?;
    let mut st = shared.state.lock().expect("state lock");
    message_in_path(&ctx, &st, mid)?;
    ops::delete_message(&shared, &mut st, mid);
    ok(views::message(&st, &shared.base_url, &st.messages[&mid]))
}

/// `POST .../messages/{id}/retry`: renders nothing (204).
pub(crate) async fn retry(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let mid = ctx.id("mid")?;
    let mut st = shared.state.lock().expect("state lock");
    message_in_path(&ctx, &st, mid)?;
    ops::retry_message(&shared, &mut st, mid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// 404 unless message `mid` belongs to the path's conversation.
fn message_in_path(ctx: &Ctx, st: &crate::state::State, mid: i64) -> Result<(), ApiError> {
    let pk = st
        .conversation_pk(ctx.account_id, ctx.id("id")?)
        .ok_or_else(ApiError::not_found)?;
    st.messages
        .get(&mid)
        .filter(|m| m.conversation_pk == pk)
        .map(|_| ())
        .ok_or_else(ApiError::not_found)
}
