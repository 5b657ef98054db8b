//! The one error type of zapgate. Each variant is an HTTP status class; the
//! message is the exact client-facing text of the contract (`spec/API.md`), so
//! it is chosen where the error is raised. Internal causes are logged by the
//! HTTP layer and never shown to clients.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    GatewayTimeout(String),
    /// No such instance, or not one the caller may see (the two are
    /// indistinguishable on purpose).
    #[error("instance not found")]
    InstanceNotFound,
    /// A request this server understands but cannot carry out (a message
    /// kind WhatsApp Web cannot deliver).
    #[error("{0}")]
    NotImplemented(String),
    /// The instance's WhatsApp session is not up: a send waits or fails.
    #[error("the instance is not connected to WhatsApp")]
    NotConnected,
    /// A failure that is ours (database, encryption, a bug). The client sees
    /// `public` only; `cause` goes to the log.
    #[error("{public}: {cause}")]
    Internal {
        public: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    /// An internal failure whose client-facing text is the generic one.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal {
            public: "Internal server error".to_owned(),
            cause: cause.into(),
        }
    }

    /// An internal failure with a route-specific public text, such as
    /// `Failed to logout instance`.
    pub fn internal_with(
        public: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            public: public.into(),
            cause: cause.into(),
        }
    }

    /// The text a client may see.
    pub fn public_message(&self) -> &str {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::MethodNotAllowed(m)
            | Self::Conflict(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::RateLimited(m)
            | Self::BadGateway(m)
            | Self::Unavailable(m)
            | Self::GatewayTimeout(m)
            | Self::NotImplemented(m) => m,
            Self::InstanceNotFound => crate::messages::INSTANCE_NOT_FOUND,
            Self::NotConnected => crate::messages::INSTANCE_NOT_CONNECTED,
            Self::Internal { public, .. } => public,
        }
    }
}

/// A plain message as an error cause, for internal errors raised in our code.
#[derive(Debug)]
pub struct Cause(pub String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}
