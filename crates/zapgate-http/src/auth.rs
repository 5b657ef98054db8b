//! Who is calling. One middleware reads the token once per request, resolves
//! it, counts the request against the right rate-limit bucket and leaves the
//! result in the request's extensions; the extractors below turn it into the
//! access each handler declares (`Caller`, `AccountCaller`, `Admin`).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use zapgate_core::{Error, account::Account, messages, store::Principal, token::TokenHash};

use crate::{AppState, error::ApiError, rate_limit::Verdict};

/// What the gate learned about the caller.
#[derive(Clone)]
struct Identity {
    token_present: bool,
    principal: Option<Principal>,
    admin: bool,
}

/// The token from the `token` header, or `Authorization: Bearer <token>`.
pub fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get("token").and_then(|v| v.to_str().ok()) {
        return Some(token.trim()).filter(|t| !t.is_empty());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `token` query parameter, accepted only on the WebSocket upgrade
/// (browsers cannot set headers there).
fn token_from_websocket_query(req: &Request) -> Option<String> {
    if !req.uri().path().starts_with("/ws/") {
        return None;
    }
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Middleware on every rate-limited route.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token_hash = token_from_headers(req.headers())
        .map(TokenHash::of)
        .or_else(|| {
            token_from_websocket_query(&req)
                .as_deref()
                .map(TokenHash::of)
        });
    let is_admin_route = req.uri().path().starts_with("/admin");
    let mut identity = Identity {
        token_present: token_hash.is_some(),
        principal: None,
        admin: false,
    };
    if let Some(hash) = &token_hash {
        if is_admin_route {
            identity.admin = state.admin_token.as_ref() == Some(hash);
        } else {
            match state.store.find_principal(hash).await {
                Ok(principal) => identity.principal = principal,
                Err(err) => return ApiError(err).into_response(),
            }
        }
    }

    // With limits off, no bucket name is built either.
    let verdict = if state.limiter.config().enabled {
        let (bucket, limit) = bucket(&req, &identity, token_hash.as_ref(), &state);
        state.limiter.hit(&bucket, limit).await
    } else {
        None
    };

    let mut response = match verdict {
        Some(v) if !v.allowed => {
            ApiError(Error::RateLimited(messages::RATE_LIMITED.to_owned())).into_response()
        }
        _ => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
    };
    if let Some(v) = verdict {
        set_rate_limit_headers(response.headers_mut(), v);
    }
    response
}

/// The rate-limit bucket the request counts in, and its limit per minute.
fn bucket(
    req: &Request,
    identity: &Identity,
    token_hash: Option<&TokenHash>,
    state: &AppState,
) -> (String, u32) {
    let config = state.limiter.config();
    let is_create = req.method() == Method::POST && req.uri().path() == "/api/instance/new";
    match (&identity.principal, token_hash) {
        (Some(principal), Some(hash)) => {
            let per_minute = principal
                .account()
                .rate_limit_per_minute
                .unwrap_or(config.per_minute);
            if is_create {
                (format!("create:{}", hash.0), config.create_per_minute)
            } else {
                (format!("token:{}", hash.0), per_minute)
            }
        }
        (None, Some(hash)) if identity.admin => (format!("admin:{}", hash.0), config.per_minute),
        _ => (format!("ip:{}", client_ip(req)), config.per_minute),
    }
}

fn client_ip(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn set_rate_limit_headers(headers: &mut HeaderMap, v: Verdict) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(v.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(v.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(v.reset));
}

fn identity(parts: &Parts) -> Option<&Identity> {
    parts.extensions.get::<Identity>()
}

fn missing_or_invalid(identity: Option<&Identity>) -> ApiError {
    let message = match identity {
        Some(i) if i.token_present => messages::INVALID_TOKEN,
        _ => messages::MISSING_TOKEN,
    };
    ApiError(Error::unauthorized(message))
}

/// Any valid TokenAccount or TokenInstance.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let identity = identity(parts);
        match identity.and_then(|i| i.principal.clone()) {
            Some(principal) => Ok(Self(principal)),
            None => Err(missing_or_invalid(identity)),
        }
    }
}

/// Any valid token on the WebSocket upgrade, whose missing-token message
/// names every place a token may be.
pub struct WsCaller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for WsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let identity = identity(parts);
        match identity.and_then(|i| i.principal.clone()) {
            Some(principal) => Ok(Self(principal)),
            None if identity.is_some_and(|i| i.token_present) => {
                Err(ApiError(Error::unauthorized(messages::INVALID_TOKEN)))
            }
            None => Err(ApiError(Error::unauthorized(
                messages::MISSING_TOKEN_WEBSOCKET,
            ))),
        }
    }
}

/// A TokenAccount only; a TokenInstance gets `401 Invalid token`.
pub struct AccountCaller(pub Account);

impl<S: Send + Sync> FromRequestParts<S> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let identity = identity(parts);
        match identity.and_then(|i| i.principal.clone()) {
            Some(Principal::Account(account)) => Ok(Self(account)),
            Some(Principal::Instance { .. }) => {
                Err(ApiError(Error::unauthorized(messages::INVALID_TOKEN)))
            }
            None => Err(missing_or_invalid(identity)),
        }
    }
}

/// The operator, holding `ZAPGATE_ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.admin_token.is_none() {
            // The admin API is off: it does not exist.
            return Err(ApiError(Error::not_found(messages::ROUTE_NOT_FOUND)));
        }
        let identity = identity(parts);
        match identity {
            Some(i) if i.admin => Ok(Self),
            _ => Err(missing_or_invalid(identity)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_header_wins_then_bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_from_headers(&headers), None);
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(token_from_headers(&headers), Some("abc"));
        headers.insert("token", HeaderValue::from_static("xyz"));
        assert_eq!(token_from_headers(&headers), Some("xyz"));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(token_from_headers(&basic), None);
    }
}
