//! The HTTP surface: the account API under `/api/v1/accounts/{account_id}`
//! (wrapped by fault injection/recording) and the ActiveStorage-like blob
//! routes that attachment `data_url`s point at.

pub(crate) mod blobs;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod inboxes;
pub(crate) mod messages;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use serde_json::{Map, Value};

use crate::Shared;
use crate::errors::ApiError;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/inboxes", get(inboxes::list).post(inboxes::create))
        .route(
            "/inboxes/{id}",
            get(inboxes::show)
                .patch(inboxes::update)
                .put(inboxes::update)
                .delete(inboxes::destroy),
        )
        .route("/contacts", get(contacts::list).post(contacts::create))
        .route("/contacts/filter", post(contacts::filter))
        .route("/contacts/search", get(contacts::search))
        .route(
            "/contacts/{id}",
            get(contacts::show)
                .put(contacts::update)
                .patch(contacts::update),
        )
        .route(
            "/contacts/{id}/contact_inboxes",
            post(contacts::create_contact_inbox),
        )
        .route("/contacts/{id}/conversations", get(contacts::conversations))
        .route("/actions/contact_merge", post(contacts::merge))
        .route(
            "/conversations",
            get(conversations::list).post(conversations::create),
        )
        .route("/conversations/{id}", get(conversations::show))
        .route(
            "/conversations/{id}/toggle_status",
            post(conversations::toggle_status),
        )
        .route(
            "/conversations/{id}/messages",
            get(messages::list).post(messages::create),
        )
        .route(
            "/conversations/{id}/messages/{mid}",
            axum::routing::patch(messages::update).delete(messages::destroy),
        )
        .route(
            "/conversations/{id}/messages/{mid}/retry",
            post(messages::retry),
        );
    Router::new()
        .nest("/api/v1/accounts/{account_id}", api)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::faults::api_faults,
        ))
        .route(
            "/rails/active_storage/blobs/redirect/{token}/{filename}",
            get(blobs::redirect),
        )
        .route("/blobs/{token}", get(blobs::serve))
        .with_state(shared)
}

/// Rails-style JSON body: empty → `{}`, unparsable → 400, non-object → `{}`.
pub(crate) fn json_body(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(Map::new()),
        Err(_) => Err(ApiError::bad_request()),
    }
}

/// A string param (numbers are stringified like Rails params); blank → None.
pub(crate) fn str_param(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer param given as number or numeric string.
pub(crate) fn id_param(m: &Map<String, Value>, key: &str) -> Option<i64> {
    m.get(key).and_then(crate::ops::as_i64)
}

/// Rails boolean casting ("true", "1", true).
pub(crate) fn bool_param(m: &Map<String, Value>, key: &str) -> Option<bool> {
    match m.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(matches!(s.as_str(), "true" | "1" | "t" | "on")),
        Value::Number(n) => Some(n.as_i64() == Some(1)),
        _ => None,
    }
}
