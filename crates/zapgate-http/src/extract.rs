//! Request extractors that turn every malformed input into the contract's
//! errors (400 / 413 / 415) instead of axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;
use zapgate_core::{Error, messages};

use crate::error::ApiError;

/// `Json<T>` with the contract's rejections.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(json_rejection_error(&rejection))),
        }
    }
}

pub fn json_rejection_error(rejection: &JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::UnsupportedMediaType(messages::JSON_CONTENT_TYPE.to_owned())
        }
        JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::PayloadTooLarge(messages::BODY_TOO_LARGE.to_owned())
        }
        _ => Error::bad_request(messages::INVALID_REQUEST_BODY),
    }
}

/// `Query<T>` with the contract's envelope: a 400 that names the parameter
/// (axum's own rejection is plain text).
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(Error::bad_request(rejection.body_text()))),
        }
    }
}
