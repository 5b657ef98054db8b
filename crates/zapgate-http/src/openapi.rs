//! The OpenAPI document, generated from the handlers' annotations, and the
//! interactive docs page (Swagger UI assets vendored into the binary).

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};

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
        routes::sandbox::receipt,
        routes::sandbox::call,
        routes::sandbox::outbox,
        routes::sandbox::faults,
        routes::sandbox::community,
    ),
    components(schemas(envelope::MessageOut, envelope::ErrorOut)),
    modifiers(&TokenSecurity),
    tags(
        (name = "instance", description = "Instances: one WhatsApp number each"),
        (name = "message", description = "Sending messages"),
        (name = "chatwoot", description = "The Chatwoot integration of an instance"),
        (name = "events", description = "Webhooks, the WebSocket setting, deliveries and the event log. Every delivery is a JSON envelope {event, data, instanceData{baseUrl, instance, token}, id, sequence}, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). Events: message.exchange, message.status, call.update, group.flow, instance.state, label.update."),
        (name = "chat", description = "Chats and the messages in the message store"),
        (name = "group", description = "Groups and communities; changes are group.flow events"),
        (name = "profile", description = "The account's profile and privacy settings"),
        (name = "sandbox", description = "The sandbox phone (only with ZAPGATE_WHATSAPP_PROVIDER=sandbox)"),
        (name = "admin", description = "Accounts (operator; needs ZAPGATE_ADMIN_TOKEN)"),
    )
)]
pub struct ApiDoc;

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
