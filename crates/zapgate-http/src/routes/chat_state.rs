//! RyzeAPI's chat module, its chat-state half (`/api/chat/<name>/:instance`):
//! contacts, which numbers are on WhatsApp, read marks, presence, and the
//! archive, pin, mute, block and delete actions. Either token, ownership
//! checked; every action needs a connected session (`503` otherwise).
//! Bodies refuse unknown fields by name.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{delete, get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zapgate_core::{
    Error,
    chat_state::{
        ChatChange, Contact, MAX_CHECK_NUMBERS, MAX_MESSAGE_ID_LEN, MAX_READ_IDS, Mute, NumberCheck,
    },
    jid::{Jid, LID_SERVER, USER_SERVER},
    store::Principal,
    time::now_secs,
    whatsapp::ChatPresence,
};

use super::message_kinds::{invalid, parse};
use crate::{
    AppState,
    auth::Caller,
    envelope::{ErrorOut, MessageOut},
    error::ApiResult,
    extract::{JsonBody, QueryParams},
};

/// The longest `presence` duration, in seconds: WhatsApp itself clears
/// "typing..." after about 25 s.
pub const MAX_PRESENCE_SECS: u32 = 60;
/// The longest timed mute: a year, WhatsApp's longest choice is "always".
pub const MAX_MUTE_SECS: i64 = 366 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chat/contacts/{instance}", get(contacts))
        .route("/api/chat/checkNumbers/{instance}", post(check_numbers))
        .route("/api/chat/markRead/{instance}", post(mark_read))
        .route("/api/chat/markChatRead/{instance}", post(mark_chat_read))
        .route("/api/chat/presence/{instance}", post(presence))
        .route("/api/chat/archive/{instance}", post(archive))
        .route("/api/chat/pin/{instance}", post(pin))
        .route("/api/chat/mute/{instance}", post(mute))
        .route("/api/chat/block/{instance}", post(block))
        .route("/api/chat/deleteChat/{instance}", delete(delete_chat))
}

/// A chat as a body names it: a phone number, a contact's JID or `@lid`,
/// or a group JID.
fn chat(number: Option<&str>) -> Result<Jid, Error> {
    let raw = number
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("number is required"))?;
    Jid::parse(raw)
        .ok()
        .map(without_device)
        .filter(|j| j.is_group() || j.server == USER_SERVER || j.server == LID_SERVER)
        .ok_or_else(|| invalid("number must be a phone number, a contact or group JID, or an @lid"))
}

/// A person (not a group): a phone number, a phone JID or an `@lid`.
fn person(field: &str, raw: &str) -> Result<Jid, Error> {
    Jid::parse(raw)
        .ok()
        .map(without_device)
        .filter(|j| j.server == USER_SERVER || j.server == LID_SERVER)
        .ok_or_else(|| invalid(format!("{field} must be a phone number or an @lid")))
}

/// `123:4@lid` is device 4 of `123@lid`; chats and contacts are per user.
fn without_device(mut jid: Jid) -> Jid {
    if let Some((user, _device)) = jid.user.split_once(':') {
        jid.user = user.to_owned();
    }
    jid
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    /// `false` when the account does not know the number (still a 200).
    found: bool,
    /// The phone JID.
    jid: Option<String>,
    /// `<digits>@lid`.
    lid: Option<String>,
    /// The name in the phone's address book.
    name: Option<String>,
    /// The name the contact chose.
    push_name: Option<String>,
}

impl ContactOut {
    fn found(contact: Contact) -> Self {
        Self {
            found: true,
            jid: Some(contact.jid.to_string()),
            lid: contact.lid.map(|l| l.to_string()),
            name: contact.name,
            push_name: contact.push_name,
        }
    }
}

/// One contact (`?number=`), or the whole address book.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactsReply {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<ContactOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<ContactOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// A phone number, a phone JID or an `@lid` (`:<device>` tolerated).
    #[param(value_type = Option<crate::openapi::PersonOrBlank>)]
    number: Option<String>,
}

/// The account's contacts, or one by phone or `@lid` (`contact.found`
/// false when unknown; the own number is always found, with its LID).
#[utoipa::path(get, path = "/api/chat/contacts/{instance}", tag = "chat",
    params(("instance" = String, Path), ContactsQuery),
    responses(
        (status = 200, body = ContactsReply),
        (status = 400, description = "invalid query: number must be a phone number or an @lid", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn contacts(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ContactsQuery>,
) -> ApiResult<Json<ContactsReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let whatsapp = state.instances.whatsapp();
    let Some(raw) = query
        .number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        let contacts: Vec<ContactOut> = whatsapp
            .contacts(&instance.id)
            .await?
            .into_iter()
            .map(ContactOut::found)
            .collect();
        return Ok(Json(ContactsReply {
            success: true,
            contact: None,
            total: Some(contacts.len()),
            contacts: Some(contacts),
        }));
    };
    let who = person("number", raw).map_err(|_| {
        Error::bad_request("invalid query: number must be a phone number or an @lid")
    })?;
    let contact = match whatsapp.contact(&instance.id, &who).await? {
        Some(contact) => ContactOut::found(contact),
        None => ContactOut {
            found: false,
            jid: None,
            lid: None,
            name: None,
            push_name: None,
        },
    };
    Ok(Json(ContactsReply {
        success: true,
        contact: Some(contact),
        contacts: None,
        total: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckNumbersIn {
    /// 1 to 50 phone numbers in international format.
    #[schema(required = true, nullable = false, value_type = Vec<crate::openapi::PhoneNumber>, min_items = 1, max_items = 50)]
    numbers: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NumberOut {
    /// The number asked, as digits.
    number: String,
    exists: bool,
    /// The account's JID, as WhatsApp answers it.
    jid: Option<String>,
    lid: Option<String>,
    is_business: bool,
}

impl From<NumberCheck> for NumberOut {
    fn from(c: NumberCheck) -> Self {
        Self {
            number: c.number.user,
            exists: c.exists,
            jid: c.jid.map(|j| j.to_string()),
            lid: c.lid.map(|j| j.to_string()),
            is_business: c.is_business,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckNumbersReply {
    success: bool,
    /// In the order asked.
    results: Vec<NumberOut>,
}

/// Which of up to 50 numbers have a WhatsApp account, with their JIDs.
#[utoipa::path(post, path = "/api/chat/checkNumbers/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = CheckNumbersIn,
    responses(
        (status = 200, body = CheckNumbersReply),
        (status = 400, description = "invalid body: numbers must list 1 to 50 phone numbers / numbers[2] is not a phone number", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp / WhatsApp did not answer", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn check_numbers(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<CheckNumbersReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: CheckNumbersIn = parse(raw)?;
    let numbers = input
        .numbers
        .filter(|n| (1..=MAX_CHECK_NUMBERS).contains(&n.len()))
        .ok_or_else(|| {
            invalid(format!(
                "numbers must list 1 to {MAX_CHECK_NUMBERS} phone numbers"
            ))
        })?;
    let numbers = numbers
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            Jid::parse(raw)
                .ok()
                .map(without_device)
                .filter(|j| j.server == USER_SERVER)
                .ok_or_else(|| invalid(format!("numbers[{i}] is not a phone number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = state
        .instances
        .whatsapp()
        .check_numbers(&instance.id, &numbers)
        .await?;
    Ok(Json(CheckNumbersReply {
        success: true,
        results: results.into_iter().map(NumberOut::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkReadIn {
    /// The chat: a phone number, a contact or group JID, or an `@lid`.
    #[schema(required = true, nullable = false, value_type = crate::openapi::ChatId)]
    number: Option<String>,
    /// 1 to 100 WhatsApp message ids of that chat.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 100, value_type = Vec<crate::openapi::MessageId>)]
    message_ids: Option<Vec<String>>,
    /// In a group (required there): the member who wrote the messages.
    #[schema(value_type = Option<crate::openapi::Person>)]
    participant: Option<String>,
}

/// Sends read receipts ("blue ticks") for messages of one chat.
#[utoipa::path(post, path = "/api/chat/markRead/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = MarkReadIn,
    responses(
        (status = 200, body = MessageOut),
        (status = 400, description = "invalid body: messageIds must list 1 to 100 message ids / participant is required in a group", body = ErrorOut),
        (status = 401, body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut),
        (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn mark_read(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<MessageOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: MarkReadIn = parse(raw)?;
    let chat = chat(input.number.as_deref())?;
    let ids = input
        .message_ids
        .filter(|ids| {
            (1..=MAX_READ_IDS).contains(&ids.len())
                && ids
                    .iter()
                    .all(|id| (1..=MAX_MESSAGE_ID_LEN).contains(&id.len()))
        })
        .ok_or_else(|| {
            invalid(format!(
                "messageIds must list 1 to {MAX_READ_IDS} message ids of 1 to {MAX_MESSAGE_ID_LEN} characters"
            ))
        })?;
    let participant = match (chat.is_group(), input.participant.as_deref()) {
        (true, Some(raw)) => Some(person("participant", raw)?),
        (true, None) => return Err(invalid("participant is required in a group").into()),
        (false, Some(_)) => {
            return Err(invalid("participant is only used in a group").into());
        }
        (false, None) => None,
    };
    state
        .instances
        .whatsapp()
        .mark_read(&instance.id, &chat, participant.as_ref(), &ids)
        .await?;
    Ok(Json(MessageOut::new("Messages marked as read")))
}

/// A body naming a chat, and whether to switch its flag on (default) or off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatFlagIn {
    /// The chat: a phone number, a contact or group JID, or an `@lid`.
    #[schema(required = true, nullable = false, value_type = crate::openapi::ChatId)]
    number: Option<String>,
    /// `markChatRead`: `false` marks the chat unread.
    read: Option<bool>,
    /// `archive`: `false` unarchives.
    archive: Option<bool>,
    /// `pin`: `false` unpins.
    pin: Option<bool>,
}

/// Applies `change` to the chat the body names, refusing the other routes'
/// flags by name.
async fn chat_flag(
    state: &AppState,
    principal: &Principal,
    name: &str,
    raw: Value,
    flag: &str,
    change: fn(bool) -> ChatChange,
    done: [&'static str; 2],
) -> ApiResult<Json<MessageOut>> {
    let instance = state.instances.visible(principal, name).await?;
    let input: ChatFlagIn = parse(raw)?;
    let chat = chat(input.number.as_deref())?;
    let mut on = None;
    for (field, value) in [
        ("read", input.read),
        ("archive", input.archive),
        ("pin", input.pin),
    ] {
        match value {
            Some(value) if field == flag => on = Some(value),
            Some(_) => return Err(invalid(format!("unknown field `{field}`")).into()),
            None => {}
        }
    }
    let on = on.unwrap_or(true);
    state
        .instances
        .whatsapp()
        .update_chat(&instance.id, &chat, change(on))
        .await?;
    Ok(Json(MessageOut::new(done[usize::from(!on)])))
}

/// A route that switches one chat flag: one handler shape, its own OpenAPI entry.
macro_rules! chat_flag_route {
    ($handler:ident, $path:literal, $flag:literal, $change:expr, $done:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "chat",
            params(("instance" = String, Path)), request_body = ChatFlagIn,
            responses(
                (status = 200, body = MessageOut),
                (status = 400, description = "invalid body: number is required / unknown field / WhatsApp refused the request", body = ErrorOut),
                (status = 401, body = ErrorOut), (status = 404, body = ErrorOut), (status = 413, body = ErrorOut),
                (status = 415, body = ErrorOut), (status = 429, body = ErrorOut),
                (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
            ),
            security(("token" = [])))]
        async fn $handler(
            State(state): State<AppState>,
            Caller(principal): Caller,
            Path(name): Path<String>,
            JsonBody(raw): JsonBody<Value>,
        ) -> ApiResult<Json<MessageOut>> {
            chat_flag(&state, &principal, &name, raw, $flag, $change, $done).await
        }
    };
}

chat_flag_route!(
    mark_chat_read,
    "/api/chat/markChatRead/{instance}",
    "read",
    ChatChange::MarkRead,
    ["Chat marked as read", "Chat marked as unread"],
    "Marks a whole chat read (or unread, `read: false`) on every device."
);
chat_flag_route!(
    archive,
    "/api/chat/archive/{instance}",
    "archive",
    ChatChange::Archive,
    ["Chat archived", "Chat unarchived"],
    "Archives a chat (`archive: false` unarchives)."
);
chat_flag_route!(
    pin,
    "/api/chat/pin/{instance}",
    "pin",
    ChatChange::Pin,
    ["Chat pinned", "Chat unpinned"],
    "Pins a chat (`pin: false` unpins)."
);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MuteIn {
    /// The chat: a phone number, a contact or group JID, or an `@lid`.
    #[schema(required = true, nullable = false, value_type = crate::openapi::ChatId)]
    number: Option<String>,
    /// `false` unmutes (default `true`).
    mute: Option<bool>,
    /// Seconds to stay muted (1 to 31622400); absent: until unmuted.
    #[schema(minimum = 1, maximum = 31622400)]
    duration: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MuteReply {
    success: bool,
    message: &'static str,
    /// Unix seconds the mute ends; `null` when muted until unmuted, or unmuted.
    muted_until: Option<i64>,
}

/// Mutes a chat for `duration` seconds or until unmuted (`mute: false` unmutes).
#[utoipa::path(post, path = "/api/chat/mute/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = MuteIn,
    responses(
        (status = 200, body = MuteReply),
        (status = 400, description = "invalid body: duration must be between 1 and 31622400 seconds / duration is only used when muting", body = ErrorOut),
        (status = 401, body = ErrorOut), (status = 404, body = ErrorOut), (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut), (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn mute(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<MuteReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: MuteIn = parse(raw)?;
    let chat = chat(input.number.as_deref())?;
    let mute = match (input.mute.unwrap_or(true), input.duration) {
        (true, None) => Mute::Forever,
        (true, Some(secs)) if (1..=MAX_MUTE_SECS).contains(&secs) => Mute::Until(now_secs() + secs),
        (true, Some(_)) => {
            return Err(invalid(format!(
                "duration must be between 1 and {MAX_MUTE_SECS} seconds"
            ))
            .into());
        }
        (false, None) => Mute::Off,
        (false, Some(_)) => return Err(invalid("duration is only used when muting").into()),
    };
    state
        .instances
        .whatsapp()
        .update_chat(&instance.id, &chat, ChatChange::Mute(mute))
        .await?;
    let (message, muted_until) = match mute {
        Mute::Until(at) => ("Chat muted", Some(at)),
        Mute::Forever => ("Chat muted", None),
        Mute::Off => ("Chat unmuted", None),
    };
    Ok(Json(MuteReply {
        success: true,
        message,
        muted_until,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockIn {
    /// A phone number, a phone JID or an `@lid` (not a group).
    #[schema(required = true, nullable = false, value_type = crate::openapi::Person)]
    number: Option<String>,
    /// `false` unblocks (default `true`).
    block: Option<bool>,
}

/// Blocks a contact (`block: false` unblocks).
#[utoipa::path(post, path = "/api/chat/block/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = BlockIn,
    responses(
        (status = 200, body = MessageOut),
        (status = 400, description = "invalid body: number must be a phone number or an @lid", body = ErrorOut),
        (status = 401, body = ErrorOut), (status = 404, body = ErrorOut), (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut), (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn block(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<MessageOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: BlockIn = parse(raw)?;
    let raw = input
        .number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("number is required"))?;
    let who = person("number", raw)?;
    let blocked = input.block.unwrap_or(true);
    state
        .instances
        .whatsapp()
        .block(&instance.id, &who, blocked)
        .await?;
    Ok(Json(MessageOut::new(if blocked {
        "Contact blocked"
    } else {
        "Contact unblocked"
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteChatIn {
    /// The chat: a phone number, a contact or group JID, or an `@lid`.
    #[schema(required = true, nullable = false, value_type = crate::openapi::ChatId)]
    number: Option<String>,
}

/// Deletes a chat and its messages on every device of the account.
#[utoipa::path(delete, path = "/api/chat/deleteChat/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = DeleteChatIn,
    responses(
        (status = 200, body = MessageOut),
        (status = 400, description = "invalid body: number is required", body = ErrorOut),
        (status = 401, body = ErrorOut), (status = 404, body = ErrorOut), (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut), (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn delete_chat(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<MessageOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: DeleteChatIn = parse(raw)?;
    let chat = chat(input.number.as_deref())?;
    state
        .instances
        .whatsapp()
        .update_chat(&instance.id, &chat, ChatChange::Delete)
        .await?;
    Ok(Json(MessageOut::new("Chat deleted")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceIn {
    /// The chat for `typing`, `recording` and `paused` (a phone number, a
    /// contact or group JID, or an `@lid`); not used with `available` and
    /// `unavailable`, which are account-wide.
    #[schema(value_type = Option<crate::openapi::ChatId>)]
    number: Option<String>,
    /// `typing`, `recording`, `paused`, `available` or `unavailable`.
    #[schema(required = true, nullable = false)]
    state: Option<String>,
    /// `typing` / `recording`: seconds (1 to 60) after which zapgate sends
    /// `paused`; absent: WhatsApp clears it by itself.
    #[schema(minimum = 1, maximum = 60)]
    duration: Option<u32>,
}

/// Shows "typing..." or "recording..." in a chat (stopped by `paused`, or
/// after `duration` seconds), or the account online or offline.
#[utoipa::path(post, path = "/api/chat/presence/{instance}", tag = "chat",
    params(("instance" = String, Path)), request_body = PresenceIn,
    responses(
        (status = 200, body = MessageOut),
        (status = 400, description = "invalid body: state must be one of typing, recording, paused, available, unavailable / duration must be between 1 and 60 seconds", body = ErrorOut),
        (status = 401, body = ErrorOut), (status = 404, body = ErrorOut), (status = 413, body = ErrorOut),
        (status = 415, body = ErrorOut), (status = 429, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn presence(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(raw): JsonBody<Value>,
) -> ApiResult<Json<MessageOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let input: PresenceIn = parse(raw)?;
    let chat_state = match input.state.as_deref().unwrap_or_default() {
        "typing" => Some(ChatPresence::Typing),
        "recording" => Some(ChatPresence::Recording),
        "paused" => Some(ChatPresence::Paused),
        account @ ("available" | "unavailable") => {
            if input.number.is_some() {
                return Err(invalid(format!(
                    "number is not used with {account} (presence is account-wide)"
                ))
                .into());
            }
            if input.duration.is_some() {
                return Err(invalid("duration is only used with typing and recording").into());
            }
            state
                .instances
                .whatsapp()
                .set_presence(&instance.id, account == "available")
                .await?;
            return Ok(Json(MessageOut::new(format!("Presence set to {account}"))));
        }
        _ => None,
    }
    .ok_or_else(|| {
        invalid("state must be one of typing, recording, paused, available, unavailable")
    })?;
    let chat = chat(input.number.as_deref())?;
    let duration = match (chat_state, input.duration) {
        (_, None) => None,
        (ChatPresence::Paused, Some(_)) => {
            return Err(invalid("duration is only used with typing and recording").into());
        }
        (_, Some(secs)) if (1..=MAX_PRESENCE_SECS).contains(&secs) => Some(secs),
        (_, Some(_)) => {
            return Err(invalid(format!(
                "duration must be between 1 and {MAX_PRESENCE_SECS} seconds"
            ))
            .into());
        }
    };
    state
        .instances
        .chat_presence(&instance, &chat, chat_state)
        .await?;
    if let Some(secs) = duration {
        // The client waits only a few seconds for this answer (its
        // `chat/presence` timeout is 6 s), so the pause comes later.
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(secs))).await;
            if let Err(err) = state
                .instances
                .chat_presence(&instance, &chat, ChatPresence::Paused)
                .await
            {
                tracing::debug!(instance_id = %instance.id, error = %err, "presence pause not sent");
            }
        });
    }
    Ok(Json(MessageOut::new(format!(
        "Presence set to {}",
        chat_state.as_str()
    ))))
}
