//! zapgate's HTTP API: axum routers per module, auth, rate limits, the
//! error envelope, metrics and the OpenAPI document. No SQL here, and no
//! Chatwoot wire format.

mod auth;
mod console;
mod envelope;
mod error;
mod extract;
mod idempotency;
mod link_preview;
mod list_answers;
mod metrics;
mod openapi;
mod rate_limit;
mod routes;
mod sticker;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::HeaderName,
    middleware,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};
use zapgate_chatwoot::{AddressPolicy, Bridge, ChatwootService, download::Downloader};
use zapgate_core::{
    Error, messages,
    service::{AccountService, InstanceService},
    store::Store,
    token::TokenHash,
};
use zapgate_events::EventsService;
use zapgate_whatsapp::SandboxProvider;

pub use crate::{
    auth::token_from_headers,
    error::ApiError,
    list_answers::ListAnswers,
    metrics::install_recorder,
    openapi::ApiDoc,
    rate_limit::{RateLimitConfig, RateLimiter},
};

/// Request body limits (spec §1: 1 MiB by default, more on media routes).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub media: usize,
    /// `POST /api/message/media` requests handled at once: with the body
    /// limit, what media sends may hold in memory.
    pub media_sends: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            default: 1024 * 1024,
            media: 64 * 1024 * 1024,
            media_sends: 8,
        }
    }
}

/// Everything a handler may reach. Axum clones the state for every extractor
/// and middleware that asks for it, so it is one shared pointer.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub instances: InstanceService,
    pub accounts: AccountService,
    /// The events module: webhooks, the WebSocket setting, the event log.
    pub events: EventsService,
    /// Which customer URLs may be called (`ZAPGATE_ALLOW_PRIVATE_URLS`).
    pub url_policy: AddressPolicy,
    /// The Chatwoot module; `None` when the operator switched it off.
    pub chatwoot: Option<Arc<ChatwootService>>,
    /// The bridge; present with the Chatwoot module.
    pub bridge: Option<Arc<Bridge>>,
    /// Fetches customer-given media URLs behind the address guard.
    pub downloader: Downloader,
    /// Present only when the sandbox is the WhatsApp provider.
    pub sandbox: Option<Arc<SandboxProvider>>,
    pub limiter: Arc<RateLimiter>,
    /// SHA-256 of `ZAPGATE_ADMIN_TOKEN`; `None` turns the admin API off.
    pub admin_token: Option<TokenHash>,
    pub metrics: PrometheusHandle,
    pub body_limits: BodyLimits,
    /// The instance list's last rendered answers (start empty).
    pub list_answers: ListAnswers,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .merge(routes::instance::router())
        .merge(routes::chatwoot::router())
        .merge(routes::events::router())
        .merge(routes::ws::router())
        .merge(routes::group::router())
        .merge(routes::profile::router())
        .merge(routes::chat_state::router())
        .merge(routes::chat::router())
        .merge(
            routes::message::router(state.body_limits.media)
                .merge(routes::chat::sends())
                .route_layer(
                    ServiceBuilder::new()
                        // Outside the idempotency layer, which reads the
                        // body: a refused send has not been read.
                        .layer(middleware::from_fn_with_state(
                            Arc::new(Semaphore::new(state.body_limits.media_sends)),
                            routes::message::media_gate,
                        ))
                        .layer(middleware::from_fn_with_state(
                            state.clone(),
                            idempotency::layer,
                        )),
                ),
        )
        .merge(routes::admin::router());
    if state.sandbox.is_some() {
        api = api.merge(routes::sandbox::router(state.body_limits.media));
    }
    // Everything under `api` is rate limited and answers unknown paths and
    // methods with the contract's envelope. Each `Router::layer` call wraps
    // every route in one more boxed service, cloned and polled through on
    // every request, so a router's layers go on as one stack (outermost
    // first).
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(DefaultBodyLimit::max(state.body_limits.default))
                .layer(middleware::from_fn_with_state(state.clone(), auth::gate)),
        );

    Router::new()
        .merge(routes::system::router())
        .merge(console::router())
        .merge(SwaggerUi::new("/docs").config(SwaggerConfig::new(["/openapi.json"])))
        .route("/openapi.json", get(openapi::serve_document))
        .merge(routes::webhook::router().layer(DefaultBodyLimit::max(state.body_limits.default)))
        .merge(api)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The route template, never the raw path: paths carry
                    // secrets (the Chatwoot webhook's) and queries tokens.
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("request", method = %req.method(), route, request_id)
                }))
                .layer(middleware::from_fn(metrics::track)),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError(Error::not_found(messages::ROUTE_NOT_FOUND))
}

async fn method_not_allowed() -> ApiError {
    ApiError(Error::MethodNotAllowed(
        messages::METHOD_NOT_ALLOWED.to_owned(),
    ))
}
