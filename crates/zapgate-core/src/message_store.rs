//! The message store: every message an instance sends or receives, with
//! its delivery status and history, kept `ZAPGATE_MESSAGE_RETENTION_DAYS`.
//! Written by the event recorder in the same transaction as the event (see
//! [`crate::event_log::EventStore::record`]); read by the chat module.

use serde::{Deserialize, Serialize};

use crate::whatsapp::{Event, Extra, InboundMessage, MediaKind, MediaRef, ReceiptStatus};

pub const MESSAGE_NOT_FOUND: &str = "Message not found";

/// Where a message stands, in the order it can only move forward
/// (`error` is the end of a send that failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Played,
    Error,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "error" => Self::Error,
            _ => return None,
        })
    }

    /// Its place in the order: a receipt never moves a status back.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub instance_id: String,
    /// WhatsApp's message id.
    pub id: String,
    pub chat: String,
    pub sender: String,
    pub from_me: bool,
    /// `text`, `image`, `video`, `audio`, `document`, `sticker`, `location`,
    /// `contact`, `reaction`, `poll`, `event`, `call` or `unsupported`.
    pub kind: String,
    /// The text, or the media's caption; `None` once revoked.
    pub text: Option<String>,
    /// What is needed to download the media again (not the bytes).
    pub media: Option<MediaRef>,
    /// The structured content of the other kinds.
    pub extra: Option<Extra>,
    pub quoted_id: Option<String>,
    /// The `source` label of an API send.
    pub source: Option<String>,
    pub status: MessageStatus,
    /// Unix seconds, WhatsApp's.
    pub timestamp: i64,
    pub edited_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// One step of a message's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: MessageStatus,
    pub at_ms: i64,
}

/// What an event does to the message store of its instance.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageWrite {
    pub instance_id: String,
    pub change: MessageChange,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageChange {
    /// A new message (the same id again is a redelivery: kept as first stored).
    Insert(Box<StoredMessage>),
    /// `id` now reads `text`.
    Edit { id: String, text: String },
    /// `id` was deleted for everyone: its content goes.
    Revoke { id: String },
    /// A receipt: `id` moves to `status` (never back).
    Status { id: String, status: MessageStatus },
}

impl MessageWrite {
    /// What `event` of `instance_id` does to the store, if anything.
    pub fn of(instance_id: &str, event: &Event) -> Option<Self> {
        let change = match event {
            Event::Message(message) => match &message.extra {
                Some(Extra::Edit { target_id, text }) => MessageChange::Edit {
                    id: target_id.clone(),
                    text: text.clone(),
                },
                Some(Extra::Revoke { target_id }) => MessageChange::Revoke {
                    id: target_id.clone(),
                },
                _ => MessageChange::Insert(Box::new(stored(instance_id, message))),
            },
            Event::Receipt {
                message_id, status, ..
            } => MessageChange::Status {
                id: message_id.clone(),
                status: match status {
                    ReceiptStatus::Delivered => MessageStatus::Delivered,
                    ReceiptStatus::Read => MessageStatus::Read,
                },
            },
            _ => return None,
        };
        Some(Self {
            instance_id: instance_id.to_owned(),
            change,
        })
    }
}

fn stored(instance_id: &str, message: &InboundMessage) -> StoredMessage {
    let media = message.media_ref.clone().or_else(|| {
        // Media that came with its bytes only (the sandbox's inline media)
        // is still described, though it cannot be fetched again.
        message
            .media
            .as_ref()
            .map(|m| MediaRef::described(m.kind, m.mimetype.clone(), m.file_name.clone()))
    });
    StoredMessage {
        instance_id: instance_id.to_owned(),
        id: message.id.clone(),
        chat: message.chat.to_string(),
        sender: message.sender.to_string(),
        from_me: message.from_me,
        kind: kind_of(message.extra.as_ref(), media.as_ref().map(|m| m.kind)).to_owned(),
        text: message.text.clone(),
        media,
        extra: message.extra.clone(),
        quoted_id: message.quoted_id.clone(),
        source: message.source.clone(),
        // What WhatsApp handed us was delivered to us; what we sent is out.
        status: if message.from_me {
            MessageStatus::Sent
        } else {
            MessageStatus::Delivered
        },
        timestamp: message.timestamp,
        edited_at_ms: None,
        revoked_at_ms: None,
        created_at_ms: 0,
    }
}

/// A message's `type`, as `getMessage` answers it.
fn kind_of(extra: Option<&Extra>, media: Option<MediaKind>) -> &'static str {
    if let Some(kind) = media {
        return kind.as_str();
    }
    match extra {
        None => "text",
        Some(Extra::Reaction { .. }) => "reaction",
        Some(Extra::Edit { .. }) => "edit",
        Some(Extra::Revoke { .. }) => "revoke",
        Some(Extra::Location { .. }) => "location",
        Some(Extra::ContactCard { .. }) => "contact",
        Some(Extra::Poll { .. }) => "poll",
        Some(Extra::Call { .. }) => "call",
        Some(Extra::Event { .. }) => "event",
        Some(Extra::Unsupported { .. }) => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_move_forward() {
        for s in [
            MessageStatus::Pending,
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Played,
            MessageStatus::Error,
        ] {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        assert!(MessageStatus::Read.rank() > MessageStatus::Delivered.rank());
        assert!(MessageStatus::Delivered.rank() > MessageStatus::Sent.rank());
    }

    #[test]
    fn edits_and_revocations_apply_to_their_target() {
        let edit = Extra::Edit {
            target_id: "A".into(),
            text: "new".into(),
        };
        assert_eq!(kind_of(Some(&edit), None), "edit");
        assert_eq!(kind_of(None, Some(MediaKind::Audio)), "audio");
    }
}
