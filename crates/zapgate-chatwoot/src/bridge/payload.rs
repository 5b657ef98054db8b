//! What a bridge job carries, stored as JSON in the job row. Everything the
//! worker needs is in the payload, so a job survives restarts and does not
//! depend on memory.

use base64::Engine;
use serde::{Deserialize, Serialize};
use zapgate_core::{
    Error, Result,
    whatsapp::{Extra, InboundMessage, Media, MediaKind},
};

pub const INBOUND: &str = "inbound";
pub const OUTBOUND: &str = "outbound";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    /// A WhatsApp message to post into Chatwoot.
    Inbound(Box<InboundJob>),
    /// A WhatsApp receipt for a message we sent: update its Chatwoot status.
    Receipt {
        wa_message_id: String,
        /// `delivered` or `read`.
        status: String,
    },
    /// An agent's message to send to WhatsApp.
    AgentMessage(Box<AgentMessageJob>),
    /// An agent deleted a message: revoke what we sent for it.
    AgentDelete {
        conversation_id: i64,
        message_id: i64,
    },
    /// Members came or went (or the group changed): a private note in the
    /// group's conversation, so it never goes back to WhatsApp.
    GroupNote {
        /// WhatsApp's notification id.
        id: String,
        chat: String,
        text: String,
    },
    /// The chat's WhatsApp picture onto its Chatwoot contact (`contactAvatars`).
    Avatar { chat: String, contact_id: i64 },
    /// A line (and maybe the QR code, a base64 PNG) for the bot contact's
    /// conversation (`botContact`).
    BotPost {
        text: String,
        qr_png_base64: Option<String>,
    },
    /// An agent's command in the bot contact's conversation.
    BotCommand { command: String },
}

impl JobPayload {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(Error::internal)
    }

    pub fn from_json(raw: &str) -> Result<Self> {
        serde_json::from_str(raw).map_err(Error::internal)
    }
}

/// A WhatsApp message; its media bytes are the job's blob
/// ([`zapgate_core::jobs::NewJob::blob`]), out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundJob {
    pub id: String,
    pub chat: String,
    pub sender: String,
    pub sender_lid: Option<String>,
    pub push_name: Option<String>,
    pub from_me: bool,
    pub group_subject: Option<String>,
    pub text: Option<String>,
    pub media: Option<MediaJob>,
    pub quoted_id: Option<String>,
    pub extra: Option<Extra>,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaJob {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    pub kind: String,
    pub mimetype: String,
    pub file_name: Option<String>,
    /// The bytes inline, in jobs stored before blobs existed; empty (and
    /// not written) when they are the job's blob.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base64: String,
}

impl MediaJob {
    /// The inline bytes, when the job carries them so.
    pub fn inline_bytes(&self) -> Result<Option<Vec<u8>>> {
        if self.base64.is_empty() {
            return Ok(None);
        }
        base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .map(Some)
            .map_err(Error::internal)
    }
}

impl From<&InboundMessage> for InboundJob {
    fn from(m: &InboundMessage) -> Self {
        Self {
            id: m.id.clone(),
            chat: m.chat.to_string(),
            sender: m.sender.to_string(),
            sender_lid: m.sender_lid.as_ref().map(ToString::to_string),
            push_name: m.push_name.clone(),
            from_me: m.from_me,
            group_subject: m.group_subject.clone(),
            text: m.text.clone(),
            media: m.media.as_ref().map(media_job),
            quoted_id: m.quoted_id.clone(),
            extra: m.extra.clone(),
            timestamp: m.timestamp,
        }
    }
}

/// The media's description; its bytes go to the job's blob.
pub fn media_job(media: &Media) -> MediaJob {
    MediaJob {
        kind: media.kind.as_str().to_owned(),
        mimetype: media.mimetype.clone(),
        file_name: media.file_name.clone(),
        base64: String::new(),
    }
}

/// An agent's outgoing message, as Chatwoot's webhook (or the reconciler)
/// described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMessageJob {
    pub message_id: i64,
    pub conversation_id: i64,
    pub content: Option<String>,
    pub sender_name: Option<String>,
    pub attachments: Vec<AgentAttachment>,
    /// The Chatwoot message it replies to.
    pub in_reply_to: Option<i64>,
    /// `WAID:<id>` of the message it replies to, when Chatwoot knew it.
    pub in_reply_to_external_id: Option<String>,
    /// Where to send, when the conversation is not one the bridge linked:
    /// the contact's identifier (a JID) or phone number.
    pub contact_identifier: Option<String>,
    pub contact_phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttachment {
    pub data_url: String,
    /// Chatwoot's `file_type`: `image`, `audio`, `video`, `file`, ...
    pub file_type: String,
}

/// What a voice note is on WhatsApp: Opus in Ogg, sent as `ptt`.
pub const VOICE_NOTE_MIMETYPE: &str = "audio/ogg; codecs=opus";

/// Whether `data` is Opus audio in an Ogg stream: its first page carries
/// the `OpusHead` packet. Chatwoot's recorder (API inboxes) makes these, but
/// the type it stores depends on the browser (`audio/ogg`, `audio/opus`,
/// `application/ogg`, ...), so the bytes decide.
pub fn is_ogg_opus(data: &[u8]) -> bool {
    // Page header: "OggS", 22 bytes of fields, the segment count, the
    // segment table; then the first packet.
    let Some(&segments) = data.get(26) else {
        return false;
    };
    data.starts_with(b"OggS")
        && data
            .get(27 + usize::from(segments)..)
            .is_some_and(|packet| packet.starts_with(b"OpusHead"))
}

/// The WhatsApp media kind for a Chatwoot attachment type.
pub fn media_kind_for(file_type: &str, mimetype: &str) -> MediaKind {
    match file_type {
        "image" if mimetype == "image/webp" => MediaKind::Sticker,
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogg_opus_is_told_by_its_first_packet() {
        let mut ogg = b"OggS\0\x02".to_vec();
        ogg.extend([0u8; 20]);
        ogg.extend([1u8, 19]);
        ogg.extend(b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0");
        assert!(is_ogg_opus(&ogg));
        let mut vorbis = ogg.clone();
        vorbis[28..36].copy_from_slice(b"\x01vorbis\0");
        assert!(!is_ogg_opus(&vorbis));
        assert!(!is_ogg_opus(b"OggS"));
        assert!(!is_ogg_opus(b"\x1aE\xdf\xa3 webm"));
    }
}
