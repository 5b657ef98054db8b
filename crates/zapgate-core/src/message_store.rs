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

impl StoredMessage {
    /// Only text and media can be forwarded, and not once deleted.
    pub fn check_forwardable(&self) -> crate::Result<()> {
        if self.revoked_at_ms.is_some() {
            return Err(crate::Error::bad_request(
                "a deleted message cannot be forwarded",
            ));
        }
        let plain_text = self.text.is_some() && self.extra.is_none();
        if self.media.is_none() && !plain_text {
            return Err(crate::Error::bad_request(format!(
                "{} messages cannot be forwarded (only text and media)",
                self.kind
            )));
        }
        Ok(())
    }
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
    /// `voter`'s vote on the poll `poll_id` is now `options` (hex SHA-256
    /// of the options' text; empty: withdrawn). An older vote than the one
    /// stored is dropped.
    PollVote {
        poll_id: String,
        voter: String,
        options: Vec<String>,
        at_ms: i64,
    },
}

/// One voter's vote on a poll, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVote {
    pub voter: String,
    /// Hex SHA-256 of each option picked.
    pub options: Vec<String>,
    pub at_ms: i64,
}

/// A poll's options with their voters, in the poll's order. A vote naming
/// an option the poll does not have counts for none.
pub fn tally(options: &[String], votes: &[StoredVote]) -> Vec<(String, Vec<String>)> {
    options
        .iter()
        .map(|name| {
            let hash = hex::encode(crate::whatsapp::PollVote::option_hash(name));
            let voters = votes
                .iter()
                .filter(|v| v.options.contains(&hash))
                .map(|v| v.voter.clone())
                .collect();
            (name.clone(), voters)
        })
        .collect()
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
            Event::PollVote(vote) => MessageChange::PollVote {
                poll_id: vote.poll_id.clone(),
                voter: vote.voter.to_string(),
                options: vote.options.iter().map(hex::encode).collect(),
                at_ms: vote.timestamp_ms,
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

/// `message` as the store keeps it.
pub fn stored(instance_id: &str, message: &InboundMessage) -> StoredMessage {
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
    fn events_become_writes_of_their_instance() {
        use crate::jid::Jid;
        let message = |extra: Option<Extra>| {
            Event::Message(Box::new(InboundMessage {
                id: "3A1".into(),
                chat: Jid::user("5511988887777"),
                sender: Jid::user("5511988887777"),
                sender_lid: None,
                push_name: None,
                from_me: false,
                group_subject: None,
                text: Some("oi".into()),
                media: None,
                media_ref: None,
                quoted_id: None,
                extra,
                timestamp: 1,
                source: None,
            }))
        };
        let write = MessageWrite::of("ins_1", &message(None)).unwrap();
        assert_eq!(write.instance_id, "ins_1");
        let MessageChange::Insert(stored) = write.change else {
            panic!("a new message is an insert");
        };
        assert_eq!(
            (stored.kind.as_str(), stored.status),
            ("text", MessageStatus::Delivered)
        );
        let edit = Extra::Edit {
            target_id: "3A0".into(),
            text: "new".into(),
        };
        assert_eq!(
            MessageWrite::of("ins_1", &message(Some(edit)))
                .unwrap()
                .change,
            MessageChange::Edit {
                id: "3A0".into(),
                text: "new".into()
            }
        );
        let revoke = Extra::Revoke {
            target_id: "3A0".into(),
        };
        assert_eq!(
            MessageWrite::of("ins_1", &message(Some(revoke)))
                .unwrap()
                .change,
            MessageChange::Revoke { id: "3A0".into() }
        );
        let receipt = Event::Receipt {
            message_id: "3EB0".into(),
            status: ReceiptStatus::Read,
            chat: None,
        };
        assert_eq!(
            MessageWrite::of("ins_1", &receipt).unwrap().change,
            MessageChange::Status {
                id: "3EB0".into(),
                status: MessageStatus::Read
            }
        );
        assert_eq!(kind_of(None, Some(MediaKind::Audio)), "audio");
    }

    #[test]
    fn votes_become_writes_and_are_tallied_by_option_hash() {
        use crate::{jid::Jid, whatsapp::PollVote};
        let vote = Event::PollVote(PollVote {
            poll_id: "3EB0POLL".into(),
            chat: Jid::user("5511988887777"),
            voter: Jid::user("5511988887777"),
            options: vec![PollVote::option_hash("Sim")],
            timestamp_ms: 5,
        });
        let MessageChange::PollVote {
            poll_id,
            voter,
            options,
            at_ms,
        } = MessageWrite::of("ins_1", &vote).unwrap().change
        else {
            panic!("a vote is a poll vote write");
        };
        assert_eq!(
            (poll_id.as_str(), voter.as_str(), at_ms),
            ("3EB0POLL", "5511988887777@s.whatsapp.net", 5)
        );
        // SHA-256("Sim"), as WhatsApp's clients compute it.
        assert_eq!(
            options,
            ["9313455e45aa22430a92fddbb70f21312d3c944ab590dfb1da845c1a96b664fe"]
        );
        let votes = [
            StoredVote {
                voter: "a".into(),
                options: options.clone(),
                at_ms: 5,
            },
            StoredVote {
                voter: "b".into(),
                options: vec![hex::encode(PollVote::option_hash("Não")), "ff".into()],
                at_ms: 6,
            },
        ];
        let options = ["Sim".to_owned(), "Não".to_owned(), "Talvez".to_owned()];
        assert_eq!(
            tally(&options, &votes),
            [
                ("Sim".to_owned(), vec!["a".to_owned()]),
                ("Não".to_owned(), vec!["b".to_owned()]),
                ("Talvez".to_owned(), vec![]),
            ]
        );
    }
}
