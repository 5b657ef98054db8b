//! The one place where `zapgate_core::Error` becomes an HTTP response: the
//! status for each variant and the contract's envelope
//! `{"success":false,"error":{"message":"..."}}`. Internal causes are logged
//! here and never sent.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use zapgate_core::Error;

use crate::envelope::{ErrorDetail, ErrorOut};

/// `zapgate_core::Error` as a response (a newtype, since both the trait and
/// the type live in other crates).
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) | Error::InstanceNotFound => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
        Error::Unavailable(_) | Error::NotConnected => StatusCode::SERVICE_UNAVAILABLE,
        Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if let Error::Internal { cause, .. } = &self.0 {
            tracing::error!(error.cause = %cause, error.message = %self.0.public_message(), "internal error");
        }
        let body = ErrorOut {
            success: false,
            error: ErrorDetail {
                message: self.0.public_message().to_owned(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// `err` as a response telling the client when to come back.
pub fn retry_after(err: Error, secs: u32) -> Response {
    let mut response = ApiError(err).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    response
}
