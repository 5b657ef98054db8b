//! Success bodies shared by several routes: `{"success":true,"message":...}`.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub success: bool,
    pub message: String,
}

impl MessageOut {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
        }
    }
}

/// The error envelope, for the OpenAPI document (responses are built in
/// `error.rs`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorOut {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Tell errors apart by HTTP status plus this text.
    pub message: String,
}
