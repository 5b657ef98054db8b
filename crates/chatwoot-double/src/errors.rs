//! Chatwoot's real error bodies (`RequestExceptionHandler`,
//! `AccessTokenAuthHelper`, `EnsureCurrentAccountHelper`) as one error type the
//! handlers return. None of these match Chatwoot's swagger.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error response with Chatwoot's exact status and body.
#[derive(Debug)]
pub(crate) struct ApiError(pub StatusCode, pub Value);

impl ApiError {
    /// 404 `{"error":"Resource could not be found"}` (any `RecordNotFound`).
    pub fn not_found() -> Self {
        Self(
            StatusCode::NOT_FOUND,
            json!({"error": "Resource could not be found"}),
        )
    }
    /// 401 Pundit denial (mapped to 401 by Chatwoot, not 403).
    pub fn not_authorized_action() -> Self {
        Self(
            StatusCode::UNAUTHORIZED,
            json!({"error": "You are not authorized to do this action"}),
        )
    }
    /// 422 `{"error": text}` (builder errors, ParameterMissing, filter errors).
    pub fn unprocessable(text: impl Into<String>) -> Self {
        Self(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": text.into()}),
        )
    }
    /// 422 `RecordInvalid`: full messages joined by ", " plus attribute names.
    pub fn invalid(errors: &[(&str, String)]) -> Self {
        let message = errors
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut attributes: Vec<&str> = Vec::new();
        for (a, _) in errors {
            if !attributes.contains(a) {
                attributes.push(a);
            }
        }
        Self(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": message, "attributes": attributes}),
        )
    }
    /// 422 `ActionController::ParameterMissing`.
    pub fn param_missing(name: &str) -> Self {
        Self::unprocessable(format!("param is missing or the value is empty: {name}"))
    }
    /// Rails' generic 500 body (unhandled exception in production).
    pub fn internal() -> Self {
        Self(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": 500, "error": "Internal Server Error"}),
        )
    }
    /// Rails' 400 for an unparsable JSON body.
    pub fn bad_request() -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            json!({"status": 400, "error": "Bad Request"}),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// 200 with a JSON body.
pub(crate) fn ok(v: Value) -> ApiResult {
    Ok((StatusCode::OK, Json(v)).into_response())
}
