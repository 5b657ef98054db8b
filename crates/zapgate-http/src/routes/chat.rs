//! The chat module's routes on stored messages (`/api/chat/<name>/:instance`,
//! either token, ownership checked): `getMessage`, `status`, `base64`,
//! `edit`, `delete` and `forward`. They read the message store; shapes and
//! errors follow `research/ryzeapi-docs.md` §7 and the client contract.

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    routing::{delete, get, post},
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zapgate_core::{
    Error,
    instance::Instance,
    message_store::{StatusChange, StoredMessage, tally},
    time::{now_secs, rfc3339},
    whatsapp::{Extra, Outgoing},
};

use super::{
    message::{SentOut, own_message, recipient, sent_out},
    message_kinds::{MAX_SOURCE, optional, parse},
};
use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::ApiResult,
    extract::{JsonBody, QueryParams},
    idempotency::SendId,
};

pub const MESSAGE_ID_REQUIRED: &str = "Message ID is required (use ?messageId=<message-id>)";
pub const NO_MEDIA: &str = "Message not found or no media available";
/// How long WhatsApp lets a message be edited.
const EDIT_WINDOW_SECS: i64 = 15 * 60;
const MAX_ID: usize = 256;
const MAX_TEXT: usize = 65_536;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chat/getMessage/{instance}", get(get_message))
        .route("/api/chat/status/{instance}", get(status))
        .route("/api/chat/poll/{instance}", get(poll))
        .route("/api/chat/base64/{instance}", get(media_base64))
        .route("/api/chat/edit/{instance}", post(edit))
        .route("/api/chat/delete/{instance}", delete(remove))
}

/// `forward` sends a message: it takes `Idempotency-Key` like the send module.
pub fn sends() -> Router<AppState> {
    Router::new().route("/api/chat/forward/{instance}", post(forward))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MessageQuery {
    /// The WhatsApp id of a message this instance sent or received.
    #[param(required = true, value_type = crate::openapi::MessageId)]
    message_id: Option<String>,
}

impl MessageQuery {
    fn id(self) -> Result<String, Error> {
        self.message_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Error::bad_request(MESSAGE_ID_REQUIRED))
    }
}

/// A body's `messageId`, required.
fn body_id(raw: Option<String>) -> Result<String, Error> {
    let id = raw
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| Error::bad_request("invalid body: messageId is required"))?;
    if id.chars().count() > MAX_ID {
        return Err(Error::bad_request(format!(
            "invalid body: messageId must be at most {MAX_ID} characters"
        )));
    }
    Ok(id)
}

fn connected(state: &AppState, instance: &Instance) -> Result<(), Error> {
    if state.instances.is_connected(instance) {
        Ok(())
    } else {
        Err(Error::NotConnected)
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaOut {
    /// `image`, `video`, `audio`, `document` or `sticker`.
    r#type: &'static str,
    mimetype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<String>,
    /// Bytes, when WhatsApp declared it.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Whether `chat/base64` can download it again.
    downloadable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredOut {
    id: String,
    /// The text or caption; `null` for other kinds and once deleted.
    content: Option<String>,
    /// `text`, `image`, `video`, `audio`, `document`, `sticker`, `location`,
    /// `contact`, `reaction`, `poll`, `event`, `call` or `unsupported`.
    r#type: String,
    from: String,
    /// The account for a received message (when its session knows its
    /// number), the chat for a sent one.
    to: Option<String>,
    chat: String,
    /// ISO 8601, WhatsApp's time.
    timestamp: String,
    is_group: bool,
    from_me: bool,
    /// `incoming` or `outgoing`, as in `message.exchange`.
    direction: &'static str,
    /// `pending`, `sent`, `delivered`, `read`, `played` or `error`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<String>,
    /// The `source` label of an API send.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<MediaOut>,
    /// The structured content of the other kinds (location, contact,
    /// reaction, poll, event...), tagged by `type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
    edited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_at: Option<String>,
    /// Deleted for everyone: its content is gone.
    revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

fn stored_out(message: StoredMessage, own: Option<String>) -> StoredOut {
    let (from, to) = if message.from_me {
        (
            own.unwrap_or_else(|| message.sender.clone()),
            Some(message.chat.clone()),
        )
    } else {
        (message.sender.clone(), own)
    };
    StoredOut {
        is_group: message.chat.ends_with("@g.us"),
        direction: if message.from_me {
            "outgoing"
        } else {
            "incoming"
        },
        status: message.status.as_str(),
        timestamp: rfc3339(message.timestamp.saturating_mul(1000)),
        media: message.media.map(|m| MediaOut {
            r#type: m.kind.as_str(),
            downloadable: m.downloadable(),
            mimetype: m.mimetype,
            file_name: m.file_name,
            size: m.file_length,
        }),
        details: message
            .extra
            .as_ref()
            .and_then(|e| serde_json::to_value(e).ok()),
        edited: message.edited_at_ms.is_some(),
        edited_at: message.edited_at_ms.map(rfc3339),
        revoked: message.revoked_at_ms.is_some(),
        revoked_at: message.revoked_at_ms.map(rfc3339),
        id: message.id,
        content: message.text,
        r#type: message.kind,
        from,
        to,
        chat: message.chat,
        from_me: message.from_me,
        reply_to: message.quoted_id,
        source: message.source,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageFoundOut {
    success: bool,
    message: &'static str,
    message_id: String,
    data: StoredOut,
    /// `found`.
    status: &'static str,
}

/// A stored message of the instance, as persisted (edits and deletions applied).
#[utoipa::path(get, path = "/api/chat/getMessage/{instance}", tag = "chat",
    params(("instance" = String, Path), MessageQuery),
    responses(
        (status = 200, body = MessageFoundOut),
        (status = 400, description = "Message ID is required (use ?messageId=<message-id>)", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 429, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn get_message(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<MessageQuery>,
) -> ApiResult<Json<MessageFoundOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let id = query.id()?;
    let message = state.events.message(&instance, &id).await?;
    let own = state.instances.live_status(&instance).number_jid;
    Ok(Json(MessageFoundOut {
        success: true,
        message: "Message found",
        message_id: id,
        data: stored_out(message, own),
        status: "found",
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusStepOut {
    status: &'static str,
    /// ISO 8601: when zapgate learnt it.
    timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOut {
    success: bool,
    message: &'static str,
    message_id: String,
    /// `sent` (by this instance) or `received`.
    direction: &'static str,
    chat_jid: String,
    /// `pending`, `sent`, `delivered`, `read`, `played` or `error`.
    status: &'static str,
    /// Every status the message reached, oldest first.
    history: Vec<StatusStepOut>,
}

/// A message's delivery status and its history (receipts applied).
#[utoipa::path(get, path = "/api/chat/status/{instance}", tag = "chat",
    params(("instance" = String, Path), MessageQuery),
    responses(
        (status = 200, body = StatusOut),
        (status = 400, description = "Message ID is required (use ?messageId=<message-id>)", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 429, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn status(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<MessageQuery>,
) -> ApiResult<Json<StatusOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let id = query.id()?;
    let message = state.events.message(&instance, &id).await?;
    let history = state.events.message_history(&instance, &id).await?;
    Ok(Json(StatusOut {
        success: true,
        message: "Status retrieved successfully",
        direction: if message.from_me { "sent" } else { "received" },
        chat_jid: message.chat,
        status: message.status.as_str(),
        history: history
            .into_iter()
            .map(|StatusChange { status, at_ms }| StatusStepOut {
                status: status.as_str(),
                timestamp: rfc3339(at_ms),
            })
            .collect(),
        message_id: id,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollOut {
    success: bool,
    message: &'static str,
    message_id: String,
    poll: PollResultsOut,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollResultsOut {
    question: String,
    /// In the poll's order.
    options: Vec<PollOptionOut>,
    /// People whose latest vote picks at least one option.
    total_voters: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollOptionOut {
    name: String,
    votes: usize,
    /// The voters' jids (a phone jid or a LID, as WhatsApp named them).
    voters: Vec<String>,
}

/// The votes on a stored poll, decrypted as they arrived: each voter's
/// latest vote counts (a withdrawn vote counts for nothing).
#[utoipa::path(get, path = "/api/chat/poll/{instance}", tag = "chat",
    params(("instance" = String, Path), MessageQuery),
    responses(
        (status = 200, body = PollOut),
        (status = 400, description = "Message ID is required (use ?messageId=<message-id>)", body = ErrorOut),
        (status = 409, description = "Message is not a poll", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 429, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn poll(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<MessageQuery>,
) -> ApiResult<Json<PollOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let id = query.id()?;
    let message = state.events.message(&instance, &id).await?;
    let Some(Extra::Poll { question, options }) = message.extra else {
        return Err(Error::conflict("Message is not a poll").into());
    };
    let votes = state.events.poll_votes(&instance, &id).await?;
    let total_voters = votes.iter().filter(|v| !v.options.is_empty()).count();
    let options = tally(&options, &votes)
        .into_iter()
        .map(|(name, voters)| PollOptionOut {
            name,
            votes: voters.len(),
            voters,
        })
        .collect();
    Ok(Json(PollOut {
        success: true,
        message: "Poll votes retrieved successfully",
        message_id: id,
        poll: PollResultsOut {
            question,
            options,
            total_voters,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Base64Out {
    success: bool,
    message: &'static str,
    message_id: String,
    mime_type: String,
    /// `image`, `video`, `audio`, `document` or `sticker`.
    media_type: &'static str,
    /// The file, in standard base64 (no `data:` prefix).
    base64: String,
}

/// A stored message's media, downloaded again from WhatsApp with its stored
/// keys (at most the server's media limit).
#[utoipa::path(get, path = "/api/chat/base64/{instance}", tag = "chat",
    params(("instance" = String, Path), MessageQuery),
    responses(
        (status = 200, body = Base64Out),
        (status = 400, description = "Message ID is required (use ?messageId=<message-id>)", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found or no media available / Media is no longer available on WhatsApp", body = ErrorOut),
        (status = 413, description = "Media is larger than the media limit", body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 502, description = "Media could not be downloaded from WhatsApp", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn media_base64(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<MessageQuery>,
) -> ApiResult<Json<Base64Out>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let id = query.id()?;
    let media = match state.events.message(&instance, &id).await {
        Ok(message) => message.media.filter(|m| m.downloadable()),
        Err(Error::NotFound(_)) => None,
        Err(err) => return Err(err.into()),
    }
    .ok_or_else(|| Error::not_found(NO_MEDIA))?;
    connected(&state, &instance)?;
    let data = state
        .instances
        .whatsapp()
        .download_media(&instance.id, &media)
        .await?;
    Ok(Json(Base64Out {
        success: true,
        message: "Base64 retrieved successfully",
        message_id: id,
        mime_type: media.mimetype,
        media_type: media.kind.as_str(),
        base64: base64::engine::general_purpose::STANDARD.encode(data),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditIn {
    /// A text (or captioned media) message this instance sent, at most 15
    /// minutes ago.
    #[schema(required = true, nullable = false, value_type = crate::openapi::MessageId)]
    message_id: Option<String>,
    /// The new text.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 65536,
        pattern = r"\S"
    )]
    message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangedOut {
    success: bool,
    message: &'static str,
    message_id: String,
}

/// Edits a message this instance sent (WhatsApp's 15-minute window).
#[utoipa::path(post, path = "/api/chat/edit/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = EditIn,
    responses(
        (status = 200, body = ChangedOut),
        (status = 400, description = "invalid body: <field> ...", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 409, description = "Message cannot be edited: <why>", body = ErrorOut),
        (status = 415, body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn edit(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<ChangedOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let body: EditIn = parse(body)?;
    let id = body_id(body.message_id)?;
    let text = body
        .message
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::bad_request("invalid body: message is required"))?;
    if text.chars().count() > MAX_TEXT {
        return Err(Error::bad_request(format!(
            "invalid body: message must be at most {MAX_TEXT} characters"
        ))
        .into());
    }
    let message = state.events.message(&instance, &id).await?;
    // The request is well formed; the stored message's state refuses it.
    let refused = |why: &str| Error::conflict(format!("Message cannot be edited: {why}"));
    if !message.from_me {
        return Err(refused("only messages sent by this instance can be edited").into());
    }
    if message.revoked_at_ms.is_some() {
        return Err(refused("the message was deleted").into());
    }
    if message.text.is_none() && message.media.is_none() {
        return Err(refused(&format!("{} messages cannot be edited", message.kind)).into());
    }
    if now_secs() - message.timestamp > EDIT_WINDOW_SECS {
        return Err(refused("WhatsApp allows edits for 15 minutes after sending").into());
    }
    let chat = recipient(Some(&message.chat))?;
    let mut echo = own_message(&chat, None, None, None);
    echo.extra = Some(Extra::Edit {
        target_id: id.clone(),
        text: text.clone(),
    });
    let outgoing = Outgoing::Edit {
        to: chat,
        target_id: id.clone(),
        text,
    };
    state
        .instances
        .send_as(&instance, outgoing, echo, None)
        .await?;
    Ok(Json(ChangedOut {
        success: true,
        message: "Message edited successfully",
        message_id: id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteIn {
    #[schema(required = true, nullable = false, value_type = crate::openapi::MessageId)]
    message_id: Option<String>,
    /// `true` (the default): deleted for everyone (only a message this
    /// instance sent); `false`: only from the account's own devices and
    /// from the message store.
    for_everyone: Option<bool>,
}

/// Deletes a message for everyone, or for the account only.
#[utoipa::path(delete, path = "/api/chat/delete/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = DeleteIn,
    responses(
        (status = 200, body = ChangedOut),
        (status = 400, description = "invalid body: <field> ...", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 409, description = "Message cannot be deleted for everyone: only messages sent by this instance can be", body = ErrorOut),
        (status = 415, body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn remove(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<ChangedOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let body: DeleteIn = parse(body)?;
    let id = body_id(body.message_id)?;
    let message = state.events.message(&instance, &id).await?;
    if body.for_everyone.unwrap_or(true) {
        if !message.from_me {
            return Err(Error::conflict(
                "Message cannot be deleted for everyone: only messages sent by this instance can be",
            )
            .into());
        }
        let chat = recipient(Some(&message.chat))?;
        let mut echo = own_message(&chat, None, None, None);
        echo.extra = Some(Extra::Revoke {
            target_id: id.clone(),
        });
        let outgoing = Outgoing::Revoke {
            to: chat,
            target_id: id.clone(),
        };
        state
            .instances
            .send_as(&instance, outgoing, echo, None)
            .await?;
    } else {
        connected(&state, &instance)?;
        state
            .instances
            .whatsapp()
            .delete_for_me(&instance.id, &message)
            .await?;
        state.events.forget_message(&instance, &id).await?;
    }
    Ok(Json(ChangedOut {
        success: true,
        message: "Message deleted successfully",
        message_id: id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardIn {
    /// A stored text or media message of this instance.
    #[schema(required = true, nullable = false, value_type = crate::openapi::MessageId)]
    message_id: Option<String>,
    /// Where to: a phone number, or a JID (`...@g.us` for groups).
    #[schema(required = true, nullable = false, value_type = crate::openapi::Recipient)]
    number: Option<String>,
    /// A trace label (at most 100 characters), stored with the new message.
    #[schema(max_length = 100)]
    source: Option<String>,
}

/// Forwards a stored text or media message (media by its stored keys, not
/// uploaded again). Answers like `message/text`.
#[utoipa::path(post, path = "/api/chat/forward/{instance}", tag = "chat",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = ForwardIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: <field> ... / <kind> messages cannot be forwarded", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found / Message not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 415, body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn forward(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let body: ForwardIn = parse(body)?;
    let id = body_id(body.message_id)?;
    let to = recipient(body.number.as_deref())?;
    let source = optional("source", body.source, MAX_SOURCE)?;
    let message = state.events.message(&instance, &id).await?;
    let send_id = send_id.as_ref().map(|Extension(SendId(id))| id.as_str());
    let mut echo = own_message(&to, message.text.clone(), None, None);
    echo.source = source.clone();
    let sent = state
        .instances
        .forward(&instance, &to, &message, echo, send_id)
        .await?;
    let mut out = sent_out(sent, to, None, Some(media_or_text(&message)));
    out.set_source(source);
    Ok(Json(out))
}

fn media_or_text(message: &StoredMessage) -> &'static str {
    message.media.as_ref().map_or("text", |m| m.kind.as_str())
}
