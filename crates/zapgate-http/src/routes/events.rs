//! The events module (RyzeAPI's webhooks and WebSocket settings), plus our
//! additions: the delivery history with replay, and the event log read by
//! cursor. Either token, ownership checked.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zapgate_chatwoot::guard::GuardError;
use zapgate_core::{
    Error,
    event_log::{
        DEFAULT_WEBHOOK_LABEL, Delivery, DeliveryStatus, MAX_WEBHOOK_AUTHORIZATION_LEN,
        MAX_WEBHOOK_LABEL_LEN, MAX_WEBHOOK_URL_LEN, StoredEvent, Webhook, WebhookSettings,
        WebsocketSettings, parse_event_names,
    },
    messages,
    time::rfc3339,
};
use zapgate_events::payload;

use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::ApiResult,
    extract::{JsonBody, QueryParams},
};

const MAX_LIST: u32 = 500;
const DEFAULT_LIST: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/events/webhook/{instance}", post(save_webhook))
        .route("/api/events/getWebhook/{instance}", get(get_webhook))
        .route("/api/events/websocket/{instance}", post(save_websocket))
        .route("/api/events/getWebsocket/{instance}", get(get_websocket))
        .route("/api/events/deliveries/{instance}", get(deliveries))
        .route("/api/events/deliveries/{instance}/replay", post(replay))
        .route("/api/events/log/{instance}", get(log))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookIn {
    /// Up to 100 letters, digits, `-` or `_`; `default` when absent.
    #[schema(pattern = r"^[A-Za-z0-9_-]{0,100}$")]
    pub label: Option<String>,
    /// Required. `false` keeps the row and clears url, authorization, events, mediaBase64.
    #[schema(required = true, nullable = false)]
    pub enabled: Option<bool>,
    /// An absolute http(s) URL; required when enabled.
    pub url: Option<String>,
    /// Sent as the `Authorization` header of each delivery (encrypted at rest).
    pub authorization: Option<String>,
    /// Append the event name to the URL path.
    pub by_events: Option<bool>,
    /// Event names; empty or absent means all six.
    pub events: Option<Vec<String>>,
    /// Put media bytes (base64) into `message.exchange` events.
    pub media_base64: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut {
    label: String,
    enabled: bool,
    url: String,
    authorization: Option<String>,
    by_events: bool,
    events: Vec<&'static str>,
    media_base64: bool,
    /// The Standard Webhooks secret deliveries are signed with.
    signing_secret: String,
}

impl From<Webhook> for WebhookOut {
    fn from(w: Webhook) -> Self {
        Self {
            label: w.settings.label,
            enabled: w.settings.enabled,
            url: w.settings.url,
            authorization: w.settings.authorization,
            by_events: w.settings.by_events,
            events: w.settings.events.iter().map(|e| e.as_str()).collect(),
            media_base64: w.settings.media_base64,
            signing_secret: w.signing_secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSavedOut {
    success: bool,
    message: &'static str,
    webhook: WebhookOut,
}

fn invalid(detail: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("invalid body: {detail}"))
}

/// An absolute http(s) URL whose host is not a private address (unless the
/// operator allows it); the delivery client checks every connection again.
async fn checked_url(state: &AppState, field: &str, raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| invalid(format!("{field} must be an absolute http(s) URL")))?;
    if raw.len() > MAX_WEBHOOK_URL_LEN {
        return Err(invalid(format!(
            "{field} must be at most {MAX_WEBHOOK_URL_LEN} characters"
        )));
    }
    let private = |ip| {
        invalid(format!(
            "{field} resolves to a private address ({ip}); set ZAPGATE_ALLOW_PRIVATE_URLS=true to allow it"
        ))
    };
    state.url_policy.check_url(&url).map_err(|p| private(p.0))?;
    if let (Some(url::Host::Domain(host)), Some(port)) = (url.host(), url.port_or_known_default()) {
        // A name that does not resolve now may later: only a private answer refuses.
        if let Err(GuardError::Private(p)) = state.url_policy.check_host(host, port).await {
            return Err(private(p.0));
        }
    }
    Ok(raw.to_owned())
}

/// Validates a webhook body into settings. Shared with `POST /api/instance/new`.
pub async fn webhook_settings(state: &AppState, body: WebhookIn) -> Result<WebhookSettings, Error> {
    let label = body
        .label
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| DEFAULT_WEBHOOK_LABEL.to_owned());
    if label.chars().count() > MAX_WEBHOOK_LABEL_LEN
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "label must be 1-{MAX_WEBHOOK_LABEL_LEN} letters, digits, '-' or '_'"
        )));
    }
    let enabled = body.enabled.ok_or_else(|| invalid("enabled is required"))?;
    let by_events = body.by_events.unwrap_or(false);
    if !enabled {
        return Ok(WebhookSettings::disabled(label, by_events));
    }
    let url = checked_url(
        state,
        "url",
        body.url
            .as_deref()
            .ok_or_else(|| invalid("url is required when enabled"))?,
    )
    .await?;
    let authorization = body.authorization.filter(|a| !a.is_empty());
    if let Some(a) = &authorization
        && (a.len() > MAX_WEBHOOK_AUTHORIZATION_LEN || a.chars().any(char::is_control))
    {
        return Err(invalid(format!(
            "authorization must be at most {MAX_WEBHOOK_AUTHORIZATION_LEN} characters, without control characters"
        )));
    }
    let events = parse_event_names("events", &body.events.unwrap_or_default())?;
    Ok(WebhookSettings {
        label,
        enabled,
        url,
        authorization,
        by_events,
        events,
        media_base64: body.media_base64.unwrap_or(false),
    })
}

/// Creates or updates a webhook (upsert by `label`).
#[utoipa::path(post, path = "/api/events/webhook/{instance}", tag = "events",
    params(("instance" = String, Path)), request_body = WebhookIn,
    responses(
        (status = 200, body = WebhookSavedOut),
        (status = 400, description = "invalid body: <field> ... / Invalid request body", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Webhook limit reached: an instance can have at most 3 enabled webhooks", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn save_webhook(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<WebhookIn>,
) -> ApiResult<Json<WebhookSavedOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let settings = webhook_settings(&state, body).await?;
    let saved = state.events.save_webhook(&instance, settings).await?;
    Ok(Json(WebhookSavedOut {
        success: true,
        message: "Webhook saved",
        webhook: saved.into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelQuery {
    /// One webhook by label (empty means `default`); all of them without it.
    label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WebhooksOut {
    All {
        success: bool,
        webhooks: Vec<WebhookOut>,
    },
    One {
        success: bool,
        webhook: WebhookOut,
    },
}

/// The instance's webhooks sorted by label, or one with `?label=`.
#[utoipa::path(get, path = "/api/events/getWebhook/{instance}", tag = "events",
    params(("instance" = String, Path), LabelQuery),
    responses(
        (status = 200, body = WebhooksOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Webhook not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn get_webhook(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<LabelQuery>,
) -> ApiResult<Json<WebhooksOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    Ok(Json(match query.label {
        Some(label) => WebhooksOut::One {
            success: true,
            webhook: state.events.webhook(&instance, &label).await?.into(),
        },
        None => WebhooksOut::All {
            success: true,
            webhooks: state
                .events
                .webhooks(&instance)
                .await?
                .into_iter()
                .map(WebhookOut::from)
                .collect(),
        },
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WebsocketIn {
    /// Required. `false` clears events and mediaBase64; open clients stay, new ones are refused.
    #[schema(required = true, nullable = false)]
    enabled: Option<bool>,
    events: Option<Vec<String>>,
    media_base64: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketOut {
    enabled: bool,
    events: Vec<&'static str>,
    media_base64: bool,
}

impl From<WebsocketSettings> for WebsocketOut {
    fn from(ws: WebsocketSettings) -> Self {
        Self {
            enabled: ws.enabled,
            events: ws.events.iter().map(|e| e.as_str()).collect(),
            media_base64: ws.media_base64,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebsocketConfigOut {
    success: bool,
    message: &'static str,
    websocket: WebsocketOut,
}

/// Saves the instance's WebSocket setting (one per instance).
#[utoipa::path(post, path = "/api/events/websocket/{instance}", tag = "events",
    params(("instance" = String, Path)), request_body = WebsocketIn,
    responses(
        (status = 200, body = WebsocketConfigOut),
        (status = 400, description = "invalid body: <field> ... / Invalid request body", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn save_websocket(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<WebsocketIn>,
) -> ApiResult<Json<WebsocketConfigOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let enabled = body.enabled.ok_or_else(|| invalid("enabled is required"))?;
    let settings = WebsocketSettings {
        enabled,
        events: parse_event_names("events", &body.events.unwrap_or_default())?,
        media_base64: body.media_base64.unwrap_or(false),
    };
    let saved = state.events.save_websocket(&instance, settings).await?;
    Ok(Json(WebsocketConfigOut {
        success: true,
        message: "WebSocket configuration saved",
        websocket: saved.into(),
    }))
}

/// The instance's WebSocket setting. Never configured reads as disabled
/// (200), so a client that checks before configuring can go on to configure.
#[utoipa::path(get, path = "/api/events/getWebsocket/{instance}", tag = "events",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = WebsocketConfigOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn get_websocket(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<WebsocketConfigOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let websocket = state.events.websocket(&instance).await?.unwrap_or_default();
    Ok(Json(WebsocketConfigOut {
        success: true,
        message: "WebSocket configuration retrieved",
        websocket: websocket.into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `failed` (dead letters), `queued`, `running`, `delivered` or `dead`.
    #[param(value_type = Option<crate::openapi::DeliveryFilter>)]
    status: Option<String>,
    /// At most 500; 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOut {
    id: i64,
    webhook: String,
    event_id: String,
    event: &'static str,
    /// `queued`, `running`, `delivered` or `dead`.
    status: &'static str,
    attempts: u32,
    /// The receiver's last HTTP status, when it answered.
    response_status: Option<u16>,
    error: String,
    /// When a queued delivery is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_retry_at: Option<String>,
    updated_at: String,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            webhook: d.webhook_label,
            event_id: d.event_id,
            event: d.event_name.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            response_status: d.response_status,
            error: d.last_error,
            next_retry_at: (d.status == DeliveryStatus::Queued).then(|| rfc3339(d.run_at_ms)),
            updated_at: rfc3339(d.updated_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveriesOut {
    success: bool,
    deliveries: Vec<DeliveryOut>,
}

fn limit(raw: Option<u32>) -> Result<u32, Error> {
    match raw {
        None => Ok(DEFAULT_LIST),
        Some(n) if (1..=MAX_LIST).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad_request(format!(
            "limit must be between 1 and {MAX_LIST}"
        ))),
    }
}

/// Recent webhook delivery attempts, newest first.
#[utoipa::path(get, path = "/api/events/deliveries/{instance}", tag = "events",
    params(("instance" = String, Path), DeliveriesQuery),
    responses(
        (status = 200, body = DeliveriesOut),
        (status = 400, description = "unknown status / limit out of range", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn deliveries(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<DeliveriesQuery>,
) -> ApiResult<Json<DeliveriesOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some("failed") => Some(DeliveryStatus::Dead),
        Some(raw) => Some(DeliveryStatus::parse(raw).ok_or_else(|| {
            Error::bad_request("status must be failed, queued, running, delivered or dead")
        })?),
    };
    let found = state
        .events
        .deliveries(&instance, status, limit(query.limit)?)
        .await?;
    Ok(Json(DeliveriesOut {
        success: true,
        deliveries: found.into_iter().map(DeliveryOut::from).collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ReplayIn {
    /// One dead letter; all of the instance's without it.
    id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedOut {
    success: bool,
    message: &'static str,
    replayed: u64,
}

/// Puts dead-lettered deliveries (or one) back in the queue.
#[utoipa::path(post, path = "/api/events/deliveries/{instance}/replay", tag = "events",
    params(("instance" = String, Path)), request_body = ReplayIn,
    responses(
        (status = 200, body = ReplayedOut),
        (status = 400, description = "Invalid request body", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn replay(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ReplayedOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    // The body is optional: none replays every dead letter of the instance.
    let id = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ReplayIn>(&body)
            .map_err(|_| Error::bad_request(messages::INVALID_REQUEST_BODY))?
            .id
    };
    let replayed = state.events.replay(&instance, id).await?;
    Ok(Json(ReplayedOut {
        success: true,
        message: "Deliveries queued again",
        replayed,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Events after this sequence (0: from the oldest kept).
    after: Option<i64>,
    /// At most 500; 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Keep media bytes in `message.exchange` events.
    media_base64: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedEventOut {
    id: String,
    sequence: i64,
    event: &'static str,
    #[schema(value_type = Object)]
    data: Value,
    #[serde(rename = "createdAt")]
    created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogOut {
    success: bool,
    events: Vec<LoggedEventOut>,
    /// Pass as `after` to read on; the same `after` when nothing is new.
    next: i64,
}

fn logged(event: StoredEvent, media: bool) -> LoggedEventOut {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    LoggedEventOut {
        id: event.id,
        sequence: event.sequence,
        event: event.name.as_str(),
        data: if media {
            data
        } else {
            payload::without_media_bytes(data)
        },
        created_at: rfc3339(event.created_at_ms),
    }
}

/// The instance's stored events after a sequence, oldest first: a consumer
/// that was away catches up from where it stopped.
#[utoipa::path(get, path = "/api/events/log/{instance}", tag = "events",
    params(("instance" = String, Path), LogQuery),
    responses(
        (status = 200, body = LogOut),
        (status = 400, description = "limit out of range", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn log(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<LogQuery>,
) -> ApiResult<Json<LogOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let after = query.after.unwrap_or(0).max(0);
    let events = state
        .events
        .log(&instance, after, limit(query.limit)?)
        .await?;
    let next = events.last().map_or(after, |e| e.sequence);
    let media = query.media_base64.unwrap_or(false);
    Ok(Json(LogOut {
        success: true,
        events: events.into_iter().map(|e| logged(e, media)).collect(),
        next,
    }))
}
