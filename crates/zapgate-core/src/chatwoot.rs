//! The Chatwoot integration of an instance (spec §3.6): one per instance,
//! pointing at one API-channel inbox in the customer's Chatwoot.

use crate::token::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationStatus {
    /// Routing both ways.
    Active,
    /// The instance is not connected to WhatsApp; agent replies wait.
    Paused,
    /// Chatwoot refuses us (token revoked, inbox deleted, account gone).
    Error,
}

impl IntegrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// The four behaviour flags of `POST /api/chatwoot/set`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatwootFlags {
    /// Agent replies go out prefixed `*Agent Name*:` and a newline.
    pub sign_messages: bool,
    /// Group traffic is not routed to Chatwoot.
    pub ignore_groups: bool,
    /// New conversations start `pending`.
    pub start_as_pending: bool,
    /// A new message on a resolved conversation reopens it.
    pub reopen_resolved: bool,
}

#[derive(Debug, Clone)]
pub struct Integration {
    /// `int_<random>`: names the integration in its webhook URL.
    pub id: String,
    pub instance_id: String,
    /// Without a trailing `/`.
    pub base_url: String,
    pub account_id: i64,
    pub api_token: Token,
    pub inbox_id: i64,
    pub inbox_name: String,
    /// The API channel's `inbox_identifier`.
    pub inbox_identifier: Option<String>,
    /// Our per-integration secret: the last segment of the webhook URL.
    pub webhook_secret: Token,
    /// Chatwoot's webhook signing secret (v4.13+), when it gave one.
    pub inbox_secret: Option<Token>,
    /// The webhook URL as last registered on the inbox.
    pub webhook_url: String,
    pub status: IntegrationStatus,
    pub last_error: String,
    pub flags: ChatwootFlags,
    pub created_at_ms: i64,
}

/// What the instance list shows of an integration, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSummary {
    pub instance_id: String,
    pub status: IntegrationStatus,
    pub inbox_id: i64,
}

/// `<public url>/chatwoot/webhook/<integration id>/<secret>`.
pub fn webhook_url(public_url: &str, integration_id: &str, secret: &Token) -> String {
    format!(
        "{}/chatwoot/webhook/{integration_id}/{}",
        public_url.trim_end_matches('/'),
        secret.expose()
    )
}
