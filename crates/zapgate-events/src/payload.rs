//! WhatsApp events as RyzeAPI's events module shows them: the `data` of each
//! event name, in the catalog layout a real RyzeAPI client reads
//! (`research/ryzeapi-client-contract.md` §3). Timestamps are ISO 8601 in
//! UTC with a `Z`.

use base64::Engine;
use serde_json::{Map, Value, json};
use zapgate_core::{
    event_log::EventName,
    groups::GroupChange,
    instance::ConnectionState,
    jid::Jid,
    time::rfc3339,
    whatsapp::{
        CallEvent, Event, Extra, InboundMessage, LabelChange, LabelChangeKind, ReceiptStatus,
    },
};

/// An event ready for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub name: EventName,
    /// Stable across WhatsApp's redeliveries of the same event.
    pub dedupe_key: String,
    pub data: Value,
}

/// The key under which a message's media bytes ride, in base64, when a
/// subscriber asked for them (`mediaBase64`); removed for the others.
const MEDIA_BASE64: &str = "base64";

/// The event's payload, or `None` for what the events module does not
/// report. `with_media` puts media bytes in (base64).
pub fn of_whatsapp(instance_name: &str, event: &Event, with_media: bool) -> Option<Payload> {
    match event {
        Event::Session(status) => Some(instance_state(
            instance_name,
            state_name(status.state),
            status.number_jid.as_deref(),
        )),
        Event::Message(message) => Some(message_exchange(message, with_media)),
        Event::Receipt {
            message_id,
            status,
            chat,
        } => Some(message_status(message_id, *status, chat.as_ref())),
        Event::Call(call) => Some(call_update(call)),
        Event::Group(change) => Some(group_flow(change)),
        Event::Label(change) => Some(label_update(change)),
        // Votes are tallied by the message store (`chat/poll`); the catalog
        // has no event for them.
        Event::PollVote(_) => None,
    }
}

/// `label.update`: a label was edited (`edit`, with its name and colour as
/// they are now) or deleted (`delete`), or put on (`add`) or taken off
/// (`remove`) a chat.
fn label_update(change: &LabelChange) -> Payload {
    let kind = change.kind.as_str();
    let mut data = json!({
        "type": kind,
        "labelId": change.label_id,
        "timestamp": rfc3339(change.timestamp_ms),
    });
    let chat = match &change.kind {
        LabelChangeKind::Edit { name, color, .. } => {
            data["name"] = json!(name);
            data["color"] = json!(color);
            String::new()
        }
        LabelChangeKind::Chat { chat, .. } => {
            data["chat"] = json!({"jid": chat.to_string(), "type": chat_type(chat)});
            chat.to_string()
        }
    };
    Payload {
        name: EventName::LabelUpdate,
        // WhatsApp syncs a change with the time it was made: the same change
        // synced again (a reconnect) is stored once.
        dedupe_key: format!(
            "label:{}:{kind}:{chat}:{}",
            change.label_id, change.timestamp_ms
        ),
        data,
    }
}

/// `group.flow`: members joined, left, were promoted or demoted; the group
/// was renamed (`name`) or deleted (`delete`).
fn group_flow(change: &GroupChange) -> Payload {
    let participants: Vec<Value> = change
        .participants
        .iter()
        .map(|member| {
            json!({
                "jid": member.jid.to_string(),
                "lid": member.lid.as_ref().map(Jid::to_string),
                "name": member.name,
            })
        })
        .collect();
    let mut data = json!({
        "type": change.kind.as_str(),
        "groupJid": change.group.to_string(),
        "groupName": change.group_name,
        "participants": participants,
        "timestamp": rfc3339(change.timestamp * 1000),
    });
    if let Some(author) = &change.author {
        data["author"] = json!(author.to_string());
    }
    Payload {
        name: EventName::GroupFlow,
        dedupe_key: format!("group:{}", change.id),
        data,
    }
}

/// `call.update`: an incoming call rang (`offer`), was rejected, answered
/// elsewhere (`accepted`), or ended (`terminated`).
fn call_update(call: &CallEvent) -> Payload {
    let status = call.status.as_str();
    Payload {
        name: EventName::CallUpdate,
        dedupe_key: format!("call:{}:{status}", call.id),
        data: json!({
            "id": call.id,
            "status": status,
            "from": call.from.to_string(),
            "video": call.video,
            "timestamp": rfc3339(call.timestamp * 1000),
        }),
    }
}

/// `instance.state` with `state` (`qr_ready`, `connected`, ...).
pub fn instance_state(instance_name: &str, state: &str, number_jid: Option<&str>) -> Payload {
    let mut data = json!({
        "state": state,
        "instance": instance_name,
        "timestamp": rfc3339(zapgate_core::time::now_ms()),
    });
    if let Some(number) = number_jid {
        data["numberJid"] = json!(number);
    }
    Payload {
        name: EventName::InstanceState,
        // A state change is never redelivered: each one is news.
        dedupe_key: format!("state:{}", zapgate_core::token::new_id("st")),
        data,
    }
}

/// RyzeAPI's state names (`loggedout` in the instance list is `logged_out` here).
pub fn state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Connected => "connected",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Disconnected => "disconnected",
        ConnectionState::LoggedOut => "logged_out",
    }
}

fn chat_type(chat: &Jid) -> &'static str {
    match chat.server.as_str() {
        "g.us" => "group",
        "newsletter" => "newsletter",
        "broadcast" => "broadcast",
        _ => "private",
    }
}

fn message_status(message_id: &str, status: ReceiptStatus, chat: Option<&Jid>) -> Payload {
    let status = match status {
        ReceiptStatus::Delivered => "delivered",
        ReceiptStatus::Read => "read",
    };
    let mut data = json!({
        "status": status,
        "messageIds": [message_id],
        "timestamp": rfc3339(zapgate_core::time::now_ms()),
    });
    if let Some(chat) = chat {
        data["chat"] =
            json!({"jid": chat.to_string(), "type": chat_type(chat), "isCommunity": false});
        if !chat.is_group() {
            data["recipient"] = json!(chat.to_string());
        }
    }
    Payload {
        name: EventName::MessageStatus,
        dedupe_key: format!("status:{message_id}:{status}"),
        data,
    }
}

fn message_exchange(message: &InboundMessage, with_media: bool) -> Payload {
    let mut body = Map::new();
    // A revocation names the message it removes (what clients key on).
    let id = match &message.extra {
        Some(Extra::Revoke { target_id }) => target_id.clone(),
        _ => message.id.clone(),
    };
    body.insert("id".into(), json!(id));
    body.insert(
        "direction".into(),
        json!(if message.from_me {
            "outgoing"
        } else {
            "incoming"
        }),
    );
    body.insert(
        "timestamp".into(),
        json!(rfc3339(message.timestamp.saturating_mul(1000))),
    );
    let mut chat = json!({
        "jid": message.chat.to_string(),
        "type": chat_type(&message.chat),
        "isCommunity": false,
    });
    if let Some(subject) = &message.group_subject {
        chat["name"] = json!(subject);
    }
    let mut sender = json!({"jid": message.sender.to_string()});
    if let Some(lid) = &message.sender_lid {
        sender["lid"] = json!(lid.to_string());
        if message.chat.is_lid() {
            chat["lid"] = json!(message.chat.to_string());
        }
    }
    if let Some(name) = &message.push_name {
        sender["name"] = json!(name);
        if !message.chat.is_group() && !message.from_me {
            chat["name"] = json!(name);
        }
    }
    body.insert("chat".into(), chat);
    body.insert("sender".into(), sender);
    if let Some(text) = &message.text {
        body.insert("content".into(), json!({ "text": text }));
    }
    if let Some(quoted) = &message.quoted_id {
        body.insert("reply".into(), json!({ "message_id": quoted }));
    }
    let mut kind = if message.text.is_some() {
        "text"
    } else {
        "unknown"
    };
    if let Some(media) = &message.media {
        kind = media.kind.as_str();
        let mut out = json!({
            "type": media.kind.as_str(),
            "mimetype": media.mimetype,
            "fileSize": media.data.len(),
        });
        if let Some(name) = &media.file_name {
            out["fileName"] = json!(name);
        }
        if let Some(caption) = &message.text {
            out["caption"] = json!(caption);
        }
        if with_media {
            out[MEDIA_BASE64] =
                json!(base64::engine::general_purpose::STANDARD.encode(&media.data));
        }
        body.insert("media".into(), out);
    }
    if let Some(extra) = &message.extra {
        kind = extra_fields(extra, &mut body);
    }
    body.insert("type".into(), json!(kind));
    Payload {
        name: EventName::MessageExchange,
        dedupe_key: format!("message:{}", message.id),
        data: json!({ "id": id, "message": Value::Object(body) }),
    }
}

/// Adds the fields of the message kinds beyond text and media; returns the `type`.
fn extra_fields(extra: &Extra, body: &mut Map<String, Value>) -> &'static str {
    match extra {
        Extra::Reaction { target_id, emoji } => {
            body.insert(
                "reaction".into(),
                json!({"message_id": target_id, "emoji": emoji, "removed": emoji.is_empty()}),
            );
            "reaction"
        }
        Extra::Edit { target_id, text } => {
            body.insert(
                "edit".into(),
                json!({"original_id": target_id, "text": text}),
            );
            body.insert("content".into(), json!({ "text": text }));
            "message_edit"
        }
        Extra::Revoke { .. } => "message_revoke",
        Extra::Location {
            latitude,
            longitude,
            name,
        } => {
            body.insert(
                "location".into(),
                json!({"latitude": latitude, "longitude": longitude, "address": name}),
            );
            "location"
        }
        Extra::ContactCard { name, vcard } => {
            body.insert(
                "contact".into(),
                json!({"display_name": name, "vcard": vcard}),
            );
            "contact"
        }
        Extra::Poll { question, options } => {
            let options: Vec<Value> = options.iter().map(|o| json!({"name": o})).collect();
            body.insert(
                "poll".into(),
                json!({"title": question, "options": options}),
            );
            "poll"
        }
        Extra::Call { video } => {
            body.insert("call".into(), json!({"video": video, "missed": true}));
            "call_log"
        }
        Extra::Event { name, start } => {
            body.insert(
                "event".into(),
                json!({"name": name, "startAt": rfc3339(start.saturating_mul(1000))}),
            );
            "event"
        }
        Extra::Unsupported { kind } => {
            body.insert("unsupported".into(), json!({ "kind": kind }));
            "unsupported"
        }
    }
}

/// The envelope every consumer receives, webhook or WebSocket, rendered:
/// `{data, event, id, instanceData{baseUrl, instance, token}, sequence}`
/// (keys in the order `serde_json` writes them). Media bytes are left in
/// `data` only for a consumer that asked for them.
pub fn envelope(
    event: &zapgate_core::event_log::StoredEvent,
    media: bool,
    base_url: &str,
    instance_name: &str,
    token: &str,
) -> String {
    // The stored `data` is JSON we wrote: it goes in as it is, unless media
    // bytes must come out of it (only `data` that mentions them is read).
    let stripped;
    let data = if media || !event.data.contains(MEDIA_BASE64) {
        event.data.as_str()
    } else {
        let parsed: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        stripped = without_media_bytes(parsed).to_string();
        stripped.as_str()
    };
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::with_capacity(data.len() + base_url.len() + token.len() + 160);
    out.push_str("{\"data\":");
    out.push_str(data);
    out.push_str(",\"event\":");
    out.push_str(&quoted(event.name.as_str()));
    out.push_str(",\"id\":");
    out.push_str(&quoted(&event.id));
    out.push_str(",\"instanceData\":{\"baseUrl\":");
    out.push_str(&quoted(base_url));
    out.push_str(",\"instance\":");
    out.push_str(&quoted(instance_name));
    out.push_str(",\"token\":");
    out.push_str(&quoted(token));
    out.push_str("},\"sequence\":");
    out.push_str(&event.sequence.to_string());
    out.push('}');
    out
}

/// Whether the stored `data` carries media bytes.
pub fn has_media_bytes(data: &Value) -> bool {
    data.pointer("/message/media")
        .and_then(|m| m.get(MEDIA_BASE64))
        .is_some()
}

/// `data` without the media bytes, for a subscriber that did not ask for them.
pub fn without_media_bytes(mut data: Value) -> Value {
    if let Some(media) = data
        .pointer_mut("/message/media")
        .and_then(Value::as_object_mut)
    {
        media.remove(MEDIA_BASE64);
    }
    data
}

#[cfg(test)]
mod tests {
    use zapgate_core::{
        instance::SessionStatus,
        whatsapp::{CallStatus, Media, MediaKind},
    };

    use super::*;

    #[test]
    fn a_call_is_a_call_update_keyed_by_its_id_and_status() {
        let call = CallEvent {
            id: "CALL-1".into(),
            from: Jid::user("5511988887777"),
            video: true,
            status: CallStatus::Rejected,
            timestamp: 1_732_260_000,
        };
        let payload = of_whatsapp("suporte", &Event::Call(call), false).unwrap();
        assert_eq!(payload.name, EventName::CallUpdate);
        assert_eq!(payload.dedupe_key, "call:CALL-1:rejected");
        assert_eq!(
            payload.data,
            json!({
                "id": "CALL-1",
                "status": "rejected",
                "from": "5511988887777@s.whatsapp.net",
                "video": true,
                "timestamp": "2024-11-22T07:20:00Z",
            })
        );
    }

    #[test]
    fn a_group_change_is_a_group_flow_keyed_by_its_notification() {
        let change = GroupChange {
            id: "N-7".into(),
            group: Jid::parse("120363024567890123@g.us").unwrap(),
            kind: zapgate_core::groups::GroupChangeKind::Left,
            group_name: Some("Suporte".into()),
            participants: vec![zapgate_core::groups::GroupMember {
                jid: Jid::user("5511988887777"),
                lid: Some(Jid::parse("123456789012345@lid").unwrap()),
                name: None,
            }],
            author: Some(Jid::user("5511977776666")),
            timestamp: 1_732_260_000,
        };
        let payload = of_whatsapp("suporte", &Event::Group(change), false).unwrap();
        assert_eq!(payload.name, EventName::GroupFlow);
        assert_eq!(payload.dedupe_key, "group:N-7");
        assert_eq!(
            payload.data,
            json!({
                "type": "left",
                "groupJid": "120363024567890123@g.us",
                "groupName": "Suporte",
                "participants": [{"jid": "5511988887777@s.whatsapp.net",
                                  "lid": "123456789012345@lid", "name": null}],
                "author": "5511977776666@s.whatsapp.net",
                "timestamp": "2024-11-22T07:20:00Z",
            })
        );
    }

    #[test]
    fn label_changes_are_label_updates_keyed_by_label_kind_chat_and_time() {
        let edit = LabelChange {
            label_id: "5".into(),
            kind: LabelChangeKind::Edit {
                name: Some("Pago".into()),
                color: Some(3),
                deleted: false,
            },
            timestamp_ms: 1_732_260_000_000,
        };
        let payload = of_whatsapp("suporte", &Event::Label(edit), false).unwrap();
        assert_eq!(payload.name, EventName::LabelUpdate);
        assert_eq!(payload.dedupe_key, "label:5:edit::1732260000000");
        assert_eq!(
            payload.data,
            json!({"type": "edit", "labelId": "5", "name": "Pago", "color": 3,
                   "timestamp": "2024-11-22T07:20:00Z"})
        );
        let removed = LabelChange {
            label_id: "5".into(),
            kind: LabelChangeKind::Chat {
                chat: Jid::parse("120363024567890123@g.us").unwrap(),
                labeled: false,
            },
            timestamp_ms: 1_732_260_000_000,
        };
        let payload = of_whatsapp("suporte", &Event::Label(removed), false).unwrap();
        assert_eq!(
            payload.dedupe_key,
            "label:5:remove:120363024567890123@g.us:1732260000000"
        );
        assert_eq!(
            payload.data,
            json!({"type": "remove", "labelId": "5",
                   "chat": {"jid": "120363024567890123@g.us", "type": "group"},
                   "timestamp": "2024-11-22T07:20:00Z"})
        );
    }

    fn message() -> InboundMessage {
        InboundMessage {
            id: "3EB0A1".into(),
            chat: Jid::user("5511988887777"),
            sender: Jid::user("5511988887777"),
            sender_lid: None,
            push_name: Some("Maria".into()),
            from_me: false,
            group_subject: None,
            text: Some("Olá!".into()),
            media: None,
            media_ref: None,
            quoted_id: None,
            extra: None,
            timestamp: 1_776_680_130,
            source: None,
        }
    }

    #[test]
    fn a_text_is_a_catalog_message_exchange() {
        let payload = of_whatsapp("suporte", &Event::Message(Box::new(message())), false).unwrap();
        assert_eq!(payload.name, EventName::MessageExchange);
        assert_eq!(payload.dedupe_key, "message:3EB0A1");
        assert_eq!(
            payload.data,
            json!({
                "id": "3EB0A1",
                "message": {
                    "id": "3EB0A1",
                    "direction": "incoming",
                    "timestamp": "2026-04-20T10:15:30Z",
                    "chat": {"jid": "5511988887777@s.whatsapp.net", "type": "private",
                             "isCommunity": false, "name": "Maria"},
                    "sender": {"jid": "5511988887777@s.whatsapp.net", "name": "Maria"},
                    "content": {"text": "Olá!"},
                    "type": "text",
                }
            })
        );
    }

    #[test]
    fn media_bytes_ride_only_when_asked_and_can_be_taken_out() {
        let mut msg = message();
        msg.text = Some("see".into());
        msg.media = Some(Media {
            kind: MediaKind::Image,
            mimetype: "image/png".into(),
            file_name: None,
            data: b"png!".to_vec().into(),
        });
        let event = Event::Message(Box::new(msg));
        let bare = of_whatsapp("suporte", &event, false).unwrap().data;
        assert!(!has_media_bytes(&bare));
        assert_eq!(bare["message"]["type"], "image");
        assert_eq!(bare["message"]["media"]["caption"], "see");
        let full = of_whatsapp("suporte", &event, true).unwrap().data;
        assert_eq!(full["message"]["media"]["base64"], "cG5nIQ==");
        assert_eq!(without_media_bytes(full), bare);
    }

    #[test]
    fn a_revocation_is_keyed_by_the_revoked_message() {
        let mut msg = message();
        msg.id = "REVOKE1".into();
        msg.text = None;
        msg.extra = Some(Extra::Revoke {
            target_id: "3EB0A1".into(),
        });
        let payload = of_whatsapp("suporte", &Event::Message(Box::new(msg)), false).unwrap();
        assert_eq!(payload.data["id"], "3EB0A1");
        assert_eq!(payload.data["message"]["type"], "message_revoke");
        assert_eq!(payload.dedupe_key, "message:REVOKE1");
    }

    #[test]
    fn states_and_receipts_use_ryzeapi_names() {
        let status = SessionStatus {
            state: ConnectionState::LoggedOut,
            number_jid: None,
        };
        let payload = of_whatsapp("suporte", &Event::Session(status), false).unwrap();
        assert_eq!(payload.data["state"], "logged_out");
        assert_eq!(payload.data["instance"], "suporte");
        assert!(payload.data["timestamp"].as_str().unwrap().ends_with('Z'));

        let receipt = Event::Receipt {
            message_id: "ABC".into(),
            status: ReceiptStatus::Read,
            chat: Some(Jid::user("5511988887777")),
        };
        let payload = of_whatsapp("suporte", &receipt, false).unwrap();
        assert_eq!(payload.name, EventName::MessageStatus);
        assert_eq!(payload.data["messageIds"], json!(["ABC"]));
        assert_eq!(payload.data["status"], "read");
        assert_eq!(payload.data["chat"]["type"], "private");
        assert_eq!(payload.data["recipient"], "5511988887777@s.whatsapp.net");
    }

    #[test]
    fn the_envelope_is_the_stored_data_with_media_bytes_only_when_asked() {
        use zapgate_core::event_log::StoredEvent;
        let data = json!({"id": "M1", "message": {"media": {"base64": "AAA", "type": "image"},
                          "content": {"text": "a \"quoted\" base64"}}});
        let event = StoredEvent {
            id: "evt_1".into(),
            instance_id: "ins_1".into(),
            sequence: 7,
            name: EventName::MessageExchange,
            data: data.to_string(),
            created_at_ms: 0,
        };
        let expected = |data: Value| {
            json!({
                "event": "message.exchange",
                "data": data,
                "instanceData": {"baseUrl": "http://zg", "instance": "loja \"1\"", "token": "t"},
                "id": "evt_1",
                "sequence": 7,
            })
        };
        let with = envelope(&event, true, "http://zg", "loja \"1\"", "t");
        assert_eq!(
            serde_json::from_str::<Value>(&with).unwrap(),
            expected(data.clone())
        );
        // The same bytes `serde_json` would write (its keys sorted).
        assert_eq!(with, expected(data.clone()).to_string());
        let without = envelope(&event, false, "http://zg", "loja \"1\"", "t");
        assert_eq!(without, expected(without_media_bytes(data)).to_string());
        assert!(!without.contains("AAA"));
    }
}
