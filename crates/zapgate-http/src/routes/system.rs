//! Operational routes: the front page, health, Prometheus metrics. Not rate
//! limited, no token.

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse},
    routing::get,
};
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(front_page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// What the front page links to: path and what a person finds there.
const LINKS: &[(&str, &str)] = &[
    (
        "console",
        "the console: connect a number and set up Chatwoot in the browser",
    ),
    ("docs", "the interactive API reference"),
    ("openapi.json", "the OpenAPI document"),
    ("health", "health check (JSON)"),
];

/// For a person who opens the server in a browser. Links are relative, so
/// they also work behind a proxy that serves zapgate under a path prefix.
async fn front_page() -> Html<String> {
    let links: String = LINKS
        .iter()
        .map(|(path, what)| format!("<li><a href=\"{path}\">/{path}</a>: {what}</li>\n"))
        .collect();
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>zapgate</title></head>\n\
         <body>\n<h1>zapgate {version}</h1>\n\
         <p>Self-hosted WhatsApp HTTP API server. The API lives under <code>/api</code> \
         and needs a token in the <code>token</code> header.</p>\n<ul>\n{links}</ul>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

/// 200 while the database answers; 503 otherwise, so a load balancer moves on.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({"success": true, "message": "ok", "database": state.store.backend_name()})),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"success": false, "error": {"message": "Database unavailable"}})),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
