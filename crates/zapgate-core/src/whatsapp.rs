//! The WhatsApp side behind one trait, and the provider-neutral events it
//! produces. Providers: `sandbox` (in process, deterministic) and, later,
//! `web` (the WhatsApp Web multi-device protocol).

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Result,
    instance::{InstanceSettings, SessionStatus},
    jid::Jid,
};

/// How the phone is to be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMethod {
    QrCode,
    /// Pairing code for the phone number (digits only).
    PairingCode {
        phone: String,
    },
}

/// What `connect` hands back for the user to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginCode {
    /// The QR payload and the same rendered as a PNG data URL.
    QrCode { code: String, png_data_url: String },
    /// An 8-character code to type on the phone.
    PairingCode(String),
    /// The session is already linked; nothing to scan.
    AlreadyConnected,
}

/// Media carried by a message, in memory. Bounded by the route that accepts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub mimetype: String,
    pub file_name: Option<String>,
    /// Shared: a clone (the echo of a send, a bridge job) is not a copy.
    pub data: Bytes,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("kind", &self.kind)
            .field("mimetype", &self.mimetype)
            .field("file_name", &self.file_name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "image" => Self::Image,
            "video" => Self::Video,
            "audio" => Self::Audio,
            "document" => Self::Document,
            "sticker" => Self::Sticker,
            _ => return None,
        })
    }
}

/// Where a message's media lives on WhatsApp's servers and how to decrypt
/// it: what the message store keeps so the media can be downloaded again.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRef {
    pub kind: MediaKind,
    pub mimetype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_path: Option<String>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub media_key: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub file_sha256: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub file_enc_sha256: Vec<u8>,
    /// The plaintext length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_length: Option<u64>,
}

impl MediaRef {
    /// Described only (bytes that came inline): nothing to download again.
    pub fn described(kind: MediaKind, mimetype: String, file_name: Option<String>) -> Self {
        Self {
            kind,
            mimetype,
            file_name,
            direct_path: None,
            media_key: Vec::new(),
            file_sha256: Vec::new(),
            file_enc_sha256: Vec::new(),
            file_length: None,
        }
    }

    /// Whether it names a file WhatsApp can serve again.
    pub fn downloadable(&self) -> bool {
        self.direct_path.is_some() && !self.media_key.is_empty()
    }
}

// The key is a secret: never in logs.
impl std::fmt::Debug for MediaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRef")
            .field("kind", &self.kind)
            .field("mimetype", &self.mimetype)
            .field("direct_path", &self.direct_path)
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

/// Bytes as standard base64 in JSON.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let raw = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(serde::de::Error::custom)
    }
}

/// What a send carries around its content besides the quoted id: the
/// people it @-mentions, and for a private reply the group the quoted
/// message was written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendContext {
    /// Phone jids or LIDs, notified as mentioned (groups only).
    pub mentions: Vec<Jid>,
    /// A private reply: the group of the quoted message, whose author the
    /// message goes to.
    pub quoted_chat: Option<Jid>,
}

/// The preview card a text shows for a link in it (`linkPreview`), as
/// fetched from the page when the message was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPreview {
    /// The link as it appears in the text (WhatsApp's `matchedText`).
    pub url: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The page's image, made a small JPEG.
    pub thumbnail: Option<Thumbnail>,
}

/// A small JPEG image.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub jpeg: Bytes,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.jpeg.len())
            .finish()
    }
}

/// Something to send to WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text {
        to: Jid,
        text: String,
        quoted_id: Option<String>,
        context: SendContext,
        /// Boxed: most texts carry none.
        preview: Option<Box<LinkPreview>>,
    },
    Media {
        to: Jid,
        media: Media,
        caption: Option<String>,
        quoted_id: Option<String>,
        context: SendContext,
    },
    /// An empty `emoji` removes the reaction.
    Reaction {
        to: Jid,
        target_id: String,
        emoji: String,
        /// The target is a message we sent.
        from_me: bool,
        /// The target's author in a group, when it is not ours.
        participant: Option<Jid>,
    },
    Edit {
        to: Jid,
        target_id: String,
        text: String,
    },
    Revoke {
        to: Jid,
        target_id: String,
    },
    Read {
        chat: Jid,
        target_id: String,
    },
    Location {
        to: Jid,
        location: Location,
        quoted_id: Option<String>,
        context: SendContext,
    },
    /// One or more contact cards.
    Contacts {
        to: Jid,
        cards: Vec<ContactCard>,
        quoted_id: Option<String>,
        context: SendContext,
    },
    Poll {
        to: Jid,
        question: String,
        options: Vec<String>,
        /// How many options one voter may pick.
        selectable: u32,
        quoted_id: Option<String>,
        context: SendContext,
    },
    Event {
        to: Jid,
        event: EventInvite,
        quoted_id: Option<String>,
        context: SendContext,
    },
    /// A status post (story), to the account's contacts.
    Status {
        /// `status@broadcast` ([`Jid::status_broadcast`]).
        to: Jid,
        post: StatusPost,
    },
}

/// What a status post shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusPost {
    /// Text on a coloured background.
    Text {
        text: String,
        /// `0xAARRGGBB`.
        background_argb: u32,
        font: StatusFont,
    },
    /// An image, a video or an audio; the caption shows under images and
    /// videos (WhatsApp's audio has none).
    Media {
        media: Media,
        caption: Option<String>,
    },
}

/// The fonts of a text status: WhatsApp's `FontType`, by its protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFont {
    System,
    SystemText,
    FbScript,
    SystemBold,
    MorningbreezeRegular,
    CalistogaRegular,
    Exo2Extrabold,
    CourierprimeBold,
}

impl StatusFont {
    pub const ALL: [Self; 8] = [
        Self::System,
        Self::SystemText,
        Self::FbScript,
        Self::SystemBold,
        Self::MorningbreezeRegular,
        Self::CalistogaRegular,
        Self::Exo2Extrabold,
        Self::CourierprimeBold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "SYSTEM",
            Self::SystemText => "SYSTEM_TEXT",
            Self::FbScript => "FB_SCRIPT",
            Self::SystemBold => "SYSTEM_BOLD",
            Self::MorningbreezeRegular => "MORNINGBREEZE_REGULAR",
            Self::CalistogaRegular => "CALISTOGA_REGULAR",
            Self::Exo2Extrabold => "EXO2_EXTRABOLD",
            Self::CourierprimeBold => "COURIERPRIME_BOLD",
        }
    }

    /// By name, in any case.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

impl Outgoing {
    /// Points a new message at `to` with `context` (the send module's
    /// private replies and mentions); kinds without a context only move.
    pub fn readdress(&mut self, to: Jid, context: SendContext) {
        match self {
            Self::Text {
                to: t, context: c, ..
            }
            | Self::Media {
                to: t, context: c, ..
            }
            | Self::Location {
                to: t, context: c, ..
            }
            | Self::Contacts {
                to: t, context: c, ..
            }
            | Self::Poll {
                to: t, context: c, ..
            }
            | Self::Event {
                to: t, context: c, ..
            } => {
                *t = to;
                *c = context;
            }
            Self::Reaction { to: t, .. }
            | Self::Status { to: t, .. }
            | Self::Edit { to: t, .. }
            | Self::Revoke { to: t, .. }
            | Self::Read { chat: t, .. } => *t = to,
        }
    }
}

/// A place on the map.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

// Latitudes and longitudes are validated finite numbers, so equality is total.
impl Eq for Location {}

/// A contact card, turned into a vCard 3.0 by [`ContactCard::vcard`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactCard {
    pub full_name: String,
    /// As typed, `+` allowed; its digits become the WhatsApp id.
    pub phone: String,
    pub organization: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
}

impl ContactCard {
    /// The vCard phones read: `waid` makes the number tappable as a WhatsApp
    /// chat, as cards shared from a phone are.
    pub fn vcard(&self) -> String {
        let digits: String = self.phone.chars().filter(char::is_ascii_digit).collect();
        let mut card = format!(
            "BEGIN:VCARD\nVERSION:3.0\nFN:{}\n",
            vcard_escape(&self.full_name)
        );
        if let Some(org) = &self.organization {
            card.push_str(&format!("ORG:{}\n", vcard_escape(org)));
        }
        card.push_str(&format!(
            "TEL;type=CELL;type=VOICE;waid={digits}:{}\n",
            vcard_escape(&self.phone)
        ));
        if let Some(email) = &self.email {
            card.push_str(&format!("EMAIL:{}\n", vcard_escape(email)));
        }
        if let Some(url) = &self.url {
            card.push_str(&format!("URL:{}\n", vcard_escape(url)));
        }
        card.push_str("END:VCARD");
        card
    }
}

/// vCard 3.0 text escaping, so a name cannot inject another property.
fn vcard_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A calendar event invitation (WhatsApp's event message).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventInvite {
    pub name: String,
    pub description: Option<String>,
    /// Unix seconds.
    pub start: i64,
    pub end: Option<i64>,
    pub location: Option<Location>,
    pub join_link: Option<String>,
    pub schedule_call: bool,
    pub has_reminder: bool,
    pub reminder_offset_secs: Option<i64>,
    pub extra_guests_allowed: bool,
    pub canceled: bool,
}

/// What the account shows in a chat before a message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatPresence {
    /// "typing..."
    Typing,
    /// "recording audio..."
    Recording,
    /// Stops either.
    Paused,
}

impl ChatPresence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Typing => "typing",
            Self::Recording => "recording",
            Self::Paused => "paused",
        }
    }
}

/// The id WhatsApp gave a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub timestamp: i64,
    /// Where sent media was uploaded, for the message store.
    pub media: Option<MediaRef>,
}

/// What a message carries besides text and media: the kinds Chatwoot has no
/// native form for, which the bridge renders as readable text. Serialisable,
/// because the bridge stores it in its job rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Extra {
    /// An emoji reaction to `target_id`; an empty emoji removes it.
    Reaction {
        target_id: String,
        emoji: String,
    },
    /// `target_id` now reads `text`.
    Edit {
        target_id: String,
        text: String,
    },
    /// `target_id` was deleted for everyone.
    Revoke {
        target_id: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
    },
    ContactCard {
        name: String,
        vcard: Option<String>,
    },
    Poll {
        question: String,
        options: Vec<String>,
    },
    Call {
        video: bool,
    },
    /// A calendar event invitation; `start` in Unix seconds.
    Event {
        name: String,
        start: i64,
    },
    /// Anything else WhatsApp sends, named.
    Unsupported {
        kind: String,
    },
}

/// A message from WhatsApp, as every provider reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// WhatsApp's message id; the same id again is a redelivery.
    pub id: String,
    /// The conversation: the contact, or the group.
    pub chat: Jid,
    /// Who wrote it: the contact, a group member, or the account owner.
    pub sender: Jid,
    /// The sender's hidden-number id when WhatsApp gave one.
    pub sender_lid: Option<Jid>,
    pub push_name: Option<String>,
    /// Sent by the account owner (from the phone or through the API).
    pub from_me: bool,
    pub group_subject: Option<String>,
    pub text: Option<String>,
    pub media: Option<Media>,
    /// Where the media lives on WhatsApp's servers (also when its bytes
    /// could not be downloaded).
    pub media_ref: Option<MediaRef>,
    pub quoted_id: Option<String>,
    pub extra: Option<Extra>,
    /// Unix seconds.
    pub timestamp: i64,
    /// The `source` label of a send through the API.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

/// Where an incoming call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// It is ringing.
    Offer,
    /// Declined: by zapgate (`autoRejectCalls`) or on another device.
    Rejected,
    /// Answered on another device.
    Accepted,
    /// The caller gave up, or the call ended.
    Terminated,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Rejected => "rejected",
            Self::Accepted => "accepted",
            Self::Terminated => "terminated",
        }
    }
}

/// A change in an incoming WhatsApp call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// WhatsApp's call id; every change of one call carries it.
    pub id: String,
    /// The caller.
    pub from: Jid,
    pub video: bool,
    pub status: CallStatus,
    /// Unix seconds.
    pub timestamp: i64,
}

/// A chat label (WhatsApp Business) changed on the phone or another linked
/// device, as WhatsApp syncs it to every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChange {
    /// WhatsApp's label id (per account, not a JID).
    pub label_id: String,
    pub kind: LabelChangeKind,
    /// Unix milliseconds of the change on the device that made it.
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChangeKind {
    /// Created or edited (`name` and `color` as they are now), or deleted.
    Edit {
        name: Option<String>,
        /// WhatsApp's colour index.
        color: Option<i32>,
        deleted: bool,
    },
    /// Put on (`labeled`) or taken off a chat.
    Chat { chat: Jid, labeled: bool },
}

impl LabelChangeKind {
    /// `label.update`'s `type`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Edit { deleted: false, .. } => "edit",
            Self::Edit { deleted: true, .. } => "delete",
            Self::Chat { labeled: true, .. } => "add",
            Self::Chat { labeled: false, .. } => "remove",
        }
    }
}

/// A vote on a poll, as the provider decrypted it. WhatsApp names the
/// options picked by the SHA-256 of their text; none picked withdraws the
/// vote. A voter's later vote replaces the earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollVote {
    /// The poll's message id.
    pub poll_id: String,
    pub chat: Jid,
    pub voter: Jid,
    /// SHA-256 of each option picked.
    pub options: Vec<[u8; 32]>,
    /// Unix milliseconds, the voter's.
    pub timestamp_ms: i64,
}

impl PollVote {
    /// What a vote names an option by.
    pub fn option_hash(option: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(option.as_bytes()).into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Session(SessionStatus),
    Message(Box<InboundMessage>),
    Receipt {
        message_id: String,
        status: ReceiptStatus,
        /// The chat the message went to, when the provider knows it.
        chat: Option<Jid>,
    },
    Call(CallEvent),
    /// Members came or went, were promoted or demoted; the group was renamed or deleted.
    Group(crate::groups::GroupChange),
    /// A label was edited, or put on or taken off a chat.
    Label(LabelChange),
    /// Someone voted on a poll (kept by the message store).
    PollVote(PollVote),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppEvent {
    pub instance_id: String,
    pub event: Event,
}

/// Where providers hand their events. A provider acknowledges a message to
/// WhatsApp only after `deliver` returned `Ok`, so a sink that stores the
/// event durably makes the whole path lossless.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    async fn deliver(&self, event: WhatsAppEvent) -> Result<()>;
}

/// Where a provider hands the messages of the phone's history it fetched
/// for a Chatwoot import: the message store, like the sandbox's history
/// fixture (no event, no webhook, no Chatwoot post). Returns how many were
/// kept.
#[async_trait]
pub trait HistorySink: Send + Sync + 'static {
    async fn store_history(&self, instance_id: &str, messages: &[InboundMessage]) -> Result<usize>;
}

/// The oldest message the message store holds of a chat: an on-demand
/// history request asks the phone for the messages before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAnchor {
    pub chat: Jid,
    pub id: String,
    pub from_me: bool,
    /// Unix seconds.
    pub timestamp: i64,
}

/// What [`WhatsApp::fetch_history`] asks for: the messages since
/// `since_secs` (the import's window), before each anchor, and whatever the
/// phone pushes meanwhile; waiting at most `deadline` in all.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub since_secs: i64,
    pub anchors: Vec<HistoryAnchor>,
    pub deadline: std::time::Duration,
}

/// What a history fetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryFetched {
    /// On-demand requests sent to the phone.
    pub requests: usize,
    /// Of those, answered before the deadline.
    pub answered: usize,
    /// Messages in the window handed to the [`HistorySink`].
    pub stored: usize,
}

/// Groups, communities, profiles and privacy, chat state, and the
/// operations on stored messages come with every provider (see
/// [`crate::groups::GroupsAndProfiles`], [`crate::chat_state::ChatState`]
/// and [`crate::message_ops::MessageOps`]).
#[async_trait]
pub trait WhatsApp:
    crate::groups::GroupsAndProfiles
    + crate::chat_state::ChatState
    + crate::message_ops::MessageOps
    + Send
    + Sync
    + 'static
{
    /// `sandbox` or `web`.
    fn name(&self) -> &'static str;

    /// Starts linking a phone; returns the first code, or says it is linked.
    async fn connect(&self, instance_id: &str, method: LoginMethod) -> Result<LoginCode>;

    /// Re-opens a session that was linked before a restart.
    async fn resume(&self, instance_id: &str, status: &SessionStatus) -> Result<()>;

    /// Takes the instance's settings: a running session applies them at
    /// once (presence), and the instance's events from now on follow them
    /// (ignored chats, auto read, call rejection). Called when they change
    /// and before a session starts. Best effort: a failure is logged.
    async fn apply_settings(&self, instance_id: &str, settings: &InstanceSettings);

    /// The live session state, when this process runs a session for it.
    fn status(&self, instance_id: &str) -> Option<SessionStatus>;

    /// This process's name on the session leases, when the provider runs
    /// each session in one process of several sharing the database (`web`);
    /// `None` when sessions are not leased.
    fn session_owner(&self) -> Option<&str> {
        None
    }

    /// Sends `message`. With `id`, the message carries that WhatsApp id, so
    /// sending it again after a crash is recognised as the same message and
    /// not delivered twice.
    async fn send(
        &self,
        instance_id: &str,
        message: Outgoing,
        id: Option<&str>,
    ) -> Result<SentMessage>;

    /// Shows `presence` in `chat` (the send module's `delay`).
    async fn chat_presence(
        &self,
        instance_id: &str,
        chat: &Jid,
        presence: ChatPresence,
    ) -> Result<()>;

    /// Asks the phone for the history a Chatwoot import needs and stores
    /// what comes in its window through the provider's [`HistorySink`],
    /// returning once every request is answered (or `deadline` passed).
    /// The default has nothing to ask: the sandbox's history comes from its
    /// fixture (`POST /api/sandbox/:instance/history`).
    async fn fetch_history(
        &self,
        _instance_id: &str,
        _request: &HistoryRequest,
    ) -> Result<HistoryFetched> {
        Ok(HistoryFetched::default())
    }

    /// Unlinks the phone and wipes the session keys.
    async fn logout(&self, instance_id: &str) -> Result<()>;

    /// Logs out if needed and forgets the instance entirely (on delete).
    async fn remove(&self, instance_id: &str) -> Result<()>;
}
