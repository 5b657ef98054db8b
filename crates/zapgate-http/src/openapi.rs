//! The OpenAPI document, generated from the handlers' annotations, and the
//! interactive docs page (Swagger UI assets vendored into the binary).

use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        ContentBuilder, Object, Ref, RefOr, Response, Schema,
        path::{Operation, ParameterIn, PathItem},
        security::{ApiKey, ApiKeyValue, SecurityScheme},
    },
};
use zapgate_core::messages;

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
    components(schemas(envelope::MessageOut, envelope::ErrorOut, routes::message_kinds::CommonIn)),
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

/// The `Idempotency-Key` header (`idempotency::layer`).
#[derive(ToSchema)]
#[schema(pattern = r"^[!-~]{1,255}$")]
#[allow(dead_code)] // describes the header in the document only
pub struct IdempotencyKey(String);

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
}
