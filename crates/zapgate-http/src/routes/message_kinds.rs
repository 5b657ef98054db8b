//! The send module's structured kinds (`/api/message/<kind>/:instance`):
//! sticker, location, contact, reaction, poll, event and status (stories),
//! and the kinds WhatsApp Web cannot deliver from a linked device (501). Field names and
//! limits follow `research/ryzeapi-client-contract.md` §2.
//!
//! A body is read in two steps: the fields common to every kind (`number`,
//! `source`, `delay`, `replyTo`) come out first, then the rest must be
//! exactly the kind's fields, so a field this server does not act on is
//! refused by name instead of silently dropped.

use axum::{
    Extension, Json, Router,
    extract::{DefaultBodyLimit, Path, State},
    routing::post,
};
use base64::Engine;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use zapgate_core::{
    Error,
    groups::GroupRef,
    instance::Instance,
    jid::Jid,
    whatsapp::{
        ChatPresence, ContactCard, EventInvite, Extra, Location, Media, MediaKind, Outgoing,
        SendContext, StatusFont, StatusPost,
    },
};

use super::message::{SentOut, default_mimetype, media_bytes, own_message, recipient, sent_out};
use crate::{
    AppState, auth::Caller, envelope::ErrorOut, error::ApiResult, extract::JsonBody,
    idempotency::SendId, sticker,
};

/// The contract's default bound on a string field.
const MAX_STRING: usize = 4000;
const MAX_ID: usize = 256;
pub(super) const MAX_SOURCE: usize = 100;
const MAX_URL: usize = 4096;

/// Sticker bodies are as large as media ones, so they share the media bound.
pub(super) const STICKER_ROUTE: &str = "/api/message/sticker/{instance}";

pub fn router(media_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            STICKER_ROUTE,
            post(send_sticker).layer(DefaultBodyLimit::max(media_body_limit)),
        )
        .route("/api/message/location/{instance}", post(send_location))
        .route("/api/message/contact/{instance}", post(send_contact))
        .route("/api/message/reaction/{instance}", post(send_reaction))
        .route("/api/message/poll/{instance}", post(send_poll))
        .route("/api/message/event/{instance}", post(send_event))
        .route("/api/message/button/{instance}", post(send_button))
        .route("/api/message/list/{instance}", post(send_list))
        .route("/api/message/carousel/{instance}", post(send_carousel))
        .route("/api/message/form/{instance}", post(send_form))
        .route("/api/message/pix/{instance}", post(send_pix))
        .route(
            "/api/message/status/{instance}",
            post(send_status).layer(DefaultBodyLimit::max(media_body_limit)),
        )
}

pub(super) fn invalid(detail: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("invalid body: {detail}"))
}

/// The fields every kind shares. `reaction` takes only `number` and `source`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommonIn {
    /// A phone number in international format, or a JID (`...@g.us` for
    /// groups, `...@lid`).
    #[schema(required = true, nullable = false, value_type = crate::openapi::Recipient)]
    number: Option<String>,
    /// A trace label (at most 100 characters), logged with the send and
    /// echoed in the answer.
    source: Option<String>,
    /// Seconds (0 to 30) of "typing..." shown in the chat before sending.
    #[schema(maximum = 30)]
    delay: Option<u32>,
    /// The WhatsApp id of the message this one replies to (at most 256
    /// characters): a message of this instance in the message store
    /// (`404 Message not found` otherwise).
    reply_to: Option<String>,
    /// Phone numbers or LIDs (at most 10, each at most 100 characters) the
    /// message @-mentions: they are notified. Groups only. The text should
    /// carry `@<digits>` where each mention is to show; zapgate adds nothing.
    #[schema(max_items = 10, value_type = Option<Vec<crate::openapi::Person>>)]
    mention: Option<Vec<String>>,
    /// Mentions every member of the group (`number`). Groups only.
    mention_all: Option<bool>,
    /// With `replyTo` a stored message of the group `number` names: the
    /// reply goes privately to that message's author, quoting it.
    reply_private: Option<bool>,
}

const COMMON: &[&str] = &[
    "number",
    "source",
    "delay",
    "replyTo",
    "mention",
    "mentionAll",
    "replyPrivate",
];
const REACTION_COMMON: &[&str] = &["number", "source"];
/// A status has no recipient, reply or mention: only the trace label.
const STATUS_COMMON: &[&str] = &["source"];

/// Each kind's route and the common fields its body takes: the OpenAPI
/// document shows them in the kind's body (the annotations name only the
/// kind's own schema, as `split` reads the body in two steps).
pub const COMMON_FIELDS: &[(&str, &[&str])] = &[
    ("/api/message/sticker/{instance}", COMMON),
    ("/api/message/location/{instance}", COMMON),
    ("/api/message/contact/{instance}", COMMON),
    ("/api/message/reaction/{instance}", REACTION_COMMON),
    ("/api/message/poll/{instance}", COMMON),
    ("/api/message/event/{instance}", COMMON),
    ("/api/message/status/{instance}", STATUS_COMMON),
];
/// The longest `delay`, in seconds.
const MAX_DELAY: u32 = 30;

/// `delay`, checked.
pub(super) fn delay_secs(delay: Option<u32>) -> Result<u32, Error> {
    match delay.unwrap_or(0) {
        d if d > MAX_DELAY => Err(invalid(format!(
            "delay must be between 0 and {MAX_DELAY} seconds"
        ))),
        d => Ok(d),
    }
}

/// Shows `presence` in `to` for `secs` seconds before a send, as a person
/// typing (or recording) would.
pub(super) async fn pause(
    state: &AppState,
    instance: &Instance,
    to: &Jid,
    secs: u32,
    presence: ChatPresence,
) -> Result<(), Error> {
    if secs == 0 {
        return Ok(());
    }
    state
        .instances
        .chat_presence(instance, to, presence)
        .await?;
    tokio::time::sleep(std::time::Duration::from_secs(u64::from(secs))).await;
    Ok(())
}

/// `T` with serde's message and the path of the field that failed.
pub(super) fn parse<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            invalid(e.into_inner())
        } else {
            invalid(format!("{path}: {}", e.into_inner()))
        }
    })
}

/// Splits a body into the common fields (those of `common` only) and the
/// kind's own.
fn split<T: DeserializeOwned>(body: Value, common: &[&str]) -> Result<(CommonIn, T), Error> {
    let Value::Object(mut rest) = body else {
        return Err(invalid("expected a JSON object"));
    };
    let mut shared = Map::new();
    for key in common {
        if let Some(value) = rest.remove(*key) {
            shared.insert((*key).to_owned(), value);
        }
    }
    Ok((parse(Value::Object(shared))?, parse(Value::Object(rest))?))
}

/// A required string: present, not blank, at most `max` characters.
fn required(field: &str, value: Option<String>, max: usize) -> Result<String, Error> {
    let value = value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| invalid(format!("{field} is required")))?;
    bounded(field, value, max)
}

fn bounded(field: &str, value: String, max: usize) -> Result<String, Error> {
    if value.chars().count() > max {
        return Err(invalid(format!("{field} must be at most {max} characters")));
    }
    Ok(value)
}

/// An optional string: blank counts as absent.
pub(super) fn optional(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, Error> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| bounded(field, v, max))
        .transpose()
}

fn https_url(field: &str, value: Option<String>) -> Result<Option<String>, Error> {
    let Some(value) = optional(field, value, MAX_URL)? else {
        return Ok(None);
    };
    match url::Url::parse(&value) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(Some(value)),
        _ => Err(invalid(format!("{field} must be an https URL"))),
    }
}

/// The most people one message mentions by name (`mention`).
const MAX_MENTIONS: usize = 10;

/// `mention`, `mentionAll` and `replyPrivate` checked against the
/// recipient (`to`, before a private reply redirects it) and `replyTo`.
pub(super) struct Addressing {
    mentions: Vec<Jid>,
    mention_all: bool,
    reply_private: bool,
}

impl Addressing {
    /// Field checks only; [`Self::resolve`] does the lookups.
    pub(super) fn check(
        mention: Option<Vec<String>>,
        mention_all: Option<bool>,
        reply_private: Option<bool>,
        to: &Jid,
        quoted_id: Option<&str>,
    ) -> Result<Self, Error> {
        let mention = mention.unwrap_or_default();
        if mention.len() > MAX_MENTIONS {
            return Err(invalid(format!(
                "mention must hold at most {MAX_MENTIONS} numbers"
            )));
        }
        let mentions = mention
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let field = format!("mention[{i}]");
                let raw = required(&field, Some(raw), 100)?;
                Jid::parse(&raw)
                    .ok()
                    .filter(|j| j.server == zapgate_core::jid::USER_SERVER || j.is_lid())
                    .ok_or_else(|| invalid(format!("{field} must be a phone number or a LID")))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mention_all = mention_all.unwrap_or(false);
        let reply_private = reply_private.unwrap_or(false);
        if reply_private {
            if quoted_id.is_none() {
                return Err(invalid(
                    "replyPrivate needs replyTo (the group message answered)",
                ));
            }
            if !to.is_group() {
                return Err(invalid(
                    "replyPrivate needs number to be the group of replyTo",
                ));
            }
            if !mentions.is_empty() || mention_all {
                return Err(invalid(
                    "mention and mentionAll are only for group chats (a private reply goes to one person)",
                ));
            }
        } else if !to.is_group() {
            if !mentions.is_empty() {
                return Err(invalid("mention is only for group chats"));
            }
            if mention_all {
                return Err(invalid("mentionAll is only for group chats"));
            }
        }
        Ok(Self {
            mentions,
            mention_all,
            reply_private,
        })
    }

    /// Where the send goes and what it carries: a private reply goes to the
    /// author of the stored group message `quoted_id` (`404 Message not
    /// found` when it is not stored); `mentionAll` adds every member of the
    /// group as WhatsApp lists them now.
    pub(super) async fn resolve(
        self,
        state: &AppState,
        instance: &Instance,
        to: Jid,
        quoted_id: Option<&str>,
    ) -> Result<(Jid, SendContext), Error> {
        let mut context = SendContext {
            mentions: self.mentions,
            quoted_chat: None,
        };
        if self.mention_all {
            let group = state
                .instances
                .whatsapp()
                .group_info(&instance.id, &GroupRef::Jid(to.clone()))
                .await?;
            context
                .mentions
                .extend(group.participants.into_iter().map(|p| p.jid));
        }
        let mut seen = std::collections::HashSet::new();
        context.mentions.retain(|jid| seen.insert(jid.clone()));
        let (Some(quoted_id), true) = (quoted_id, self.reply_private) else {
            return Ok((to, context));
        };
        let quoted = state.events.message(instance, quoted_id).await?;
        if quoted.chat != to.to_string() {
            return Err(invalid(
                "replyTo is not a message of the group number names",
            ));
        }
        if quoted.from_me {
            return Err(invalid(
                "replyPrivate answers another member's message, not the instance's own",
            ));
        }
        let author = Jid::parse(&quoted.sender)?;
        context.quoted_chat = Some(to);
        Ok((author, context))
    }
}

/// What every send shares once validated.
struct Common {
    /// The WhatsApp id to send under (`Idempotency-Key`).
    id: Option<String>,
    to: Jid,
    source: Option<String>,
    delay: u32,
    quoted_id: Option<String>,
    addressing: Addressing,
}

impl Common {
    fn from(input: CommonIn, id: Option<Extension<SendId>>) -> Result<Self, Error> {
        let to = recipient(input.number.as_deref())?;
        let quoted_id = optional("replyTo", input.reply_to, MAX_ID)?;
        Ok(Self {
            id: id.map(|Extension(SendId(id))| id),
            addressing: Addressing::check(
                input.mention,
                input.mention_all,
                input.reply_private,
                &to,
                quoted_id.as_deref(),
            )?,
            to,
            source: optional("source", input.source, MAX_SOURCE)?,
            delay: delay_secs(input.delay)?,
            quoted_id,
        })
    }
}

/// Sends `outgoing`, publishes `echo` (with `extra`) as the owner's own
/// message, and answers like `message/text` with `messageType`.
async fn deliver(
    state: &AppState,
    instance: &Instance,
    common: Common,
    outgoing: Outgoing,
    extra: Option<Extra>,
    media: Option<Media>,
    message_type: &'static str,
) -> ApiResult<Json<SentOut>> {
    deliver_echoing(
        state,
        instance,
        common,
        outgoing,
        (None, extra, media),
        message_type,
    )
    .await
}

/// The echo's text, extra and media.
type Echo = (Option<String>, Option<Extra>, Option<Media>);

async fn deliver_echoing(
    state: &AppState,
    instance: &Instance,
    common: Common,
    mut outgoing: Outgoing,
    (text, extra, media): Echo,
    message_type: &'static str,
) -> ApiResult<Json<SentOut>> {
    state
        .events
        .check_reply(instance, common.quoted_id.as_deref())
        .await?;
    let (to, context) = common
        .addressing
        .resolve(state, instance, common.to, common.quoted_id.as_deref())
        .await?;
    outgoing.readdress(to.clone(), context);
    pause(state, instance, &to, common.delay, ChatPresence::Typing).await?;
    let mut echo = own_message(&to, text, media, common.quoted_id.clone());
    echo.extra = extra;
    echo.source = common.source.clone();
    let sent = state
        .instances
        .send_as(instance, outgoing, echo, common.id.as_deref())
        .await?;
    tracing::info!(
        instance_id = %instance.id,
        message_id = %sent.id,
        kind = message_type,
        source = common.source.as_deref().unwrap_or(""),
        "message sent"
    );
    let mut out = sent_out(sent, to, common.quoted_id, Some(message_type));
    out.set_source(common.source);
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StickerIn {
    /// An https URL of the image, or a `data:image/<type>;base64,...` URI.
    /// WebP is sent as is; PNG and JPEG are converted to a 512 x 512 WebP.
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^\s*(https://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[0-9]{1,4})?([/?#][!-~]*)?|data:image/[A-Za-z0-9.+-]+;base64,(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?)\s*$"
    )]
    image_url: Option<String>,
}

/// Sends a sticker (plus `number`, `source`, `replyTo`).
#[utoipa::path(post, path = "/api/message/sticker/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = StickerIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: imageUrl ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 502, description = "the image URL could not be fetched", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_sticker(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, StickerIn) = split(body, COMMON)?;
    let common = Common::from(common, send_id)?;
    let url = required("imageUrl", body.image_url, usize::MAX)?;
    let url = url.trim();
    let data = if let Some(rest) = url.strip_prefix("data:image/") {
        let (_, payload) = rest.split_once(";base64,").ok_or_else(|| {
            invalid("imageUrl must be an https URL or a data:image/...;base64, URI")
        })?;
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| invalid("imageUrl is not valid base64"))?
    } else {
        let url = https_url("imageUrl", Some(url.to_owned()))?.unwrap_or_default();
        state
            .downloader
            .fetch(&url)
            .await
            .map_err(|e| match e {
                zapgate_chatwoot::download::Failure::Rejected { error } => {
                    invalid(format!("imageUrl: {error}"))
                }
                zapgate_chatwoot::download::Failure::Transient { error } => {
                    Error::BadGateway(format!("imageUrl could not be fetched: {error}"))
                }
            })?
            .data
    };
    // Decoding is CPU work: off the async workers.
    let webp = tokio::task::spawn_blocking(move || sticker::to_webp(&data))
        .await
        .map_err(Error::internal)??;
    let media = Media {
        kind: MediaKind::Sticker,
        mimetype: "image/webp".to_owned(),
        file_name: None,
        data: webp.into(),
    };
    let outgoing = Outgoing::Media {
        to: common.to.clone(),
        media: media.clone(),
        caption: None,
        quoted_id: common.quoted_id.clone(),
        context: SendContext::default(),
    };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        None,
        Some(media),
        "sticker",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationIn {
    /// -90 to 90.
    #[schema(required = true, nullable = false, minimum = -90, maximum = 90)]
    latitude: Option<f64>,
    /// -180 to 180; (0,0) is refused.
    #[schema(required = true, nullable = false, minimum = -180, maximum = 180)]
    longitude: Option<f64>,
    name: Option<String>,
    address: Option<String>,
}

fn coordinates(latitude: f64, longitude: f64, prefix: &str) -> Result<(), Error> {
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(invalid(format!(
            "{prefix}latitude must be between -90 and 90"
        )));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(invalid(format!(
            "{prefix}longitude must be between -180 and 180"
        )));
    }
    Ok(())
}

/// Sends a location pin (plus `number`, `source`, `replyTo`).
#[utoipa::path(post, path = "/api/message/location/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = LocationIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: latitude must be between -90 and 90 / ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_location(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, LocationIn) = split(body, COMMON)?;
    let common = Common::from(common, send_id)?;
    let latitude = body
        .latitude
        .ok_or_else(|| invalid("latitude is required"))?;
    let longitude = body
        .longitude
        .ok_or_else(|| invalid("longitude is required"))?;
    coordinates(latitude, longitude, "")?;
    if latitude == 0.0 && longitude == 0.0 {
        return Err(invalid("latitude and longitude (0,0) is not a place").into());
    }
    let location = Location {
        latitude,
        longitude,
        name: optional("name", body.name, MAX_STRING)?,
        address: optional("address", body.address, MAX_STRING)?,
    };
    let extra = Extra::Location {
        latitude,
        longitude,
        name: location.name.clone().or(location.address.clone()),
    };
    let outgoing = Outgoing::Location {
        to: common.to.clone(),
        location,
        quoted_id: common.quoted_id.clone(),
        context: SendContext::default(),
    };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        Some(extra),
        None,
        "location",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactIn {
    /// 1 to 100 cards.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 100)]
    vcard: Option<Vec<CardIn>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardIn {
    #[schema(required = true, nullable = false, min_length = 1, pattern = r"\S")]
    full_name: Option<String>,
    /// International format, as typed (`+`, spaces and dashes allowed).
    #[schema(required = true, nullable = false, value_type = crate::openapi::PhoneNumber)]
    phone: Option<String>,
    #[schema(max_length = 300)]
    organization: Option<String>,
    /// Blank, or an address with `@`.
    #[schema(max_length = 320, pattern = r"^\s*$|@")]
    email: Option<String>,
    /// An https URL.
    #[schema(value_type = Option<crate::openapi::HttpsUrlOrBlank>)]
    url: Option<String>,
}

fn card(index: usize, card: CardIn) -> Result<ContactCard, Error> {
    let field = |name: &str| format!("vcard[{index}].{name}");
    let phone = required(&field("phone"), card.phone, 30)?;
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if !(8..=15).contains(&digits) || !phone.chars().all(allowed) {
        return Err(invalid(format!(
            "{} must be a phone number in international format",
            field("phone")
        )));
    }
    let email = optional(&field("email"), card.email, 320)?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(invalid(format!(
            "{} must be an e-mail address",
            field("email")
        )));
    }
    Ok(ContactCard {
        full_name: required(&field("fullName"), card.full_name, 300)?,
        phone,
        organization: optional(&field("organization"), card.organization, 300)?,
        email,
        url: https_url(&field("url"), card.url)?,
    })
}

/// Sends one or more contact cards (plus `number`, `source`, `replyTo`).
#[utoipa::path(post, path = "/api/message/contact/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = ContactIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: vcard ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_contact(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, ContactIn) = split(body, COMMON)?;
    let common = Common::from(common, send_id)?;
    let cards = body.vcard.unwrap_or_default();
    if !(1..=100).contains(&cards.len()) {
        return Err(invalid("vcard must hold 1 to 100 contacts").into());
    }
    let cards = cards
        .into_iter()
        .enumerate()
        .map(|(i, c)| card(i, c))
        .collect::<Result<Vec<_>, _>>()?;
    let extra = Extra::ContactCard {
        name: cards
            .iter()
            .map(|c| c.full_name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        vcard: Some(
            cards
                .iter()
                .map(ContactCard::vcard)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    let outgoing = Outgoing::Contacts {
        to: common.to.clone(),
        cards,
        quoted_id: common.quoted_id.clone(),
        context: SendContext::default(),
    };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        Some(extra),
        None,
        "contact",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReactionIn {
    /// The WhatsApp id of the message reacted to.
    #[schema(required = true, nullable = false, min_length = 1, pattern = r"\S")]
    message_id: Option<String>,
    /// The emoji (at most 32 characters); `remove` removes the reaction.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 32)]
    reaction: Option<String>,
    /// The message reacted to is the instance's own.
    #[serde(default)]
    from_me: bool,
    /// In a group, the author of the message reacted to (a phone JID or a
    /// LID); required there unless `fromMe`.
    #[schema(value_type = Option<crate::openapi::PersonOrBlank>)]
    participant: Option<String>,
}

/// Reacts to a message (plus `number` and `source`; no `replyTo`).
#[utoipa::path(post, path = "/api/message/reaction/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = ReactionIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: messageId is required / participant ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_reaction(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, ReactionIn) = split(body, REACTION_COMMON)?;
    let common = Common::from(common, send_id)?;
    let target_id = required("messageId", body.message_id, MAX_ID)?;
    let reaction = required("reaction", body.reaction, 32)?;
    let emoji = if reaction.trim() == "remove" {
        String::new()
    } else {
        reaction
    };
    let participant = optional("participant", body.participant, 100)?
        .map(|p| Jid::parse(&p).map_err(|_| invalid("participant must be a phone JID or a LID")))
        .transpose()?;
    match (&participant, common.to.is_group()) {
        (Some(_), false) => return Err(invalid("participant is only for group chats").into()),
        (None, true) if !body.from_me => {
            return Err(invalid("participant is required in a group unless fromMe is true").into());
        }
        _ => {}
    }
    let extra = Extra::Reaction {
        target_id: target_id.clone(),
        emoji: emoji.clone(),
    };
    let outgoing = Outgoing::Reaction {
        to: common.to.clone(),
        target_id,
        emoji,
        from_me: body.from_me,
        participant,
    };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        Some(extra),
        None,
        "reaction",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollIn {
    #[schema(required = true, nullable = false, min_length = 1, pattern = r"\S")]
    question: Option<String>,
    /// 2 to 12 distinct options.
    #[schema(required = true, nullable = false, min_items = 2, max_items = 12, value_type = Vec<crate::openapi::Text>)]
    options: Option<Vec<String>>,
    /// How many options one person may pick: 1 (default) to the number of
    /// options.
    #[schema(minimum = 1, maximum = 12)]
    max_answer: Option<u32>,
}

/// Sends a poll (plus `number`, `source`, `replyTo`).
#[utoipa::path(post, path = "/api/message/poll/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = PollIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: options must hold 2 to 12 options / ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_poll(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, PollIn) = split(body, COMMON)?;
    let common = Common::from(common, send_id)?;
    let question = required("question", body.question, MAX_STRING)?;
    let options = body.options.unwrap_or_default();
    if !(2..=12).contains(&options.len()) {
        return Err(invalid("options must hold 2 to 12 options").into());
    }
    let mut seen = std::collections::HashSet::new();
    let options = options
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let o = required(&format!("options[{i}]"), Some(o), MAX_STRING)?;
            // Votes name options by a hash of their text: twins could not
            // be told apart.
            if !seen.insert(o.clone()) {
                return Err(invalid(format!("options[{i}] repeats another option")));
            }
            Ok(o)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let selectable = body.max_answer.unwrap_or(1);
    if selectable < 1 || selectable as usize > options.len() {
        return Err(invalid(format!(
            "maxAnswer must be between 1 and {} (the number of options)",
            options.len()
        ))
        .into());
    }
    let extra = Extra::Poll {
        question: question.clone(),
        options: options.clone(),
    };
    let outgoing = Outgoing::Poll {
        to: common.to.clone(),
        question,
        options,
        selectable,
        quoted_id: common.quoted_id.clone(),
        context: SendContext::default(),
    };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        Some(extra),
        None,
        "poll",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventIn {
    #[schema(required = true, nullable = false, min_length = 1, pattern = r"\S")]
    name: Option<String>,
    /// ISO 8601 with a zone (`2026-05-01T19:00:00-03:00`).
    #[schema(required = true, nullable = false, format = DateTime)]
    start_at: Option<String>,
    /// Later than `startAt`; blank for none.
    end_at: Option<String>,
    description: Option<String>,
    location: Option<EventPlaceIn>,
    /// An https URL (a call link).
    #[schema(value_type = Option<crate::openapi::HttpsUrlOrBlank>)]
    join_link: Option<String>,
    #[serde(default)]
    is_schedule_call: bool,
    #[serde(default)]
    has_reminder: bool,
    /// Seconds before the start the reminder fires (0 to 31536000).
    #[schema(minimum = 0, maximum = 31536000)]
    reminder_offset_sec: Option<i64>,
    #[serde(default)]
    extra_guests_allowed: bool,
    #[serde(default)]
    is_canceled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventPlaceIn {
    name: Option<String>,
    address: Option<String>,
    #[schema(minimum = -90, maximum = 90)]
    latitude: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    longitude: Option<f64>,
}

fn instant(field: &str, raw: Option<String>) -> Result<Option<i64>, Error> {
    let Some(raw) = optional(field, raw, 40)? else {
        return Ok(None);
    };
    zapgate_core::time::parse_rfc3339_secs(raw.trim())
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "{field} must be an ISO 8601 date and time with a zone"
            ))
        })
}

fn place(input: EventPlaceIn) -> Result<Location, Error> {
    let (latitude, longitude) = match (input.latitude, input.longitude) {
        (Some(lat), Some(lon)) => {
            coordinates(lat, lon, "location.")?;
            (lat, lon)
        }
        (None, None) => (0.0, 0.0),
        _ => {
            return Err(invalid(
                "location.latitude and location.longitude go together",
            ));
        }
    };
    Ok(Location {
        latitude,
        longitude,
        name: optional("location.name", input.name, MAX_STRING)?,
        address: optional("location.address", input.address, MAX_STRING)?,
    })
}

/// Sends an event invitation (plus `number`, `source`, `replyTo`).
#[utoipa::path(post, path = "/api/message/event/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = EventIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: startAt ... / endAt must be later than startAt / ...", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_event(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, EventIn) = split(body, COMMON)?;
    let common = Common::from(common, send_id)?;
    let name = required("name", body.name, MAX_STRING)?;
    let start = instant("startAt", body.start_at)?.ok_or_else(|| invalid("startAt is required"))?;
    let end = instant("endAt", body.end_at)?;
    if end.is_some_and(|end| end <= start) {
        return Err(invalid("endAt must be later than startAt").into());
    }
    let reminder = body.reminder_offset_sec;
    if reminder.is_some_and(|r| !(0..=31_536_000).contains(&r)) {
        return Err(invalid("reminderOffsetSec must be between 0 and 31536000").into());
    }
    if reminder.is_some() && !body.has_reminder {
        return Err(invalid("reminderOffsetSec needs hasReminder true").into());
    }
    let event = EventInvite {
        name: name.clone(),
        description: optional("description", body.description, MAX_STRING)?,
        start,
        end,
        location: body.location.map(place).transpose()?,
        join_link: https_url("joinLink", body.join_link)?,
        schedule_call: body.is_schedule_call,
        has_reminder: body.has_reminder,
        reminder_offset_secs: reminder,
        extra_guests_allowed: body.extra_guests_allowed,
        canceled: body.is_canceled,
    };
    let outgoing = Outgoing::Event {
        to: common.to.clone(),
        event,
        quoted_id: common.quoted_id.clone(),
        context: SendContext::default(),
    };
    let extra = Extra::Event { name, start };
    deliver(
        &state,
        &instance,
        common,
        outgoing,
        Some(extra),
        None,
        "event",
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusIn {
    /// `text`, `image`, `video` or `audio`.
    #[schema(required = true, nullable = false, value_type = StatusType)]
    r#type: Option<String>,
    /// The text of a `text` status; the caption of an image or video. An
    /// audio status has no caption on WhatsApp: the text is kept with the
    /// stored message only.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 65536,
        pattern = r"\S"
    )]
    message: Option<String>,
    /// The media of an image, video or audio status: an https URL (fetched
    /// through the address guard) or a base64 data URL. Required for those,
    /// refused for `text`.
    #[schema(max_length = 4096)]
    media_url: Option<String>,
    /// The media's MIME type (detected from the download when absent).
    #[schema(max_length = 128)]
    mime_type: Option<String>,
    #[schema(max_length = 256)]
    file_name: Option<String>,
    /// `text` only: `#RRGGBB` or `#RRGGBBAA` (default `#1E6E4F`, opaque);
    /// blank for the default.
    #[schema(pattern = r"^(\s*|#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8}))$")]
    background_color: Option<String>,
    /// `text` only: one of WhatsApp's fonts, by name in any case: `SYSTEM`
    /// (default), `SYSTEM_TEXT`, `FB_SCRIPT`, `SYSTEM_BOLD`,
    /// `MORNINGBREEZE_REGULAR`, `CALISTOGA_REGULAR`, `EXO2_EXTRABOLD`,
    /// `COURIERPRIME_BOLD`.
    #[schema(max_length = 50)]
    font: Option<String>,
}

/// What `type` takes.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // describes `type` in the OpenAPI document only
enum StatusType {
    Text,
    Image,
    Video,
    Audio,
}

/// WhatsApp's text status background when none is given.
const DEFAULT_STATUS_BACKGROUND: u32 = 0xFF1E_6E4F;
const MAX_STATUS_TEXT: usize = 65_536;

/// `#RRGGBB` (opaque) or `#RRGGBBAA` as `0xAARRGGBB`.
fn background_argb(raw: &str) -> Option<u32> {
    let hex = raw.trim().strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rgb = u32::from_str_radix(&hex[..6], 16).ok()?;
    let alpha = match hex.get(6..8) {
        Some(a) => u32::from_str_radix(a, 16).ok()?,
        None => 0xFF,
    };
    Some(alpha << 24 | rgb)
}

/// Posts a status (story) to the account's contacts: a text on a coloured
/// background, or an image, video or audio. No `number`: WhatsApp sends it
/// to `status@broadcast`, encrypted to every contact of the address book.
#[utoipa::path(post, path = "/api/message/status/{instance}", tag = "message",
    params(("instance" = String, Path), ("Idempotency-Key" = Option<crate::openapi::IdempotencyKey>, Header, description = "Send at most once per instance and key within 24 h; a repeat answers the first answer again, another body under the key is a 409")),
    request_body = StatusIn,
    responses(
        (status = 200, body = SentOut),
        (status = 400, description = "invalid body: type must be text, image, video or audio / message is required / mediaUrl is required for an image, video or audio status / backgroundColor must be #RRGGBB or #RRGGBBAA / font must be one of ... / WhatsApp refused the message: cannot send status with no recipients (no contacts)", body = ErrorOut),
        (status = 404, description = "Instance not found", body = ErrorOut),
        (status = 409, description = "Idempotency-Key was already used with a different request", body = ErrorOut),
        (status = 502, description = "the media URL could not be fetched", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn send_status(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    send_id: Option<Extension<SendId>>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<SentOut>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (common, body): (_, StatusIn) = split(body, STATUS_COMMON)?;
    let kind = match body.r#type.as_deref() {
        Some("text") => None,
        Some("image") => Some(MediaKind::Image),
        Some("video") => Some(MediaKind::Video),
        Some("audio") => Some(MediaKind::Audio),
        Some(_) => return Err(invalid("type must be text, image, video or audio").into()),
        None => return Err(invalid("type is required").into()),
    };
    let message = required("message", body.message, MAX_STATUS_TEXT)?;
    let source = optional("source", common.source, MAX_SOURCE)?;
    let media_url = optional("mediaUrl", body.media_url, MAX_URL)?.map(|url| url.trim().to_owned());
    let mime_type = optional("mimeType", body.mime_type, 128)?;
    let file_name = optional("fileName", body.file_name, 256)?;
    let background = optional("backgroundColor", body.background_color, 9)?;
    let font = optional("font", body.font, 50)?;
    let (post, echo_media) = match kind {
        None => {
            for (field, given) in [
                ("mediaUrl", media_url.is_some()),
                ("mimeType", mime_type.is_some()),
                ("fileName", file_name.is_some()),
            ] {
                if given {
                    return Err(invalid(format!(
                        "{field} is only for an image, video or audio status"
                    ))
                    .into());
                }
            }
            let background_argb = match background {
                Some(raw) => background_argb(&raw)
                    .ok_or_else(|| invalid("backgroundColor must be #RRGGBB or #RRGGBBAA"))?,
                None => DEFAULT_STATUS_BACKGROUND,
            };
            let font = match font {
                Some(raw) => StatusFont::parse(&raw).ok_or_else(|| {
                    let names: Vec<_> = StatusFont::ALL.iter().map(|f| f.as_str()).collect();
                    invalid(format!("font must be one of {}", names.join(", ")))
                })?,
                None => StatusFont::System,
            };
            let post = StatusPost::Text {
                text: message.clone(),
                background_argb,
                font,
            };
            (post, None)
        }
        Some(kind) => {
            for (field, given) in [
                ("backgroundColor", background.is_some()),
                ("font", font.is_some()),
            ] {
                if given {
                    return Err(invalid(format!("{field} is only for a text status")).into());
                }
            }
            let url = media_url.ok_or_else(|| {
                invalid("mediaUrl is required for an image, video or audio status")
            })?;
            if !url.starts_with("data:") {
                https_url("mediaUrl", Some(url.clone()))?;
            }
            let (data, fetched_mimetype, fetched_name) =
                media_bytes(&state, Some(url), None).await?;
            let media = Media {
                kind,
                mimetype: mime_type
                    .or(fetched_mimetype)
                    .unwrap_or_else(|| default_mimetype(kind).to_owned()),
                file_name: file_name.or(fetched_name),
                data: data.into(),
            };
            let caption = (kind != MediaKind::Audio).then(|| message.clone());
            let post = StatusPost::Media {
                media: media.clone(),
                caption,
            };
            (post, Some(media))
        }
    };
    let to = Jid::status_broadcast();
    let common = Common {
        id: send_id.map(|Extension(SendId(id))| id),
        to: to.clone(),
        source,
        delay: 0,
        quoted_id: None,
        addressing: Addressing {
            mentions: Vec::new(),
            mention_all: false,
            reply_private: false,
        },
    };
    let outgoing = Outgoing::Status { to, post };
    // The echo carries the status text (an audio status has no caption).
    deliver_echoing(
        &state,
        &instance,
        common,
        outgoing,
        (Some(message), None, echo_media),
        "status",
    )
    .await
}

/// `button`, `list`, `carousel`, `form` and `pix`: refused after
/// the usual checks, so a client learns nothing about other accounts.
async fn unsupported(
    kind: &'static str,
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<SentOut>> {
    state.instances.visible(&principal, &name).await?;
    Err(Error::NotImplemented(format!("{kind} messages are not supported by this server")).into())
}

/// A route answered 501, with its own OpenAPI entry (utoipa needs literal
/// paths and descriptions, hence a macro).
macro_rules! unsupported_kind {
    ($handler:ident, $kind:literal, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "message",
            params(("instance" = String, Path)),
            responses(
                (status = 404, description = "Instance not found", body = ErrorOut),
                (status = 501, description = concat!($kind, " messages are not supported by this server"), body = ErrorOut),
            ),
            security(("token" = [])))]
        async fn $handler(
            state: State<AppState>,
            caller: Caller,
            path: Path<String>,
        ) -> ApiResult<Json<SentOut>> {
            unsupported($kind, state, caller, path).await
        }
    };
}

unsupported_kind!(
    send_button,
    "button",
    "/api/message/button/{instance}",
    "`button`: answered 501. Buttons are WhatsApp Business API templates; linked devices of personal accounts cannot send them."
);
unsupported_kind!(
    send_list,
    "list",
    "/api/message/list/{instance}",
    "`list`: answered 501. Lists are WhatsApp Business API templates; linked devices of personal accounts cannot send them."
);
unsupported_kind!(
    send_carousel,
    "carousel",
    "/api/message/carousel/{instance}",
    "`carousel`: answered 501. Carousels are WhatsApp Business API templates; linked devices of personal accounts cannot send them."
);
unsupported_kind!(
    send_form,
    "form",
    "/api/message/form/{instance}",
    "`form`: answered 501. Forms (flows) are WhatsApp Business API messages; linked devices of personal accounts cannot send them."
);
unsupported_kind!(
    send_pix,
    "pix",
    "/api/message/pix/{instance}",
    "`pix`: answered 501. PIX payment messages are WhatsApp Business features; linked devices of personal accounts cannot send them."
);
