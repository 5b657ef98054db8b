//! Instances: one WhatsApp number each, owned by an account.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, jid::Jid, messages, token::Token, whatsapp::InboundMessage};

pub const MAX_INSTANCE_NAME_LEN: usize = 64;
pub const MIN_CUSTOM_TOKEN_LEN: usize = 16;
/// Long enough for any sane secret, short enough to bound the row.
pub const MAX_CUSTOM_TOKEN_LEN: usize = 256;
/// A short text to a caller, not a document.
pub const MAX_CALL_REJECT_MESSAGE_LEN: usize = 1024;

/// An instance name: 1-64 ASCII letters, digits, `-` or `_`. Names appear in
/// URLs, so nothing needs escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceName(String);

impl InstanceName {
    pub fn parse(raw: &str) -> Result<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_INSTANCE_NAME_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::bad_request(messages::INVALID_INSTANCE_NAME))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The behaviour flags of an instance (RyzeAPI "settings").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceSettings {
    pub auto_reject_calls: bool,
    pub call_reject_message: String,
    pub ignore_group_messages: bool,
    pub keep_online_status: bool,
    pub auto_read_messages: bool,
    pub disable_history_sync: bool,
    pub ignore_status: bool,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            auto_reject_calls: false,
            call_reject_message: String::new(),
            ignore_group_messages: false,
            keep_online_status: false,
            auto_read_messages: false,
            // RyzeAPI's documented default.
            disable_history_sync: true,
            ignore_status: false,
        }
    }
}

impl InstanceSettings {
    /// Refuses what zapgate would have to store and ignore.
    pub fn validate(&self) -> Result<()> {
        if self.call_reject_message.chars().count() > MAX_CALL_REJECT_MESSAGE_LEN {
            return Err(Error::bad_request(format!(
                "Invalid callRejectMessage: at most {MAX_CALL_REJECT_MESSAGE_LEN} characters"
            )));
        }
        if !self.disable_history_sync {
            return Err(Error::bad_request(messages::HISTORY_SYNC_UNSUPPORTED));
        }
        Ok(())
    }

    /// Whether a message in `chat` goes to the event sink at all. Providers
    /// still acknowledge a dropped message to WhatsApp.
    pub fn delivers(&self, chat: &Jid) -> bool {
        !(self.ignore_group_messages && chat.is_group()
            || self.ignore_status && chat.is_status_broadcast())
    }

    /// Whether a stored message is then marked read on WhatsApp: someone
    /// else's, in a chat. Viewing a status post is left to the owner.
    pub fn reads(&self, message: &InboundMessage) -> bool {
        self.auto_read_messages && !message.from_me && !message.chat.is_status_broadcast()
    }

    /// The text sent to a caller whose call was rejected, if any.
    pub fn call_reject_text(&self) -> Option<&str> {
        Some(self.call_reject_message.as_str()).filter(|m| !m.trim().is_empty())
    }
}

/// A partial update of [`InstanceSettings`]: `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    pub auto_reject_calls: Option<bool>,
    pub call_reject_message: Option<String>,
    pub ignore_group_messages: Option<bool>,
    pub keep_online_status: Option<bool>,
    pub auto_read_messages: Option<bool>,
    pub disable_history_sync: Option<bool>,
    pub ignore_status: Option<bool>,
}

impl SettingsPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `current` with the given fields replaced, validated.
    pub fn apply(&self, current: &InstanceSettings) -> Result<InstanceSettings> {
        let c = current;
        let settings = InstanceSettings {
            auto_reject_calls: self.auto_reject_calls.unwrap_or(c.auto_reject_calls),
            call_reject_message: self
                .call_reject_message
                .clone()
                .unwrap_or_else(|| c.call_reject_message.clone()),
            ignore_group_messages: self
                .ignore_group_messages
                .unwrap_or(c.ignore_group_messages),
            keep_online_status: self.keep_online_status.unwrap_or(c.keep_online_status),
            auto_read_messages: self.auto_read_messages.unwrap_or(c.auto_read_messages),
            disable_history_sync: self.disable_history_sync.unwrap_or(c.disable_history_sync),
            ignore_status: self.ignore_status.unwrap_or(c.ignore_status),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// The instance's default webhook (label `default`). Its `Authorization`
/// value is a secret and lives apart, encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookConfig {
    pub enabled: bool,
    pub url: String,
    pub by_events: bool,
    pub events: Vec<String>,
    pub media_base64: bool,
}

/// The state of the WhatsApp session as the instance list reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    Connected,
    Connecting,
    Disconnected,
    LoggedOut,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Connecting => "connecting",
            Self::Disconnected => "disconnected",
            Self::LoggedOut => "loggedout",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "connected" => Self::Connected,
            "connecting" => Self::Connecting,
            "disconnected" => Self::Disconnected,
            "loggedout" => Self::LoggedOut,
            _ => return None,
        })
    }
}

/// The session as last known: live from the provider, or persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: ConnectionState,
    /// `<digits>@s.whatsapp.net` once paired.
    pub number_jid: Option<String>,
}

impl SessionStatus {
    pub fn disconnected() -> Self {
        Self {
            state: ConnectionState::Disconnected,
            number_jid: None,
        }
    }
}

/// A paired instance that has not been connected (nor logged out) since
/// `since_ms`: the store keeps the start of the outage through reconnection
/// attempts and restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub instance_id: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub settings: InstanceSettings,
    pub webhook: WebhookConfig,
    /// As persisted by the last state change; the live state may be newer.
    pub session: SessionStatus,
    pub created_at_ms: i64,
}

/// A validated request to create an instance.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub name: InstanceName,
    pub token: Token,
    pub settings: InstanceSettings,
    pub webhook: WebhookConfig,
    pub webhook_authorization: Option<String>,
}

/// Checks a caller-chosen instance token: length only; uniqueness is the
/// store's job.
pub fn parse_custom_token(raw: &str) -> Result<Token> {
    let len = raw.chars().count();
    if len < MIN_CUSTOM_TOKEN_LEN {
        return Err(Error::bad_request(messages::CUSTOM_TOKEN_TOO_SHORT));
    }
    if len > MAX_CUSTOM_TOKEN_LEN || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::bad_request(format!(
            "Invalid token: at most {MAX_CUSTOM_TOKEN_LEN} characters, no spaces"
        )));
    }
    Ok(Token::new(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_follow_the_contract() {
        for ok in ["a", "suporte", "Loja-01_b", &"x".repeat(64)] {
            assert!(InstanceName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "ação", "a/b", "a.b", &"x".repeat(65)] {
            let err = InstanceName::parse(bad).unwrap_err();
            assert_eq!(err.public_message(), "Invalid instance name", "{bad}");
        }
    }

    #[test]
    fn custom_tokens_need_sixteen_characters() {
        assert_eq!(
            parse_custom_token("short").unwrap_err().public_message(),
            "Invalid token: at least 16 characters"
        );
        assert!(parse_custom_token("0123456789abcdef").is_ok());
        assert!(parse_custom_token("0123456789 abcdef").is_err());
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name() {
        let current = InstanceSettings {
            call_reject_message: "busy".to_owned(),
            ignore_status: true,
            ..InstanceSettings::default()
        };
        let patch = SettingsPatch {
            ignore_group_messages: Some(true),
            ..SettingsPatch::default()
        };
        assert!(!patch.is_empty());
        assert!(SettingsPatch::default().is_empty());
        let next = patch.apply(&current).unwrap();
        assert!(next.ignore_group_messages && next.ignore_status);
        assert_eq!(next.call_reject_message, "busy");
    }

    #[test]
    fn settings_zapgate_cannot_honour_are_refused() {
        let long = SettingsPatch {
            call_reject_message: Some("x".repeat(MAX_CALL_REJECT_MESSAGE_LEN + 1)),
            ..SettingsPatch::default()
        };
        let err = long.apply(&InstanceSettings::default()).unwrap_err();
        assert_eq!(
            err.public_message(),
            "Invalid callRejectMessage: at most 1024 characters"
        );
        let history = SettingsPatch {
            disable_history_sync: Some(false),
            ..SettingsPatch::default()
        };
        let err = history.apply(&InstanceSettings::default()).unwrap_err();
        assert_eq!(err.public_message(), messages::HISTORY_SYNC_UNSUPPORTED);
    }

    #[test]
    fn ignored_chats_are_not_delivered() {
        let group = Jid::parse("120363024567890123@g.us").unwrap();
        let status = Jid::parse("status@broadcast").unwrap();
        let person = Jid::parse("5511988887777").unwrap();
        let all = InstanceSettings::default();
        assert!(all.delivers(&group) && all.delivers(&status) && all.delivers(&person));
        let quiet = InstanceSettings {
            ignore_group_messages: true,
            ignore_status: true,
            ..InstanceSettings::default()
        };
        assert!(!quiet.delivers(&group) && !quiet.delivers(&status));
        assert!(quiet.delivers(&person));
    }

    #[test]
    fn connection_states_round_trip() {
        for s in [
            ConnectionState::Connected,
            ConnectionState::Connecting,
            ConnectionState::Disconnected,
            ConnectionState::LoggedOut,
        ] {
            assert_eq!(ConnectionState::parse(s.as_str()), Some(s));
        }
    }
}
