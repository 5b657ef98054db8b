//! Request extractors that turn every malformed input into the contract's
//! errors (400 / 413 / 415) instead of axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::Value;
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
        let axum::Json(mut value) = axum::Json::<Value>::from_request(req, state)
            .await
            .map_err(|rejection| ApiError(json_rejection_error(&rejection)))?;
        integral_numbers(&mut value);
        serde_json::from_value(value)
            .map(Self)
            .map_err(|_| ApiError(Error::bad_request(messages::INVALID_REQUEST_BODY)))
    }
}

/// JSON has one number type: `25.0` is the integer 25 to JSON Schema and to
/// a JavaScript client, so a whole float is read as an integer (serde's
/// integer fields refuse it otherwise). Strings (the base64 of media) are
/// moved, not copied. Every JSON body goes through here once, including the
/// `JsonBody<Value>` that `message_kinds::parse` reads.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *n = (f as u64).into();
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *n = (f as i64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_floats_read_as_integers_and_the_rest_stays() {
        let mut body = json!({
            "maxAnswer": 2.0,
            "delay": 0.0,
            "offset": -30.0,
            "latitude": -23.5,
            "huge": 1e300,
            "nested": [{"duration": 60.0}],
            "text": "1.0",
        });
        integral_numbers(&mut body);
        assert_eq!(
            body,
            json!({
                "maxAnswer": 2,
                "delay": 0,
                "offset": -30,
                "latitude": -23.5,
                "huge": 1e300,
                "nested": [{"duration": 60}],
                "text": "1.0",
            })
        );
        assert!(body["maxAnswer"].is_u64() && body["offset"].is_i64());
    }
}
