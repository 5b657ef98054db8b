//! The Chatwoot integration of an instance (spec §3.6): one per instance,
//! pointing at one API-channel inbox in the customer's Chatwoot.

use serde::{Deserialize, Serialize};

use crate::{jid::Jid, token::Token};

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

/// Most entries `ignoreJids` holds.
pub const MAX_IGNORE_JIDS: usize = 500;
/// The servers `ignoreJids` takes as wildcards (`@g.us`: every group).
pub const IGNORE_WILDCARDS: [&str; 3] = ["@g.us", "@s.whatsapp.net", "@lid"];
pub const DEFAULT_SIGN_DELIMITER: &str = "\n";
/// `{agent}` is the agent's name.
pub const DEFAULT_SIGN_FORMAT: &str = "*{agent}*:";
pub const AGENT_PLACEHOLDER: &str = "{agent}";
/// `botOfflineMinutes` when not given.
pub const DEFAULT_BOT_OFFLINE_MINUTES: u32 = 5;
/// The longest outage `botOfflineMinutes` can wait for (a day).
pub const MAX_BOT_OFFLINE_MINUTES: u32 = 1440;

/// The optional settings of `POST /api/chatwoot/set` beyond the four flags,
/// stored as one JSON object; a field missing there reads as its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatwootOptions {
    /// Chats never bridged, either way: full JIDs (numbers normalised to
    /// `<digits>@s.whatsapp.net`) or a wildcard of [`IGNORE_WILDCARDS`].
    pub ignore_jids: Vec<String>,
    /// Between the signature and the agent's text.
    pub sign_delimiter: String,
    /// The signature, with [`AGENT_PLACEHOLDER`] for the agent's name.
    pub sign_format: String,
    /// Days of history imported on the first connection after activation
    /// (0: none; at most [`crate::chatwoot_import::MAX_IMPORT_DAYS`]).
    pub import_messages_days: u32,
    /// That import also creates a contact for every person of the history.
    pub import_contacts: bool,
    /// An agent's reply marks the customer's messages before it read on
    /// WhatsApp (blue ticks).
    pub mark_read_on_reply: bool,
    /// Contacts get the chat's WhatsApp picture as their avatar, refreshed
    /// at most daily.
    pub contact_avatars: bool,
    /// A contact named after the instance (or [`Self::bot_name`]) whose
    /// conversation shows the QR code and connection changes and takes
    /// commands; nothing in it reaches WhatsApp.
    pub bot_contact: bool,
    pub bot_name: Option<String>,
    /// The bot posts once per outage when the instance has been disconnected
    /// (not logged out) for more than this many minutes; 0: never.
    pub bot_offline_minutes: u32,
}

impl Default for ChatwootOptions {
    fn default() -> Self {
        Self {
            ignore_jids: Vec::new(),
            sign_delimiter: DEFAULT_SIGN_DELIMITER.to_owned(),
            sign_format: DEFAULT_SIGN_FORMAT.to_owned(),
            import_messages_days: 0,
            import_contacts: false,
            mark_read_on_reply: true,
            contact_avatars: true,
            bot_contact: false,
            bot_name: None,
            bot_offline_minutes: DEFAULT_BOT_OFFLINE_MINUTES,
        }
    }
}

impl ChatwootOptions {
    /// Whether `jid` is one of `ignoreJids`, itself or by its server.
    pub fn ignores(&self, jid: &Jid) -> bool {
        if self.ignore_jids.is_empty() {
            return false;
        }
        let full = jid.to_string();
        self.ignore_jids
            .iter()
            .any(|entry| match entry.strip_prefix('@') {
                Some(server) => jid.server == server,
                None => *entry == full,
            })
    }

    /// The agent's signature before `text` (either may be absent).
    pub fn sign(&self, agent: &str, text: Option<&str>) -> String {
        let signature = self.sign_format.replace(AGENT_PLACEHOLDER, agent);
        match text {
            Some(text) => format!("{signature}{}{text}", self.sign_delimiter),
            None => signature,
        }
    }
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
    pub options: ChatwootOptions,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_chats_match_by_jid_or_by_server() {
        let options = ChatwootOptions {
            ignore_jids: vec!["5511988887777@s.whatsapp.net".into(), "@g.us".into()],
            ..ChatwootOptions::default()
        };
        assert!(options.ignores(&Jid::parse("5511988887777").unwrap()));
        assert!(options.ignores(&Jid::parse("120363000000000001@g.us").unwrap()));
        assert!(!options.ignores(&Jid::parse("5511977776666").unwrap()));
        assert!(!ChatwootOptions::default().ignores(&Jid::parse("5511977776666").unwrap()));
    }

    #[test]
    fn the_default_signature_is_the_bold_name_and_a_newline() {
        let options = ChatwootOptions::default();
        assert_eq!(options.sign("Ana", Some("Olá")), "*Ana*:\nOlá");
        assert_eq!(options.sign("Ana", None), "*Ana*:");
        let custom = ChatwootOptions {
            sign_format: "— {agent}".into(),
            sign_delimiter: " | ".into(),
            ..ChatwootOptions::default()
        };
        assert_eq!(custom.sign("Ana", Some("Olá")), "— Ana | Olá");
    }
}
