//! The sandbox phone: pair, go offline, send messages, calls and receipts
//! "from WhatsApp", read what zapgate sent, inject send failures. Mounted only
//! when the sandbox is the provider; either token, ownership checked.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, State},
    routing::{get, post},
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zapgate_core::{
    Error,
    instance::{Instance, SessionStatus},
    jid::{Jid, parse_phone_number},
    store::Principal,
    whatsapp::{Extra, LabelChangeKind, Media, MediaKind, ReceiptStatus},
};
use zapgate_whatsapp::{
    CallEntry, ChatPresenceEntry, ChatStateView, DirectoryEntry, OutboxEntry, RemoteMedia,
    SandboxInbound, SandboxProvider, SendFault,
};

use crate::{
    AppState,
    auth::Caller,
    envelope::{ErrorOut, MessageOut},
    error::ApiResult,
    extract::JsonBody,
};

const MAX_TEXT_LEN: usize = 65_536;
const MAX_ID_LEN: usize = 128;

pub fn router(media_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/api/sandbox/{instance}/pair", post(pair))
        .route("/api/sandbox/{instance}/disconnect", post(disconnect))
        .route("/api/sandbox/{instance}/reconnect", post(reconnect))
        .route(
            "/api/sandbox/{instance}/inbound",
            post(inbound).layer(DefaultBodyLimit::max(media_body_limit)),
        )
        .route(
            "/api/sandbox/{instance}/history",
            post(history).layer(DefaultBodyLimit::max(media_body_limit)),
        )
        .route("/api/sandbox/{instance}/receipt", post(receipt))
        .route("/api/sandbox/{instance}/pollVote", post(poll_vote))
        .route("/api/sandbox/{instance}/call", post(call))
        .route("/api/sandbox/{instance}/label", post(label))
        .route("/api/sandbox/{instance}/outbox", get(outbox))
        .route("/api/sandbox/{instance}/faults", post(faults))
        .route("/api/sandbox/{instance}/community", post(community))
        .route("/api/sandbox/{instance}/directory", post(directory))
        .route("/api/sandbox/{instance}/chats", get(chats))
}

/// People per `directory` call.
const MAX_DIRECTORY_ENTRIES: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectoryPersonIn {
    /// Phone number in international format.
    #[schema(value_type = crate::openapi::PhoneNumber)]
    number: String,
    /// The name in the account's address book.
    name: Option<String>,
    /// The name the person chose.
    push_name: Option<String>,
    #[serde(default)]
    business: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryIn {
    /// 1 to 1000 people: on WhatsApp, and in the account's address book.
    #[schema(min_items = 1, max_items = 1000)]
    contacts: Vec<DirectoryPersonIn>,
}

/// Puts people on "WhatsApp" and in the account's address book: what
/// `chat/contacts` lists and `chat/checkNumbers` finds.
#[utoipa::path(post, path = "/api/sandbox/{instance}/directory", tag = "sandbox",
    params(("instance" = String, Path)), request_body = DirectoryIn,
    responses((status = 200, body = MessageOut), (status = 400, body = ErrorOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn directory(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<DirectoryIn>,
) -> ApiResult<Json<MessageOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    if !(1..=MAX_DIRECTORY_ENTRIES).contains(&body.contacts.len()) {
        return Err(Error::bad_request(format!(
            "invalid body: contacts must list 1 to {MAX_DIRECTORY_ENTRIES} people"
        ))
        .into());
    }
    let name_ok = |n: &Option<String>| n.as_ref().is_none_or(|n| n.chars().count() <= 100);
    let mut entries = Vec::with_capacity(body.contacts.len());
    for (i, person) in body.contacts.into_iter().enumerate() {
        let number = parse_phone_number(&person.number).map_err(|_| {
            Error::bad_request(format!(
                "invalid body: contacts[{i}].number is not a phone number"
            ))
        })?;
        if !name_ok(&person.name) || !name_ok(&person.push_name) {
            return Err(Error::bad_request(format!(
                "invalid body: contacts[{i}] names must be at most 100 characters"
            ))
            .into());
        }
        entries.push(DirectoryEntry {
            number,
            name: person.name,
            push_name: person.push_name,
            business: person.business,
        });
    }
    let added = entries.len();
    sandbox.add_to_directory(&instance.id, entries);
    Ok(Json(MessageOut::new(format!(
        "{added} contacts in the directory"
    ))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatsOut {
    success: bool,
    /// The address book, the read receipts sent, each chat's flags, the
    /// blocked users and the history requests of imports
    /// (`historyRequests`: `since`, `anchors` of `chat`, `id`, `fromMe`,
    /// `timestamp`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    state: ChatStateView,
    /// The account presence last sent (`available` or `unavailable`).
    presence: Option<&'static str>,
}

/// The chat state zapgate set through this instance.
#[utoipa::path(get, path = "/api/sandbox/{instance}/chats", tag = "sandbox",
    params(("instance" = String, Path)),
    responses((status = 200, body = ChatsOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn chats(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ChatsOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    Ok(Json(ChatsOut {
        success: true,
        state: sandbox.chat_state_view(&instance.id),
        presence: sandbox.presence(&instance.id),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommunityIn {
    #[schema(required = true, nullable = false, min_length = 1, max_length = 100)]
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommunityOut {
    success: bool,
    community_jid: String,
}

/// The phone creates a community, with the account as its admin (RyzeAPI
/// has no route for it; `POST /api/group/create` with `communityJid` adds
/// groups to it).
#[utoipa::path(post, path = "/api/sandbox/{instance}/community", tag = "sandbox",
    params(("instance" = String, Path)), request_body = CommunityIn,
    responses((status = 200, body = CommunityOut), (status = 400, body = ErrorOut), (status = 404, body = ErrorOut), (status = 503, body = ErrorOut)),
    security(("token" = [])))]
async fn community(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<CommunityIn>,
) -> ApiResult<Json<CommunityOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let name = body
        .name
        .filter(|n| !n.trim().is_empty() && n.chars().count() <= 100)
        .ok_or_else(|| Error::bad_request("invalid body: name must be 1 to 100 characters"))?;
    let info = sandbox.create_community(&instance.id, &name).await?;
    Ok(Json(CommunityOut {
        success: true,
        community_jid: info.jid.to_string(),
    }))
}

/// The sandbox and the caller's instance.
async fn resolve(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> ApiResult<(Arc<SandboxProvider>, Instance)> {
    let instance = state.instances.visible(principal, name).await?;
    let sandbox = state
        .sandbox
        .clone()
        .ok_or_else(|| Error::not_found(zapgate_core::messages::ROUTE_NOT_FOUND))?;
    Ok((sandbox, instance))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    success: bool,
    message: &'static str,
    status: &'static str,
    number_jid: Option<String>,
}

fn session_out(message: &'static str, status: SessionStatus) -> Json<SessionOut> {
    Json(SessionOut {
        success: true,
        message,
        status: status.state.as_str(),
        number_jid: status.number_jid,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PairIn {
    /// The phone's number in international format.
    #[schema(value_type = crate::openapi::PhoneNumber)]
    number: String,
}

/// The phone scans the QR code (or types the pairing code).
#[utoipa::path(post, path = "/api/sandbox/{instance}/pair", tag = "sandbox",
    params(("instance" = String, Path)), request_body = PairIn,
    responses((status = 200, body = SessionOut), (status = 404, body = ErrorOut), (status = 409, description = "No login pending", body = ErrorOut)),
    security(("token" = [])))]
async fn pair(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PairIn>,
) -> ApiResult<Json<SessionOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let phone = parse_phone_number(&body.number)?;
    let status = sandbox.pair(&instance.id, &phone).await?;
    Ok(session_out("Phone paired", status))
}

/// The phone goes offline; the link is kept.
#[utoipa::path(post, path = "/api/sandbox/{instance}/disconnect", tag = "sandbox",
    params(("instance" = String, Path)),
    responses((status = 200, body = SessionOut), (status = 404, body = ErrorOut), (status = 409, body = ErrorOut)),
    security(("token" = [])))]
async fn disconnect(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<SessionOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let status = sandbox.disconnect(&instance.id).await?;
    Ok(session_out("Phone disconnected", status))
}

/// The phone comes back online.
#[utoipa::path(post, path = "/api/sandbox/{instance}/reconnect", tag = "sandbox",
    params(("instance" = String, Path)),
    responses((status = 200, body = SessionOut), (status = 404, body = ErrorOut), (status = 409, body = ErrorOut)),
    security(("token" = [])))]
async fn reconnect(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<SessionOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let status = sandbox.reconnect(&instance.id).await?;
    Ok(session_out("Phone reconnected", status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundIn {
    /// WhatsApp's message id; generated when absent. The same id twice is a redelivery.
    id: Option<String>,
    /// The sender's number; may be left out when `lid` is given.
    from: Option<String>,
    push_name: Option<String>,
    text: Option<String>,
    #[serde(default)]
    from_me: bool,
    group: Option<GroupIn>,
    /// A status post by `from` (chat `status@broadcast`) instead of a chat message.
    #[serde(default)]
    status_post: bool,
    media: Option<MediaIn>,
    quoted_id: Option<String>,
    /// A hidden-number id, `<digits>@lid`.
    lid: Option<String>,
    /// `{"targetId","emoji"}`: a reaction (empty emoji removes it).
    reaction: Option<ReactionIn>,
    /// `{"targetId","text"}`: the sender edited an earlier message.
    edit: Option<EditIn>,
    /// `{"targetId"}`: the sender deleted an earlier message for everyone.
    revoke: Option<RevokeIn>,
    location: Option<LocationIn>,
    contact: Option<ContactIn>,
    poll: Option<PollIn>,
    /// `{"video":false}`: a missed call.
    call: Option<CallIn>,
    /// Unix seconds.
    timestamp: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = sandbox::ReactionIn)]
pub struct ReactionIn {
    target_id: String,
    emoji: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = sandbox::EditIn)]
#[serde(rename_all = "camelCase")]
pub struct EditIn {
    target_id: String,
    text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeIn {
    target_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = sandbox::LocationIn)]
pub struct LocationIn {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = sandbox::ContactIn)]
pub struct ContactIn {
    name: String,
    vcard: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = sandbox::PollIn)]
pub struct PollIn {
    question: String,
    options: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CallIn {
    #[serde(default)]
    video: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GroupIn {
    jid: String,
    subject: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = sandbox::MediaIn)]
pub struct MediaIn {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    #[serde(rename = "type")]
    kind: String,
    mimetype: String,
    file_name: Option<String>,
    /// The file itself; or `url`.
    base64: Option<String>,
    /// Where the file is, in place of WhatsApp's media servers: zapgate
    /// downloads it as it downloads real media (streamed, stopped at the
    /// media limit, a bounded number at once).
    url: Option<String>,
    /// With `url`: the length WhatsApp declares; over the media limit, the
    /// file is never downloaded and the message says why.
    file_length: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundOut {
    success: bool,
    id: String,
    /// `false` when the instance's settings drop it (`ignoreGroupMessages`,
    /// `ignoreStatus`): acknowledged to WhatsApp, delivered nowhere.
    delivered: bool,
}

fn bounded(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.chars().count() > max => Err(Error::bad_request(format!(
            "Invalid {field}: at most {max} characters"
        ))),
        other => Ok(other),
    }
}

impl InboundIn {
    /// At most one of the special kinds, bounded.
    fn extra(&mut self) -> Result<Option<Extra>, Error> {
        let mut extras = Vec::new();
        if let Some(r) = self.reaction.take() {
            extras.push(Extra::Reaction {
                target_id: bounded("reaction.targetId", Some(r.target_id), MAX_ID_LEN)?
                    .unwrap_or_default(),
                emoji: bounded("reaction.emoji", Some(r.emoji), 16)?.unwrap_or_default(),
            });
        }
        if let Some(e) = self.edit.take() {
            extras.push(Extra::Edit {
                target_id: bounded("edit.targetId", Some(e.target_id), MAX_ID_LEN)?
                    .unwrap_or_default(),
                text: bounded("edit.text", Some(e.text), MAX_TEXT_LEN)?.unwrap_or_default(),
            });
        }
        if let Some(r) = self.revoke.take() {
            extras.push(Extra::Revoke {
                target_id: bounded("revoke.targetId", Some(r.target_id), MAX_ID_LEN)?
                    .unwrap_or_default(),
            });
        }
        if let Some(l) = self.location.take() {
            if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
                return Err(Error::bad_request(
                    "Invalid location: latitude -90..90, longitude -180..180",
                ));
            }
            extras.push(Extra::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: bounded("location.name", l.name, 256)?,
            });
        }
        if let Some(c) = self.contact.take() {
            extras.push(Extra::ContactCard {
                name: bounded("contact.name", Some(c.name), 256)?.unwrap_or_default(),
                vcard: bounded("contact.vcard", c.vcard, 8192)?,
            });
        }
        if let Some(p) = self.poll.take() {
            if p.options.len() > 12 {
                return Err(Error::bad_request(
                    "Invalid poll.options: at most 12 options",
                ));
            }
            let options = p
                .options
                .into_iter()
                .map(|o| bounded("poll.options", Some(o), 256).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()?;
            extras.push(Extra::Poll {
                question: bounded("poll.question", Some(p.question), 1024)?.unwrap_or_default(),
                options,
            });
        }
        if let Some(c) = self.call.take() {
            extras.push(Extra::Call { video: c.video });
        }
        if extras.len() > 1 {
            return Err(Error::bad_request(
                "Only one of reaction, edit, revoke, location, contact, poll, call per message",
            ));
        }
        Ok(extras.pop())
    }

    fn into_message(mut self) -> Result<SandboxInbound, Error> {
        let extra = self.extra()?;
        let group = match self.group {
            Some(g) => {
                let jid = Jid::parse(&g.jid)?;
                if !jid.is_group() {
                    return Err(Error::bad_request(
                        "Invalid group.jid: a <id>@g.us id is required",
                    ));
                }
                Some((jid, bounded("group.subject", g.subject, 256)?))
            }
            None => None,
        };
        let (media, remote_media) = match self.media {
            Some(m) => {
                let kind = MediaKind::parse(&m.kind).ok_or_else(|| {
                    Error::bad_request(
                        "Invalid media.type: image, video, audio, document or sticker",
                    )
                })?;
                let mimetype =
                    bounded("media.mimetype", Some(m.mimetype), 128)?.unwrap_or_default();
                let file_name = bounded("media.fileName", m.file_name, 256)?;
                match (m.base64, m.url) {
                    (Some(base64), None) => {
                        if m.file_length.is_some() {
                            return Err(Error::bad_request(
                                "Invalid media.fileLength: it goes with media.url",
                            ));
                        }
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(base64.trim())
                            .map_err(|_| Error::bad_request("Invalid media.base64: not base64"))?;
                        let media = Media {
                            kind,
                            mimetype,
                            file_name,
                            data: data.into(),
                        };
                        (Some(media), None)
                    }
                    (None, Some(url)) => {
                        let url = bounded("media.url", Some(url), 2048)?.unwrap_or_default();
                        if !url.starts_with("http://") && !url.starts_with("https://") {
                            return Err(Error::bad_request(
                                "Invalid media.url: an http(s) URL is required",
                            ));
                        }
                        let remote = RemoteMedia {
                            kind,
                            mimetype,
                            file_name,
                            url,
                            declared_length: m.file_length,
                        };
                        (None, Some(remote))
                    }
                    _ => {
                        return Err(Error::bad_request(
                            "Invalid media: one of media.base64 or media.url is required",
                        ));
                    }
                }
            }
            None => (None, None),
        };
        Ok(SandboxInbound {
            id: bounded("id", self.id, MAX_ID_LEN)?,
            from: self.from.as_deref().map(Jid::parse).transpose()?,
            lid: self.lid.as_deref().map(Jid::parse).transpose()?,
            push_name: bounded("pushName", self.push_name, 256)?,
            text: bounded("text", self.text, MAX_TEXT_LEN)?,
            from_me: self.from_me,
            group,
            status_post: self.status_post,
            media,
            remote_media,
            quoted_id: bounded("quotedId", self.quoted_id, MAX_ID_LEN)?,
            extra,
            timestamp: self.timestamp,
        })
    }
}

/// A message arrives from WhatsApp. Answers once zapgate has taken it.
#[utoipa::path(post, path = "/api/sandbox/{instance}/inbound", tag = "sandbox",
    params(("instance" = String, Path)), request_body = InboundIn,
    responses((status = 200, body = InboundOut), (status = 400, body = ErrorOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn inbound(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<InboundIn>,
) -> ApiResult<Json<InboundOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let accepted = sandbox.inbound(&instance.id, body.into_message()?).await?;
    Ok(Json(InboundOut {
        success: true,
        id: accepted.id,
        delivered: accepted.delivered,
    }))
}

/// Messages per `history` call.
const MAX_HISTORY_MESSAGES: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct HistoryIn {
    /// Messages of the phone's past, each as `inbound` takes it, with its
    /// `timestamp` (at most 1000 a call).
    messages: Vec<InboundIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryOut {
    success: bool,
    /// Messages kept (those of chats the instance's settings drop are not).
    stored: usize,
}

/// WhatsApp's history sync hands the linked device the phone's past
/// messages: they go to the message store only (no event, no webhook, no
/// Chatwoot post), where a Chatwoot history import reads them.
#[utoipa::path(post, path = "/api/sandbox/{instance}/history", tag = "sandbox",
    params(("instance" = String, Path)), request_body = HistoryIn,
    responses(
        (status = 200, body = HistoryOut),
        (status = 400, description = "Invalid messages[i]...: ... / at most 1000 messages", body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 503, description = "the message store is off", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn history(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<HistoryIn>,
) -> ApiResult<Json<HistoryOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    if body.messages.len() > MAX_HISTORY_MESSAGES {
        return Err(Error::bad_request(format!(
            "Invalid messages: at most {MAX_HISTORY_MESSAGES} messages"
        ))
        .into());
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, message) in body.messages.into_iter().enumerate() {
        if message.timestamp.is_none() {
            return Err(Error::bad_request(format!(
                "Invalid messages[{i}].timestamp: history messages need their time"
            ))
            .into());
        }
        messages.push(message.into_message()?);
    }
    let built = sandbox.history(&instance.id, messages).await?;
    let stored = state.events.store_history(&instance, &built).await?;
    Ok(Json(HistoryOut {
        success: true,
        stored,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReceiptIn {
    id: String,
    /// `delivered` or `read`.
    #[schema(pattern = "^(delivered|read)$")]
    status: String,
}

/// The recipient's phone reports a sent message as delivered or read.
#[utoipa::path(post, path = "/api/sandbox/{instance}/receipt", tag = "sandbox",
    params(("instance" = String, Path)), request_body = ReceiptIn,
    responses((status = 200, body = MessageOut), (status = 400, body = ErrorOut), (status = 404, description = "Message not found", body = ErrorOut)),
    security(("token" = [])))]
async fn receipt(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ReceiptIn>,
) -> ApiResult<Json<MessageOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let status = match body.status.as_str() {
        "delivered" => ReceiptStatus::Delivered,
        "read" => ReceiptStatus::Read,
        _ => return Err(Error::bad_request("Invalid status: delivered or read").into()),
    };
    sandbox.receipt(&instance.id, &body.id, status).await?;
    Ok(Json(MessageOut::new("Receipt delivered")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollVoteIn {
    /// The id of a poll the instance sent.
    poll_id: String,
    /// The voter: a number or a JID (`@lid` too).
    #[schema(value_type = crate::openapi::Recipient)]
    from: String,
    /// The options picked, by their text (at most the poll's number of
    /// options); empty withdraws the vote.
    #[schema(max_items = 12)]
    options: Vec<String>,
}

/// A contact votes on a poll the instance sent; a later vote replaces the
/// earlier one. The sandbox hands the vote over as the `web` provider does
/// once it has decrypted it.
#[utoipa::path(post, path = "/api/sandbox/{instance}/pollVote", tag = "sandbox",
    params(("instance" = String, Path)), request_body = PollVoteIn,
    responses((status = 200, body = MessageOut), (status = 400, body = ErrorOut), (status = 404, description = "Message not found", body = ErrorOut)),
    security(("token" = [])))]
async fn poll_vote(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PollVoteIn>,
) -> ApiResult<Json<MessageOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let voter = Jid::parse(&body.from)?;
    sandbox
        .vote(&instance.id, &body.poll_id, voter, &body.options)
        .await?;
    Ok(Json(MessageOut::new("Vote delivered")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RingIn {
    /// The caller: a number or a person's JID (not a group or broadcast).
    #[schema(
        pattern = r"^\s*(\+?[1-9][0-9]{7,14}|[A-Za-z0-9.:-]{1,64}@(s\.whatsapp\.net|lid|newsletter))\s*$"
    )]
    from: String,
    #[serde(default)]
    video: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RingOut {
    success: bool,
    #[schema(value_type = Object)]
    call: CallEntry,
}

/// A call rings on the phone. With `autoRejectCalls` zapgate rejects it
/// (`status: rejected`) and sends `callRejectMessage` to the caller.
#[utoipa::path(post, path = "/api/sandbox/{instance}/call", tag = "sandbox",
    params(("instance" = String, Path)), request_body = RingIn,
    responses((status = 200, body = RingOut), (status = 400, body = ErrorOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn call(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RingIn>,
) -> ApiResult<Json<RingOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let from = Jid::parse(&body.from)?;
    let call = sandbox.call(&instance.id, from, body.video).await?;
    Ok(Json(RingOut {
        success: true,
        call,
    }))
}

/// Longest label name accepted (WhatsApp's own editor stops well before).
const MAX_LABEL_NAME_LEN: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelIn {
    /// WhatsApp's label id (per account).
    #[schema(min_length = 1, max_length = 128)]
    label_id: String,
    /// An edit: the label's name now.
    name: Option<String>,
    /// An edit: WhatsApp's colour index.
    color: Option<i32>,
    /// An edit that deletes the label.
    #[serde(default)]
    deleted: bool,
    /// A chat (number or JID) the label is put on, or taken off with
    /// `labeled: false`; without it the change is an edit of the label.
    chat: Option<String>,
    labeled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelOut {
    success: bool,
    /// `edit`, `delete`, `add` or `remove`, as `label.update` reports it.
    r#type: &'static str,
    label_id: String,
}

/// The phone edits or deletes a label, or puts one on or takes it off a
/// chat; zapgate reports it as `label.update`.
#[utoipa::path(post, path = "/api/sandbox/{instance}/label", tag = "sandbox",
    params(("instance" = String, Path)), request_body = LabelIn,
    responses((status = 200, body = LabelOut), (status = 400, body = ErrorOut), (status = 401, body = ErrorOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn label(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<LabelIn>,
) -> ApiResult<Json<LabelOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    if body.label_id.is_empty() || body.label_id.chars().count() > MAX_ID_LEN {
        return Err(Error::bad_request(format!(
            "invalid body: labelId must be 1 to {MAX_ID_LEN} characters"
        ))
        .into());
    }
    let kind = match body.chat {
        Some(chat) => {
            let edit_field = [
                ("name", body.name.is_some()),
                ("color", body.color.is_some()),
                ("deleted", body.deleted),
            ]
            .into_iter()
            .find_map(|(field, set)| set.then_some(field));
            if let Some(field) = edit_field {
                return Err(Error::bad_request(format!(
                    "invalid body: {field} edits a label and cannot go with chat"
                ))
                .into());
            }
            LabelChangeKind::Chat {
                chat: Jid::parse(&chat)?,
                labeled: body.labeled.unwrap_or(true),
            }
        }
        None => {
            if body.labeled.is_some() {
                return Err(Error::bad_request("invalid body: labeled needs chat").into());
            }
            if body
                .name
                .as_ref()
                .is_some_and(|n| n.chars().count() > MAX_LABEL_NAME_LEN)
            {
                return Err(Error::bad_request(format!(
                    "invalid body: name must be at most {MAX_LABEL_NAME_LEN} characters"
                ))
                .into());
            }
            LabelChangeKind::Edit {
                name: body.name,
                color: body.color,
                deleted: body.deleted,
            }
        }
    };
    let change = sandbox.label(&instance.id, body.label_id, kind).await?;
    Ok(Json(LabelOut {
        success: true,
        r#type: change.kind.as_str(),
        label_id: change.label_id,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxOut {
    success: bool,
    /// Everything sent to WhatsApp for this instance, oldest first.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<OutboxEntry>,
    /// Calls that rang, oldest first, with what zapgate did (`offer`: left
    /// ringing, `rejected`).
    #[schema(value_type = Vec<Object>)]
    calls: Vec<CallEntry>,
    /// The presence the session last sent: `available` (`keepOnlineStatus`)
    /// or `unavailable`; `null` while not connected.
    presence: Option<&'static str>,
    /// "typing..." / "recording..." shown in chats (`delay` on sends),
    /// oldest first.
    #[serde(rename = "chatPresence")]
    #[schema(value_type = Vec<Object>)]
    chat_presence: Vec<ChatPresenceEntry>,
}

/// What zapgate sent to WhatsApp through this instance.
#[utoipa::path(get, path = "/api/sandbox/{instance}/outbox", tag = "sandbox",
    params(("instance" = String, Path)),
    responses((status = 200, body = OutboxOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn outbox(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<OutboxOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    Ok(Json(OutboxOut {
        success: true,
        messages: sandbox.outbox(&instance.id),
        calls: sandbox.calls(&instance.id),
        presence: sandbox.presence(&instance.id),
        chat_presence: sandbox.chat_presence(&instance.id),
    }))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct FaultsIn {
    /// How the next sends end: `ok`, `not_on_whatsapp` or `error`.
    send: String,
    /// Sends that still succeed before the fault applies (default 0).
    #[serde(default)]
    after: Option<u32>,
    /// Sends the fault applies to before sends succeed again (default: all,
    /// until changed).
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FaultsOut {
    success: bool,
    message: &'static str,
    send: &'static str,
}

/// Make the next sends fail, or succeed again.
#[utoipa::path(post, path = "/api/sandbox/{instance}/faults", tag = "sandbox",
    params(("instance" = String, Path)), request_body = FaultsIn,
    responses((status = 200, body = FaultsOut), (status = 400, body = ErrorOut), (status = 404, body = ErrorOut)),
    security(("token" = [])))]
async fn faults(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<FaultsIn>,
) -> ApiResult<Json<FaultsOut>> {
    let (sandbox, instance) = resolve(&state, &principal, &name).await?;
    let fault = SendFault::parse(&body.send)
        .ok_or_else(|| Error::bad_request("Invalid send: ok, not_on_whatsapp or error"))?;
    sandbox.set_send_faults(&instance.id, fault, body.after.unwrap_or(0), body.times)?;
    Ok(Json(FaultsOut {
        success: true,
        message: "Send faults set",
        send: fault.as_str(),
    }))
}
