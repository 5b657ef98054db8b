//! WhatsApp Web's decrypted messages and receipts, as zapgate reports them.
//!
//! Pure mapping: media is only described here ([`PendingMedia`]); the
//! provider downloads it and looks group subjects up.

use whatsapp_rust::{
    Jid as WaJid, Server,
    buffa::MessageField,
    download::Downloadable,
    serde_json,
    types::{events::Receipt, message::MessageInfo, presence::ReceiptType},
    wacore_binary::JidExt,
    waproto::whatsapp::{self as wa, message::call_log_message::CallOutcome},
};
use zapgate_core::{
    jid::{Jid, LID_SERVER, USER_SERVER},
    whatsapp::{Extra, InboundMessage, MediaKind, MediaRef, ReceiptStatus},
};

/// A message as zapgate reports it, its media still on WhatsApp's servers.
pub(crate) struct Mapped {
    /// `media` and `group_subject` are left for the provider to fill.
    pub message: InboundMessage,
    pub media: Option<PendingMedia>,
}

/// Media to download before the message is delivered.
pub(crate) struct PendingMedia {
    pub kind: MediaKind,
    pub mimetype: String,
    pub file_name: Option<String>,
    /// The media proto itself, for `Client::download`.
    pub source: Box<dyn Downloadable>,
}

/// Maps a decrypted message; `None` when there is nothing to report:
/// protocol traffic (key distribution, settings, history sync),
/// newsletters, and senders zapgate has no id form for (bots). Status posts
/// are reported in chat `status@broadcast`; `ignoreStatus` drops them later.
pub(crate) fn map_message(message: &wa::Message, info: &MessageInfo) -> Option<Mapped> {
    let source = &info.source;
    if source.chat.is_newsletter() {
        return None;
    }
    let content = content(unwrap(message))?;
    // Like the sandbox, never report a message with nothing in it (an empty
    // text, say).
    if content.text.is_none() && content.extra.is_none() && content.media.is_none() {
        return None;
    }
    let (sender, sender_lid) = person(&source.sender, source.sender_alt.as_ref())?;
    let chat = if source.is_group || source.chat.server == Server::Broadcast {
        jid_of(&source.chat)?
    } else {
        // A contact known by LID and phone number is its phone number.
        let alt = if source.is_from_me {
            source
                .recipient_alt
                .as_ref()
                .or(info.peer_recipient_pn.as_ref())
        } else {
            source.sender_alt.as_ref()
        };
        match alt {
            Some(alt) if source.chat.server.is_lid_family() && alt.server.is_pn_family() => {
                jid_of(alt)?
            }
            _ => jid_of(&source.chat)?,
        }
    };
    let message = InboundMessage {
        id: info.id.clone(),
        chat,
        sender,
        sender_lid,
        push_name: Some(info.push_name.clone()).filter(|n| !n.is_empty()),
        from_me: source.is_from_me,
        group_subject: None,
        text: content.text,
        media: None,
        media_ref: content.media.as_ref().map(media_ref),
        quoted_id: content.quoted_id,
        extra: content.extra,
        timestamp: info.timestamp.timestamp(),
        source: None,
    };
    Some(Mapped {
        message,
        media: content.media,
    })
}

/// What the message store keeps to download `media` again.
fn media_ref(media: &PendingMedia) -> MediaRef {
    let source = media.source.as_ref();
    MediaRef {
        kind: media.kind,
        mimetype: media.mimetype.clone(),
        file_name: media.file_name.clone(),
        direct_path: source.direct_path().map(str::to_owned),
        media_key: source.media_key().unwrap_or_default().to_vec(),
        file_sha256: source.file_sha256().unwrap_or_default().to_vec(),
        file_enc_sha256: source.file_enc_sha256().unwrap_or_default().to_vec(),
        file_length: source.file_length(),
    }
}

/// Delivered and read (a played voice note counts as read) per message id;
/// other receipts (our own devices' reads, retries) report nothing.
pub(crate) fn map_receipt(receipt: &Receipt) -> Vec<(String, ReceiptStatus)> {
    let status = match receipt.r#type {
        ReceiptType::Delivered => ReceiptStatus::Delivered,
        ReceiptType::Read | ReceiptType::Played => ReceiptStatus::Read,
        _ => return Vec::new(),
    };
    receipt
        .message_ids
        .iter()
        .map(|id| (id.clone(), status))
        .collect()
}

/// zapgate's form of a WhatsApp jid: user and server, no device. Hosted
/// (business API) and legacy `c.us` jids name the same people as plain
/// ones; servers zapgate has no form for (bots, calls) give `None`.
pub(crate) fn jid_of(jid: &WaJid) -> Option<Jid> {
    let server = match jid.server {
        Server::Pn | Server::Hosted | Server::Legacy => USER_SERVER,
        Server::Lid | Server::HostedLid => LID_SERVER,
        other => other.as_str(),
    };
    Jid::parse(&format!("{}@{server}", jid.user_base())).ok()
}

/// The author and their LID. Phone numbers are preferred, because that is
/// what people and the bridge know contacts by; a LID-only author is its
/// LID in both places, as the sandbox reports one.
pub(crate) fn person(jid: &WaJid, alt: Option<&WaJid>) -> Option<(Jid, Option<Jid>)> {
    let (jid, alt) = (jid_of(jid)?, alt.and_then(jid_of));
    Some(if jid.is_lid() {
        match alt {
            Some(pn) if !pn.is_lid() => (pn, Some(jid)),
            _ => (jid.clone(), Some(jid)),
        }
    } else {
        (jid, alt.filter(Jid::is_lid))
    })
}

/// Wrappers whose inner message is the content: disappearing, view-once,
/// captioned documents, edits (the inner protocol message says which),
/// mentions, album children, and the other future-proof envelopes WhatsApp
/// Web unwraps.
const WRAPPERS: &[fn(&wa::Message) -> &MessageField<wa::message::FutureProofMessage>] = &[
    |m| &m.ephemeral_message,
    |m| &m.view_once_message,
    |m| &m.view_once_message_v2,
    |m| &m.view_once_message_v2_extension,
    |m| &m.document_with_caption_message,
    |m| &m.edited_message,
    |m| &m.group_mentioned_message,
    |m| &m.bot_invoke_message,
    |m| &m.associated_child_message,
    |m| &m.lottie_sticker_message,
    |m| &m.spoiler_message,
    |m| &m.poll_creation_message_v4,
    |m| &m.poll_creation_option_image_message,
    |m| &m.event_cover_image,
    |m| &m.limit_sharing_message,
    |m| &m.question_message,
    |m| &m.question_reply_message,
];

/// The innermost message. `device_sent_message` carries what the account
/// owner wrote on the phone (the crate unwraps it too; this keeps the
/// mapping right wherever the message came from).
pub(crate) fn unwrap(mut message: &wa::Message) -> &wa::Message {
    loop {
        let inner = message
            .device_sent_message
            .as_option()
            .and_then(|dsm| dsm.message.as_option())
            .or_else(|| {
                WRAPPERS.iter().find_map(|field| {
                    field(message)
                        .as_option()
                        .and_then(|w| w.message.as_option())
                })
            });
        match inner {
            Some(inner) => message = inner,
            None => return message,
        }
    }
}

/// What a message says, before who said it where.
#[derive(Default)]
struct Content {
    text: Option<String>,
    quoted_id: Option<String>,
    extra: Option<Extra>,
    media: Option<PendingMedia>,
}

impl Content {
    fn text(text: Option<&str>, context: &MessageField<wa::ContextInfo>) -> Self {
        Self {
            text: non_empty(text),
            quoted_id: quoted_id(context),
            ..Self::default()
        }
    }

    fn extra(extra: Extra, context: &MessageField<wa::ContextInfo>) -> Self {
        Self {
            extra: Some(extra),
            quoted_id: quoted_id(context),
            ..Self::default()
        }
    }

    fn media(
        kind: MediaKind,
        source: Box<dyn Downloadable>,
        mimetype: Option<&str>,
        file_name: Option<&str>,
        caption: Option<&str>,
        context: &MessageField<wa::ContextInfo>,
    ) -> Self {
        let mimetype = non_empty(mimetype).unwrap_or_else(|| default_mimetype(kind).to_owned());
        Self {
            media: Some(PendingMedia {
                kind,
                mimetype,
                file_name: non_empty(file_name),
                source,
            }),
            ..Self::text(caption, context)
        }
    }
}

/// Classifies an unwrapped message; `None` for protocol traffic.
fn content(m: &wa::Message) -> Option<Content> {
    let none = MessageField::none();
    if let Some(protocol) = m.protocol_message.as_option() {
        return protocol_content(protocol);
    }
    // A poll vote is an encrypted tally update, not something a person
    // wrote: posting each one would flood the conversation.
    if m.poll_update_message.is_set() {
        return None;
    }
    if let Some(reaction) = m.reaction_message.as_option() {
        let extra = Extra::Reaction {
            target_id: key_id(&reaction.key)?,
            emoji: reaction.text.clone().unwrap_or_default(),
        };
        return Some(Content::extra(extra, &none));
    }
    if let Some(text) = &m.conversation {
        return Some(Content::text(Some(text), &none));
    }
    if let Some(ext) = m.extended_text_message.as_option() {
        return Some(Content::text(ext.text.as_deref(), &ext.context_info));
    }
    if let Some(image) = m.image_message.as_option() {
        return Some(Content::media(
            MediaKind::Image,
            Box::new(image.clone()),
            image.mimetype.as_deref(),
            None,
            image.caption.as_deref(),
            &image.context_info,
        ));
    }
    // A round video note (`ptv`) is a video like any other.
    if let Some(video) = m.video_message.as_option().or(m.ptv_message.as_option()) {
        return Some(Content::media(
            MediaKind::Video,
            Box::new(video.clone()),
            video.mimetype.as_deref(),
            None,
            video.caption.as_deref(),
            &video.context_info,
        ));
    }
    // Voice notes (`ptt`) are audio too; `MediaKind` has no separate kind.
    if let Some(audio) = m.audio_message.as_option() {
        return Some(Content::media(
            MediaKind::Audio,
            Box::new(audio.clone()),
            audio.mimetype.as_deref(),
            None,
            None,
            &audio.context_info,
        ));
    }
    if let Some(doc) = m.document_message.as_option() {
        return Some(Content::media(
            MediaKind::Document,
            Box::new(doc.clone()),
            doc.mimetype.as_deref(),
            doc.file_name.as_deref().or(doc.title.as_deref()),
            doc.caption.as_deref(),
            &doc.context_info,
        ));
    }
    if let Some(sticker) = m.sticker_message.as_option() {
        return Some(Content::media(
            MediaKind::Sticker,
            Box::new(sticker.clone()),
            sticker.mimetype.as_deref(),
            None,
            None,
            &sticker.context_info,
        ));
    }
    if let Some(location) = m.location_message.as_option() {
        let extra = Extra::Location {
            latitude: location.degrees_latitude.unwrap_or_default(),
            longitude: location.degrees_longitude.unwrap_or_default(),
            name: non_empty(location.name.as_deref()).or(non_empty(location.address.as_deref())),
        };
        return Some(Content::extra(extra, &location.context_info));
    }
    if let Some(live) = m.live_location_message.as_option() {
        let extra = Extra::Location {
            latitude: live.degrees_latitude.unwrap_or_default(),
            longitude: live.degrees_longitude.unwrap_or_default(),
            name: non_empty(live.caption.as_deref()),
        };
        return Some(Content::extra(extra, &live.context_info));
    }
    if let Some(contact) = m.contact_message.as_option() {
        let extra = Extra::ContactCard {
            name: contact.display_name.clone().unwrap_or_default(),
            vcard: non_empty(contact.vcard.as_deref()),
        };
        return Some(Content::extra(extra, &contact.context_info));
    }
    if let Some(contacts) = m.contacts_array_message.as_option() {
        return Some(Content::extra(
            contact_cards(contacts),
            &contacts.context_info,
        ));
    }
    let poll = [
        &m.poll_creation_message,
        &m.poll_creation_message_v2,
        &m.poll_creation_message_v3,
        &m.poll_creation_message_v5,
        &m.poll_creation_message_v6,
    ]
    .into_iter()
    .find_map(MessageField::as_option);
    if let Some(poll) = poll {
        let extra = Extra::Poll {
            question: poll.name.clone().unwrap_or_default(),
            options: poll
                .options
                .iter()
                .filter_map(|o| o.option_name.clone())
                .collect(),
        };
        return Some(Content::extra(extra, &poll.context_info));
    }
    if let Some(call) = m.call_log_messsage.as_option() {
        // The phone logs every call; only one nobody answered asks for a reply.
        let unanswered = matches!(
            call.call_outcome,
            Some(
                CallOutcome::MISSED
                    | CallOutcome::SILENCED_BY_DND
                    | CallOutcome::SILENCED_UNKNOWN_CALLER
            )
        );
        let extra = Extra::Call {
            video: call.is_video.unwrap_or(false),
        };
        return unanswered.then(|| Content::extra(extra, &none));
    }
    // An album announces its photos and videos, which follow as messages
    // of their own.
    if m.album_message.is_set() {
        return None;
    }
    let kind = unmapped_kind(m)?;
    Some(Content::extra(Extra::Unsupported { kind }, &none))
}

/// Edits and revocations; the rest of the protocol messages (disappearing
/// timers, key shares, history sync...) are not for people.
fn protocol_content(protocol: &wa::message::ProtocolMessage) -> Option<Content> {
    use wa::message::protocol_message::Type;
    let none = MessageField::none();
    let target_id = key_id(&protocol.key);
    match protocol.r#type {
        Some(Type::REVOKE) => Some(Content::extra(
            Extra::Revoke {
                target_id: target_id?,
            },
            &none,
        )),
        Some(Type::MESSAGE_EDIT) => {
            let edited = protocol.edited_message.as_option().map(unwrap);
            let extra = Extra::Edit {
                target_id: target_id?,
                text: edited.and_then(text_of).unwrap_or_default().to_owned(),
            };
            Some(Content::extra(extra, &none))
        }
        _ => None,
    }
}

/// The text an edit leaves: the message's, or a media caption's.
fn text_of(m: &wa::Message) -> Option<&str> {
    m.conversation
        .as_deref()
        .or_else(|| m.extended_text_message.as_option()?.text.as_deref())
        .or_else(|| m.image_message.as_option()?.caption.as_deref())
        .or_else(|| m.video_message.as_option()?.caption.as_deref())
        .or_else(|| m.document_message.as_option()?.caption.as_deref())
}

/// Several shared contacts as one card: the names side by side and the
/// vCards one after the other, so every number stays readable.
fn contact_cards(contacts: &wa::message::ContactsArrayMessage) -> Extra {
    let names: Vec<&str> = contacts
        .contacts
        .iter()
        .filter_map(|c| c.display_name.as_deref())
        .filter(|n| !n.is_empty())
        .collect();
    let vcards: Vec<&str> = contacts
        .contacts
        .iter()
        .filter_map(|c| c.vcard.as_deref())
        .filter(|v| !v.is_empty())
        .collect();
    let name = if names.is_empty() {
        contacts.display_name.clone().unwrap_or_default()
    } else {
        names.join(", ")
    };
    Extra::ContactCard {
        name,
        vcard: (!vcards.is_empty()).then(|| vcards.join("\n")),
    }
}

/// Fields that ride along with content or carry keys, never content.
const CARRIERS: &[&str] = &[
    "message_context_info",
    "sender_key_distribution_message",
    "fast_ratchet_key_sender_key_distribution_message",
    "group_root_key_share",
    "root_secret_distribute_message",
];

/// The proto field (`poll_update_message`, `event_message`...) of a kind
/// zapgate does not map. Read through serde rather than listed, so kinds a
/// crate update adds are named too; `None` when only carriers are set.
fn unmapped_kind(m: &wa::Message) -> Option<String> {
    let serde_json::Value::Object(fields) = serde_json::to_value(m).ok()? else {
        return None;
    };
    fields
        .into_iter()
        .find(|(name, value)| !value.is_null() && !CARRIERS.contains(&name.as_str()))
        .map(|(name, _)| name)
}

fn quoted_id(context: &MessageField<wa::ContextInfo>) -> Option<String> {
    non_empty(context.as_option()?.stanza_id.as_deref())
}

fn key_id(key: &MessageField<wa::MessageKey>) -> Option<String> {
    non_empty(key.as_option()?.id.as_deref())
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(str::to_owned)
}

/// What WhatsApp clients assume when a media message names no type.
fn default_mimetype(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image/jpeg",
        MediaKind::Video => "video/mp4",
        MediaKind::Audio => "audio/ogg; codecs=opus",
        MediaKind::Document => "application/octet-stream",
        MediaKind::Sticker => "image/webp",
    }
}

/// Gives a person WhatsApp named only by their hidden-number id (`@lid`)
/// the phone number the client learned for it (`phone_of`), so the same
/// person is one contact whichever id a message carried. The 1:1 chat and
/// the author of a message that is not ours are looked up; the lid stays in
/// `sender_lid`.
pub(crate) fn with_phone_number(
    message: &mut InboundMessage,
    phone_of: impl Fn(&Jid) -> Option<Jid>,
) {
    if message.chat.is_lid()
        && let Some(phone) = phone_of(&message.chat)
    {
        let lid = std::mem::replace(&mut message.chat, phone.clone());
        if !message.from_me && message.sender == lid {
            message.sender = phone;
            message.sender_lid = Some(lid);
        }
        return;
    }
    if !message.from_me
        && message.sender.is_lid()
        && let Some(phone) = phone_of(&message.sender)
    {
        let lid = std::mem::replace(&mut message.sender, phone);
        message.sender_lid = Some(lid);
    }
}

/// What a read receipt for the message needs: its chat, its author when the
/// chat is a group (WhatsApp wants the participant there), and its id.
pub(crate) fn read_mark(info: &MessageInfo) -> (WaJid, Option<WaJid>, String) {
    let source = &info.source;
    let sender = source.is_group.then(|| source.sender.clone());
    (source.chat.clone(), sender, info.id.clone())
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        chrono::DateTime,
        download::MediaType,
        types::message::{AddressingMode, MessageSource},
    };

    use super::*;

    const CONTACT: &str = "5511988887777@s.whatsapp.net";
    const CONTACT_LID: &str = "203571934891234@lid";
    const OWN_DEVICE: &str = "5511977776666:3@s.whatsapp.net";
    const OWN: &str = "5511977776666@s.whatsapp.net";
    const OWN_LID: &str = "98765432109876@lid";
    const GROUP: &str = "120363041234567890@g.us";
    const SENT_AT: i64 = 1_732_260_000;

    fn wa(jid: &str) -> WaJid {
        jid.parse().unwrap()
    }

    fn ours(jid: &str) -> Jid {
        Jid::parse(jid).unwrap()
    }

    /// A 1:1 message from the contact's phone (device 0) or a linked
    /// device, as the crate parses the stanza.
    fn from_contact(id: &str, sender: &str) -> MessageInfo {
        let sender = wa(sender);
        MessageInfo {
            id: id.to_owned(),
            source: MessageSource {
                chat: sender.to_non_ad(),
                sender,
                ..Default::default()
            },
            push_name: "Maria Souza".to_owned(),
            timestamp: DateTime::from_timestamp(SENT_AT, 0).unwrap(),
            ..Default::default()
        }
    }

    fn in_group(id: &str, participant: &str, alt: Option<&str>) -> MessageInfo {
        MessageInfo {
            id: id.to_owned(),
            source: MessageSource {
                chat: wa(GROUP),
                sender: wa(participant),
                is_group: true,
                addressing_mode: Some(AddressingMode::Lid),
                sender_alt: alt.map(wa),
                ..Default::default()
            },
            push_name: "João".to_owned(),
            timestamp: DateTime::from_timestamp(SENT_AT, 0).unwrap(),
            ..Default::default()
        }
    }

    fn text(text: &str) -> wa::Message {
        wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        }
    }

    fn map(message: &wa::Message, info: &MessageInfo) -> InboundMessage {
        map_message(message, info).expect("mapped").message
    }

    fn pending(message: &wa::Message) -> (InboundMessage, PendingMedia) {
        let mapped =
            map_message(message, &from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT)).expect("mapped");
        (mapped.message, mapped.media.expect("media"))
    }

    fn extra(message: &wa::Message) -> Option<Extra> {
        map(message, &from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT)).extra
    }

    fn quoting(stanza_id: &str) -> MessageField<wa::ContextInfo> {
        MessageField::some(wa::ContextInfo {
            stanza_id: Some(stanza_id.to_owned()),
            participant: Some(OWN.to_owned()),
            quoted_message: MessageField::some(text("Pedido enviado")),
            ..Default::default()
        })
    }

    fn key(id: &str, from_me: bool) -> MessageField<wa::MessageKey> {
        MessageField::some(wa::MessageKey {
            remote_jid: Some(CONTACT.to_owned()),
            from_me: Some(from_me),
            id: Some(id.to_owned()),
            participant: None,
        })
    }

    fn protocol(protocol: wa::message::ProtocolMessage) -> wa::Message {
        wa::Message {
            protocol_message: MessageField::some(protocol),
            ..Default::default()
        }
    }

    fn wrapped(message: wa::Message) -> MessageField<wa::message::FutureProofMessage> {
        MessageField::some(wa::message::FutureProofMessage {
            message: MessageField::some(message),
        })
    }

    fn voice_note() -> wa::message::AudioMessage {
        wa::message::AudioMessage {
            url: Some("https://mmg.whatsapp.net/v/t62.7117-24/31415926_1234567890123456_7890123456789012345_n.enc?ccb=11-4&oh=01_Q5AaI&oe=6767A1B2&_nc_sid=5e03e0&mms3=true".to_owned()),
            mimetype: Some("audio/ogg; codecs=opus".to_owned()),
            file_sha256: Some(vec![0x5a; 32]),
            file_length: Some(18_342),
            seconds: Some(7),
            ptt: Some(true),
            media_key: Some(vec![0x1f; 32]),
            file_enc_sha256: Some(vec![0x7c; 32]),
            direct_path: Some("/v/t62.7117-24/31415926_1234567890123456_7890123456789012345_n.enc?ccb=11-4&oh=01_Q5AaI&oe=6767A1B2&_nc_sid=5e03e0".to_owned()),
            media_key_timestamp: Some(SENT_AT),
            waveform: Some(vec![0, 12, 40, 63, 22, 5]),
            ..Default::default()
        }
    }

    fn photo(caption: Option<&str>) -> wa::message::ImageMessage {
        wa::message::ImageMessage {
            url: Some("https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/up-oil-image-1234.enc?ccb=9-4&oh=01_Q5AaIMx&oe=6767B3C4&_nc_sid=e6ed6c&mms3=true".to_owned()),
            mimetype: Some("image/jpeg".to_owned()),
            caption: caption.map(str::to_owned),
            file_sha256: Some(vec![0x21; 32]),
            file_length: Some(154_873),
            height: Some(1600),
            width: Some(1200),
            media_key: Some(vec![0x42; 32]),
            file_enc_sha256: Some(vec![0x63; 32]),
            direct_path: Some("/o1/v/t62.7118-24/f1/m232/up-oil-image-1234.enc?ccb=9-4&oh=01_Q5AaIMx&oe=6767B3C4&_nc_sid=e6ed6c".to_owned()),
            media_key_timestamp: Some(SENT_AT),
            jpeg_thumbnail: Some(vec![0xff, 0xd8, 0xff, 0xe0]),
            ..Default::default()
        }
    }

    fn pdf() -> wa::message::DocumentMessage {
        wa::message::DocumentMessage {
            url: Some(
                "https://mmg.whatsapp.net/v/t62.7119-24/12345678_n.enc?ccb=11-4&mms3=true"
                    .to_owned(),
            ),
            mimetype: Some("application/pdf".to_owned()),
            title: Some("Boleto novembro".to_owned()),
            file_sha256: Some(vec![0x11; 32]),
            file_length: Some(88_210),
            page_count: Some(2),
            media_key: Some(vec![0x22; 32]),
            file_name: Some("boleto-novembro.pdf".to_owned()),
            file_enc_sha256: Some(vec![0x33; 32]),
            direct_path: Some("/v/t62.7119-24/12345678_n.enc?ccb=11-4".to_owned()),
            media_key_timestamp: Some(SENT_AT),
            ..Default::default()
        }
    }

    #[test]
    fn a_text_from_a_contact_is_reported_whole() {
        let mut info = from_contact("3A5B9C2D1E0F4A6B8C7D", "5511988887777:12@s.whatsapp.net");
        info.source.sender_alt = Some(wa(CONTACT_LID));
        let mapped = map_message(&text("Olá, tudo bem?"), &info).unwrap();
        assert!(mapped.media.is_none());
        assert_eq!(
            mapped.message,
            InboundMessage {
                id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
                chat: ours(CONTACT),
                sender: ours(CONTACT),
                sender_lid: Some(ours(CONTACT_LID)),
                push_name: Some("Maria Souza".to_owned()),
                from_me: false,
                group_subject: None,
                text: Some("Olá, tudo bem?".to_owned()),
                media: None,
                media_ref: None,
                quoted_id: None,
                extra: None,
                timestamp: SENT_AT,
                source: None,
            }
        );
    }

    #[test]
    fn an_empty_push_name_is_none() {
        let mut info = from_contact("3EB0C431C26A1916F4A7", CONTACT);
        info.push_name.clear();
        assert_eq!(map(&text("oi"), &info).push_name, None);
    }

    #[test]
    fn an_extended_text_reply_names_the_quoted_message() {
        let message = wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some("Chegou sim, obrigada! https://example.com/rastreio".to_owned()),
                matched_text: Some("https://example.com/rastreio".to_owned()),
                context_info: quoting("3EB0C431C26A1916F4A7"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = map(&message, &from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT));
        assert_eq!(
            got.text.as_deref(),
            Some("Chegou sim, obrigada! https://example.com/rastreio")
        );
        assert_eq!(got.quoted_id.as_deref(), Some("3EB0C431C26A1916F4A7"));
        assert_eq!(got.extra, None);
    }

    #[test]
    fn an_image_is_pending_media_with_its_caption_as_text() {
        let mut image = photo(Some("Comprovante"));
        image.context_info = quoting("3EB0C431C26A1916F4A7");
        let message = wa::Message {
            image_message: MessageField::some(image),
            ..Default::default()
        };
        let (got, media) = pending(&message);
        assert_eq!(got.text.as_deref(), Some("Comprovante"));
        assert_eq!(got.quoted_id.as_deref(), Some("3EB0C431C26A1916F4A7"));
        assert_eq!(got.media, None);
        assert_eq!(media.kind, MediaKind::Image);
        assert_eq!(media.mimetype, "image/jpeg");
        assert_eq!(media.file_name, None);
        assert_eq!(media.source.app_info(), MediaType::Image);
        assert_eq!(
            media.source.direct_path(),
            Some(
                "/o1/v/t62.7118-24/f1/m232/up-oil-image-1234.enc?ccb=9-4&oh=01_Q5AaIMx&oe=6767B3C4&_nc_sid=e6ed6c"
            )
        );
        assert_eq!(media.source.media_key(), Some(&[0x42; 32][..]));
        assert_eq!(media.source.file_sha256(), Some(&[0x21; 32][..]));
        assert_eq!(media.source.file_enc_sha256(), Some(&[0x63; 32][..]));
        assert_eq!(media.source.file_length(), Some(154_873));
        // The message store keeps the same, to download it again later.
        let stored = got.media_ref.expect("media described for the store");
        assert_eq!(stored.direct_path.as_deref(), media.source.direct_path());
        assert_eq!(stored.media_key, vec![0x42; 32]);
        assert_eq!(stored.file_sha256, vec![0x21; 32]);
        assert_eq!(stored.file_enc_sha256, vec![0x63; 32]);
        assert_eq!(stored.file_length, Some(154_873));
        assert_eq!(stored.mimetype, "image/jpeg");
    }

    #[test]
    fn a_video_and_a_round_video_note_are_videos() {
        let clip = wa::message::VideoMessage {
            url: Some(
                "https://mmg.whatsapp.net/v/t62.7161-24/98765_n.enc?ccb=11-4&mms3=true".to_owned(),
            ),
            mimetype: Some("video/mp4".to_owned()),
            file_sha256: Some(vec![0x44; 32]),
            file_length: Some(2_483_112),
            seconds: Some(14),
            media_key: Some(vec![0x55; 32]),
            caption: Some("Olha isso".to_owned()),
            file_enc_sha256: Some(vec![0x66; 32]),
            direct_path: Some("/v/t62.7161-24/98765_n.enc?ccb=11-4".to_owned()),
            media_key_timestamp: Some(SENT_AT),
            streaming_sidecar: Some(vec![0x01; 10]),
            ..Default::default()
        };
        let video = wa::Message {
            video_message: MessageField::some(clip.clone()),
            ..Default::default()
        };
        let (got, media) = pending(&video);
        assert_eq!(media.kind, MediaKind::Video);
        assert_eq!(media.mimetype, "video/mp4");
        assert_eq!(media.source.app_info(), MediaType::Video);
        assert_eq!(media.source.file_length(), Some(2_483_112));
        assert_eq!(got.text.as_deref(), Some("Olha isso"));

        let note = wa::Message {
            ptv_message: MessageField::some(wa::message::VideoMessage {
                caption: None,
                ..clip
            }),
            ..Default::default()
        };
        let (got, media) = pending(&note);
        assert_eq!(media.kind, MediaKind::Video);
        assert_eq!(
            media.source.direct_path(),
            Some("/v/t62.7161-24/98765_n.enc?ccb=11-4")
        );
        assert_eq!(got.text, None);
    }

    #[test]
    fn a_voice_note_is_audio_without_text() {
        let message = wa::Message {
            audio_message: MessageField::some(voice_note()),
            ..Default::default()
        };
        let (got, media) = pending(&message);
        assert_eq!(media.kind, MediaKind::Audio);
        assert_eq!(media.mimetype, "audio/ogg; codecs=opus");
        assert_eq!(media.source.app_info(), MediaType::Audio);
        assert_eq!(media.source.file_length(), Some(18_342));
        assert_eq!(media.source.media_key(), Some(&[0x1f; 32][..]));
        assert_eq!(got.text, None);
        assert_eq!(got.extra, None);
    }

    #[test]
    fn a_document_keeps_its_file_name() {
        let message = wa::Message {
            document_message: MessageField::some(pdf()),
            ..Default::default()
        };
        let (got, media) = pending(&message);
        assert_eq!(media.kind, MediaKind::Document);
        assert_eq!(media.mimetype, "application/pdf");
        assert_eq!(media.file_name.as_deref(), Some("boleto-novembro.pdf"));
        assert_eq!(media.source.app_info(), MediaType::Document);
        assert_eq!(got.text, None);

        let untitled = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                file_name: None,
                ..pdf()
            }),
            ..Default::default()
        };
        let (_, media) = pending(&untitled);
        assert_eq!(media.file_name.as_deref(), Some("Boleto novembro"));
    }

    #[test]
    fn a_document_with_caption_is_unwrapped() {
        let message = wa::Message {
            document_with_caption_message: wrapped(wa::Message {
                document_message: MessageField::some(wa::message::DocumentMessage {
                    caption: Some("Segue o boleto".to_owned()),
                    context_info: quoting("3EB0C431C26A1916F4A7"),
                    ..pdf()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (got, media) = pending(&message);
        assert_eq!(media.kind, MediaKind::Document);
        assert_eq!(media.file_name.as_deref(), Some("boleto-novembro.pdf"));
        assert_eq!(got.text.as_deref(), Some("Segue o boleto"));
        assert_eq!(got.quoted_id.as_deref(), Some("3EB0C431C26A1916F4A7"));
    }

    #[test]
    fn a_sticker_is_webp_media() {
        let sticker = wa::message::StickerMessage {
            url: Some(
                "https://mmg.whatsapp.net/v/t62.15575-24/11223344_n.enc?ccb=11-4&mms3=true"
                    .to_owned(),
            ),
            file_sha256: Some(vec![0x77; 32]),
            file_enc_sha256: Some(vec![0x88; 32]),
            media_key: Some(vec![0x99; 32]),
            mimetype: Some("image/webp".to_owned()),
            height: Some(512),
            width: Some(512),
            direct_path: Some("/v/t62.15575-24/11223344_n.enc?ccb=11-4".to_owned()),
            file_length: Some(21_904),
            media_key_timestamp: Some(SENT_AT),
            is_animated: Some(false),
            ..Default::default()
        };
        let message = wa::Message {
            sticker_message: MessageField::some(sticker),
            ..Default::default()
        };
        let (got, media) = pending(&message);
        assert_eq!(media.kind, MediaKind::Sticker);
        assert_eq!(media.mimetype, "image/webp");
        assert_eq!(media.source.app_info(), MediaType::Sticker);
        assert_eq!(media.source.file_length(), Some(21_904));
        assert_eq!(got.text, None);
    }

    #[test]
    fn media_without_a_mimetype_gets_the_kinds_default() {
        let message = wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                mimetype: None,
                ..voice_note()
            }),
            ..Default::default()
        };
        assert_eq!(pending(&message).1.mimetype, "audio/ogg; codecs=opus");
        let message = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                mimetype: Some(String::new()),
                ..photo(None)
            }),
            ..Default::default()
        };
        assert_eq!(pending(&message).1.mimetype, "image/jpeg");
    }

    #[test]
    fn a_reaction_names_its_target_and_an_empty_one_removes_it() {
        let reaction = |emoji: &str| wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage {
                key: key("3EB0C431C26A1916F4A7", true),
                text: Some(emoji.to_owned()),
                sender_timestamp_ms: Some(SENT_AT * 1000 + 412),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&reaction("❤️")),
            Some(Extra::Reaction {
                target_id: "3EB0C431C26A1916F4A7".to_owned(),
                emoji: "❤️".to_owned(),
            })
        );
        assert_eq!(
            extra(&reaction("")),
            Some(Extra::Reaction {
                target_id: "3EB0C431C26A1916F4A7".to_owned(),
                emoji: String::new(),
            })
        );
    }

    #[test]
    fn an_edit_in_its_wrapper_carries_the_new_text() {
        use wa::message::protocol_message::Type;
        let edit = wa::message::ProtocolMessage {
            key: key("3A5B9C2D1E0F4A6B8C7D", true),
            r#type: Some(Type::MESSAGE_EDIT),
            edited_message: MessageField::some(wa::Message {
                extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                    text: Some("Amanhã às 15h, pode ser?".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            timestamp_ms: Some(SENT_AT * 1000 + 90_000),
            ..Default::default()
        };
        let expected = Some(Extra::Edit {
            target_id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
            text: "Amanhã às 15h, pode ser?".to_owned(),
        });
        let wrapped_edit = wa::Message {
            edited_message: wrapped(protocol(edit.clone())),
            ..Default::default()
        };
        let got = map(
            &wrapped_edit,
            &from_contact("3A8E1F0C2B4D6A9E7C5B", CONTACT),
        );
        assert_eq!(got.extra, expected);
        assert_eq!(got.id, "3A8E1F0C2B4D6A9E7C5B");
        assert_eq!(got.text, None);
        assert_eq!(extra(&protocol(edit)), expected);
    }

    #[test]
    fn an_edited_caption_is_the_edits_text() {
        use wa::message::protocol_message::Type;
        let edit = protocol(wa::message::ProtocolMessage {
            key: key("3A5B9C2D1E0F4A6B8C7D", true),
            r#type: Some(Type::MESSAGE_EDIT),
            edited_message: MessageField::some(wa::Message {
                image_message: MessageField::some(photo(Some("Comprovante corrigido"))),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            extra(&edit),
            Some(Extra::Edit {
                target_id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
                text: "Comprovante corrigido".to_owned(),
            })
        );
    }

    #[test]
    fn a_revocation_names_the_deleted_message() {
        use wa::message::protocol_message::Type;
        let revoke = protocol(wa::message::ProtocolMessage {
            key: key("3A5B9C2D1E0F4A6B8C7D", true),
            r#type: Some(Type::REVOKE),
            ..Default::default()
        });
        assert_eq!(
            extra(&revoke),
            Some(Extra::Revoke {
                target_id: "3A5B9C2D1E0F4A6B8C7D".to_owned()
            })
        );
    }

    #[test]
    fn protocol_traffic_and_key_distribution_report_nothing() {
        use wa::message::protocol_message::Type;
        let info = from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT);
        let timer = protocol(wa::message::ProtocolMessage {
            r#type: Some(Type::EPHEMERAL_SETTING),
            ephemeral_expiration: Some(604_800),
            ..Default::default()
        });
        assert!(map_message(&timer, &info).is_none());
        let skdm = wa::Message {
            sender_key_distribution_message: MessageField::some(
                wa::message::SenderKeyDistributionMessage {
                    group_id: Some(GROUP.to_owned()),
                    axolotl_sender_key_distribution_message: Some(vec![0x33, 0x0a, 0x21]),
                },
            ),
            message_context_info: MessageField::some(wa::MessageContextInfo {
                message_secret: Some(vec![0x5e; 32]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(map_message(&skdm, &info).is_none());
        assert!(map_message(&wa::Message::default(), &info).is_none());
        assert!(map_message(&text(""), &info).is_none());
        let album = wa::Message {
            album_message: MessageField::some(wa::message::AlbumMessage {
                expected_image_count: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(map_message(&album, &info).is_none());
    }

    #[test]
    fn a_location_is_named_by_place_or_address() {
        let place = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(-23.561_414),
                degrees_longitude: Some(-46.655_881),
                name: Some("MASP".to_owned()),
                address: Some("Av. Paulista, 1578 - Bela Vista, São Paulo".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&place),
            Some(Extra::Location {
                latitude: -23.561_414,
                longitude: -46.655_881,
                name: Some("MASP".to_owned()),
            })
        );
        let pin = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(-22.951_916),
                degrees_longitude: Some(-43.210_487),
                address: Some("Parque Nacional da Tijuca, Rio de Janeiro".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&pin),
            Some(Extra::Location {
                latitude: -22.951_916,
                longitude: -43.210_487,
                name: Some("Parque Nacional da Tijuca, Rio de Janeiro".to_owned()),
            })
        );
    }

    #[test]
    fn a_live_location_is_a_location() {
        let live = wa::Message {
            live_location_message: MessageField::some(wa::message::LiveLocationMessage {
                degrees_latitude: Some(-23.55),
                degrees_longitude: Some(-46.63),
                accuracy_in_meters: Some(12),
                caption: Some("Estou chegando".to_owned()),
                sequence_number: Some(1_732_260_000_123),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&live),
            Some(Extra::Location {
                latitude: -23.55,
                longitude: -46.63,
                name: Some("Estou chegando".to_owned()),
            })
        );
    }

    fn vcard(name: &str, phone: &str, waid: &str) -> String {
        format!(
            "BEGIN:VCARD\nVERSION:3.0\nN:;{name};;;\nFN:{name}\nTEL;type=CELL;waid={waid}:{phone}\nEND:VCARD"
        )
    }

    #[test]
    fn a_contact_card_keeps_name_and_vcard() {
        let card = vcard("João Lima", "+55 11 91234-5678", "5511912345678");
        let message = wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                display_name: Some("João Lima".to_owned()),
                vcard: Some(card.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&message),
            Some(Extra::ContactCard {
                name: "João Lima".to_owned(),
                vcard: Some(card),
            })
        );
    }

    #[test]
    fn several_contact_cards_become_one() {
        let joao = vcard("João Lima", "+55 11 91234-5678", "5511912345678");
        let ana = vcard("Ana Reis", "+55 21 99876-5432", "5521998765432");
        let contact = |name: &str, card: &str| wa::message::ContactMessage {
            display_name: Some(name.to_owned()),
            vcard: Some(card.to_owned()),
            ..Default::default()
        };
        let message = wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some("2 contatos".to_owned()),
                contacts: vec![contact("João Lima", &joao), contact("Ana Reis", &ana)],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&message),
            Some(Extra::ContactCard {
                name: "João Lima, Ana Reis".to_owned(),
                vcard: Some(format!("{joao}\n{ana}")),
            })
        );
    }

    #[test]
    fn polls_of_every_version_are_polls() {
        let poll = wa::message::PollCreationMessage {
            enc_key: Some(vec![0xab; 32]),
            name: Some("Melhor dia para a reunião?".to_owned()),
            options: ["Segunda", "Quarta", "Sexta"]
                .into_iter()
                .map(|o| wa::message::poll_creation_message::Option {
                    option_name: Some(o.to_owned()),
                    ..Default::default()
                })
                .collect(),
            selectable_options_count: Some(1),
            ..Default::default()
        };
        let expected = Some(Extra::Poll {
            question: "Melhor dia para a reunião?".to_owned(),
            options: vec!["Segunda".into(), "Quarta".into(), "Sexta".into()],
        });
        let versions: [fn(&mut wa::Message) -> &mut MessageField<_>; 3] = [
            |m| &mut m.poll_creation_message,
            |m| &mut m.poll_creation_message_v2,
            |m| &mut m.poll_creation_message_v3,
        ];
        for (n, field) in versions.into_iter().enumerate() {
            let mut message = wa::Message::default();
            *field(&mut message) = MessageField::some(poll.clone());
            assert_eq!(extra(&message), expected, "v{}", n + 1);
        }
    }

    #[test]
    fn a_missed_call_is_a_call_and_an_answered_one_nothing() {
        let call = |outcome, video| wa::Message {
            call_log_messsage: MessageField::some(wa::message::CallLogMessage {
                is_video: Some(video),
                call_outcome: Some(outcome),
                duration_secs: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&call(CallOutcome::MISSED, true)),
            Some(Extra::Call { video: true })
        );
        assert_eq!(
            extra(&call(CallOutcome::SILENCED_UNKNOWN_CALLER, false)),
            Some(Extra::Call { video: false })
        );
        let info = from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT);
        assert!(map_message(&call(CallOutcome::CONNECTED, false), &info).is_none());
    }

    #[test]
    fn unknown_kinds_are_named_by_their_field() {
        let event = wa::Message {
            event_message: MessageField::some(wa::message::EventMessage {
                name: Some("Churrasco".to_owned()),
                ..Default::default()
            }),
            message_context_info: MessageField::some(wa::MessageContextInfo {
                message_secret: Some(vec![0x5e; 32]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            extra(&event),
            Some(Extra::Unsupported {
                kind: "event_message".to_owned()
            })
        );
        let vote = wa::Message {
            poll_update_message: MessageField::some(wa::message::PollUpdateMessage {
                poll_creation_message_key: key("3EB0C431C26A1916F4A7", true),
                ..Default::default()
            }),
            // Sorts and is declared before the vote: it must be skipped.
            message_context_info: MessageField::some(wa::MessageContextInfo {
                message_secret: Some(vec![0x5e; 32]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            map_message(&vote, &from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT)).is_none(),
            "poll votes are not messages"
        );
    }

    #[test]
    fn disappearing_and_view_once_wrappers_are_unwrapped() {
        let wrappers: [fn(&mut wa::Message) -> &mut MessageField<_>; 5] = [
            |m| &mut m.ephemeral_message,
            |m| &mut m.view_once_message,
            |m| &mut m.view_once_message_v2,
            |m| &mut m.view_once_message_v2_extension,
            |m| &mut m.group_mentioned_message,
        ];
        for (n, field) in wrappers.into_iter().enumerate() {
            let mut message = wa::Message::default();
            *field(&mut message) = wrapped(wa::Message {
                image_message: MessageField::some(photo(Some("Só uma vez"))),
                ..Default::default()
            });
            let (got, media) = pending(&message);
            assert_eq!(media.kind, MediaKind::Image, "wrapper {n}");
            assert_eq!(got.text.as_deref(), Some("Só uma vez"), "wrapper {n}");
        }
        let nested = wa::Message {
            ephemeral_message: wrapped(wa::Message {
                view_once_message_v2: wrapped(text("aninhado")),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            map(&nested, &from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT))
                .text
                .as_deref(),
            Some("aninhado")
        );
    }

    /// What the account owner typed on the phone reaches its linked devices
    /// wrapped in `device_sent_message`, from the owner's LID and device.
    #[test]
    fn a_message_written_on_the_phone_is_from_me_in_the_contacts_chat() {
        let message = wa::Message {
            device_sent_message: MessageField::some(wa::message::DeviceSentMessage {
                destination_jid: Some(CONTACT.to_owned()),
                message: MessageField::some(text("Seu pedido saiu para entrega")),
                phash: Some("2:kq1Xbq9s".to_owned()),
            }),
            ..Default::default()
        };
        let info = MessageInfo {
            id: "3AF2C8D05B1E7A94C3D6".to_owned(),
            source: MessageSource {
                chat: wa(CONTACT),
                sender: wa("98765432109876:0@lid"),
                is_from_me: true,
                sender_alt: Some(wa(OWN)),
                recipient: Some(wa(CONTACT)),
                ..Default::default()
            },
            push_name: "Loja Central".to_owned(),
            timestamp: DateTime::from_timestamp(SENT_AT, 0).unwrap(),
            ..Default::default()
        };
        let got = map(&message, &info);
        assert!(got.from_me);
        assert_eq!(got.chat, ours(CONTACT));
        assert_eq!(got.sender, ours(OWN));
        assert_eq!(got.sender_lid, Some(ours(OWN_LID)));
        assert_eq!(got.text.as_deref(), Some("Seu pedido saiu para entrega"));
    }

    #[test]
    fn from_me_to_a_lid_chat_uses_the_peers_phone_number() {
        let mut info = MessageInfo {
            id: "3EB0A1B2C3D4E5F60718".to_owned(),
            source: MessageSource {
                chat: wa(CONTACT_LID),
                sender: wa(OWN_DEVICE),
                is_from_me: true,
                sender_alt: Some(wa(OWN_LID)),
                recipient: Some(wa(CONTACT_LID)),
                ..Default::default()
            },
            timestamp: DateTime::from_timestamp(SENT_AT, 0).unwrap(),
            ..Default::default()
        };
        let got = map(&text("ok"), &info);
        assert_eq!(got.chat, ours(CONTACT_LID));
        assert_eq!(got.sender, ours(OWN));
        assert_eq!(got.sender_lid, Some(ours(OWN_LID)));

        info.peer_recipient_pn = Some(wa(CONTACT));
        assert_eq!(map(&text("ok"), &info).chat, ours(CONTACT));
    }

    #[test]
    fn a_lid_contact_with_a_known_number_is_its_number() {
        let mut info = from_contact("3A5B9C2D1E0F4A6B8C7D", "203571934891234:4@lid");
        info.source.sender_alt = Some(wa(CONTACT));
        let got = map(&text("oi"), &info);
        assert_eq!(got.chat, ours(CONTACT));
        assert_eq!(got.sender, ours(CONTACT));
        assert_eq!(got.sender_lid, Some(ours(CONTACT_LID)));
    }

    #[test]
    fn a_lid_only_contact_is_its_lid_everywhere() {
        let info = from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT_LID);
        let got = map(&text("oi"), &info);
        assert_eq!(got.chat, ours(CONTACT_LID));
        assert_eq!(got.sender, ours(CONTACT_LID));
        assert_eq!(got.sender_lid, Some(ours(CONTACT_LID)));
    }

    #[test]
    fn a_group_message_is_in_the_group_from_its_author() {
        let info = in_group(
            "3A5B9C2D1E0F4A6B8C7D",
            "203571934891234:2@lid",
            Some(CONTACT),
        );
        let got = map(&text("Bom dia, pessoal"), &info);
        assert_eq!(got.chat, ours(GROUP));
        assert_eq!(got.sender, ours(CONTACT));
        assert_eq!(got.sender_lid, Some(ours(CONTACT_LID)));
        assert_eq!(got.push_name.as_deref(), Some("João"));
        assert!(!got.from_me);

        let lid_only = in_group("3A5B9C2D1E0F4A6B8C7E", CONTACT_LID, None);
        let got = map(&text("Bom dia"), &lid_only);
        assert_eq!(got.chat, ours(GROUP));
        assert_eq!(got.sender, ours(CONTACT_LID));
        assert_eq!(got.sender_lid, Some(ours(CONTACT_LID)));

        let mut pn_addressed = in_group("3A5B9C2D1E0F4A6B8C7F", CONTACT, None);
        pn_addressed.source.addressing_mode = Some(AddressingMode::Pn);
        let got = map(&text("Bom dia"), &pn_addressed);
        assert_eq!(got.sender, ours(CONTACT));
        assert_eq!(got.sender_lid, None);
    }

    #[test]
    fn status_posts_are_reported_in_their_own_chat_and_newsletters_not_at_all() {
        let mut status = from_contact("3A5B9C2D1E0F4A6B8C7D", CONTACT);
        status.source.chat = WaJid::status_broadcast();
        let post = map(&text("story"), &status);
        assert!(post.chat.is_status_broadcast());
        assert_eq!(post.sender, ours(CONTACT));
        assert_eq!(post.text.as_deref(), Some("story"));
        let channel = MessageInfo {
            id: "128".to_owned(),
            source: MessageSource {
                chat: wa("120363144038483540@newsletter"),
                sender: wa("120363144038483540@newsletter"),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(map_message(&text("news"), &channel).is_none());
    }

    #[test]
    fn a_read_mark_names_the_author_only_in_a_group() {
        let direct = from_contact("3A5B9C2D1E0F4A6B8C7D", "5511988887777:12@s.whatsapp.net");
        assert_eq!(
            read_mark(&direct),
            (wa(CONTACT), None, "3A5B9C2D1E0F4A6B8C7D".to_owned())
        );
        let group = in_group("3A11", CONTACT_LID, Some(CONTACT));
        assert_eq!(
            read_mark(&group),
            (wa(GROUP), Some(wa(CONTACT_LID)), "3A11".to_owned())
        );
    }

    fn receipt(kind: ReceiptType, ids: &[&str]) -> Receipt {
        Receipt::builder()
            .source(MessageSource {
                chat: wa(CONTACT),
                sender: wa(CONTACT),
                ..Default::default()
            })
            .message_ids(ids.iter().map(|id| (*id).to_owned()).collect())
            .timestamp(DateTime::from_timestamp(SENT_AT, 0).unwrap())
            .r#type(kind)
            .offline(false)
            .build()
    }

    #[test]
    fn delivery_and_read_receipts_report_each_message() {
        let ids = ["3EB0C431C26A1916F4A7", "3EB0D5E6F708192A3B4C"];
        assert_eq!(
            map_receipt(&receipt(ReceiptType::Delivered, &ids)),
            vec![
                (ids[0].to_owned(), ReceiptStatus::Delivered),
                (ids[1].to_owned(), ReceiptStatus::Delivered),
            ]
        );
        assert_eq!(
            map_receipt(&receipt(ReceiptType::Read, &ids[..1])),
            vec![(ids[0].to_owned(), ReceiptStatus::Read)]
        );
        assert_eq!(
            map_receipt(&receipt(ReceiptType::Played, &ids[1..])),
            vec![(ids[1].to_owned(), ReceiptStatus::Read)]
        );
    }

    #[test]
    fn other_receipts_report_nothing() {
        for kind in [
            ReceiptType::ReadSelf,
            ReceiptType::PlayedSelf,
            ReceiptType::Retry,
            ReceiptType::Sender,
            ReceiptType::Other("view".to_owned()),
        ] {
            let got = map_receipt(&receipt(kind.clone(), &["3EB0C431C26A1916F4A7"]));
            assert!(got.is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn jids_lose_their_device_and_hosted_numbers_are_numbers() {
        assert_eq!(jid_of(&wa(OWN_DEVICE)), Some(ours(OWN)));
        assert_eq!(
            jid_of(&wa("203571934891234:4@lid")),
            Some(ours(CONTACT_LID))
        );
        assert_eq!(jid_of(&wa(GROUP)), Some(ours(GROUP)));
        assert_eq!(jid_of(&wa("5511988887777:99@hosted")), Some(ours(CONTACT)));
        assert_eq!(jid_of(&wa("5511988887777@c.us")), Some(ours(CONTACT)));
        assert_eq!(jid_of(&wa("867051314767696@bot")), None);
    }

    fn known_number(jid: &Jid) -> Option<Jid> {
        (*jid == ours(CONTACT_LID)).then(|| ours(CONTACT))
    }

    #[test]
    fn a_lid_chat_gets_the_number_the_client_learned() {
        let info = from_contact("3A5B9C2D1E0F4A6B8C7E", CONTACT_LID);
        let mut message = map_message(&text("oi"), &info).unwrap().message;
        assert_eq!(
            message.chat,
            ours(CONTACT_LID),
            "no alt: the lid, as mapped"
        );
        with_phone_number(&mut message, known_number);
        assert_eq!(message.chat, ours(CONTACT));
        assert_eq!(message.sender, ours(CONTACT));
        assert_eq!(message.sender_lid, Some(ours(CONTACT_LID)));

        // Unknown lids stay as they are.
        let mut unknown = map_message(&text("oi"), &info).unwrap().message;
        with_phone_number(&mut unknown, |_| None);
        assert_eq!(unknown.chat, ours(CONTACT_LID));
        assert_eq!(unknown.sender, ours(CONTACT_LID));
    }

    #[test]
    fn a_lid_group_member_gets_the_number_and_our_own_messages_keep_their_sender() {
        let info = in_group("3A5B9C2D1E0F4A6B8C7F", CONTACT_LID, None);
        let mut message = map_message(&text("bom dia"), &info).unwrap().message;
        with_phone_number(&mut message, known_number);
        assert_eq!(message.chat, ours(GROUP));
        assert_eq!(message.sender, ours(CONTACT));
        assert_eq!(message.sender_lid, Some(ours(CONTACT_LID)));

        let mut mine = message.clone();
        mine.from_me = true;
        mine.sender = ours(OWN);
        mine.sender_lid = None;
        with_phone_number(&mut mine, |_| panic!("our own sender needs no lookup"));
        assert_eq!(mine.sender, ours(OWN));
    }
}
