//! The sandbox provider: a deterministic, network-free stand-in for WhatsApp.
//!
//! It is a product feature (try the Chatwoot integration without a phone) and
//! the way tests drive WhatsApp. Besides the `WhatsApp` trait it exposes the
//! "phone side" — pairing, going offline, incoming messages and calls,
//! receipts, and send faults — for the HTTP sandbox API to call. It applies
//! the instance settings as the `web` provider does, and records what they
//! make zapgate send (read marks, call rejections, presence).
//!
//! Ids and login codes derive from SHA-256 over the instance id and a
//! per-instance counter, so a test run is reproducible. Timestamps are wall
//! clock Unix seconds, but never go backwards within an instance, so the order
//! of events agrees with the order of their timestamps.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zapgate_core::{
    Error, Result,
    instance::{ConnectionState, InstanceSettings, SessionStatus},
    jid::{Jid, parse_phone_number},
    messages,
    time::{now_ms, now_secs},
    whatsapp::{
        CallEvent, CallStatus, ChatPresence, Event, EventInvite, EventSink, Extra, HistoryFetched,
        HistoryRequest, InboundMessage, LabelChange, LabelChangeKind, Location, LoginCode,
        LoginMethod, Media, MediaKind, Outgoing, PollVote, ReceiptStatus, SendContext, SentMessage,
        StatusPost, WhatsApp, WhatsAppEvent,
    },
};

use crate::{
    media::{CappedBuffer, MediaDownloads, Skipped},
    qr,
};

/// The media limit and downloads at once of a sandbox built without
/// [`SandboxProvider::with_downloads`] (the server's defaults).
const DEFAULT_MEDIA_LIMIT: usize = 64 * 1024 * 1024;
const DEFAULT_MEDIA_DOWNLOADS: usize = 4;

mod chat_state;
mod groups;
mod message_ops;

pub use message_ops::MEDIA_GONE;

pub use chat_state::{
    ChatFlags, ChatStateView, DirectoryEntry, HistoryAnchorEntry, HistoryAsked, ReadEntry,
};

/// The alphabet of pairing codes: no `0/O`, `1/I` or `U`, which people
/// misread when typing a code from one screen into another.
const PAIRING_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ23456789";
const PAIRING_CODE_LEN: usize = 8;

/// The outbox only serves inspection and receipts; a sandbox left running
/// behind a chat integration must not grow without bound.
pub const OUTBOX_LIMIT: usize = 10_000;

pub const NO_LOGIN_PENDING: &str =
    "No login pending: call GET /api/instance/connect/:instance first";
pub const PAIRING_CODE_OTHER_NUMBER: &str = "Pairing code was issued for another number";
pub const NOTHING_TO_RECONNECT: &str = "No paired session to reconnect: pair the phone first";
pub const SEND_FAILED: &str = "WhatsApp send failed (sandbox fault)";
pub const MESSAGE_NOT_FOUND: &str = "Message not found";
pub const NOTHING_TO_DELIVER: &str =
    "text, media or one of reaction, edit, revoke, location, contact, poll, call is required";

/// How `send` behaves, so clients can rehearse WhatsApp's failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendFault {
    #[default]
    Ok,
    /// The recipient has no WhatsApp account.
    NotOnWhatsApp,
    /// WhatsApp itself fails the send.
    Error,
}

impl SendFault {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "ok" => Self::Ok,
            "not_on_whatsapp" => Self::NotOnWhatsApp,
            "error" => Self::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotOnWhatsApp => "not_on_whatsapp",
            Self::Error => "error",
        }
    }
}

/// A message "arriving from WhatsApp", as the sandbox API describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxInbound {
    /// WhatsApp's message id; generated when absent. Reusing one simulates a
    /// redelivery.
    pub id: Option<String>,
    /// The sender's phone-number jid.
    pub from: Option<Jid>,
    /// The sender's hidden-number (`@lid`) jid.
    pub lid: Option<Jid>,
    pub push_name: Option<String>,
    pub text: Option<String>,
    /// Written by the account owner on the phone.
    pub from_me: bool,
    /// The group jid and its subject, for a group message.
    pub group: Option<(Jid, Option<String>)>,
    /// A status post (chat `status@broadcast`) rather than a chat message.
    pub status_post: bool,
    pub media: Option<Media>,
    /// Media still on "WhatsApp's servers", downloaded as the web provider
    /// downloads (see [`RemoteMedia`]).
    pub remote_media: Option<RemoteMedia>,
    pub quoted_id: Option<String>,
    /// A reaction, edit, revocation, location, contact card, poll or call.
    pub extra: Option<Extra>,
    /// Unix seconds; the sandbox clock when absent.
    pub timestamp: Option<i64>,
}

/// Media the sandbox fetches from `url` in place of WhatsApp's media
/// servers, through the same bounds as the web provider ([`MediaDownloads`]):
/// what a customer's large or endless file does can be rehearsed.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteMedia {
    pub kind: MediaKind,
    pub mimetype: String,
    pub file_name: Option<String>,
    pub url: String,
    /// The length WhatsApp declares for the file, when it does.
    pub declared_length: Option<u64>,
}

/// Something the API sent, as the sandbox recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub id: String,
    /// `text`, `media`, `reaction`, `edit`, `revoke`, `read`, `location`,
    /// `contact`, `poll`, `event`, `status`, `forward` or `deleteForMe`.
    pub kind: &'static str,
    /// The recipient, or the chat for `read`.
    pub to: String,
    /// The text, caption, reaction emoji, or the new text of an edit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<OutboxMedia>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_id: Option<String>,
    /// The message a reaction, edit, revoke, read, forward or delete refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    pub timestamp: i64,
    /// A reaction's target is our own message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_me: Option<bool>,
    /// A reaction's target's author, in a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The cards of a `contact` message, as the vCards sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vcards: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<OutboxPoll>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventInvite>,
    /// The jids a message @-mentions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// A private reply: the group of the quoted message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_chat: Option<String>,
    /// The link preview a text carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_preview: Option<OutboxLinkPreview>,
    /// A text status's background (`#RRGGBBAA`) and font.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<&'static str>,
    /// Who a status was encrypted to: the address book's contacts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
}

/// A text's link preview as sent; of its thumbnail, only the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxLinkPreview {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<OutboxThumbnail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxThumbnail {
    pub width: u32,
    pub height: u32,
    pub size: usize,
    /// The bytes are a JPEG (they start with its SOI marker).
    pub jpeg: bool,
}

/// A poll as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxPoll {
    pub question: String,
    pub options: Vec<String>,
    pub selectable: u32,
}

/// A chat presence zapgate showed (`delay` on sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatPresenceEntry {
    pub chat: String,
    /// `typing`, `recording` or `paused`.
    pub state: &'static str,
    pub timestamp: i64,
}

/// What became of a message the phone side sent in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    /// `false` when the instance's settings drop such messages
    /// (`ignoreGroupMessages`, `ignoreStatus`): acknowledged, not delivered.
    pub delivered: bool,
}

/// An incoming call, and what zapgate did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEntry {
    pub id: String,
    pub from: String,
    pub video: bool,
    /// `offer` (left ringing) or `rejected` (`autoRejectCalls`).
    pub status: &'static str,
    pub timestamp: i64,
}

/// Media metadata only: keeping the bytes would pin every upload in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMedia {
    pub kind: &'static str,
    pub mimetype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    pub size: usize,
    /// Lowercase hex, so a test can check the exact bytes went out.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PendingLogin {
    None,
    QrCode,
    /// Digits of the number the code was issued for.
    PairingCode(String),
}

/// One instance's simulated session.
#[derive(Debug)]
struct Slot {
    /// `None` until connect or resume: a fault set ahead of time must not
    /// make the instance look like it has a session.
    session: Option<SessionStatus>,
    pending: PendingLogin,
    outbox: VecDeque<OutboxEntry>,
    calls: VecDeque<CallEntry>,
    /// The presence the session last sent; `None` while not connected.
    presence: Option<&'static str>,
    /// "typing..." and the like shown in chats, oldest first.
    chat_presence: VecDeque<ChatPresenceEntry>,
    settings: InstanceSettings,
    /// Address book, read receipts, chat flags and blocks (see `chat_state`).
    chat_book: chat_state::ChatBook,
    fault: SendFault,
    /// Sends that still succeed before `fault` applies.
    fault_after: u32,
    /// Sends `fault` applies to before sends succeed again; `None`: until changed.
    fault_times: Option<u32>,
    /// Feeds message ids.
    counter: u64,
    /// Feeds login codes, so each connect shows a fresh code.
    attempts: u64,
    last_timestamp: i64,
}

impl Slot {
    fn new() -> Self {
        Self {
            session: None,
            pending: PendingLogin::None,
            outbox: VecDeque::new(),
            calls: VecDeque::new(),
            presence: None,
            chat_presence: VecDeque::new(),
            settings: InstanceSettings::default(),
            chat_book: chat_state::ChatBook::default(),
            fault: SendFault::Ok,
            fault_after: 0,
            fault_times: None,
            counter: 0,
            attempts: 0,
            last_timestamp: 0,
        }
    }

    fn state(&self) -> Option<ConnectionState> {
        self.session.as_ref().map(|s| s.state)
    }

    fn is_connected(&self) -> bool {
        self.state() == Some(ConnectionState::Connected)
    }

    /// How this send ends, counting it against the fault's plan.
    fn next_fault(&mut self) -> SendFault {
        if self.fault == SendFault::Ok {
            return SendFault::Ok;
        }
        if self.fault_after > 0 {
            self.fault_after -= 1;
            return SendFault::Ok;
        }
        let fault = self.fault;
        if let Some(times) = self.fault_times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.fault = SendFault::Ok;
                self.fault_times = None;
            }
        }
        fault
    }

    fn next_counter(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn next_timestamp(&mut self) -> i64 {
        self.last_timestamp = self.last_timestamp.max(now_secs());
        self.last_timestamp
    }

    /// Sets the state; a connected session announces its presence as
    /// `keepOnlineStatus` says, any other has none.
    fn set_session(&mut self, state: ConnectionState, number_jid: Option<String>) -> SessionStatus {
        let status = SessionStatus { state, number_jid };
        self.session = Some(status.clone());
        self.announce_presence();
        status
    }

    fn announce_presence(&mut self) {
        self.presence = self
            .is_connected()
            .then_some(if self.settings.keep_online_status {
                "available"
            } else {
                "unavailable"
            });
    }
}

/// The in-process WhatsApp. Cheap to share behind an `Arc`.
pub struct SandboxProvider {
    sink: Arc<dyn EventSink>,
    /// Mixed into every id and code; see [`SandboxProvider::with_salt`].
    salt: String,
    slots: Mutex<HashMap<String, Slot>>,
    downloads: MediaDownloads,
    /// Groups, profiles and privacy (see `groups`).
    world: Mutex<groups::World>,
    /// Sent and inline media, to be downloaded again (see `message_ops`).
    library: Mutex<message_ops::Library>,
}

impl SandboxProvider {
    pub fn new(sink: Arc<dyn EventSink>) -> Self {
        Self::with_salt(sink, "")
    }

    /// A provider whose ids differ from those of another salt. State lives
    /// in memory and counters restart with the process, so a server that
    /// persists message ids should pass something per boot (such as the
    /// start time); otherwise new ids would repeat old ones and look like
    /// redeliveries. Tests use [`SandboxProvider::new`] for fixed ids.
    pub fn with_salt(sink: Arc<dyn EventSink>, salt: impl Into<String>) -> Self {
        Self {
            sink,
            salt: salt.into(),
            slots: Mutex::new(HashMap::new()),
            downloads: MediaDownloads::new(DEFAULT_MEDIA_LIMIT, DEFAULT_MEDIA_DOWNLOADS),
            world: Mutex::default(),
            library: Mutex::default(),
        }
    }

    /// Remote media goes through `downloads` (the server's media limit and
    /// download bound).
    pub fn with_downloads(mut self, downloads: MediaDownloads) -> Self {
        self.downloads = downloads;
        self
    }

    /// Streams the file into a bounded buffer, as the web provider does.
    async fn download(&self, remote: &RemoteMedia) -> std::result::Result<Vec<u8>, Skipped> {
        let fetched = self
            .downloads
            .fetch(remote.declared_length, |buffer| {
                fetch_into(remote.url.clone(), buffer)
            })
            .await;
        if let Err(skipped) = &fetched {
            tracing::warn!(url = %remote.url, ?skipped, "sandbox media not downloaded");
        }
        fetched
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // Every mutation under this lock completes before anything that can
        // panic, so a poisoned map is still consistent.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in std::iter::once(&self.salt.as_bytes()).chain(parts) {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    /// Shaped like WhatsApp Web's QR payload: `2@<ref>,<noise key>,<identity
    /// key>,<adv secret>`, so clients that inspect the code are not surprised.
    fn qr_payload(&self, instance_id: &str, attempt: u64) -> String {
        let attempt = attempt.to_be_bytes();
        let part = |label: &str| {
            STANDARD.encode(self.digest(&[
                b"qr",
                label.as_bytes(),
                instance_id.as_bytes(),
                &attempt,
            ]))
        };
        format!(
            "2@{},{},{},{}",
            part("ref"),
            part("noise"),
            part("identity"),
            part("adv")
        )
    }

    fn pairing_code(&self, instance_id: &str, phone: &str, attempt: u64) -> String {
        let hash = self.digest(&[
            b"pair",
            instance_id.as_bytes(),
            phone.as_bytes(),
            &attempt.to_be_bytes(),
        ]);
        hash.iter()
            .take(PAIRING_CODE_LEN)
            .map(|b| char::from(PAIRING_ALPHABET[usize::from(*b) % PAIRING_ALPHABET.len()]))
            .collect()
    }

    /// Outgoing ids look like WhatsApp Web's own (`3EB0` + hex).
    fn sent_id(&self, instance_id: &str, counter: u64) -> String {
        let hash = self.digest(&[b"out", instance_id.as_bytes(), &counter.to_be_bytes()]);
        format!("3EB0{}", hex::encode_upper(&hash[..8]))
    }

    /// Incoming ids look like a phone's (`3A` + hex).
    fn inbound_id(&self, instance_id: &str, counter: u64) -> String {
        let hash = self.digest(&[b"in", instance_id.as_bytes(), &counter.to_be_bytes()]);
        format!("3A{}", hex::encode_upper(&hash[..9]))
    }

    async fn emit(&self, instance_id: &str, event: Event) -> Result<()> {
        self.sink
            .deliver(WhatsAppEvent {
                instance_id: instance_id.to_owned(),
                event,
            })
            .await
    }

    async fn emit_session(&self, instance_id: &str, status: &SessionStatus) -> Result<()> {
        self.emit(instance_id, Event::Session(status.clone())).await
    }

    /// The phone scans the QR code or types the pairing code.
    pub async fn pair(&self, instance_id: &str, phone_digits: &str) -> Result<SessionStatus> {
        let digits = parse_phone_number(phone_digits)?;
        let status = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(instance_id)
                .filter(|s| s.pending != PendingLogin::None)
                .ok_or_else(|| Error::conflict(NO_LOGIN_PENDING))?;
            if matches!(&slot.pending, PendingLogin::PairingCode(issued_for) if *issued_for != digits)
            {
                return Err(Error::bad_request(PAIRING_CODE_OTHER_NUMBER));
            }
            slot.pending = PendingLogin::None;
            slot.set_session(
                ConnectionState::Connected,
                Some(Jid::user(&digits).to_string()),
            )
        };
        self.emit_session(instance_id, &status).await?;
        Ok(status)
    }

    /// The phone goes offline. The link survives, so the number stays and
    /// [`SandboxProvider::reconnect`] (or a resume) brings it back.
    pub async fn disconnect(&self, instance_id: &str) -> Result<SessionStatus> {
        let status = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(instance_id)
                .filter(|s| s.is_connected())
                .ok_or_else(|| Error::conflict(messages::INSTANCE_NOT_CONNECTED))?;
            let number = slot.session.as_ref().and_then(|s| s.number_jid.clone());
            slot.set_session(ConnectionState::Disconnected, number)
        };
        self.emit_session(instance_id, &status).await?;
        Ok(status)
    }

    /// The phone comes back online. Already connected is not an error, so a
    /// retried call is harmless; it emits nothing then.
    pub async fn reconnect(&self, instance_id: &str) -> Result<SessionStatus> {
        let status = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(instance_id)
                .ok_or_else(|| Error::conflict(NOTHING_TO_RECONNECT))?;
            match slot.session.clone() {
                Some(status) if status.state == ConnectionState::Connected => return Ok(status),
                Some(SessionStatus {
                    state: ConnectionState::Disconnected,
                    number_jid: Some(number),
                }) => slot.set_session(ConnectionState::Connected, Some(number)),
                _ => return Err(Error::conflict(NOTHING_TO_RECONNECT)),
            }
        };
        self.emit_session(instance_id, &status).await?;
        Ok(status)
    }

    /// A message arrives from WhatsApp. Returns its id only once the sink
    /// accepted it: that is the acknowledgement a real provider gives.
    pub async fn inbound(&self, instance_id: &str, message: SandboxInbound) -> Result<Accepted> {
        let (message, settings) = self.build_inbound(instance_id, message).await?;
        let id = message.id.clone();
        if !settings.delivers(&message.chat) {
            return Ok(Accepted {
                id,
                delivered: false,
            });
        }
        let read = settings
            .reads(&message)
            .then(|| (message.chat.clone(), id.clone()));
        self.emit(instance_id, Event::Message(Box::new(message)))
            .await?;
        if let Some((chat, target_id)) = read {
            let mark = Outgoing::Read { chat, target_id };
            if let Err(err) = self.send(instance_id, mark, None).await {
                tracing::warn!(instance_id, error = %err, "could not mark a message read");
            }
        }
        Ok(Accepted {
            id,
            delivered: true,
        })
    }

    /// Messages of the phone's history, as WhatsApp's history sync hands
    /// them to a linked device: built like [`Self::inbound`] (media kept in
    /// the sandbox's media servers) but not emitted, since they are not
    /// news. Chats the instance's settings drop are left out.
    pub async fn history(
        &self,
        instance_id: &str,
        messages: Vec<SandboxInbound>,
    ) -> Result<Vec<InboundMessage>> {
        let mut built = Vec::with_capacity(messages.len());
        for message in messages {
            let (mut message, settings) = self.build_inbound(instance_id, message).await?;
            if settings.delivers(&message.chat) {
                // What is stored of the media is where it lives, not its bytes.
                message.media = None;
                built.push(message);
            }
        }
        Ok(built)
    }

    async fn build_inbound(
        &self,
        instance_id: &str,
        message: SandboxInbound,
    ) -> Result<(InboundMessage, InstanceSettings)> {
        let SandboxInbound {
            id,
            from,
            lid,
            push_name,
            text,
            from_me,
            group,
            status_post,
            mut media,
            remote_media,
            quoted_id,
            mut extra,
            timestamp,
        } = message;

        let contact = from
            .clone()
            .or_else(|| lid.clone())
            .ok_or_else(|| Error::bad_request("from or lid is required"))?;
        let text = text.filter(|t| !t.is_empty());
        if media.is_some() && remote_media.is_some() {
            return Err(Error::bad_request(
                "media and remote media cannot come together",
            ));
        }
        if text.is_none() && media.is_none() && remote_media.is_none() && extra.is_none() {
            return Err(Error::bad_request(NOTHING_TO_DELIVER));
        }
        if lid.as_ref().is_some_and(|l| !l.is_lid()) {
            return Err(Error::bad_request("lid must be an @lid id"));
        }
        if from.as_ref().is_some_and(|f| f.is_group() || f.is_lid()) {
            return Err(Error::bad_request("from must be a phone number id"));
        }
        if group.as_ref().is_some_and(|(g, _)| !g.is_group()) {
            return Err(Error::bad_request("group must be an @g.us id"));
        }
        if status_post && group.is_some() {
            return Err(Error::bad_request("a status post has no group"));
        }
        let id = id.filter(|i| !i.is_empty());
        let mut media_ref = media.as_ref().map(|m| self.keep(m));
        if let Some(remote) = remote_media {
            let fetched = self.download(&remote).await;
            media_ref = Some(self.remote_ref(&remote, fetched.as_deref().ok()));
            match fetched {
                Ok(data) => {
                    media = Some(Media {
                        kind: remote.kind,
                        mimetype: remote.mimetype,
                        file_name: remote.file_name,
                        data: data.into(),
                    });
                }
                // As the web provider: delivered without it, saying why.
                Err(skipped) => {
                    if extra.is_none() {
                        extra = Some(Extra::Unsupported {
                            kind: skipped.note(remote.kind, self.downloads.limit()),
                        });
                    }
                }
            }
        }

        let (message, settings) = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(instance_id)
                .filter(|s| s.is_connected())
                .ok_or_else(|| Error::bad_request(messages::INSTANCE_NOT_CONNECTED))?;
            let own = slot.session.as_ref().and_then(|s| s.number_jid.as_deref());
            let (sender, sender_lid) = if from_me {
                // Connected sessions always carry their number; the
                // fallback only guards against a resume without one.
                let own = own.map(Jid::parse).transpose()?.unwrap_or(contact.clone());
                // The lid given belongs to the contact, not to us.
                (own, None)
            } else {
                (contact.clone(), lid)
            };
            let timestamp = match timestamp {
                Some(ts) => ts,
                None => slot.next_timestamp(),
            };
            let id = match id {
                Some(id) => id,
                None => {
                    let n = slot.next_counter();
                    self.inbound_id(instance_id, n)
                }
            };
            let (chat, group_subject) = match group {
                Some((jid, subject)) => (jid, subject),
                None if status_post => (Jid::parse("status@broadcast")?, None),
                None => (contact, None),
            };
            let message = InboundMessage {
                id,
                chat,
                sender,
                sender_lid,
                push_name,
                from_me,
                group_subject,
                text,
                media,
                media_ref,
                quoted_id,
                extra,
                timestamp,
                source: None,
            };
            (message, slot.settings.clone())
        };
        Ok((message, settings))
    }

    /// A call rings. With `autoRejectCalls` zapgate declines it and sends
    /// `callRejectMessage` to the caller; either way the sink hears of it.
    /// The phone edits or deletes a label, or puts one on (or takes it off)
    /// a chat; WhatsApp syncs the change to this linked device.
    pub async fn label(
        &self,
        instance_id: &str,
        label_id: String,
        kind: LabelChangeKind,
    ) -> Result<LabelChange> {
        if !self
            .slots()
            .get(instance_id)
            .is_some_and(|s| s.is_connected())
        {
            return Err(Error::bad_request(messages::INSTANCE_NOT_CONNECTED));
        }
        let change = LabelChange {
            label_id,
            kind,
            timestamp_ms: now_ms(),
        };
        self.emit(instance_id, Event::Label(change.clone())).await?;
        Ok(change)
    }

    pub async fn call(&self, instance_id: &str, from: Jid, video: bool) -> Result<CallEntry> {
        if from.is_group() || from.server == zapgate_core::jid::BROADCAST_SERVER {
            return Err(Error::bad_request("from must be a person's id"));
        }
        let (mut call, settings) = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(instance_id)
                .filter(|s| s.is_connected())
                .ok_or_else(|| Error::bad_request(messages::INSTANCE_NOT_CONNECTED))?;
            let n = slot.next_counter();
            let hash = self.digest(&[b"call", instance_id.as_bytes(), &n.to_be_bytes()]);
            let call = CallEvent {
                id: hex::encode_upper(&hash[..16]),
                from,
                video,
                status: CallStatus::Offer,
                timestamp: slot.next_timestamp(),
            };
            (call, slot.settings.clone())
        };
        self.emit(instance_id, Event::Call(call.clone())).await?;
        if settings.auto_reject_calls {
            call.status = CallStatus::Rejected;
            self.emit(instance_id, Event::Call(call.clone())).await?;
            if let Some(text) = settings.call_reject_text() {
                let reply = Outgoing::Text {
                    to: call.from.clone(),
                    text: text.to_owned(),
                    quoted_id: None,
                    context: SendContext::default(),
                    preview: None,
                };
                if let Err(err) = self.send(instance_id, reply, None).await {
                    tracing::warn!(instance_id, error = %err, "could not send the call reject message");
                }
            }
        }
        let entry = CallEntry {
            id: call.id,
            from: call.from.to_string(),
            video,
            status: call.status.as_str(),
            timestamp: call.timestamp,
        };
        if let Some(slot) = self.slots().get_mut(instance_id) {
            if slot.calls.len() >= OUTBOX_LIMIT {
                slot.calls.pop_front();
            }
            slot.calls.push_back(entry.clone());
        }
        Ok(entry)
    }

    /// The recipient's phone reports a message we sent as delivered or read.
    pub async fn receipt(
        &self,
        instance_id: &str,
        message_id: &str,
        status: ReceiptStatus,
    ) -> Result<()> {
        let chat = self
            .slots()
            .get(instance_id)
            .and_then(|s| {
                s.outbox
                    .iter()
                    .find(|e| e.id == message_id)
                    .map(|e| e.to.clone())
            })
            .ok_or_else(|| Error::not_found(MESSAGE_NOT_FOUND))?;
        self.emit(
            instance_id,
            Event::Receipt {
                message_id: message_id.to_owned(),
                status,
                chat: Jid::parse(&chat).ok(),
            },
        )
        .await
    }

    /// `voter` votes `options` (by their text; none withdraws the vote) on
    /// the poll `poll_id` the instance sent, as the web provider reports a
    /// vote once decrypted: options by the SHA-256 of their text.
    pub async fn vote(
        &self,
        instance_id: &str,
        poll_id: &str,
        voter: Jid,
        options: &[String],
    ) -> Result<()> {
        let (chat, poll) = self
            .slots()
            .get(instance_id)
            .and_then(|s| {
                s.outbox
                    .iter()
                    .find(|e| e.id == poll_id)
                    .and_then(|e| Some((e.to.clone(), e.poll.clone()?)))
            })
            .ok_or_else(|| Error::not_found(MESSAGE_NOT_FOUND))?;
        // A phone offers only the poll's options, at most as many as it allows.
        if let Some(unknown) = options.iter().find(|o| !poll.options.contains(o)) {
            return Err(Error::bad_request(format!(
                "invalid body: {unknown} is not an option of the poll"
            )));
        }
        if options.len() > poll.selectable as usize {
            return Err(Error::bad_request(format!(
                "invalid body: the poll allows at most {} options",
                poll.selectable
            )));
        }
        let vote = PollVote {
            poll_id: poll_id.to_owned(),
            chat: Jid::parse(&chat)?,
            voter,
            options: options.iter().map(|o| PollVote::option_hash(o)).collect(),
            timestamp_ms: now_ms(),
        };
        self.emit(instance_id, Event::PollVote(vote)).await
    }

    /// Sends what `entry` builds (given the id and time) to `to`, through
    /// the fault plan, into the outbox.
    fn dispatch(
        &self,
        instance_id: &str,
        id: Option<&str>,
        to: &Jid,
        entry: impl FnOnce(String, i64) -> OutboxEntry,
    ) -> Result<(String, i64)> {
        let mut slots = self.slots();
        let slot = slots
            .get_mut(instance_id)
            .filter(|s| s.is_connected())
            .ok_or_else(|| Error::NotConnected)?;
        // WhatsApp drops a message whose id it already delivered: a resend
        // after a crash is the same message, not a second one.
        if let Some(existing) = id.and_then(|id| slot.outbox.iter().find(|e| e.id == id)) {
            return Ok((existing.id.clone(), existing.timestamp));
        }
        match slot.next_fault() {
            SendFault::Ok => {}
            SendFault::NotOnWhatsApp => {
                return Err(Error::bad_request(format!("Number not on WhatsApp: {to}")));
            }
            SendFault::Error => return Err(Error::BadGateway(SEND_FAILED.to_owned())),
        }
        let id = match id {
            Some(id) => id.to_owned(),
            None => {
                let n = slot.next_counter();
                self.sent_id(instance_id, n)
            }
        };
        let timestamp = slot.next_timestamp();
        if slot.outbox.len() >= OUTBOX_LIMIT {
            slot.outbox.pop_front();
        }
        slot.outbox.push_back(entry(id.clone(), timestamp));
        Ok((id, timestamp))
    }

    /// What the API sent through this instance, oldest first.
    pub fn outbox(&self, instance_id: &str) -> Vec<OutboxEntry> {
        self.slots()
            .get(instance_id)
            .map(|s| s.outbox.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The calls that rang on this instance, oldest first.
    pub fn calls(&self, instance_id: &str) -> Vec<CallEntry> {
        self.slots()
            .get(instance_id)
            .map(|s| s.calls.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The chat presences shown through this instance, oldest first.
    pub fn chat_presence(&self, instance_id: &str) -> Vec<ChatPresenceEntry> {
        self.slots()
            .get(instance_id)
            .map(|s| s.chat_presence.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The presence the session last sent (`available` or `unavailable`);
    /// `None` while it is not connected.
    pub fn presence(&self, instance_id: &str) -> Option<&'static str> {
        self.slots().get(instance_id).and_then(|s| s.presence)
    }

    /// Makes later sends fail (or succeed again) until changed.
    pub fn set_send_fault(&self, instance_id: &str, fault: SendFault) -> Result<()> {
        self.set_send_faults(instance_id, fault, 0, None)
    }

    /// Lets the next `after` sends succeed, then ends `times` sends (every
    /// one when `None`) with `fault`, then succeeds again: a failure in the
    /// middle of a run of sends.
    pub fn set_send_faults(
        &self,
        instance_id: &str,
        fault: SendFault,
        after: u32,
        times: Option<u32>,
    ) -> Result<()> {
        let mut slots = self.slots();
        let slot = slots
            .entry(instance_id.to_owned())
            .or_insert_with(Slot::new);
        slot.fault = if times == Some(0) {
            SendFault::Ok
        } else {
            fault
        };
        slot.fault_after = after;
        slot.fault_times = times;
        Ok(())
    }

    pub fn send_fault(&self, instance_id: &str) -> SendFault {
        self.slots()
            .get(instance_id)
            .map_or(SendFault::Ok, |s| s.fault)
    }
}

/// A login code as decided under the lock.
enum Issued {
    Ready(LoginCode),
    /// A QR payload still to be rendered.
    Qr(String),
}

fn recipient(message: &Outgoing) -> &Jid {
    match message {
        Outgoing::Text { to, .. }
        | Outgoing::Media { to, .. }
        | Outgoing::Reaction { to, .. }
        | Outgoing::Edit { to, .. }
        | Outgoing::Revoke { to, .. }
        | Outgoing::Location { to, .. }
        | Outgoing::Contacts { to, .. }
        | Outgoing::Poll { to, .. }
        | Outgoing::Event { to, .. }
        | Outgoing::Status { to, .. } => to,
        Outgoing::Read { chat, .. } => chat,
    }
}

impl OutboxEntry {
    /// An entry with only its id, time and recipient: the kind fills the rest.
    fn new(id: String, timestamp: i64, to: String) -> Self {
        Self {
            id,
            kind: "",
            to,
            text: None,
            media: None,
            quoted_id: None,
            target_id: None,
            timestamp,
            from_me: None,
            participant: None,
            location: None,
            vcards: Vec::new(),
            poll: None,
            event: None,
            mentions: Vec::new(),
            quoted_chat: None,
            link_preview: None,
            background_color: None,
            font: None,
            audience: Vec::new(),
        }
    }

    /// Records what the send carries around its content.
    fn quoting(&mut self, quoted_id: Option<String>, context: SendContext) {
        self.quoted_id = quoted_id;
        self.mentions = context.mentions.iter().map(Jid::to_string).collect();
        self.quoted_chat = context.quoted_chat.map(|c| c.to_string());
    }
}

fn outbox_entry(id: String, timestamp: i64, message: Outgoing) -> OutboxEntry {
    let mut entry = OutboxEntry::new(id, timestamp, recipient(&message).to_string());
    match message {
        Outgoing::Text {
            text,
            quoted_id,
            context,
            preview,
            ..
        } => {
            entry.kind = "text";
            entry.text = Some(text);
            entry.quoting(quoted_id, context);
            entry.link_preview = preview.map(|p| OutboxLinkPreview {
                url: p.url,
                title: p.title,
                description: p.description,
                thumbnail: p.thumbnail.map(|t| OutboxThumbnail {
                    width: t.width,
                    height: t.height,
                    size: t.jpeg.len(),
                    jpeg: t.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]),
                }),
            });
        }
        Outgoing::Media {
            media,
            caption,
            quoted_id,
            context,
            ..
        } => {
            entry.kind = "media";
            entry.text = caption;
            entry.quoting(quoted_id, context);
            entry.media = Some(outbox_media(&media));
        }
        Outgoing::Reaction {
            target_id,
            emoji,
            from_me,
            participant,
            ..
        } => {
            entry.kind = "reaction";
            entry.text = Some(emoji);
            entry.target_id = Some(target_id);
            entry.from_me = Some(from_me);
            entry.participant = participant.map(|p| p.to_string());
        }
        Outgoing::Edit {
            target_id, text, ..
        } => {
            entry.kind = "edit";
            entry.text = Some(text);
            entry.target_id = Some(target_id);
        }
        Outgoing::Revoke { target_id, .. } => {
            entry.kind = "revoke";
            entry.target_id = Some(target_id);
        }
        Outgoing::Read { target_id, .. } => {
            entry.kind = "read";
            entry.target_id = Some(target_id);
        }
        Outgoing::Location {
            location,
            quoted_id,
            context,
            ..
        } => {
            entry.kind = "location";
            entry.location = Some(location);
            entry.quoting(quoted_id, context);
        }
        Outgoing::Contacts {
            cards,
            quoted_id,
            context,
            ..
        } => {
            entry.kind = "contact";
            entry.vcards = cards.iter().map(|c| c.vcard()).collect();
            entry.quoting(quoted_id, context);
        }
        Outgoing::Poll {
            question,
            options,
            selectable,
            quoted_id,
            context,
            ..
        } => {
            entry.kind = "poll";
            entry.poll = Some(OutboxPoll {
                question,
                options,
                selectable,
            });
            entry.quoting(quoted_id, context);
        }
        Outgoing::Event {
            event,
            quoted_id,
            context,
            ..
        } => {
            entry.kind = "event";
            entry.event = Some(event);
            entry.quoting(quoted_id, context);
        }
        Outgoing::Status { post, .. } => {
            entry.kind = "status";
            match post {
                StatusPost::Text {
                    text,
                    background_argb,
                    font,
                } => {
                    entry.text = Some(text);
                    let [a, r, g, b] = background_argb.to_be_bytes();
                    entry.background_color = Some(format!("#{r:02X}{g:02X}{b:02X}{a:02X}"));
                    entry.font = Some(font.as_str());
                }
                StatusPost::Media { media, caption } => {
                    entry.text = caption;
                    entry.media = Some(outbox_media(&media));
                }
            }
        }
    }
    entry
}

/// What the outbox keeps of sent media.
fn outbox_media(media: &Media) -> OutboxMedia {
    OutboxMedia {
        kind: media.kind.as_str(),
        size: media.data.len(),
        sha256: hex::encode(Sha256::digest(&media.data)),
        mimetype: media.mimetype.clone(),
        file_name: media.file_name.clone(),
    }
}

#[async_trait]
impl WhatsApp for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    /// The sandbox phone's history is what the fixture loaded: the request
    /// is recorded (`GET /api/sandbox/:instance/chats`) and answered with
    /// nothing new.
    async fn fetch_history(
        &self,
        instance_id: &str,
        request: &HistoryRequest,
    ) -> Result<HistoryFetched> {
        self.record_history_request(instance_id, request)?;
        Ok(HistoryFetched {
            requests: request.anchors.len(),
            answered: request.anchors.len(),
            stored: 0,
        })
    }

    async fn connect(&self, instance_id: &str, method: LoginMethod) -> Result<LoginCode> {
        let (status, code) = {
            let mut slots = self.slots();
            let slot = slots
                .entry(instance_id.to_owned())
                .or_insert_with(Slot::new);
            if slot.is_connected() {
                return Ok(LoginCode::AlreadyConnected);
            }
            slot.attempts += 1;
            let attempt = slot.attempts;
            let code = match method {
                LoginMethod::QrCode => {
                    slot.pending = PendingLogin::QrCode;
                    // Rendering waits until the lock is released.
                    Issued::Qr(self.qr_payload(instance_id, attempt))
                }
                LoginMethod::PairingCode { phone } => {
                    // Normalised so `pair` can compare digits to digits.
                    let digits = parse_phone_number(&phone)?;
                    let code = self.pairing_code(instance_id, &digits, attempt);
                    slot.pending = PendingLogin::PairingCode(digits);
                    Issued::Ready(LoginCode::PairingCode(code))
                }
            };
            // A stale number stays until another phone pairs: it is what the
            // session was last linked to.
            let number = slot.session.as_ref().and_then(|s| s.number_jid.clone());
            (slot.set_session(ConnectionState::Connecting, number), code)
        };
        let code = match code {
            Issued::Ready(code) => code,
            Issued::Qr(payload) => LoginCode::QrCode {
                png_data_url: qr::png_data_url(&payload)?,
                code: payload,
            },
        };
        self.emit_session(instance_id, &status).await?;
        Ok(code)
    }

    async fn resume(&self, instance_id: &str, status: &SessionStatus) -> Result<()> {
        let Some(number) = status.number_jid.clone() else {
            return Ok(());
        };
        if status.state == ConnectionState::LoggedOut {
            return Ok(());
        }
        let resumed = {
            let mut slots = self.slots();
            let slot = slots
                .entry(instance_id.to_owned())
                .or_insert_with(Slot::new);
            let target = SessionStatus {
                state: ConnectionState::Connected,
                number_jid: Some(number),
            };
            if slot.session.as_ref() == Some(&target) {
                return Ok(());
            }
            slot.pending = PendingLogin::None;
            slot.set_session(target.state, target.number_jid)
        };
        self.emit_session(instance_id, &resumed).await
    }

    async fn apply_settings(&self, instance_id: &str, settings: &InstanceSettings) {
        let mut slots = self.slots();
        let slot = slots
            .entry(instance_id.to_owned())
            .or_insert_with(Slot::new);
        slot.settings = settings.clone();
        slot.announce_presence();
    }

    fn status(&self, instance_id: &str) -> Option<SessionStatus> {
        self.slots()
            .get(instance_id)
            .and_then(|s| s.session.clone())
    }

    async fn send(
        &self,
        instance_id: &str,
        message: Outgoing,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        let media = match &message {
            Outgoing::Media { media, .. } => Some(self.keep(media)),
            _ => None,
        };
        let to = recipient(&message).clone();
        // A status goes to the address book, as the web provider's: none
        // there, and WhatsApp has no one to encrypt it to.
        let audience = match &message {
            Outgoing::Status { .. } => {
                let audience: Vec<String> =
                    zapgate_core::chat_state::ChatState::contacts(self, instance_id)
                        .await?
                        .into_iter()
                        .map(|c| c.jid.to_string())
                        .collect();
                if audience.is_empty() {
                    return Err(Error::bad_request(
                        "WhatsApp refused the message: cannot send status with no recipients",
                    ));
                }
                audience
            }
            _ => Vec::new(),
        };
        let (id, timestamp) = self.dispatch(instance_id, id, &to, |id, timestamp| {
            let mut entry = outbox_entry(id, timestamp, message);
            entry.audience = audience;
            entry
        })?;
        Ok(SentMessage {
            id,
            timestamp,
            media,
        })
    }

    async fn chat_presence(
        &self,
        instance_id: &str,
        chat: &Jid,
        presence: ChatPresence,
    ) -> Result<()> {
        let mut slots = self.slots();
        let slot = slots
            .get_mut(instance_id)
            .filter(|s| s.is_connected())
            .ok_or(Error::NotConnected)?;
        if slot.chat_presence.len() >= OUTBOX_LIMIT {
            slot.chat_presence.pop_front();
        }
        let timestamp = slot.next_timestamp();
        slot.chat_presence.push_back(ChatPresenceEntry {
            chat: chat.to_string(),
            state: presence.as_str(),
            timestamp,
        });
        Ok(())
    }

    async fn logout(&self, instance_id: &str) -> Result<()> {
        let status = {
            let mut slots = self.slots();
            let slot = slots
                .entry(instance_id.to_owned())
                .or_insert_with(Slot::new);
            slot.pending = PendingLogin::None;
            slot.set_session(ConnectionState::LoggedOut, None)
        };
        self.emit_session(instance_id, &status).await
    }

    async fn remove(&self, instance_id: &str) -> Result<()> {
        self.slots().remove(instance_id);
        Ok(())
    }
}

/// `url`'s body, chunk by chunk, into `buffer` (which stops it at the limit).
async fn fetch_into(
    url: String,
    mut buffer: CappedBuffer,
) -> std::result::Result<CappedBuffer, String> {
    use std::io::Write;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        buffer.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    Ok(buffer)
}
