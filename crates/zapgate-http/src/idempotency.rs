//! `Idempotency-Key` on the send routes: the first request with a key sends
//! and its answer is stored; a repeat with the same route and body gets that
//! answer again, one with another body a 409. The store's claim is what
//! makes this hold across processes; the WhatsApp id derived from the key
//! (handed to the handler as [`SendId`]) is what makes a repeat after a
//! crash harmless when the first answer never got stored.

use std::collections::HashMap;

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, Path, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use zapgate_core::{
    Error,
    idempotency::{self, IdempotencyClaim},
    messages,
    time::now_ms,
};

use crate::{AppState, auth::Caller, error::ApiError};

pub const HEADER: &str = "idempotency-key";

/// The WhatsApp id a keyed send goes out under.
#[derive(Debug, Clone)]
pub struct SendId(pub String);

/// The middleware of the send routes; a request without the header passes
/// untouched.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    match keyed(state, key, request, next).await {
        Ok(response) => response,
        Err(err) => ApiError(err).into_response(),
    }
}

async fn keyed(
    state: AppState,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, Error> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| idempotency::valid_key(k))
        .ok_or_else(|| {
            Error::bad_request("Invalid Idempotency-Key: 1 to 255 visible ASCII characters")
        })?
        .to_owned();
    let (mut parts, body) = request.into_parts();
    let Caller(principal) = Caller::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| e.0)?;
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &state)
        .await
        .map_err(|_| Error::not_found(messages::INSTANCE_NOT_FOUND))?;
    let name = params.get("instance").map(String::as_str).unwrap_or("");
    let instance = state.instances.visible(&principal, name).await?;
    let bytes = to_bytes(body, state.body_limits.media)
        .await
        .map_err(|_| Error::PayloadTooLarge(messages::BODY_TOO_LARGE.to_owned()))?;
    let claim = IdempotencyClaim {
        instance_id: instance.id.clone(),
        key: key.clone(),
        request_hash: idempotency::request_hash(parts.uri.path(), &bytes),
        now_ms: now_ms(),
    };
    if let Some(earlier) = state.store.claim_idempotency_key(&claim).await? {
        if earlier.request_hash != claim.request_hash {
            return Err(Error::conflict(
                "Idempotency-Key was already used with a different request",
            ));
        }
        if let Some(answer) = earlier.response {
            return Ok(stored(answer));
        }
        // Claimed, never answered: a request still running, or one whose
        // process died. Sending again under the same id is harmless.
    }
    parts
        .extensions
        .insert(SendId(idempotency::message_id(&instance.id, &key)));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status() != StatusCode::OK {
        if let Err(err) = state
            .store
            .release_idempotency_key(&instance.id, &key)
            .await
        {
            tracing::warn!(instance_id = %instance.id, error = %err, "could not release an idempotency key");
        }
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // Answers of the send routes are small JSON envelopes.
    let answer = to_bytes(body, 64 * 1024).await.map_err(Error::internal)?;
    let text = String::from_utf8_lossy(&answer);
    if let Err(err) = state
        .store
        .finish_idempotency_key(&instance.id, &key, &text)
        .await
    {
        // The message is out; a repeat re-sends under the same id.
        tracing::warn!(instance_id = %instance.id, error = %err, "could not store an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(answer)))
}

fn stored(answer: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response()
}
