//! `POST /chatwoot/webhook/:bridge_integration_id/:secret`: where Chatwoot's
//! inbox calls us. Not rate limited (Chatwoot never retries); answers as soon
//! as the work is stored.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    routing::post,
};
use zapgate_chatwoot::{
    bridge::webhook::{Signature, WebhookOutcome},
    integration::NOT_CONFIGURED,
};
use zapgate_core::Error;

use crate::{AppState, envelope::MessageOut, error::ApiResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/chatwoot/webhook/{integration}/{secret}", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    Path((integration, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<MessageOut>> {
    let bridge = state
        .bridge
        .as_ref()
        .ok_or_else(|| Error::Unavailable(NOT_CONFIGURED.to_owned()))?;
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
    let outcome = bridge
        .accept_webhook(&integration, &secret, signature, &body)
        .await?;
    Ok(Json(MessageOut::new(match outcome {
        WebhookOutcome::Queued => "queued",
        WebhookOutcome::Ignored => "ignored",
    })))
}
