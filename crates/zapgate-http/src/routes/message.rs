//! Sending messages (`/api/message/text`, `/api/message/media`). What the API
//! sends also shows in the instance's Chatwoot inbox, as outgoing.

use axum::{
    Extension, Json, Router,
    extract::{DefaultBodyLimit, Path, State},
    routing::post,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zapgate_core::{
    Error,
    jid::Jid,
    whatsapp::{ChatPresence, InboundMessage, Media, MediaKind, Outgoing, SentMessage},
};

use super::message_kinds::{Addressing, MAX_SOURCE, delay_secs, optional, pause};

use crate::{
    AppState, auth::Caller, envelope::ErrorOut, error::ApiResult, extract::JsonBody,
    idempotency::SendId,
};

const MAX_TEXT_LEN: usize = 65_536;
/// Previews are not fetched yet: `true` is refused, not dropped.
const LINK_PREVIEW_UNSUPPORTED: &str =
    "invalid body: linkPreview true is not supported yet (zapgate sends links without a preview)";
const MAX_ID_LEN: usize = 128;

pub fn router(media_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/api/message/text/{instance}", post(text))
        .route(
            "/api/message/media/{instance}",
            post(media).layer(DefaultBodyLimit::max(media_body_limit)),
        )
        .merge(super::message_kinds::router(media_body_limit))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextIn {
    /// A phone number in international format, or a JID (`...@g.us` for groups).
    #[schema(required = true, nullable = false, value_type = crate::openapi::Recipient)]
    number: Option<String>,
    #[schema(required = true, nullable = false, min_length = 1, max_length = 65536)]
    message: Option<String>,
    /// The WhatsApp id of the message this one replies to: a message of
    /// this instance in the message store (`404 Message not found` otherwise).
    reply_to: Option<String>,
    /// Seconds (0 to 30) of "typing..." shown in the chat before sending.
    #[schema(maximum = 30)]
    delay: Option<u32>,
    /// Only `false` for now: `true` (a fetched preview) is refused rather
    /// than ignored.
    link_preview: Option<bool>,
    /// A trace label (at most 100 characters), stored with the message and
    /// echoed in the answer.
    source: Option<String>,
    /// Phone numbers or LIDs (at most 10, each at most 100 characters) the
    /// message @-mentions: they are notified. Groups only. The text should
    /// carry `@<digits>` where each mention is to show; zapgate adds nothing.
    #[schema(max_items = 10)]
    mention: Option<Vec<String>>,
    /// Mentions every member of the group (`number`). Groups only.
    mention_all: Option<bool>,
    /// With `replyTo` a stored message of the group `number` names: the
    /// reply goes privately to that message's author, quoting it.
    reply_private: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentOut {
    success: bool,
    message: &'static str,
    status: &'static str,
    message_id: String,
    data: SentData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentData {
    message_id: String,
    direction: &'static str,
    chat: String,
    from_me: bool,
    /// Unix seconds.
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type: Option<&'static str>,
    /// The `source` label the send carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

impl SentOut {
    pub(super) fn set_source(&mut self, source: Option<String>) {
        self.data.source = source;
    }
}

pub(super) fn recipient(number: Option<&str>) -> Result<Jid, Error> {
    let number = number
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::bad_request("number is required"))?;
    Jid::parse(number)
}

fn reply_to(raw: Option<String>) -> Result<Option<String>, Error> {
    match raw.filter(|r| !r.is_empty()) {
        Some(r) if r.len() > MAX_ID_LEN => Err(Error::bad_request("Invalid replyTo")),
        other => Ok(other),
    }
}

/// Sends a text message.
#[utoipa::path(post, path = "/api/message/text/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = TextIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "number is required / message is required / Invalid phone number / invalid body: mention is only for group chats / invalid body: linkPreview true is not supported yet ... / ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found (replyTo)", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn text(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<TextIn>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let to = recipient(body.number.as_deref())?;
    let text = body
        .message
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::bad_request("message is required"))?;
    if text.chars().count() > MAX_TEXT_LEN {
        return Err(
            Error::bad_request(format!("message: at most {MAX_TEXT_LEN} characters")).into(),
        );
    }
    if body.link_preview == Some(true) {
        return Err(Error::bad_request(LINK_PREVIEW_UNSUPPORTED).into());
    }
    let quoted_id = reply_to(body.reply_to)?;
    let source = optional("source", body.source, MAX_SOURCE)?;
    let delay = delay_secs(body.delay)?;
    let addressing = Addressing::check(
        body.mention,
        body.mention_all,
        body.reply_private,
        &to,
        quoted_id.as_deref(),
    )?;
    state
        .events
        .check_reply(&instance, quoted_id.as_deref())
        .await?;
    let (to, context) = addressing
        .resolve(&state, &instance, to, quoted_id.as_deref())
        .await?;
    pause(&state, &instance, &to, delay, ChatPresence::Typing).await?;
    let mut echo = own_message(&to, Some(text.clone()), None, quoted_id.clone());
    echo.source = source.clone();
    let outgoing = Outgoing::Text {
        to: to.clone(),
        text,
        quoted_id: quoted_id.clone(),
        context,
    };
    let id = send_id.as_ref().map(|Extension(SendId(id))| id.as_str());
    let sent = state
        .instances
        .send_as(&instance, outgoing, echo, id)
        .await?;
    let mut out = sent_out(sent, to, quoted_id, None);
    out.set_source(source);
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaIn {
    #[schema(required = true, nullable = false, value_type = crate::openapi::Recipient)]
    number: Option<String>,
    /// `image`, `video`, `document` or `audio`.
    #[schema(required = true, nullable = false, value_type = MediaType)]
    media_type: Option<String>,
    /// An http(s) URL to fetch (or a base64 data URL). Send this or `mediaBase64`.
    media_url: Option<String>,
    media_base64: Option<String>,
    /// The caption.
    message: Option<String>,
    mime_type: Option<String>,
    file_name: Option<String>,
    /// As `message/text`'s.
    reply_to: Option<String>,
    /// Seconds (0 to 30) of "typing..." ("recording..." for audio) shown in
    /// the chat before sending.
    #[schema(maximum = 30)]
    delay: Option<u32>,
    /// As `message/text`'s.
    source: Option<String>,
    /// As `message/text`'s.
    #[schema(max_items = 10)]
    mention: Option<Vec<String>>,
    /// As `message/text`'s.
    mention_all: Option<bool>,
    /// As `message/text`'s.
    reply_private: Option<bool>,
}

/// What `mediaType` takes (the body keeps it a string, to answer anything
/// else with its own message).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // describes `mediaType` in the OpenAPI document only
enum MediaType {
    Image,
    Video,
    Document,
    Audio,
}

/// Sends an image, video, document or audio, from a URL or base64.
#[utoipa::path(post, path = "/api/message/media/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = MediaIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "number is required / mediaType ... / send mediaUrl or mediaBase64, not both / invalid body: mention ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found (replyTo)", body = ErrorOut),
        (status = 502, description = "the media URL could not be fetched", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn media(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<MediaIn>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let to = recipient(body.number.as_deref())?;
    let kind = match body.media_type.as_deref() {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("document") => MediaKind::Document,
        Some("audio") => MediaKind::Audio,
        _ => {
            return Err(
                Error::bad_request("mediaType must be image, video, document or audio").into(),
            );
        }
    };
    let (data, fetched_mimetype, fetched_name) = media_bytes(
        &state,
        body.media_url.as_deref(),
        body.media_base64.as_deref(),
    )
    .await?;
    let mimetype = body
        .mime_type
        .filter(|m| !m.is_empty() && m.len() <= 128)
        .or(fetched_mimetype)
        .unwrap_or_else(|| default_mimetype(kind).to_owned());
    let file_name = body
        .file_name
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .or(fetched_name);
    let caption = body.message.filter(|m| !m.is_empty());
    let quoted_id = reply_to(body.reply_to)?;
    let source = optional("source", body.source, MAX_SOURCE)?;
    let delay = delay_secs(body.delay)?;
    let addressing = Addressing::check(
        body.mention,
        body.mention_all,
        body.reply_private,
        &to,
        quoted_id.as_deref(),
    )?;
    state
        .events
        .check_reply(&instance, quoted_id.as_deref())
        .await?;
    let (to, context) = addressing
        .resolve(&state, &instance, to, quoted_id.as_deref())
        .await?;
    let presence = if kind == MediaKind::Audio {
        ChatPresence::Recording
    } else {
        ChatPresence::Typing
    };
    pause(&state, &instance, &to, delay, presence).await?;
    let media = Media {
        kind,
        mimetype,
        file_name,
        data,
    };
    let mut echo = own_message(&to, caption.clone(), Some(media.clone()), quoted_id.clone());
    echo.source = source.clone();
    let outgoing = Outgoing::Media {
        to: to.clone(),
        media,
        caption,
        quoted_id: quoted_id.clone(),
        context,
    };
    let id = send_id.as_ref().map(|Extension(SendId(id))| id.as_str());
    let sent = state
        .instances
        .send_as(&instance, outgoing, echo, id)
        .await?;
    let mut out = sent_out(sent, to, quoted_id, Some(kind.as_str()));
    out.set_source(source);
    Ok(Json(out))
}

/// The bytes from exactly one of `mediaUrl` (an http(s) URL, fetched with
/// the address guard, or a base64 data URL) and `mediaBase64`.
async fn media_bytes(
    state: &AppState,
    url: Option<&str>,
    base64: Option<&str>,
) -> Result<(Vec<u8>, Option<String>, Option<String>), Error> {
    let decode = |raw: &str| {
        let payload = raw.split_once("base64,").map_or(raw, |(_, b)| b);
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| Error::bad_request("mediaBase64 is not valid base64"))
    };
    match (
        url.filter(|u| !u.is_empty()),
        base64.filter(|b| !b.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(Error::bad_request("send mediaUrl or mediaBase64, not both")),
        (None, None) => Err(Error::bad_request("mediaUrl or mediaBase64 is required")),
        (None, Some(b)) => Ok((decode(b)?, None, None)),
        (Some(u), None) if u.starts_with("data:") => Ok((decode(u)?, None, None)),
        (Some(u), None) => {
            let download = state.downloader.fetch(u).await.map_err(|e| match e {
                zapgate_chatwoot::download::Failure::Rejected { error } => {
                    Error::bad_request(format!("mediaUrl: {error}"))
                }
                zapgate_chatwoot::download::Failure::Transient { error } => {
                    Error::BadGateway(format!("mediaUrl could not be fetched: {error}"))
                }
            })?;
            Ok((
                download.data,
                Some(download.mimetype),
                Some(download.file_name),
            ))
        }
    }
}

fn default_mimetype(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image/jpeg",
        MediaKind::Video => "video/mp4",
        MediaKind::Audio => "audio/ogg",
        MediaKind::Sticker => "image/webp",
        MediaKind::Document => "application/octet-stream",
    }
}

/// What is sent, as the owner's own message (WhatsApp's id and time are
/// filled in once it is out).
pub(super) fn own_message(
    to: &Jid,
    text: Option<String>,
    media: Option<Media>,
    quoted_id: Option<String>,
) -> InboundMessage {
    InboundMessage {
        id: String::new(),
        chat: to.clone(),
        sender: to.clone(),
        sender_lid: None,
        push_name: None,
        from_me: true,
        group_subject: None,
        text,
        media,
        media_ref: None,
        quoted_id,
        extra: None,
        timestamp: 0,
        source: None,
    }
}

pub(super) fn sent_out(
    sent: SentMessage,
    to: Jid,
    reply_to: Option<String>,
    message_type: Option<&'static str>,
) -> SentOut {
    SentOut {
        success: true,
        message: "Message sent successfully",
        status: "sent",
        message_id: sent.id.clone(),
        data: SentData {
            message_id: sent.id,
            direction: "outgoing",
            chat: to.to_string(),
            from_me: true,
            timestamp: sent.timestamp,
            reply_to,
            message_type,
            source: None,
        },
    }
}
