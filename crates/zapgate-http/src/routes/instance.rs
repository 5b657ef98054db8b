//! The instance module (spec §2): create, connect, list, logout, delete, and
//! the settings (RyzeAPI §4.6).

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zapgate_chatwoot::integration::shown_status;
use zapgate_core::{
    Error,
    chatwoot::IntegrationSummary,
    instance::{
        ConnectionState, Instance, InstanceSettings, SessionStatus, SettingsPatch, WebhookConfig,
    },
    jid::parse_phone_number,
    messages,
    service::CreateInstance,
    store::Principal,
    time::rfc3339,
    whatsapp::{LoginCode, LoginMethod},
};

use crate::{
    AppState,
    auth::{AccountCaller, Caller},
    envelope::{ErrorOut, MessageOut},
    error::ApiResult,
    extract::{JsonBody, QueryParams},
    list_answers::ListSources,
};

/// Bounds on the optional blocks of the create body.
const MAX_URL_LEN: usize = 2048;
const MAX_WEBHOOK_EVENTS: usize = 32;
const MAX_AUTHORIZATION_LEN: usize = 2048;
const MAX_NAMES_IN_FILTER: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/instance/new", post(create))
        .route("/api/instance/connect/{instance}", get(connect))
        .route("/api/instance/connect", get(connect_without_name))
        .route("/api/instance/connect/", get(connect_without_name))
        .route("/api/instance/list", get(list))
        .route("/api/instance/logout/{instance}", delete(logout))
        .route("/api/instance/delete/{instance}", delete(remove))
        .route("/api/instance/getSettings/{instance}", get(get_settings))
        .route("/api/instance/settings/{instance}", post(update_settings))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateInstanceIn {
    /// 1-64 letters, digits, `-` or `_`; unique in the account.
    #[schema(required = true, nullable = false, pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    name: Option<String>,
    /// Custom TokenInstance: 16 to 256 characters, no spaces, unique on the server.
    #[schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{16,256}$")]
    token: Option<String>,
    auto_reject_calls: Option<bool>,
    call_reject_message: Option<String>,
    ignore_group_messages: Option<bool>,
    keep_online_status: Option<bool>,
    auto_read_messages: Option<bool>,
    disable_history_sync: Option<bool>,
    ignore_status: Option<bool>,
    webhook_enabled: Option<bool>,
    #[serde(rename = "webhookURL")]
    webhook_url: Option<String>,
    webhook_authorization: Option<String>,
    webhook_by_events: Option<bool>,
    webhook_events: Option<Vec<String>>,
    webhook_media_base64: Option<bool>,
}

impl CreateInstanceIn {
    fn settings(&self) -> SettingsPatch {
        SettingsPatch {
            auto_reject_calls: self.auto_reject_calls,
            call_reject_message: self.call_reject_message.clone(),
            ignore_group_messages: self.ignore_group_messages,
            keep_online_status: self.keep_online_status,
            auto_read_messages: self.auto_read_messages,
            disable_history_sync: self.disable_history_sync,
            ignore_status: self.ignore_status,
        }
    }

    /// The webhook block, or why it was refused. A refused block does not
    /// abort the creation (spec §2); the response says what went wrong.
    fn webhook(&self) -> Result<(WebhookConfig, Option<String>), String> {
        if !self.webhook_enabled.unwrap_or(false) {
            return Ok((WebhookConfig::default(), None));
        }
        let url = self.webhook_url.as_deref().unwrap_or("").trim();
        let parsed = url::Url::parse(url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.has_host() && url.len() <= MAX_URL_LEN
        });
        if parsed.is_none() {
            return Err("Invalid webhookURL: an absolute http(s) URL is required".to_owned());
        }
        let events = self.webhook_events.clone().unwrap_or_default();
        if events.len() > MAX_WEBHOOK_EVENTS {
            return Err(format!(
                "Invalid webhookEvents: at most {MAX_WEBHOOK_EVENTS} events"
            ));
        }
        let authorization = self.webhook_authorization.clone().filter(|a| !a.is_empty());
        if authorization
            .as_ref()
            .is_some_and(|a| a.len() > MAX_AUTHORIZATION_LEN)
        {
            return Err("Invalid webhookAuthorization: too long".to_owned());
        }
        let config = WebhookConfig {
            enabled: true,
            url: url.to_owned(),
            by_events: self.webhook_by_events.unwrap_or(false),
            events,
            media_base64: self.webhook_media_base64.unwrap_or(false),
        };
        Ok((config, authorization))
    }
}

impl CreateInstanceIn {
    /// The webhook block as the events module's webhook body.
    fn default_webhook(&self) -> super::events::WebhookIn {
        super::events::WebhookIn {
            label: None,
            enabled: self.webhook_enabled,
            url: self.webhook_url.clone(),
            authorization: self.webhook_authorization.clone(),
            by_events: self.webhook_by_events,
            events: self.webhook_events.clone(),
            media_base64: self.webhook_media_base64,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOut {
    success: bool,
    message: &'static str,
    instance: CreatedInstanceOut,
    /// Present only when the webhook block was sent and refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<BlockErrorOut>,
    /// Present when `chatwootEnabled` was true: the inline activation's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    chatwoot: Option<InlineChatwootOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InlineChatwootOut {
    /// `active`, or `error` with `error` saying why.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge_integration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inbox_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Activation from the `chatwoot*` block of the create body (spec §3.5). It
/// never fails the creation: the outcome goes in the response.
async fn activate_inline(
    state: &AppState,
    instance: &zapgate_core::instance::Instance,
    body: &serde_json::Map<String, serde_json::Value>,
) -> InlineChatwootOut {
    let outcome = async {
        let chatwoot = state.chatwoot.as_ref().ok_or_else(|| {
            Error::Unavailable(zapgate_chatwoot::integration::NOT_CONFIGURED.to_owned())
        })?;
        let request = zapgate_chatwoot::ActivateRequest::parse(
            body,
            &zapgate_chatwoot::integration::INLINE_FIELDS,
        )?;
        chatwoot.activate(instance, request).await
    }
    .await;
    match outcome {
        Ok(integration) => InlineChatwootOut {
            status: "active",
            bridge_integration_id: Some(integration.id),
            inbox_id: Some(integration.inbox_id),
            error: None,
        },
        Err(err) => {
            tracing::info!(instance_id = %instance.id, error = %err, "inline chatwoot activation failed");
            InlineChatwootOut {
                status: "error",
                bridge_integration_id: None,
                inbox_id: None,
                error: Some(err.public_message().to_owned()),
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInstanceOut {
    name: String,
    /// The TokenInstance. Shown here; keep it safe.
    token: String,
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockErrorOut {
    status: &'static str,
    error: String,
}

/// Create an instance (TokenAccount only). It is born `disconnected`.
#[utoipa::path(post, path = "/api/instance/new", tag = "instance",
    request_body = CreateInstanceIn,
    responses(
        (status = 201, body = CreatedOut),
        (status = 400, description = "Invalid instance name / Invalid token: at least 16 characters / Invalid request body / Invalid callRejectMessage: at most 1024 characters / Invalid disableHistorySync: false is not supported yet ...", body = ErrorOut),
        (status = 401, description = "Missing token in header / Invalid token", body = ErrorOut),
        (status = 403, description = "Account instance quota exceeded", body = ErrorOut),
        (status = 409, description = "Instance name already exists / Token already in use", body = ErrorOut),
        (status = 429, description = "Rate limit exceeded. Try again later.", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn create(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
    JsonBody(raw): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<(StatusCode, Json<CreatedOut>)> {
    let body: CreateInstanceIn = serde_json::from_value(serde_json::Value::Object(raw.clone()))
        .map_err(|_| Error::bad_request(messages::INVALID_REQUEST_BODY))?;
    // The webhook block is the instance's `default` webhook of the events
    // module, checked as that module checks it.
    let checked = match body.webhook() {
        Ok((config, authorization)) if config.enabled => {
            match super::events::webhook_settings(&state, body.default_webhook()).await {
                Ok(settings) => Ok((config, authorization, Some(settings))),
                Err(err) => Err(err.public_message().to_owned()),
            }
        }
        Ok((config, authorization)) => Ok((config, authorization, None)),
        Err(error) => Err(error),
    };
    let (webhook, webhook_authorization, default_webhook, mut webhook_error) = match checked {
        Ok((config, authorization, settings)) => (config, authorization, settings, None),
        Err(error) => (WebhookConfig::default(), None, None, Some(error)),
    };
    let request = CreateInstance {
        name: body.name.clone().unwrap_or_default(),
        token: body.token.clone(),
        settings: body.settings(),
        webhook,
        webhook_authorization,
    };
    let principal = Principal::Account(account);
    let created = state.instances.create(&principal, request).await?;
    if let Some(settings) = default_webhook
        && let Err(err) = state.events.save_webhook(&created.instance, settings).await
    {
        webhook_error = Some(err.public_message().to_owned());
    }
    let out = CreatedOut {
        success: true,
        message: "Instance created",
        instance: CreatedInstanceOut {
            name: created.instance.name.clone(),
            token: created.token.expose().to_owned(),
            status: ConnectionState::Disconnected.as_str(),
        },
        webhook: webhook_error.map(|error| BlockErrorOut {
            status: "error",
            error,
        }),
        chatwoot: None,
    };
    let chatwoot = match raw.get("chatwootEnabled") {
        Some(serde_json::Value::Bool(true)) => {
            Some(activate_inline(&state, &created.instance, &raw).await)
        }
        _ => None,
    };
    Ok((StatusCode::CREATED, Json(CreatedOut { chatwoot, ..out })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// Phone in international format: asks for a pairing code instead of a QR code.
    #[param(value_type = Option<crate::openapi::PhoneOrBlank>)]
    number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectOut {
    success: bool,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_code_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pairing_code: Option<String>,
    /// `qr`, `pairing`, or `connected` when already linked.
    status: &'static str,
}

/// Link a phone: a QR code, or with `?number=` an 8-character pairing code.
#[utoipa::path(get, path = "/api/instance/connect/{instance}", tag = "instance",
    params(("instance" = String, Path), ConnectQuery),
    responses(
        (status = 200, body = ConnectOut),
        (status = 400, description = "Invalid phone number", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 503, description = "Could not connect to WhatsApp: <reason>", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn connect(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ConnectQuery>,
) -> ApiResult<Json<ConnectOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let method = match query.number.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(number) => LoginMethod::PairingCode {
            phone: parse_phone_number(number)?,
        },
        None => LoginMethod::QrCode,
    };
    let out = match state.instances.connect(&instance, method).await? {
        LoginCode::QrCode { code, png_data_url } => ConnectOut {
            success: true,
            message: "QR code generated",
            qr_code: Some(code),
            qr_code_base64: Some(png_data_url),
            pairing_code: None,
            status: "qr",
        },
        LoginCode::PairingCode(code) => ConnectOut {
            success: true,
            message: "Pairing code generated",
            qr_code: None,
            qr_code_base64: None,
            pairing_code: Some(code),
            status: "pairing",
        },
        LoginCode::AlreadyConnected => ConnectOut {
            success: true,
            message: "Instance already connected",
            qr_code: None,
            qr_code_base64: None,
            pairing_code: None,
            status: "connected",
        },
    };
    Ok(Json(out))
}

async fn connect_without_name(Caller(_): Caller) -> ApiResult<Json<MessageOut>> {
    Err(Error::bad_request(messages::INSTANCE_NAME_REQUIRED).into())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated instance names. Ignored with a TokenInstance.
    #[serde(rename = "instanceName")]
    instance_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<'a> {
    success: bool,
    message: String,
    instances: Vec<InstanceOut<'a>>,
}

/// Borrows from the (cached, shared) instances: listing copies nothing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOut<'a> {
    id: &'a str,
    name: &'a str,
    created_at: String,
    connection: ConnectionOut<'a>,
    profile: ProfileOut,
    webhook: WebhookOut<'a>,
    settings: SettingsOut<'a>,
    chatwoot: ChatwootSummaryOut,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOut<'a> {
    /// `connected`, `connecting`, `disconnected` or `loggedout`.
    state: &'static str,
    number_jid: Option<&'a str>,
    presence_status: &'static str,
    display_status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = instance::ProfileOut)]
pub struct ProfileOut {
    name: Option<String>,
    picture_url: Option<String>,
    is_business: bool,
    business_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = instance::WebhookOut)]
pub struct WebhookOut<'a> {
    enabled: bool,
    url: &'a str,
    by_events: bool,
    events: &'a [String],
    media_base64: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsOut<'a> {
    auto_reject_calls: bool,
    call_reject_message: &'a str,
    ignore_group_messages: bool,
    keep_online_status: bool,
    auto_read_messages: bool,
    disable_history_sync: bool,
    ignore_status: bool,
}

impl<'a> From<&'a InstanceSettings> for SettingsOut<'a> {
    fn from(s: &'a InstanceSettings) -> Self {
        Self {
            auto_reject_calls: s.auto_reject_calls,
            call_reject_message: &s.call_reject_message,
            ignore_group_messages: s.ignore_group_messages,
            keep_online_status: s.keep_online_status,
            auto_read_messages: s.auto_read_messages,
            disable_history_sync: s.disable_history_sync,
            ignore_status: s.ignore_status,
        }
    }
}

/// `{"enabled":false}` or `{"enabled":true,"status":"active|paused|error","inboxId":42}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatwootSummaryOut {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inbox_id: Option<i64>,
}

impl<'a> InstanceOut<'a> {
    fn new(
        instance: &'a Instance,
        session: &'a SessionStatus,
        chatwoot: Option<&IntegrationSummary>,
    ) -> Self {
        let chatwoot = match chatwoot {
            Some(summary) => ChatwootSummaryOut {
                enabled: true,
                status: Some(
                    shown_status(summary.status, session.state == ConnectionState::Connected)
                        .as_str(),
                ),
                inbox_id: Some(summary.inbox_id),
            },
            None => ChatwootSummaryOut {
                enabled: false,
                status: None,
                inbox_id: None,
            },
        };
        let (presence, display) = match session.state {
            ConnectionState::Connected => ("available", "Connected"),
            ConnectionState::Connecting => ("unavailable", "Waiting for the phone"),
            ConnectionState::Disconnected => ("unavailable", "Disconnected"),
            ConnectionState::LoggedOut => ("unavailable", "Logged out"),
        };
        let w = &instance.webhook;
        Self {
            id: &instance.id,
            name: &instance.name,
            created_at: rfc3339(instance.created_at_ms),
            connection: ConnectionOut {
                state: session.state.as_str(),
                number_jid: session.number_jid.as_deref(),
                presence_status: presence,
                display_status: display,
            },
            profile: ProfileOut {
                name: None,
                picture_url: None,
                is_business: false,
                business_name: None,
            },
            webhook: WebhookOut {
                enabled: w.enabled,
                url: &w.url,
                by_events: w.by_events,
                events: &w.events,
                media_base64: w.media_base64,
            },
            settings: SettingsOut::from(&instance.settings),
            chatwoot,
        }
    }
}

/// List instances with their live connection state.
#[utoipa::path(get, path = "/api/instance/list", tag = "instance",
    params(ListQuery),
    responses(
        (status = 200, body = ListOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found (a single unknown name)", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Response> {
    let names: Option<Vec<String>> = query.instance_name.map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .take(MAX_NAMES_IN_FILTER)
            .map(str::to_owned)
            .collect()
    });
    let names = names.filter(|n| !n.is_empty());
    let whole_list = names.is_none();
    let views = state.instances.list(&principal, names).await?;
    let account_id = &principal.account().id;
    let summaries = state.store.integration_summaries(account_id).await?;
    // Only an account's whole list comes from the store's cached list;
    // other reads are new on every request, so their answers never match.
    let reusable = whole_list && matches!(principal, Principal::Account(_));
    let sources = ListSources {
        instances: &views.instances,
        summaries: &summaries,
        sessions: &views.sessions,
    };
    if reusable && let Some(body) = state.list_answers.get(account_id, &sources) {
        return Ok(json_response(body));
    }
    let by_instance: HashMap<&str, &IntegrationSummary> = summaries
        .iter()
        .map(|s| (s.instance_id.as_str(), s))
        .collect();
    let message = match views.len() {
        1 => "1 Instance found".to_owned(),
        n => format!("{n} Instances found"),
    };
    let out = ListOut {
        success: true,
        message,
        instances: views
            .iter()
            .map(|(instance, session)| {
                let summary = by_instance.get(instance.id.as_str()).copied();
                InstanceOut::new(instance, session, summary)
            })
            .collect(),
    };
    // Rendered here, while `out` still borrows the instances.
    let body = Bytes::from(serde_json::to_vec(&out).map_err(Error::internal)?);
    if reusable {
        state.list_answers.put(account_id, &sources, body.clone());
    }
    Ok(json_response(body))
}

/// What `Json` answers, from a body already rendered.
fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChangeOut {
    success: bool,
    message: &'static str,
    instance: InstanceStatusOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceStatusOut {
    status: &'static str,
}

/// Unlink the phone; the instance and its token are kept.
#[utoipa::path(delete, path = "/api/instance/logout/{instance}", tag = "instance",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = StatusChangeOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 500, description = "Failed to logout instance", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn logout(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<StatusChangeOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    state.instances.logout(&instance).await?;
    Ok(Json(StatusChangeOut {
        success: true,
        message: "Instance logged out",
        instance: InstanceStatusOut {
            status: "loggedout",
        },
    }))
}

/// Delete an instance and everything it owns (TokenAccount only).
#[utoipa::path(delete, path = "/api/instance/delete/{instance}", tag = "instance",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = StatusChangeOut),
        (status = 401, description = "Invalid token (also for a TokenInstance)", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 500, description = "Failed to delete instance: <reason>", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn remove(
    State(state): State<AppState>,
    AccountCaller(account): AccountCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<StatusChangeOut>> {
    let principal = Principal::Account(account);
    state.instances.delete(&principal, &name).await?;
    Ok(Json(StatusChangeOut {
        success: true,
        message: "Instance deleted",
        instance: InstanceStatusOut { status: "deleted" },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsResponse<'a> {
    success: bool,
    message: &'static str,
    settings: SettingsOut<'a>,
}

/// The settings of an instance.
#[utoipa::path(get, path = "/api/instance/getSettings/{instance}", tag = "instance",
    params(("instance" = String, Path)),
    responses(
        (status = 200, body = SettingsResponse),
        (status = 401, description = "Missing token in header / Invalid token", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 429, description = "Rate limit exceeded. Try again later.", body = ErrorOut),
        (status = 500, description = "Failed to get settings configuration", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn get_settings(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let settings = state.instances.settings(&principal, &name).await?;
    Ok(settings_response(messages::SETTINGS_RETRIEVED, &settings))
}

/// A partial settings body: fields left out (or `null`) keep their value.
/// Typed loosely so a wrong type is refused naming its field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SettingsIn {
    /// Reject incoming calls.
    #[schema(value_type = Option<bool>)]
    auto_reject_calls: Option<serde_json::Value>,
    /// Sent to a rejected caller when not empty; at most 1024 characters.
    #[schema(value_type = Option<String>)]
    call_reject_message: Option<serde_json::Value>,
    /// Drop group messages: acknowledged, delivered nowhere.
    #[schema(value_type = Option<bool>)]
    ignore_group_messages: Option<serde_json::Value>,
    /// Show the number online (presence available) while connected.
    #[schema(value_type = Option<bool>)]
    keep_online_status: Option<serde_json::Value>,
    /// Mark incoming messages read once stored.
    #[schema(value_type = Option<bool>)]
    auto_read_messages: Option<serde_json::Value>,
    /// Only `true` (the default): importing history is not supported yet.
    #[schema(value_type = Option<bool>)]
    disable_history_sync: Option<serde_json::Value>,
    /// Drop status posts (`status@broadcast`).
    #[schema(value_type = Option<bool>)]
    ignore_status: Option<serde_json::Value>,
}

impl SettingsIn {
    fn patch(self) -> Result<SettingsPatch, Error> {
        fn flag(field: &str, value: Option<serde_json::Value>) -> Result<Option<bool>, Error> {
            match value {
                None => Ok(None),
                Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
                Some(_) => Err(Error::bad_request(format!(
                    "Invalid {field}: a boolean is required"
                ))),
            }
        }
        let call_reject_message = match self.call_reject_message {
            None => None,
            Some(serde_json::Value::String(m)) => Some(m),
            Some(_) => {
                return Err(Error::bad_request(
                    "Invalid callRejectMessage: a string is required",
                ));
            }
        };
        Ok(SettingsPatch {
            auto_reject_calls: flag("autoRejectCalls", self.auto_reject_calls)?,
            call_reject_message,
            ignore_group_messages: flag("ignoreGroupMessages", self.ignore_group_messages)?,
            keep_online_status: flag("keepOnlineStatus", self.keep_online_status)?,
            auto_read_messages: flag("autoReadMessages", self.auto_read_messages)?,
            disable_history_sync: flag("disableHistorySync", self.disable_history_sync)?,
            ignore_status: flag("ignoreStatus", self.ignore_status)?,
        })
    }
}

/// Change some settings; the rest are kept. Applied at once, to a connected
/// session too (`keepOnlineStatus` sends the presence).
#[utoipa::path(post, path = "/api/instance/settings/{instance}", tag = "instance",
    params(("instance" = String, Path)), request_body = SettingsIn,
    responses(
        (status = 200, body = SettingsResponse),
        (status = 400, description = "Invalid request body / At least one setting must be provided / Invalid <field>: a boolean is required / Invalid callRejectMessage: at most 1024 characters / Invalid disableHistorySync: false is not supported yet ...", body = ErrorOut),
        (status = 401, description = "Missing token in header / Invalid token", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 429, description = "Rate limit exceeded. Try again later.", body = ErrorOut),
        (status = 500, description = "Failed to update settings configuration", body = ErrorOut),
    ),
    security(("token" = []))
)]
async fn update_settings(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SettingsIn>,
) -> ApiResult<Response> {
    let instance = state.instances.visible(&principal, &name).await?;
    let settings = state
        .instances
        .update_settings(&instance, &body.patch()?)
        .await?;
    Ok(settings_response(messages::SETTINGS_UPDATED, &settings))
}

fn settings_response(message: &'static str, settings: &InstanceSettings) -> Response {
    Json(SettingsResponse {
        success: true,
        message,
        settings: SettingsOut::from(settings),
    })
    .into_response()
}
