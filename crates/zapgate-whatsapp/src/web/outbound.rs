//! The protos zapgate sends through WhatsApp Web, built from its own types.
//! Pure: the provider uploads media and makes the client calls.

use whatsapp_rust::{
    Jid as WaJid,
    buffa::MessageField,
    download::MediaType,
    proto_helpers::{MessageBuilderExt, MessageExt},
    upload::UploadResponse,
    wacore_binary::JidExt,
    waproto::whatsapp as wa,
};
use zapgate_core::{
    Error, Result,
    jid::Jid,
    whatsapp::{LinkPreview, Media, MediaKind, MediaRef, SendContext},
};

/// The crate's jid for one of ours, without a device: messages go to
/// people and groups, the crate fans them out to devices.
pub(crate) fn wa_jid(jid: &Jid) -> Result<WaJid> {
    let invalid = || Error::bad_request(format!("Invalid WhatsApp id: {jid}"));
    if jid.user.is_empty() {
        return Err(invalid());
    }
    jid.to_string()
        .parse::<WaJid>()
        .map(WaJid::into_non_ad)
        .map_err(|_| invalid())
}

/// The message a reply quotes. zapgate's outgoing messages carry only the
/// quoted id, so the provider fills in what else it knows.
pub(crate) struct Quote {
    pub id: String,
    /// The chat replied in, which is the quoted message's chat.
    pub chat: WaJid,
    /// The quoted message's author; `None` in a 1:1 chat means the contact.
    pub participant: Option<WaJid>,
    /// The quoted message itself. WhatsApp links a reply to its quote by
    /// `stanza_id` and `participant`, but phones draw the quoted bubble from
    /// this copy: without it the reply arrives, its quote preview may not.
    pub message: Option<wa::Message>,
}

/// A text message: plain `conversation`, or an extended text when it
/// quotes, as WhatsApp Web sends them.
pub(crate) fn text(text: &str, quote: Option<&Quote>) -> wa::Message {
    match quote {
        Some(quote) => wa::Message::text_with_context(text, context(quote)),
        None => wa::Message::text(text),
    }
}

/// `message` (a text) with the preview card of a link in it: the fields
/// live on the extended text, so a plain `conversation` becomes one. The
/// preview type stays `NONE`, the card of an ordinary link, as WhatsApp
/// Web and Baileys send it (`IMAGE`/`VIDEO` are for media the card plays).
pub(crate) fn with_preview(mut message: wa::Message, preview: Option<&LinkPreview>) -> wa::Message {
    let Some(preview) = preview else {
        return message;
    };
    if let Some(text) = message.conversation.take() {
        message.extended_text_message = MessageField::some(wa::message::ExtendedTextMessage {
            text: Some(text),
            ..Default::default()
        });
    }
    if let Some(ext) = message.extended_text_message.as_option_mut() {
        ext.matched_text = Some(preview.url.clone());
        ext.title = preview.title.clone();
        ext.description = preview.description.clone();
        ext.preview_type = Some(wa::message::extended_text_message::PreviewType::NONE);
        if let Some(thumbnail) = &preview.thumbnail {
            ext.jpeg_thumbnail = Some(thumbnail.jpeg.to_vec());
            ext.thumbnail_width = Some(thumbnail.width);
            ext.thumbnail_height = Some(thumbnail.height);
        }
    }
    message
}

/// What an upload gave back, as the media protos need it. The crate's
/// `UploadResponse` is `non_exhaustive`, so nothing outside it (tests
/// included) can build one; the builders take this copy instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: Vec<u8>,
    pub file_enc_sha256: Vec<u8>,
    pub file_sha256: Vec<u8>,
    pub file_length: u64,
    pub media_key_timestamp: i64,
    /// Seek table for audio and video streaming.
    pub streaming_sidecar: Option<Vec<u8>>,
}

impl From<UploadResponse> for Uploaded {
    fn from(upload: UploadResponse) -> Self {
        Self {
            url: upload.url,
            direct_path: upload.direct_path,
            media_key: upload.media_key.to_vec(),
            file_enc_sha256: upload.file_enc_sha256.to_vec(),
            file_sha256: upload.file_sha256.to_vec(),
            file_length: upload.file_length,
            media_key_timestamp: upload.media_key_timestamp,
            streaming_sidecar: upload.streaming_sidecar,
        }
    }
}

/// What the message store keeps of an upload, to download it again.
pub(crate) fn uploaded_ref(media: &Media, upload: &Uploaded) -> MediaRef {
    MediaRef {
        direct_path: Some(upload.direct_path.clone()),
        media_key: upload.media_key.clone(),
        file_sha256: upload.file_sha256.clone(),
        file_enc_sha256: upload.file_enc_sha256.clone(),
        file_length: Some(upload.file_length),
        ..MediaRef::described(media.kind, media.mimetype.clone(), media.file_name.clone())
    }
}

/// The media message for bytes already uploaded as [`media_type`] of
/// `media.kind`. Audio and stickers have no caption on WhatsApp; theirs is
/// dropped.
pub(crate) fn media(
    media: &Media,
    upload: Uploaded,
    caption: Option<&str>,
    quote: Option<&Quote>,
) -> wa::Message {
    let caption = caption.filter(|c| !c.is_empty()).map(str::to_owned);
    let context_info = MessageField::from(quote.map(context));
    let mimetype = Some(media.mimetype.clone());
    let url = Some(upload.url);
    let direct_path = Some(upload.direct_path);
    let media_key = Some(upload.media_key);
    let file_enc_sha256 = Some(upload.file_enc_sha256);
    let file_sha256 = Some(upload.file_sha256);
    let file_length = Some(upload.file_length);
    let media_key_timestamp = Some(upload.media_key_timestamp);
    let streaming_sidecar = upload.streaming_sidecar;
    match media.kind {
        MediaKind::Image => wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                url,
                direct_path,
                media_key,
                file_enc_sha256,
                file_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                caption,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Video => wa::Message {
            video_message: MessageField::some(wa::message::VideoMessage {
                url,
                direct_path,
                media_key,
                file_enc_sha256,
                file_sha256,
                file_length,
                media_key_timestamp,
                streaming_sidecar,
                mimetype,
                caption,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Audio => wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                url,
                direct_path,
                media_key,
                file_enc_sha256,
                file_sha256,
                file_length,
                media_key_timestamp,
                streaming_sidecar,
                // Ogg (Opus) is what phones record voice notes in; sent as
                // one it plays inline instead of arriving as a file.
                ptt: Some(media.mimetype.starts_with("audio/ogg")),
                mimetype,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Document => wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                url,
                direct_path,
                media_key,
                file_enc_sha256,
                file_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                // Phones show the title as the document's name.
                title: media.file_name.clone(),
                file_name: media.file_name.clone(),
                caption,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                url,
                direct_path,
                media_key,
                file_enc_sha256,
                file_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// How `Client::upload` must encrypt media of this kind (stickers are
/// images to the key derivation, but have their own upload path).
pub(crate) fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// The key of the message a reaction is for. `participant` (the target's
/// author) only counts in groups; 1:1 keys never carry one, as in
/// WhatsApp Web.
pub(crate) fn reaction_key(
    chat: &WaJid,
    target_id: &str,
    from_me: bool,
    participant: Option<&WaJid>,
) -> wa::MessageKey {
    wa::MessageKey {
        remote_jid: Some(chat.to_non_ad_string()),
        from_me: Some(from_me),
        id: Some(target_id.to_owned()),
        participant: participant
            .filter(|_| chat.is_group())
            .map(WaJid::to_non_ad_string),
    }
}

/// The context that makes a message a reply. `remote_jid` stays unset: it
/// is only for quoting a message of another chat.
pub(crate) fn context(quote: &Quote) -> wa::ContextInfo {
    let participant = quote
        .participant
        .as_ref()
        .or((!quote.chat.is_group()).then_some(&quote.chat));
    wa::ContextInfo {
        stanza_id: Some(quote.id.clone()),
        participant: participant.map(WaJid::to_non_ad_string),
        quoted_message: quote
            .message
            .as_ref()
            .map(|m| MessageField::from_box(m.prepare_for_quote()))
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// The context of a message's content, whichever kind it is (`None` for a
/// plain `conversation` text, which has none).
pub(crate) fn context_slot(
    message: &mut wa::Message,
) -> Option<&mut MessageField<wa::ContextInfo>> {
    if let Some(m) = message.extended_text_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.image_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.video_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.audio_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.document_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.sticker_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.location_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.contact_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.contacts_array_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.poll_creation_message.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.poll_creation_message_v3.as_option_mut() {
        Some(&mut m.context_info)
    } else if let Some(m) = message.event_message.as_option_mut() {
        Some(&mut m.context_info)
    } else {
        None
    }
}

/// `message` with `context`'s @-mentions (`mentionedJid`) and, for a
/// private reply, the quoted message's group (`remoteJid`), as WhatsApp Web
/// sends them. A plain text becomes an extended text, the text that
/// carries a context.
pub(crate) fn with_context(mut message: wa::Message, context: &SendContext) -> Result<wa::Message> {
    if context.mentions.is_empty() && context.quoted_chat.is_none() {
        return Ok(message);
    }
    if let Some(text) = message.conversation.take() {
        message = wa::Message::text_with_context(text, wa::ContextInfo::default());
    }
    let mentions = context
        .mentions
        .iter()
        .map(|jid| wa_jid(jid).map(|jid| jid.to_non_ad_string()))
        .collect::<Result<Vec<_>>>()?;
    let remote_jid = context
        .quoted_chat
        .as_ref()
        .map(|group| wa_jid(group).map(|jid| jid.to_non_ad_string()))
        .transpose()?;
    let slot = context_slot(&mut message).ok_or_else(|| {
        Error::internal(zapgate_core::error::Cause(
            "a message kind without a context".into(),
        ))
    })?;
    let info = slot.get_or_insert_default();
    info.mentioned_jid = mentions;
    if remote_jid.is_some() {
        info.remote_jid = remote_jid;
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACT: &str = "5511988887777@s.whatsapp.net";
    const MEMBER: &str = "5521998765432@s.whatsapp.net";
    const GROUP: &str = "120363041234567890@g.us";

    fn wa(jid: &str) -> WaJid {
        jid.parse().unwrap()
    }

    /// What the media servers answer for an upload, as the crate reports it.
    fn uploaded() -> Uploaded {
        Uploaded {
            url: "https://mmg.whatsapp.net/v/t62.7118-24/29384756_n.enc?ccb=11-4&oh=01_Q5AaIP&oe=6767C5D6&_nc_sid=5e03e0&mms3=true".to_owned(),
            direct_path: "/v/t62.7118-24/29384756_n.enc?ccb=11-4&oh=01_Q5AaIP&oe=6767C5D6&_nc_sid=5e03e0".to_owned(),
            media_key: vec![0x3c; 32],
            file_enc_sha256: vec![0x9d; 32],
            file_sha256: vec![0xe2; 32],
            file_length: 48_213,
            media_key_timestamp: 1_732_260_000,
            streaming_sidecar: Some(vec![0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13]),
        }
    }

    fn file(kind: MediaKind, mimetype: &str, file_name: Option<&str>) -> Media {
        Media {
            kind,
            mimetype: mimetype.to_owned(),
            file_name: file_name.map(str::to_owned),
            data: b"bytes that were uploaded".to_vec().into(),
        }
    }

    fn quote_in_dm() -> Quote {
        Quote {
            id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
            chat: wa(CONTACT),
            participant: None,
            message: None,
        }
    }

    #[test]
    fn an_upload_is_stored_as_its_path_keys_and_hashes() {
        let media = file(MediaKind::Document, "application/pdf", Some("nota.pdf"));
        let stored = uploaded_ref(&media, &uploaded());
        assert_eq!(stored.direct_path, Some(uploaded().direct_path));
        assert_eq!(stored.media_key, vec![0x3c; 32]);
        assert_eq!(stored.file_enc_sha256, vec![0x9d; 32]);
        assert_eq!(stored.file_sha256, vec![0xe2; 32]);
        assert_eq!(stored.file_length, Some(48_213));
        assert_eq!(stored.file_name.as_deref(), Some("nota.pdf"));
        assert!(stored.downloadable());
    }

    #[test]
    fn our_jids_become_the_crates_without_a_device() {
        let jid = wa_jid(&Jid::parse(CONTACT).unwrap()).unwrap();
        assert_eq!(jid.to_string(), CONTACT);
        assert!(jid.is_pn());
        assert!(wa_jid(&Jid::parse(GROUP).unwrap()).unwrap().is_group());
        assert!(
            wa_jid(&Jid::parse("203571934891234@lid").unwrap())
                .unwrap()
                .is_lid()
        );
        let device = Jid::parse("5511988887777:12@s.whatsapp.net").unwrap();
        assert_eq!(wa_jid(&device).unwrap().to_string(), CONTACT);
    }

    #[test]
    fn garbage_jids_are_bad_requests() {
        for (user, server) in [("", "s.whatsapp.net"), ("5511988887777", "example.com")] {
            let jid = Jid {
                user: user.to_owned(),
                server: server.to_owned(),
            };
            assert!(
                matches!(wa_jid(&jid), Err(Error::BadRequest(_))),
                "{user}@{server}"
            );
        }
    }

    #[test]
    fn a_text_is_a_plain_conversation() {
        let message = text("Seu pedido foi enviado ✅", None);
        assert_eq!(
            message.conversation.as_deref(),
            Some("Seu pedido foi enviado ✅")
        );
        assert!(message.extended_text_message.is_unset());
    }

    #[test]
    fn a_reply_in_a_dm_quotes_the_contacts_message_by_id() {
        let message = text("Pode sim!", Some(&quote_in_dm()));
        assert_eq!(message.conversation, None);
        let ext = message.extended_text_message.as_option().unwrap();
        assert_eq!(ext.text.as_deref(), Some("Pode sim!"));
        let context = ext.context_info.as_option().unwrap();
        assert_eq!(context.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert_eq!(context.participant.as_deref(), Some(CONTACT));
        assert_eq!(context.remote_jid, None);
        assert!(context.quoted_message.is_unset());
    }

    #[test]
    fn a_reply_in_a_group_quotes_its_author_and_the_message_when_known() {
        let original = wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some("Alguém tem o link?".to_owned()),
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0C431C26A1916F4A7".to_owned()),
                    mentioned_jid: vec![CONTACT.to_owned()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let quote = Quote {
            id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
            chat: wa(GROUP),
            participant: Some(wa("5521998765432:7@s.whatsapp.net")),
            message: Some(original),
        };
        let message = text("Segue: https://example.com", Some(&quote));
        let ext = message.extended_text_message.as_option().unwrap();
        let context = ext.context_info.as_option().unwrap();
        assert_eq!(context.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert_eq!(context.participant.as_deref(), Some(MEMBER));
        let quoted = context.quoted_message.as_option().unwrap();
        let quoted = quoted.extended_text_message.as_option().unwrap();
        assert_eq!(quoted.text.as_deref(), Some("Alguém tem o link?"));
        // The quoted copy must not mention people again or nest quotes.
        let nested = quoted.context_info.as_option().unwrap();
        assert!(nested.mentioned_jid.is_empty());
        assert_eq!(nested.stanza_id, None);

        let unknown_author = Quote {
            participant: None,
            message: None,
            ..quote
        };
        let message = text("?", Some(&unknown_author));
        let context = message.extended_text_message.as_option().unwrap();
        assert_eq!(context.context_info.as_option().unwrap().participant, None);
    }

    fn mentioning(jids: &[&str]) -> SendContext {
        SendContext {
            mentions: jids.iter().map(|j| Jid::parse(j).unwrap()).collect(),
            quoted_chat: None,
        }
    }

    #[test]
    fn a_text_with_mentions_goes_as_an_extended_text_naming_them() {
        let plain = text("@5521998765432 @203571934891234 bom dia", None);
        assert!(plain.conversation.is_some());
        let context = mentioning(&[MEMBER, "203571934891234@lid"]);
        let message = with_context(plain, &context).unwrap();
        assert_eq!(message.conversation, None);
        let ext = message.extended_text_message.as_option().unwrap();
        assert_eq!(
            ext.text.as_deref(),
            Some("@5521998765432 @203571934891234 bom dia")
        );
        let info = ext.context_info.as_option().unwrap();
        assert_eq!(info.mentioned_jid, [MEMBER, "203571934891234@lid"]);
        assert_eq!(info.stanza_id, None);
        assert_eq!(info.remote_jid, None);

        // Nothing to add: the message is left as built.
        let untouched = with_context(text("oi", None), &SendContext::default()).unwrap();
        assert_eq!(untouched.conversation.as_deref(), Some("oi"));
    }

    fn preview() -> LinkPreview {
        LinkPreview {
            url: "https://loja.example.com/p/42".to_owned(),
            title: Some("Tênis de corrida".to_owned()),
            description: Some("Frete grátis para todo o Brasil".to_owned()),
            thumbnail: Some(zapgate_core::whatsapp::Thumbnail {
                jpeg: vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10].into(),
                width: 192,
                height: 101,
            }),
        }
    }

    #[test]
    fn a_link_preview_goes_as_an_extended_text_card() {
        use wa::message::extended_text_message::PreviewType;
        use whatsapp_rust::buffa::Message as _;

        let message = with_preview(
            text("Olha só: https://loja.example.com/p/42", None),
            Some(&preview()),
        );
        // As the phone receives it: encoded, then decoded.
        let message = wa::Message::decode_from_slice(&message.encode_to_vec()).unwrap();
        assert_eq!(message.conversation, None);
        let ext = message.extended_text_message.as_option().unwrap();
        assert_eq!(
            ext.text.as_deref(),
            Some("Olha só: https://loja.example.com/p/42")
        );
        assert_eq!(
            ext.matched_text.as_deref(),
            Some("https://loja.example.com/p/42")
        );
        assert_eq!(ext.title.as_deref(), Some("Tênis de corrida"));
        assert_eq!(
            ext.description.as_deref(),
            Some("Frete grátis para todo o Brasil")
        );
        assert_eq!(ext.preview_type, Some(PreviewType::NONE));
        assert_eq!(
            ext.jpeg_thumbnail.as_deref(),
            Some(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..])
        );
        assert_eq!(
            (ext.thumbnail_width, ext.thumbnail_height),
            (Some(192), Some(101))
        );
        assert!(ext.context_info.is_unset());

        // A reply with mentions keeps its quote, mentions and card.
        let no_image = LinkPreview {
            thumbnail: None,
            ..preview()
        };
        let message = with_context(
            with_preview(
                text(
                    "@5521998765432 https://loja.example.com/p/42",
                    Some(&quote_in_dm()),
                ),
                Some(&no_image),
            ),
            &mentioning(&[MEMBER]),
        )
        .unwrap();
        let ext = message.extended_text_message.as_option().unwrap();
        assert_eq!(ext.title.as_deref(), Some("Tênis de corrida"));
        assert_eq!(ext.jpeg_thumbnail, None);
        assert_eq!(ext.thumbnail_width, None);
        let info = ext.context_info.as_option().unwrap();
        assert_eq!(info.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert_eq!(info.mentioned_jid, [MEMBER]);

        // No preview: the text is left as built.
        let plain = with_preview(text("oi", None), None);
        assert_eq!(plain.conversation.as_deref(), Some("oi"));
        assert!(plain.extended_text_message.is_unset());
    }

    #[test]
    fn mentions_keep_the_quote_and_reach_media_captions() {
        let quote = Quote {
            id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
            chat: wa(GROUP),
            participant: Some(wa(MEMBER)),
            message: None,
        };
        let message = with_context(
            text("@5521998765432 ok", Some(&quote)),
            &mentioning(&[MEMBER]),
        )
        .unwrap();
        let info = message
            .extended_text_message
            .as_option()
            .unwrap()
            .context_info
            .as_option()
            .unwrap();
        assert_eq!(info.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert_eq!(info.participant.as_deref(), Some(MEMBER));
        assert_eq!(info.mentioned_jid, [MEMBER]);

        let media = file(MediaKind::Image, "image/png", None);
        let image = with_context(
            media_message(&media, Some("@5521998765432"), None),
            &mentioning(&[MEMBER]),
        )
        .unwrap();
        let info = image
            .image_message
            .as_option()
            .unwrap()
            .context_info
            .as_option()
            .unwrap();
        assert_eq!(info.mentioned_jid, [MEMBER]);
    }

    #[test]
    fn a_private_reply_goes_to_the_author_quoting_the_group_message() {
        // What `replyPrivate` sends: to the author's chat, quoting their
        // message by id, with the group as `remoteJid` (as phones do).
        let quote = Quote {
            id: "3EB0C431C26A1916F4A7".to_owned(),
            chat: wa(MEMBER),
            participant: None,
            message: None,
        };
        let context = SendContext {
            mentions: Vec::new(),
            quoted_chat: Some(Jid::parse(GROUP).unwrap()),
        };
        let message = with_context(text("Te respondo aqui", Some(&quote)), &context).unwrap();
        let info = message
            .extended_text_message
            .as_option()
            .unwrap()
            .context_info
            .as_option()
            .unwrap();
        assert_eq!(info.stanza_id.as_deref(), Some("3EB0C431C26A1916F4A7"));
        assert_eq!(info.participant.as_deref(), Some(MEMBER));
        assert_eq!(info.remote_jid.as_deref(), Some(GROUP));
        assert!(info.mentioned_jid.is_empty());
    }

    #[test]
    fn an_image_carries_the_upload_and_its_caption() {
        let media = file(MediaKind::Image, "image/png", Some("recibo.png"));
        let message = media_message(&media, Some("Recibo"), Some(&quote_in_dm()));
        let image = message.image_message.as_option().unwrap();
        let up = uploaded();
        assert_eq!(image.url.as_deref(), Some(up.url.as_str()));
        assert_eq!(image.direct_path.as_deref(), Some(up.direct_path.as_str()));
        assert_eq!(image.media_key.as_deref(), Some(&[0x3c; 32][..]));
        assert_eq!(image.file_enc_sha256.as_deref(), Some(&[0x9d; 32][..]));
        assert_eq!(image.file_sha256.as_deref(), Some(&[0xe2; 32][..]));
        assert_eq!(image.file_length, Some(48_213));
        assert_eq!(image.media_key_timestamp, Some(1_732_260_000));
        assert_eq!(image.mimetype.as_deref(), Some("image/png"));
        assert_eq!(image.caption.as_deref(), Some("Recibo"));
        let context = image.context_info.as_option().unwrap();
        assert_eq!(context.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
    }

    fn media_message(media: &Media, caption: Option<&str>, quote: Option<&Quote>) -> wa::Message {
        super::media(media, uploaded(), caption, quote)
    }

    #[test]
    fn a_video_carries_the_upload_and_its_streaming_sidecar() {
        let media = file(MediaKind::Video, "video/mp4", None);
        let message = media_message(&media, Some(""), None);
        let video = message.video_message.as_option().unwrap();
        assert_eq!(
            video.direct_path.as_deref(),
            Some(uploaded().direct_path.as_str())
        );
        assert_eq!(video.media_key.as_deref(), Some(&[0x3c; 32][..]));
        assert_eq!(video.file_sha256.as_deref(), Some(&[0xe2; 32][..]));
        assert_eq!(video.file_length, Some(48_213));
        assert_eq!(video.mimetype.as_deref(), Some("video/mp4"));
        assert_eq!(video.streaming_sidecar, uploaded().streaming_sidecar);
        assert_eq!(video.caption, None);
        assert!(video.context_info.is_unset());
    }

    #[test]
    fn ogg_audio_goes_as_a_voice_note_and_other_audio_as_a_file() {
        let voice = file(MediaKind::Audio, "audio/ogg; codecs=opus", None);
        let message = media_message(&voice, Some("ignored"), None);
        let audio = message.audio_message.as_option().unwrap();
        assert_eq!(audio.ptt, Some(true));
        assert_eq!(audio.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(audio.url.as_deref(), Some(uploaded().url.as_str()));
        assert_eq!(audio.file_enc_sha256.as_deref(), Some(&[0x9d; 32][..]));
        assert_eq!(audio.file_length, Some(48_213));
        assert_eq!(audio.streaming_sidecar, uploaded().streaming_sidecar);

        let song = file(MediaKind::Audio, "audio/mpeg", Some("jingle.mp3"));
        let message = media_message(&song, None, None);
        let audio = message.audio_message.as_option().unwrap();
        assert_eq!(audio.ptt, Some(false));
        assert_eq!(audio.mimetype.as_deref(), Some("audio/mpeg"));
    }

    #[test]
    fn a_document_is_named_and_captioned() {
        let pdf = file(
            MediaKind::Document,
            "application/pdf",
            Some("boleto-novembro.pdf"),
        );
        let message = media_message(&pdf, Some("Segue o boleto"), None);
        let doc = message.document_message.as_option().unwrap();
        assert_eq!(doc.file_name.as_deref(), Some("boleto-novembro.pdf"));
        assert_eq!(doc.title.as_deref(), Some("boleto-novembro.pdf"));
        assert_eq!(doc.caption.as_deref(), Some("Segue o boleto"));
        assert_eq!(doc.mimetype.as_deref(), Some("application/pdf"));
        assert_eq!(
            doc.direct_path.as_deref(),
            Some(uploaded().direct_path.as_str())
        );
        assert_eq!(doc.media_key.as_deref(), Some(&[0x3c; 32][..]));
        assert_eq!(doc.file_length, Some(48_213));
    }

    #[test]
    fn a_sticker_carries_the_upload() {
        let webp = file(MediaKind::Sticker, "image/webp", None);
        let message = media_message(&webp, Some("ignored"), Some(&quote_in_dm()));
        let sticker = message.sticker_message.as_option().unwrap();
        assert_eq!(sticker.mimetype.as_deref(), Some("image/webp"));
        assert_eq!(sticker.url.as_deref(), Some(uploaded().url.as_str()));
        assert_eq!(sticker.file_sha256.as_deref(), Some(&[0xe2; 32][..]));
        assert_eq!(sticker.media_key_timestamp, Some(1_732_260_000));
        assert!(sticker.context_info.is_set());
        assert!(message.image_message.is_unset());
    }

    #[test]
    fn each_kind_uploads_as_its_media_type() {
        assert_eq!(media_type(MediaKind::Image), MediaType::Image);
        assert_eq!(media_type(MediaKind::Video), MediaType::Video);
        assert_eq!(media_type(MediaKind::Audio), MediaType::Audio);
        assert_eq!(media_type(MediaKind::Document), MediaType::Document);
        assert_eq!(media_type(MediaKind::Sticker), MediaType::Sticker);
    }

    #[test]
    fn a_reaction_key_names_the_target_and_its_group_author() {
        let key = reaction_key(
            &wa(CONTACT),
            "3A5B9C2D1E0F4A6B8C7D",
            false,
            Some(&wa(CONTACT)),
        );
        assert_eq!(key.remote_jid.as_deref(), Some(CONTACT));
        assert_eq!(key.id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert_eq!(key.from_me, Some(false));
        assert_eq!(key.participant, None);

        let author = wa("5521998765432:7@s.whatsapp.net");
        let key = reaction_key(&wa(GROUP), "3EB0C431C26A1916F4A7", true, Some(&author));
        assert_eq!(key.remote_jid.as_deref(), Some(GROUP));
        assert_eq!(key.from_me, Some(true));
        assert_eq!(key.participant.as_deref(), Some(MEMBER));
    }
}
