//! Authentication and account scoping for every `/api/v1/accounts/{id}/...`
//! route, in Chatwoot's order: `api_access_token` header (missing → devise
//! 401, unknown → "Invalid Access Token"), then the account (404 if it does
//! not exist), then membership (401 "not authorized to access this account").
//! `Authorization: Bearer` is deliberately ignored, as in Chatwoot.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::json;

use crate::Shared;
use crate::errors::ApiError;
use crate::state::Role;

/// The authenticated caller plus the numeric path parameters of the route.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub account_id: i64,
    pub user_id: i64,
    pub role: Role,
    params: HashMap<String, String>,
}

impl Ctx {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Administrator
    }
    /// A numeric path parameter; anything unparsable is a 404 like `find("abc")`.
    pub fn id(&self, name: &str) -> Result<i64, ApiError> {
        self.params
            .get(name)
            .and_then(|s| s.parse().ok())
            .ok_or_else(ApiError::not_found)
    }
    /// Pundit-style admin check for inbox management.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::not_authorized_action())
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, shared)
            .await
            .map_err(|_| ApiError::not_found())?;
        let params: HashMap<String, String> = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let Some(token) = parts
            .headers
            .get("api_access_token")
            .and_then(|v| v.to_str().ok())
        else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                json!({"errors": ["You need to sign in or sign up before continuing."]}),
            ));
        };
        let st = shared.state.lock().expect("state lock");
        let Some(user) = st.user_by_token(token) else {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                json!({"error": "Invalid Access Token"}),
            ));
        };
        let account_id = params
            .get("account_id")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|id| st.accounts.contains_key(id))
            .ok_or_else(ApiError::not_found)?;
        if !user.accounts.contains(&account_id) {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                json!({"error": "You are not authorized to access this account"}),
            ));
        }
        Ok(Ctx {
            account_id,
            user_id: user.id,
            role: user.role,
            params,
        })
    }
}
