//! `POST /chatwoot/webhook/:bridge_integration_id/:secret`: where Chatwoot's
//! inbox calls us. Not rate limited (Chatwoot never retries); answers as soon
//! as the work is stored, or 429 while the integration's queue of agent
//! replies is full (`ZAPGATE_BRIDGE_MAX_QUEUED_PER_INTEGRATION`). The path secret is checked before the body is
//! read, so a caller without it cannot make us read (or wait for) a body.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRequest, Path, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use zapgate_chatwoot::{
    bridge::webhook::{Signature, WebhookOutcome},
    integration::NOT_CONFIGURED,
};
use zapgate_core::{Error, messages};

use crate::{
    AppState,
    envelope::MessageOut,
    error::{ApiResult, retry_after},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/chatwoot/webhook/{integration}/{secret}", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    Path((integration, secret)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let bridge = state
        .bridge
        .as_ref()
        .ok_or_else(|| Error::Unavailable(NOT_CONFIGURED.to_owned()))?;
    let integration = bridge.authenticate_webhook(&integration, &secret).await?;
    let headers = req.headers().clone();
    // Bounded by the router's `DefaultBodyLimit`.
    let body = Bytes::from_request(req, &state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge(messages::BODY_TOO_LARGE.to_owned())
        } else {
            Error::bad_request(messages::INVALID_REQUEST_BODY)
        }
    })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match (
        header("x-chatwoot-timestamp"),
        header("x-chatwoot-signature"),
    ) {
        (Some(timestamp), Some(signature)) => Some(Signature {
            timestamp,
            signature,
        }),
        _ => None,
    };
    let outcome = match bridge.accept_webhook(&integration, signature, &body).await {
        Ok(outcome) => outcome,
        // The integration's queue is full. Chatwoot does not retry (the
        // reconciler sends the message later); another sender may.
        Err(err @ Error::RateLimited(_)) => return Ok(retry_after(err, QUEUE_FULL_RETRY_SECS)),
        Err(err) => return Err(err.into()),
    };
    Ok(Json(MessageOut::new(match outcome {
        WebhookOutcome::Queued => "queued",
        WebhookOutcome::Ignored => "ignored",
    }))
    .into_response())
}

/// `Retry-After` of a refusal for a full queue: about what a few claims
/// take to make room.
const QUEUE_FULL_RETRY_SECS: u32 = 30;
