//! The Chatwoot module (spec §3): activate, info, deactivate. Checks run in
//! the contract's order: module switch (503), token (401), instance (404),
//! body (400), then Chatwoot. Success bodies carry no `success` key.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    routing::{delete, get, post},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use zapgate_chatwoot::{
    ActivateRequest, ChatwootService,
    integration::{
        ACTIVATED, DEACTIVATED, INSTANCE_NOT_FOUND, NO_INTEGRATION, NOT_CONFIGURED, SET_FIELDS,
    },
};
use zapgate_core::{
    Error,
    chatwoot::Integration,
    chatwoot_import::{ImportProgress, MAX_IMPORT_DAYS},
    instance::Instance,
    store::Principal,
    time::rfc3339,
};

use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::{ApiError, ApiResult},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chatwoot/set/{instance}", post(set))
        .route("/api/chatwoot/list/{instance}", get(info))
        .route("/api/chatwoot/delete/{instance}", delete(remove))
        .route("/api/chatwoot/replay/{instance}", post(replay))
        .route(
            "/api/chatwoot/import/{instance}",
            post(start_import).delete(cancel_import),
        )
}

/// The module, or `503 integration gateway not configured` before anything
/// else is looked at.
pub struct Module(pub Arc<ChatwootService>);

impl FromRequestParts<AppState> for Module {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state
            .chatwoot
            .clone()
            .map(Self)
            .ok_or_else(|| ApiError(Error::Unavailable(NOT_CONFIGURED.to_owned())))
    }
}

/// The instance, with the module's lowercase `instance not found`.
async fn instance(state: &AppState, principal: &Principal, name: &str) -> ApiResult<Instance> {
    match state.instances.visible(principal, name).await {
        Err(Error::InstanceNotFound) => Err(Error::not_found(INSTANCE_NOT_FOUND).into()),
        other => Ok(other?),
    }
}

/// The instance's integration, or the module's 404s.
async fn integration(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> ApiResult<Integration> {
    let instance = instance(state, principal, name).await?;
    Ok(state
        .store
        .find_integration(&instance.id)
        .await?
        .ok_or_else(|| Error::not_found(NO_INTEGRATION))?)
}

/// A JSON object, or `invalid body: <detail>`.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::bad_request("invalid body: expected a JSON object")),
        Err(e) => Err(Error::bad_request(format!("invalid body: {e}"))),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivatedOut {
    instance: String,
    /// `active` when activation completed.
    status: &'static str,
    bridge_integration_id: String,
    message: &'static str,
}

/// Activate the integration: creates an API inbox in Chatwoot whose webhook
/// points back here (or keeps the current inbox on a second call).
#[utoipa::path(post, path = "/api/chatwoot/set/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    request_body(content = Object, description = "chatwootBaseUrl, chatwootAccountId, chatwootApiToken, inboxName?, signMessages?, ignoreGroups?, startAsPending?, reopenResolved?, ignoreJids?, signDelimiter?, signFormat?, markReadOnReply?, contactAvatars?, botContact?, botName?, botOfflineMinutes?"),
    responses(
        (status = 201, body = ActivatedOut),
        (status = 400, description = "invalid body: ... / Chatwoot account or endpoint not found - ... / inbox limit / private address / Chatwoot rejected the request as invalid - ...", body = ErrorOut),
        (status = 401, description = "Missing token in header / Invalid token / Chatwoot rejected the API token - ...", body = ErrorOut),
        (status = 403, description = "Chatwoot denied the request - verify the API token has admin scope ...", body = ErrorOut),
        (status = 404, description = "instance not found", body = ErrorOut),
        (status = 502, description = "Chatwoot unreachable - ... / Chatwoot failed - HTTP <status> ...", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
        (status = 504, description = "Chatwoot did not answer within 60s", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn set(
    State(state): State<AppState>,
    Module(chatwoot): Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ActivatedOut>)> {
    let instance = instance(&state, &principal, &name).await?;
    let request = ActivateRequest::parse(&json_object(&body)?, &SET_FIELDS)?;
    let integration = chatwoot.activate(&instance, request).await?;
    // Already connected: this is the first connection after activation.
    if let Some(bridge) = &state.bridge
        && state.instances.is_connected(&instance)
        && let Err(e) = bridge.import_on_connect(&integration).await
    {
        tracing::warn!(instance_id = %instance.id, error = %e, "could not start the history import");
    }
    Ok((
        StatusCode::CREATED,
        Json(ActivatedOut {
            instance: instance.name,
            status: "active",
            bridge_integration_id: integration.id,
            message: ACTIVATED,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InfoOut {
    instance_name: String,
    /// `active`, `paused` (WhatsApp not connected) or `error` (see `last_error`).
    status: &'static str,
    bridge_integration_id: String,
    chatwoot_base_url: String,
    chatwoot_account_id: i64,
    /// In plaintext: whoever holds this instance's token can read it.
    chatwoot_api_token: String,
    chatwoot_inbox_id: i64,
    chatwoot_inbox_name: String,
    last_error: String,
    created_at: String,
    sign_messages: bool,
    ignore_groups: bool,
    start_as_pending: bool,
    reopen_resolved: bool,
    /// The optional settings beyond the four flags, each with its value in
    /// effect (the default when `set` did not name it).
    options: OptionsOut,
    /// The last history import, once one was started.
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<ImportOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionsOut {
    /// Chats never bridged, either way: JIDs, or `@g.us` / `@s.whatsapp.net` / `@lid`.
    ignore_jids: Vec<String>,
    /// Between the signature and the text (default a newline).
    sign_delimiter: String,
    /// The signature; `{agent}` is the agent's name (default `*{agent}*:`).
    sign_format: String,
    /// An agent's reply marks the customer's messages read on WhatsApp (default true).
    mark_read_on_reply: bool,
    /// Contacts get the chat's WhatsApp picture, refreshed at most daily (default true).
    contact_avatars: bool,
    /// The bot contact's conversation: QR code, connection changes, commands (default false).
    bot_contact: bool,
    /// The bot contact's name; `null` is the instance name.
    bot_name: Option<String>,
    /// The bot posts once per outage when the instance has been offline
    /// (not logged out) this many minutes (default 5; 0: never).
    #[schema(minimum = 0, maximum = 1440)]
    bot_offline_minutes: u32,
    /// Days of history imported on the first connection after activation (0: none).
    #[schema(minimum = 0, maximum = 90)]
    import_messages_days: u32,
    /// That import also creates a contact for every person of the history.
    import_contacts: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOut {
    /// `running`, `done`, `failed` or `cancelled`.
    state: &'static str,
    /// Chats with messages in the window.
    chats: u64,
    messages_done: u64,
    messages_total: u64,
    started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<ImportProgress> for ImportOut {
    fn from(p: ImportProgress) -> Self {
        Self {
            state: p.state.as_str(),
            chats: p.chats,
            messages_done: p.messages_done,
            messages_total: p.messages_total,
            started_at: rfc3339(p.started_at_ms),
            finished_at: p.finished_at_ms.map(rfc3339),
            error: p.error,
        }
    }
}

/// The integration and its live state.
#[utoipa::path(get, path = "/api/chatwoot/list/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = InfoOut),
        (status = 404, description = "instance not found / no chatwoot integration for this instance", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn info(
    State(state): State<AppState>,
    Module(chatwoot): Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<InfoOut>> {
    let instance = instance(&state, &principal, &name).await?;
    let connected = state.instances.is_connected(&instance);
    let info = chatwoot.info(&instance, connected).await?;
    let i = info.integration;
    let import = state
        .store
        .find_import(&instance.id)
        .await?
        .filter(|p| p.integration_id == i.id)
        .map(ImportOut::from);
    Ok(Json(InfoOut {
        instance_name: instance.name,
        status: info.status.as_str(),
        bridge_integration_id: i.id,
        chatwoot_base_url: i.base_url,
        chatwoot_account_id: i.account_id,
        chatwoot_api_token: i.api_token.expose().to_owned(),
        chatwoot_inbox_id: i.inbox_id,
        chatwoot_inbox_name: i.inbox_name,
        last_error: i.last_error,
        created_at: rfc3339(i.created_at_ms),
        sign_messages: i.flags.sign_messages,
        ignore_groups: i.flags.ignore_groups,
        start_as_pending: i.flags.start_as_pending,
        reopen_resolved: i.flags.reopen_resolved,
        options: OptionsOut {
            ignore_jids: i.options.ignore_jids,
            sign_delimiter: i.options.sign_delimiter,
            sign_format: i.options.sign_format,
            import_messages_days: i.options.import_messages_days,
            import_contacts: i.options.import_contacts,
            mark_read_on_reply: i.options.mark_read_on_reply,
            contact_avatars: i.options.contact_avatars,
            bot_contact: i.options.bot_contact,
            bot_name: i.options.bot_name,
            bot_offline_minutes: i.options.bot_offline_minutes,
        },
        import,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeactivatedOut {
    message: &'static str,
}

/// Deactivate: Chatwoot stops calling us, the row goes; the inbox and its
/// conversations stay in Chatwoot.
#[utoipa::path(delete, path = "/api/chatwoot/delete/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = DeactivatedOut),
        (status = 404, description = "instance not found / no chatwoot integration to delete", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn remove(
    State(state): State<AppState>,
    Module(chatwoot): Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DeactivatedOut>> {
    let instance = instance(&state, &principal, &name).await?;
    chatwoot.deactivate(&instance).await?;
    Ok(Json(DeactivatedOut {
        message: DEACTIVATED,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = chatwoot::ReplayedOut)]
pub struct ReplayedOut {
    message: &'static str,
    /// How many dead letters went back to the queue.
    replayed: u64,
}

/// Puts this integration's dead letters (bridge deliveries that kept
/// failing; `list` shows how many in `last_error`) back in the queue: the
/// per-instance form of `POST /admin/jobs/replay`.
#[utoipa::path(post, path = "/api/chatwoot/replay/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = ReplayedOut),
        (status = 404, description = "instance not found / no chatwoot integration for this instance", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn replay(
    State(state): State<AppState>,
    _module: Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ReplayedOut>> {
    let integration = integration(&state, &principal, &name).await?;
    let replayed = state
        .store
        .replay_dead_jobs(Some(&integration.id), zapgate_core::time::now_ms())
        .await?;
    tracing::info!(integration_id = %integration.id, replayed, "dead letters replayed");
    Ok(Json(ReplayedOut {
        message: "dead letters queued again",
        replayed,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReplyOut {
    message: &'static str,
    import: ImportOut,
}

/// An import request: `days` (0-90, default the integration's
/// `importMessagesDays`) and `contacts` (default its `importContacts`).
fn import_request(
    body: &serde_json::Map<String, Value>,
    integration: &Integration,
) -> Result<(u32, bool), Error> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !["days", "contacts"].contains(&k.as_str()))
    {
        return Err(Error::bad_request(format!(
            "invalid body: unknown field {unknown} (days, contacts)"
        )));
    }
    let days = match body.get("days") {
        None | Some(Value::Null) => integration.options.import_messages_days,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d <= u64::from(MAX_IMPORT_DAYS)) => {
            n.as_u64().and_then(|d| u32::try_from(d).ok()).unwrap_or(0)
        }
        Some(_) => {
            return Err(Error::bad_request(format!(
                "invalid body: days must be an integer from 0 to {MAX_IMPORT_DAYS}"
            )));
        }
    };
    let contacts = match body.get("contacts") {
        None | Some(Value::Null) => integration.options.import_contacts,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::bad_request(
                "invalid body: contacts must be a boolean",
            ));
        }
    };
    if days == 0 && !contacts {
        return Err(Error::bad_request(format!(
            "invalid body: nothing to import - give days (1-{MAX_IMPORT_DAYS}) or contacts: true"
        )));
    }
    Ok((days, contacts))
}

/// Imports the last `days` days of every chat's messages (those the
/// instance holds: live traffic and WhatsApp's history) into the inbox,
/// oldest first, and with `contacts` a contact for every person of the
/// history. Answers at once; `GET /api/chatwoot/list` shows the progress.
#[utoipa::path(post, path = "/api/chatwoot/import/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    request_body(content = Object, description = "days? (integer 0-90; default importMessagesDays), contacts? (boolean; default importContacts); one of them must ask for something"),
    responses(
        (status = 202, body = ImportReplyOut),
        (status = 400, description = "invalid body: days must be an integer from 0 to 90 / contacts must be a boolean / nothing to import ...", body = ErrorOut),
        (status = 404, description = "instance not found / no chatwoot integration for this instance", body = ErrorOut),
        (status = 409, description = "an import is already running for this instance", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn start_import(
    State(state): State<AppState>,
    _module: Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ImportReplyOut>)> {
    let integration = integration(&state, &principal, &name).await?;
    let body = if body.is_empty() {
        serde_json::Map::new()
    } else {
        json_object(&body)?
    };
    let (days, contacts) = import_request(&body, &integration)?;
    let bridge = state
        .bridge
        .as_ref()
        .ok_or_else(|| Error::Unavailable(NOT_CONFIGURED.to_owned()))?;
    let progress = bridge.start_import(&integration, days, contacts).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportReplyOut {
            message: "history import started",
            import: progress.into(),
        }),
    ))
}

/// Cancels the running import: it stops after the message in flight; what
/// was written stays.
#[utoipa::path(delete, path = "/api/chatwoot/import/{instance}", tag = "chatwoot",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = ImportReplyOut),
        (status = 404, description = "instance not found / no chatwoot integration for this instance / no import running for this instance", body = ErrorOut),
        (status = 503, description = "integration gateway not configured", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn cancel_import(
    State(state): State<AppState>,
    _module: Module,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ImportReplyOut>> {
    let integration = integration(&state, &principal, &name).await?;
    let bridge = state
        .bridge
        .as_ref()
        .ok_or_else(|| Error::Unavailable(NOT_CONFIGURED.to_owned()))?;
    let progress = bridge.cancel_import(&integration).await?;
    Ok(Json(ImportReplyOut {
        message: "history import cancelled",
        import: progress.into(),
    }))
}
