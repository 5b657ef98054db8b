//! Sending messages (`/api/message/text`, `/api/message/media`). What the API
//! sends also shows in the instance's Chatwoot inbox, as outgoing.

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Path, Request, State},
    middleware::Next,
    response::Response,
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

use tokio::sync::Semaphore;

use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::{ApiResult, retry_after},
    extract::JsonBody,
    idempotency::SendId,
};

const MAX_TEXT_LEN: usize = 65_536;
const MAX_ID_LEN: usize = 128;

const MEDIA_ROUTE: &str = "/api/message/media/{instance}";
pub const MEDIA_SENDS_BUSY: &str = "Too many media sends in progress. Try again shortly.";

pub fn router(media_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/api/message/text/{instance}", post(text))
        .route(
            MEDIA_ROUTE,
            post(media).layer(DefaultBodyLimit::max(media_body_limit)),
        )
        .merge(super::message_kinds::router(media_body_limit))
}

/// Bounds the media and sticker sends in flight (`ZAPGATE_MEDIA_SENDS`): one more is
/// answered 429 before its body is read, rather than waiting, so what
/// media sends hold in memory stays within that many bodies (plus one
/// decoded copy each) and a waiting client does not hold a connection.
pub async fn media_gate(
    State(sends): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let is_media = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| [MEDIA_ROUTE, super::message_kinds::STICKER_ROUTE].contains(&p.as_str()));
    if !is_media {
        return next.run(request).await;
    }
    let Ok(_permit) = sends.try_acquire_owned() else {
        return retry_after(Error::RateLimited(MEDIA_SENDS_BUSY.to_owned()), 1);
    };
    next.run(request).await
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
    #[schema(pattern = r"^[!-~]{0,128}$")]
    reply_to: Option<String>,
    /// Seconds (0 to 30) of "typing..." shown in the chat before sending.
    #[schema(maximum = 30)]
    delay: Option<u32>,
    /// `true`: the first http(s) link in the text goes with a preview card
    /// (the page's title, description and image), fetched when sending
    /// through the private-address guard, within 5 s, 512 KiB of HTML and
    /// a 1 MiB image. A page that cannot be previewed does not fail the
    /// send: the text goes without a card. Default `false`.
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
        (status = 400, description = "number is required / message is required / Invalid phone number / invalid body: mention is only for group chats / ...", body = ErrorOut),
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
    // The preview is fetched while "typing..." shows.
    let preview = async {
        match body.link_preview {
            Some(true) => crate::link_preview::for_text(&state.downloader, &text).await,
            _ => None,
        }
    };
    let (preview, paused) = tokio::join!(
        preview,
        pause(&state, &instance, &to, delay, ChatPresence::Typing)
    );
    paused?;
    let mut echo = own_message(&to, Some(text.clone()), None, quoted_id.clone());
    echo.source = source.clone();
    let outgoing = Outgoing::Text {
        to: to.clone(),
        text,
        quoted_id: quoted_id.clone(),
        context,
        preview: preview.map(Box::new),
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
    #[schema(pattern = r"^[!-~]{0,128}$")]
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
        (status = 429, description = "Too many media sends in progress (`ZAPGATE_MEDIA_SENDS`); `Retry-After` says when to try again", body = ErrorOut),
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
    let (data, fetched_mimetype, fetched_name) =
        media_bytes(&state, body.media_url, body.media_base64).await?;
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
        data: data.into(),
    };
    // The echo shares the bytes (`Media::data`), it does not copy them.
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
/// the address guard, or a base64 data URL) and `mediaBase64`. Base64 is
/// decoded in the string's own buffer: the decoded bytes are the only copy
/// beside the request body.
pub(super) async fn media_bytes(
    state: &AppState,
    url: Option<String>,
    base64: Option<String>,
) -> Result<(Vec<u8>, Option<String>, Option<String>), Error> {
    match (
        url.filter(|u| !u.is_empty()),
        base64.filter(|b| !b.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(Error::bad_request("send mediaUrl or mediaBase64, not both")),
        (None, None) => Err(Error::bad_request("mediaUrl or mediaBase64 is required")),
        (None, Some(b)) => Ok((decode_in_place(b)?, None, None)),
        (Some(u), None) if u.starts_with("data:") => Ok((decode_in_place(u)?, None, None)),
        (Some(u), None) => {
            let download = state.downloader.fetch(&u).await.map_err(|e| match e {
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

/// Standard base64 (after a data URL's `base64,`, surrounding whitespace
/// ignored) decoded into `text`'s own buffer. Each chunk is decoded to a
/// place before the text still to be read (3 bytes out per 4 in), so the
/// buffer is never read after it was written.
fn decode_in_place(text: String) -> Result<Vec<u8>, Error> {
    /// A multiple of 4: only the last chunk may hold padding.
    const CHUNK: usize = 4096;
    let invalid = || Error::bad_request("mediaBase64 is not valid base64");
    let mut buf = text.into_bytes();
    let start = buf
        .windows(7)
        .position(|w| w == b"base64,")
        .map_or(0, |at| at + 7);
    let payload = &buf[start..];
    let skip = payload
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let trailing = payload
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let (mut read, end) = (start + skip, buf.len() - trailing.min(payload.len() - skip));
    let mut written = 0;
    let mut chunk = [0u8; CHUNK];
    while read < end {
        let n = (end - read).min(CHUNK);
        chunk[..n].copy_from_slice(&buf[read..read + n]);
        read += n;
        written += base64::engine::general_purpose::STANDARD
            .decode_slice(&chunk[..n], &mut buf[written..])
            .map_err(|_| invalid())?;
    }
    buf.truncate(written);
    Ok(buf)
}

pub(super) fn default_mimetype(kind: MediaKind) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> Result<Vec<u8>, Error> {
        decode_in_place(text.to_owned())
    }

    #[test]
    fn base64_decodes_like_the_engine() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(&data);
        for len in [0, 1, 2, 3, 3071, 3072, 3073, 20_000] {
            let text = base64::engine::general_purpose::STANDARD.encode(&data[..len]);
            assert_eq!(decoded(&text).unwrap(), &data[..len], "{len} bytes");
        }
        let url = format!("data:image/png;base64,{text}");
        assert_eq!(decoded(&url).unwrap(), data);
        assert_eq!(decoded(&format!("  {text}\n")).unwrap(), data);
        assert!(decoded("not base64!").is_err());
        assert!(decoded(&text[..text.len() - 1]).is_err());
    }

    /// The decoded bytes live in the buffer the text came in: no second
    /// buffer the size of the media is made.
    #[test]
    fn base64_is_decoded_in_the_texts_own_buffer() {
        let data = vec![7u8; 1 << 20];
        let text = base64::engine::general_purpose::STANDARD.encode(&data);
        let before = text.as_ptr();
        let out = decode_in_place(text).unwrap();
        assert_eq!(out, data);
        assert_eq!(out.as_ptr(), before);
    }
}
