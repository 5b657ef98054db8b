//! The OpenAPI document, generated from the handlers' annotations, and the
//! interactive docs page (Swagger UI assets vendored into the binary).

use std::sync::OnceLock;

use axum::{http::header::CONTENT_TYPE, response::IntoResponse};
use bytes::Bytes;
use serde_json::{Value, json};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        ContentBuilder, Object, Ref, RefOr, Response, Schema,
        path::{Operation, ParameterIn, PathItem},
        security::{ApiKey, ApiKeyValue, SecurityScheme},
    },
};
use zapgate_core::{event_log::EventName, groups::PrivacyCategory, messages, whatsapp::StatusFont};

use crate::{envelope, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "zapgate", description = "Self-hosted WhatsApp HTTP API with a native Chatwoot integration; RyzeAPI-compatible."),
    paths(
        routes::instance::create,
        routes::instance::connect,
        routes::instance::list,
        routes::instance::logout,
        routes::instance::remove,
        routes::instance::get_settings,
        routes::instance::update_settings,
        routes::chatwoot::set,
        routes::chatwoot::info,
        routes::chatwoot::remove,
        routes::chatwoot::replay,
        routes::chatwoot::start_import,
        routes::chatwoot::cancel_import,
        routes::events::save_webhook,
        routes::events::get_webhook,
        routes::events::save_websocket,
        routes::events::get_websocket,
        routes::events::deliveries,
        routes::events::replay,
        routes::events::log,
        routes::message::text,
        routes::message::media,
        routes::group::create,
        routes::group::list,
        routes::group::info,
        routes::group::update,
        routes::group::participants,
        routes::group::join,
        routes::group::reset_link,
        routes::group::requests,
        routes::group::leave,
        routes::group::sub_groups,
        routes::profile::get_account,
        routes::profile::update_account,
        routes::profile::get_privacy,
        routes::profile::get_privacy_alias,
        routes::profile::set_privacy,
        routes::chat_state::contacts,
        routes::chat_state::check_numbers,
        routes::chat_state::mark_read,
        routes::chat_state::mark_chat_read,
        routes::chat_state::presence,
        routes::chat_state::archive,
        routes::chat_state::pin,
        routes::chat_state::mute,
        routes::chat_state::block,
        routes::chat_state::delete_chat,
        routes::message_kinds::send_sticker,
        routes::message_kinds::send_location,
        routes::message_kinds::send_contact,
        routes::message_kinds::send_reaction,
        routes::message_kinds::send_poll,
        routes::message_kinds::send_event,
        routes::message_kinds::send_button,
        routes::message_kinds::send_list,
        routes::message_kinds::send_carousel,
        routes::message_kinds::send_form,
        routes::message_kinds::send_pix,
        routes::message_kinds::send_status,
        routes::chat::get_message,
        routes::chat::status,
        routes::chat::poll,
        routes::chat::media_base64,
        routes::chat::edit,
        routes::chat::remove,
        routes::chat::forward,
        routes::admin::create,
        routes::admin::list,
        routes::admin::remove,
        routes::admin::replay,
        routes::sandbox::pair,
        routes::sandbox::disconnect,
        routes::sandbox::reconnect,
        routes::sandbox::inbound,
        routes::sandbox::history,
        routes::sandbox::receipt,
        routes::sandbox::poll_vote,
        routes::sandbox::call,
        routes::sandbox::label,
        routes::sandbox::outbox,
        routes::sandbox::faults,
        routes::sandbox::community,
        routes::sandbox::directory,
        routes::sandbox::chats,
    ),
    components(schemas(
        envelope::MessageOut,
        envelope::ErrorOut,
        routes::message_kinds::CommonIn,
        // The string shapes parameters refer to (bodies bring their own).
        GroupIdentifier,
        PersonOrBlank,
        PhoneOrBlank,
        DeliveryFilter,
        MessageId,
    )),
    modifiers(&TokenSecurity, &StandardResponses, &KindBodies),
    tags(
        (name = "instance", description = "Instances: one WhatsApp number each"),
        (name = "message", description = "Sending messages"),
        (name = "chatwoot", description = "The Chatwoot integration of an instance"),
        (name = "events", description = "Webhooks, the WebSocket setting, deliveries and the event log. Every delivery is a JSON envelope {event, data, instanceData{baseUrl, instance, token}, id, sequence}, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). Events: message.exchange, message.status, call.update, group.flow, instance.state, label.update."),
        (name = "group", description = "Groups and communities; changes are group.flow events"),
        (name = "profile", description = "The account's profile and privacy settings"),
        (name = "chat", description = "Chats: the messages in the message store, contacts, numbers on WhatsApp, read marks, presence, archive, pin, mute, block, delete, polls"),
        (name = "sandbox", description = "The sandbox phone (only with ZAPGATE_WHATSAPP_PROVIDER=sandbox)"),
        (name = "admin", description = "Accounts (operator; needs ZAPGATE_ADMIN_TOKEN)"),
    )
)]
pub struct ApiDoc;

// Shapes of string fields, for the document only (`value_type = ...` on a
// field that stays a string, so that anything else is answered with the
// field's own message): one pattern each, shared by every route.

/// What a `number` field takes (`Jid::parse`): a phone number in
/// international format, or a JID of a known server.
#[derive(ToSchema)]
#[schema(
    pattern = r"^\+?[1-9][0-9]{7,14}$|^[A-Za-z0-9.:-]{1,64}@(s\.whatsapp\.net|g\.us|lid|newsletter|broadcast)$"
)]
#[allow(dead_code)] // describes fields in the document only
pub struct Recipient(String);

/// A phone number in international format (`parse_phone_number`).
#[derive(ToSchema)]
#[schema(pattern = r"^\+?[1-9][0-9]{7,14}$")]
#[allow(dead_code)] // describes fields in the document only
pub struct PhoneNumber(String);

/// A group's JID.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9.:-]{1,64}@g\.us$")]
#[allow(dead_code)] // describes fields in the document only
pub struct GroupJid(String);

/// A person: a phone number, a phone JID or an `@lid` (`:<device>` tolerated).
#[derive(ToSchema)]
#[schema(pattern = r"^\s*(\+?[1-9][0-9]{7,14}|[A-Za-z0-9.:-]{1,64}@(s\.whatsapp\.net|lid))\s*$")]
#[allow(dead_code)] // describes fields in the document only
pub struct Person(String);

/// [`Person`], or blank for none.
#[derive(ToSchema)]
#[schema(pattern = r"^\s*(\+?[1-9][0-9]{7,14}|[A-Za-z0-9.:-]{1,64}@(s\.whatsapp\.net|lid))?\s*$")]
#[allow(dead_code)] // describes fields in the document only
pub struct PersonOrBlank(String);

/// [`PhoneNumber`], or blank for none.
#[derive(ToSchema)]
#[schema(pattern = r"^\s*(\+?[1-9][0-9]{7,14})?\s*$")]
#[allow(dead_code)] // describes fields in the document only
pub struct PhoneOrBlank(String);

/// An https URL (`message_kinds::https_url`), or blank for none.
#[derive(ToSchema)]
#[schema(
    pattern = r"^\s*(https://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[0-9]{1,4})?([/?#][!-~]*)?)?\s*$"
)]
#[allow(dead_code)] // describes fields in the document only
pub struct HttpsUrlOrBlank(String);

/// An invite code or a `chat.whatsapp.com` link (`parse_invite_code`).
#[derive(ToSchema)]
#[schema(
    pattern = r"^\s*([A-Za-z0-9]{10,64}|https?://chat\.whatsapp\.com/[A-Za-z0-9]{10,64}([?#/][!-~]*)?)\s*$"
)]
#[allow(dead_code)] // describes fields in the document only
pub struct InviteCode(String);

/// A chat: a phone number, a contact or group JID, or an `@lid`.
#[derive(ToSchema)]
#[schema(
    pattern = r"^\s*(\+?[1-9][0-9]{7,14}|[A-Za-z0-9.:-]{1,64}@(s\.whatsapp\.net|g\.us|lid))\s*$"
)]
#[allow(dead_code)] // describes fields in the document only
pub struct ChatId(String);

/// A WhatsApp message id (at most 256 characters).
#[derive(ToSchema)]
#[schema(pattern = r"^\s*[!-~]{1,256}\s*$")]
#[allow(dead_code)] // describes fields in the document only
pub struct MessageId(String);

/// A group: its JID, an invite code or a `chat.whatsapp.com` link
/// (`GroupRef::parse`).
#[derive(ToSchema)]
#[schema(
    pattern = r"^\s*([A-Za-z0-9.:-]{1,64}@g\.us|[A-Za-z0-9]{10,64}|https?://chat\.whatsapp\.com/[A-Za-z0-9]{10,64}([?#/][!-~]*)?)\s*$"
)]
#[allow(dead_code)] // describes fields in the document only
pub struct GroupIdentifier(String);

/// The `status` filter of the delivery history.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // describes a parameter in the document only
pub enum DeliveryFilter {
    Failed,
    Queued,
    Running,
    Delivered,
    Dead,
}

/// A required text of a message kind (not blank; at most 4000 characters).
#[derive(ToSchema)]
#[schema(pattern = r"\S")]
#[allow(dead_code)] // describes fields in the document only
pub struct Text(String);

/// The `Idempotency-Key` header (`idempotency::layer`).
#[derive(ToSchema)]
#[schema(pattern = r"^[!-~]{1,255}$")]
#[allow(dead_code)] // describes the header in the document only
pub struct IdempotencyKey(String);

/// The document as served: utoipa's, plus the rules across fields that
/// its model cannot state (JSON Schema `if`/`then`/`else`, `not`,
/// `anyOf`), each the rule its handler enforces, added to the request
/// body as `allOf: [body, rule, ...]`.
pub fn document() -> Value {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let mut by_body: std::collections::BTreeMap<(&str, String), Vec<Value>> =
        std::collections::BTreeMap::new();
    for (method, path, rule) in body_rules() {
        by_body.entry((method, path)).or_default().push(rule);
    }
    for ((method, path), rules) in by_body {
        let schema = document
            .pointer_mut(&format!(
                "/paths/{}/{method}/requestBody/content/application~1json/schema",
                path.replace('~', "~0").replace('/', "~1")
            ))
            .unwrap_or_else(|| panic!("{method} {path} has a JSON body in the document"));
        let mut all_of = vec![schema.take()];
        all_of.extend(rules);
        *schema = json!({ "allOf": all_of });
    }
    // A replay without a body replays every dead letter.
    document["paths"]["/api/events/deliveries/{instance}/replay"]["post"]["requestBody"]["required"] =
        json!(false);
    document
}

/// `GET /openapi.json`: the document, built and serialized at the first
/// request. Its model takes ~9 MB of heap while it is built, which a server
/// that nobody asks for it should not hold (it was most of the idle RSS).
pub async fn serve_document() -> impl IntoResponse {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        Bytes::from(serde_json::to_vec(&document()).expect("the OpenAPI document serializes"))
    });
    ([(CONTENT_TYPE, "application/json")], body.clone())
}

/// An absolute https URL.
const HTTPS_URL: &str =
    r"^\s*https://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[0-9]{1,4})?([/?#][!-~]*)?\s*$";

/// An absolute http(s) URL.
const HTTP_URL: &str =
    r"^\s*https?://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[0-9]{1,4})?([/?#][!-~]*)?\s*$";

/// An image: an http(s) URL or a base64 data URL (`routes::group::picture`).
const PICTURE: &str = r"^\s*(https?://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[0-9]{1,4})?([/?#][!-~]*)?|data:[^,]*base64,(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?)\s*$";

/// Standard base64 with its padding, optionally behind a data URL's
/// `...base64,` (`message::decode_in_place`): the last character before
/// padding carries no stray bits.
const BASE64: &str = r"^[\t\n\f\r ]*(data:[^,]*base64,)?[\t\n\f\r ]*(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?[\t\n\f\r ]*$";

/// A `data:` URL with base64 content.
const BASE64_DATA_URL: &str = r"^\s*data:[^,]*base64,(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?\s*$";

/// No control character (`char::is_control`).
const NO_CONTROLS: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A string that names a group (`@g.us`).
const GROUP: &str = r"@g\.us\s*$";

/// `mention`, `mentionAll` and `replyPrivate` (`message_kinds::Addressing`).
fn addressing_rule() -> Value {
    let no_mentions = json!({
        "mention": { "anyOf": [{ "type": "null" }, { "type": "array", "maxItems": 0 }] },
        "mentionAll": { "enum": [false, null] },
    });
    json!({ "allOf": [
        {
            "if": { "properties": { "replyPrivate": { "const": true } }, "required": ["replyPrivate"] },
            "then": {
                "required": ["replyTo"],
                "properties": {
                    "replyTo": { "type": "string", "pattern": r"\S" },
                    "number": { "pattern": GROUP },
                    "mention": no_mentions["mention"],
                    "mentionAll": no_mentions["mentionAll"],
                },
            },
        },
        {
            "if": { "properties": { "number": { "pattern": GROUP } } },
            "else": { "properties": no_mentions },
        },
    ]})
}

/// At least one of `fields` is given, as its schema says.
fn some_set(fields: &[(&str, Value)]) -> Value {
    let any: Vec<Value> = fields
        .iter()
        .map(|(field, schema)| json!({ "required": [field], "properties": { *field: schema } }))
        .collect();
    json!({ "anyOf": any })
}

/// Each rule across fields, by operation.
fn body_rules() -> Vec<(&'static str, String, Value)> {
    let event_names: Vec<&str> = EventName::ALL.iter().map(|e| e.as_str()).collect();
    let events = json!({ "type": ["array", "null"], "items": { "enum": event_names } });
    let mut rules: Vec<(&'static str, String, Value)> = vec![
        (
            "post",
            "/api/events/webhook/{instance}".into(),
            json!({
                // A disabled webhook keeps only its label: the rest is cleared.
                "if": { "properties": { "enabled": { "const": true } } },
                "then": {
                    "required": ["url"],
                    "properties": {
                        "url": { "type": "string", "maxLength": 2048, "pattern": HTTP_URL },
                        "authorization": { "type": ["string", "null"], "maxLength": 2048, "pattern": NO_CONTROLS },
                        "events": events,
                    },
                },
            }),
        ),
        (
            "post",
            "/api/chat/markRead/{instance}".into(),
            json!({
                "if": { "properties": { "number": { "pattern": GROUP } } },
                "then": { "required": ["participant"], "properties": { "participant": { "type": "string" } } },
                "else": { "properties": { "participant": { "type": "null" } } },
            }),
        ),
        (
            "post",
            "/api/chat/presence/{instance}".into(),
            json!({ "allOf": [
                { "properties": { "state": { "enum": ["typing", "recording", "paused", "available", "unavailable"] } } },
                {
                    "if": { "properties": { "state": { "enum": ["available", "unavailable"] } } },
                    "then": { "properties": { "number": { "type": "null" }, "duration": { "type": "null" } } },
                    "else": { "required": ["number"], "properties": { "number": { "type": "string" } } },
                },
                {
                    "if": { "properties": { "state": { "const": "paused" } } },
                    "then": { "properties": { "duration": { "type": "null" } } },
                },
            ]}),
        ),
        (
            "post",
            "/api/chat/mute/{instance}".into(),
            json!({
                "if": { "properties": { "mute": { "const": false } }, "required": ["mute"] },
                "then": { "properties": { "duration": { "type": "null" } } },
            }),
        ),
        (
            "post",
            "/api/message/location/{instance}".into(),
            json!({ "not": { "properties": {
                "latitude": { "const": 0 }, "longitude": { "const": 0 },
            }}}),
        ),
        (
            "post",
            "/api/message/media/{instance}".into(),
            // One of the two, not both.
            json!({
                "anyOf": [
                    {
                        "required": ["mediaUrl"],
                        "properties": { "mediaUrl": { "type": "string", "anyOf": [
                            { "pattern": HTTP_URL }, { "pattern": BASE64_DATA_URL },
                        ]}},
                    },
                    {
                        "required": ["mediaBase64"],
                        "properties": { "mediaBase64": { "type": "string", "pattern": BASE64 } },
                    },
                ],
                "not": {
                    "required": ["mediaUrl", "mediaBase64"],
                    "properties": { "mediaUrl": { "type": "string" }, "mediaBase64": { "type": "string" } },
                },
            }),
        ),
        (
            "post",
            "/api/message/event/{instance}".into(),
            json!({
                "if": { "properties": { "hasReminder": { "enum": [false, null] } } },
                "then": { "properties": { "reminderOffsetSec": { "type": "null" } } },
            }),
        ),
    ];
    rules.push((
        "post",
        "/api/events/websocket/{instance}".into(),
        json!({ "properties": { "events": events } }),
    ));
    rules.push((
        "post",
        "/api/instance/settings/{instance}".into(),
        some_set(
            &[
                "autoRejectCalls",
                "callRejectMessage",
                "ignoreGroupMessages",
                "keepOnlineStatus",
                "autoReadMessages",
                "disableHistorySync",
                "ignoreStatus",
            ]
            .map(|field| (field, json!({ "not": { "type": "null" } }))),
        ),
    ));
    let privacy = |category: PrivacyCategory| {
        let values: Vec<&str> = category.allowed().iter().map(|v| v.as_str()).collect();
        json!({ "type": ["string", "null"], "enum": values.into_iter().map(Value::from).chain([Value::Null]).collect::<Vec<_>>() })
    };
    let groups = [
        (
            "visibility",
            vec![
                ("lastSeen", PrivacyCategory::LastSeen),
                ("status", PrivacyCategory::Status),
                ("profile", PrivacyCategory::Profile),
                ("online", PrivacyCategory::Online),
            ],
        ),
        (
            "privacy",
            vec![("readReceipts", PrivacyCategory::ReadReceipts)],
        ),
        (
            "permissions",
            vec![
                ("callAdd", PrivacyCategory::CallAdd),
                ("groupAdd", PrivacyCategory::GroupAdd),
            ],
        ),
    ];
    let mut properties = serde_json::Map::new();
    let mut any_set = Vec::new();
    for (group, fields) in &groups {
        let inner: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(field, category)| ((*field).to_owned(), privacy(*category)))
            .collect();
        properties.insert((*group).to_owned(), json!({ "properties": inner }));
        for (field, _) in fields {
            any_set.push(json!({
                "required": [group],
                "properties": { *group: { "type": "object", "required": [field], "properties": { *field: { "type": "string" } } } },
            }));
        }
    }
    rules.push((
        "post",
        "/api/profile/privacy/{instance}".into(),
        json!({ "properties": properties, "anyOf": any_set }),
    ));
    for (method, path, field) in [
        ("post", "/api/profile/account/{instance}", "picture"),
        ("post", "/api/group/create/{instance}", "image"),
        ("put", "/api/group/update/{instance}", "image"),
    ] {
        rules.push((
            method,
            path.into(),
            json!({ "properties": { field: { "anyOf": [
                { "type": "null" }, { "const": "" }, { "type": "string", "pattern": PICTURE },
            ]}}}),
        ));
    }
    rules.push((
        "post",
        "/api/profile/account/{instance}".into(),
        some_set(&[
            ("name", json!({ "type": "string" })),
            ("about", json!({ "type": "string" })),
            ("picture", json!({ "type": "string", "minLength": 1 })),
        ]),
    ));
    rules.push((
        "put",
        "/api/group/update/{instance}".into(),
        some_set(&[
            ("name", json!({ "type": "string" })),
            ("description", json!({ "type": "string" })),
            ("image", json!({ "type": "string", "minLength": 1 })),
            (
                "groupSettings",
                some_set(&[
                    ("membersCanEditInfo", json!({ "type": "boolean" })),
                    ("membersCanSendMessages", json!({ "type": "boolean" })),
                    ("membersCanAddOthers", json!({ "type": "boolean" })),
                    ("requireAdminApproval", json!({ "type": "boolean" })),
                ]),
            ),
        ]),
    ));
    // `disableHistorySync: false` is refused (history sync is off).
    for (method, path) in [
        ("post", "/api/instance/new"),
        ("post", "/api/instance/settings/{instance}"),
    ] {
        rules.push((
            method,
            path.into(),
            json!({ "properties": { "disableHistorySync": { "enum": [true, null] } } }),
        ));
    }
    // A text status takes a background and a font; a media status a
    // mediaUrl (and its type and name).
    let blank = json!({ "anyOf": [{ "type": "null" }, { "type": "string", "pattern": r"^\s*$" }] });
    let any_case = |name: &str| -> String {
        name.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let fonts: Vec<String> = StatusFont::ALL
        .iter()
        .map(|f| any_case(f.as_str()))
        .collect();
    rules.push((
        "post",
        "/api/message/status/{instance}".into(),
        json!({
            "if": { "properties": { "type": { "const": "text" } } },
            "then": { "properties": {
                "mediaUrl": blank, "mimeType": blank, "fileName": blank,
                "font": { "anyOf": [
                    { "type": "null" },
                    { "type": "string", "pattern": format!(r"^\s*({})?\s*$", fonts.join("|")) },
                ]},
            }},
            "else": {
                "required": ["mediaUrl"],
                "properties": {
                    "backgroundColor": blank, "font": blank,
                    "mediaUrl": { "type": "string", "anyOf": [
                        { "pattern": HTTPS_URL }, { "pattern": BASE64_DATA_URL },
                    ]},
                },
            },
        }),
    ));
    rules.push((
        "post",
        "/api/sandbox/{instance}/label".into(),
        json!({
            "if": { "properties": { "labeled": { "type": "boolean" } }, "required": ["labeled"] },
            "then": { "required": ["chat"], "properties": { "chat": { "type": "string" } } },
        }),
    ));
    // A poll's maxAnswer is at most its number of options.
    let per_count: Vec<Value> = (2..=12)
        .map(|n| {
            json!({
                "if": { "properties": { "options": { "maxItems": n } } },
                "then": { "properties": { "maxAnswer": { "maximum": n } } },
            })
        })
        .collect();
    rules.push((
        "post",
        "/api/message/poll/{instance}".into(),
        json!({ "properties": { "options": { "uniqueItems": true } }, "allOf": per_count }),
    ));
    rules.push((
        "post",
        "/api/message/event/{instance}".into(),
        json!({ "properties": {
            "endAt": { "anyOf": [
                { "type": "null" },
                { "type": "string", "pattern": r"^\s*$" },
                { "type": "string", "format": "date-time" },
            ]},
            "location": {
            "if": { "properties": { "latitude": { "type": "number" } }, "required": ["latitude"] },
            "then": { "required": ["longitude"], "properties": { "longitude": { "type": "number" } } },
            "else": { "properties": { "longitude": { "type": "null" } } },
        }}}),
    ));
    rules.push((
        "post",
        "/api/message/reaction/{instance}".into(),
        json!({
            "if": { "properties": { "number": { "pattern": GROUP } } },
            "then": {
                "if": { "properties": { "fromMe": { "const": true } }, "required": ["fromMe"] },
                "else": { "required": ["participant"], "properties": { "participant": { "type": "string" } } },
            },
            "else": { "properties": { "participant": { "type": "null" } } },
        }),
    ));
    // Each of the chat flag routes takes its own flag only.
    for (route, own) in [
        ("markChatRead", "read"),
        ("archive", "archive"),
        ("pin", "pin"),
    ] {
        let others: serde_json::Map<String, Value> = ["read", "archive", "pin"]
            .into_iter()
            .filter(|flag| *flag != own)
            .map(|flag| (flag.to_owned(), json!({ "type": "null" })))
            .collect();
        rules.push((
            "post",
            format!("/api/chat/{route}/{{instance}}"),
            json!({ "properties": others }),
        ));
    }
    for path in [
        "/api/message/text/{instance}",
        "/api/message/media/{instance}",
    ]
    .into_iter()
    .chain(
        routes::message_kinds::COMMON_FIELDS
            .iter()
            .filter(|(_, fields)| fields.contains(&"replyPrivate"))
            .map(|(path, _)| *path),
    ) {
        rules.push(("post", path.to_owned(), addressing_rule()));
    }
    rules
}

struct TokenSecurity;

impl Modify for TokenSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "token",
                "TokenAccount or TokenInstance (Authorization: Bearer also accepted)",
            ))),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "token",
                "The operator's ZAPGATE_ADMIN_TOKEN",
            ))),
        );
    }
}

/// The answers every route of a kind gives, declared here once so that a
/// route's annotation lists only its own (and a new route cannot forget
/// them): with a token, 401 and 429; with `{instance}`, 404; with a JSON
/// body, 400, 413 and 415; with query parameters, 400. A status the
/// annotation already declares keeps the annotation's description.
struct StandardResponses;

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                add_standard_responses(operation);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

fn add_standard_responses(operation: &mut Operation) {
    let mut standard: Vec<(&str, String)> = Vec::new();
    let has_security = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    if has_security {
        standard.push((
            "401",
            format!("{} / {}", messages::MISSING_TOKEN, messages::INVALID_TOKEN),
        ));
        standard.push(("429", messages::RATE_LIMITED.to_owned()));
    }
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let in_path = |name: &str| {
        parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Path && p.name == name)
    };
    if in_path("instance") {
        standard.push(("404", messages::INSTANCE_NOT_FOUND.to_owned()));
    }
    if operation.request_body.is_some() {
        standard.push(("400", messages::INVALID_REQUEST_BODY.to_owned()));
        standard.push(("413", messages::BODY_TOO_LARGE.to_owned()));
        standard.push(("415", messages::JSON_CONTENT_TYPE.to_owned()));
    }
    if parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Query)
    {
        standard.push(("400", "Invalid query parameters".to_owned()));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in standard {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                Response::builder()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorOut")))
                            .build(),
                    )
                    .build(),
            )
        });
    }
}

/// The structured message kinds read their body in two steps (the common
/// fields, then the kind's own: `message_kinds::split`), and their
/// annotations name the kind's schema only. The document shows the body a
/// client sends: one closed object with both.
struct KindBodies;

impl Modify for KindBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_ref() else {
            return;
        };
        let object = |name: &str| match components.schemas.get(name) {
            Some(RefOr::T(Schema::Object(object))) => Some(object.clone()),
            _ => None,
        };
        let common = object("CommonIn").expect("CommonIn is in the document");
        for (path, fields) in routes::message_kinds::COMMON_FIELDS {
            let content = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| item.post.as_mut())
                .and_then(|operation| operation.request_body.as_mut())
                .and_then(|body| body.content.get_mut("application/json"))
                .unwrap_or_else(|| panic!("{path} has a JSON body in the document"));
            let Some(RefOr::Ref(kind)) = &content.schema else {
                panic!("{path}'s body is a schema reference");
            };
            let name = kind.ref_location.rsplit('/').next().unwrap_or_default();
            let mut body: Object = object(name).unwrap_or_else(|| panic!("{name} is an object"));
            for field in *fields {
                if let Some(property) = common.properties.get(*field) {
                    body.properties
                        .insert((*field).to_owned(), property.clone());
                }
                if common.required.iter().any(|r| r == field) {
                    body.required.push((*field).to_owned());
                }
            }
            content.schema = Some(RefOr::T(Schema::Object(body)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query struct read by another extractor than axum's `Query` loses
    /// utoipa's inference and lands in the path unless it says
    /// `#[into_params(parameter_in = Query)]`.
    #[test]
    fn every_path_parameter_is_in_its_path() {
        let mut doc = ApiDoc::openapi();
        for (path, item) in &mut doc.paths.paths {
            for operation in operations(item) {
                for parameter in operation.parameters.iter().flatten() {
                    if parameter.parameter_in == ParameterIn::Path {
                        let name = &parameter.name;
                        assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{path}: parameter {name} is not in the path"
                        );
                    }
                }
            }
        }
    }

    /// Every rule lands on an operation's JSON body (`document` panics
    /// otherwise), and a rule reads as JSON Schema there.
    #[test]
    fn rules_across_fields_are_in_the_served_document() {
        let document = document();
        let body = |method: &str, path: &str| {
            document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
                ["allOf"]
                .clone()
        };
        let webhook = body("post", "/api/events/webhook/{instance}");
        assert_eq!(webhook[1]["then"]["required"], json!(["url"]), "{webhook}");
        let media = body("post", "/api/message/media/{instance}");
        assert!(
            media
                .as_array()
                .unwrap()
                .iter()
                .any(|rule| rule["not"]["required"] == json!(["mediaUrl", "mediaBase64"])),
            "{media}"
        );
        assert_eq!(
            document["paths"]["/api/events/deliveries/{instance}/replay"]["post"]["requestBody"]["required"],
            json!(false)
        );
        for name in [
            "GroupIdentifier",
            "PersonOrBlank",
            "PhoneOrBlank",
            "DeliveryFilter",
        ] {
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name} is referenced, so it must be in the components"
            );
        }
    }
}
