//! Operations on stored messages through WhatsApp Web: media downloaded
//! again by its stored keys (`Client::download` of [`DownloadParams`]),
//! forwards that reuse the stored media (no second upload), and deletes
//! for the account's own devices (an app-state mutation).

use async_trait::async_trait;
use whatsapp_rust::{
    buffa::MessageField,
    download::{DownloadParams, Downloadable},
    proto_helpers::MessageBuilderExt,
    wacore_binary::JidExt,
    waproto::whatsapp as wa,
};
use zapgate_core::{
    Error, Result,
    jid::Jid,
    message_ops::MessageOps,
    message_store::StoredMessage,
    time::now_secs,
    whatsapp::{Media, MediaRef, SentMessage},
};

use super::{
    WebProvider,
    outbound::{self, Uploaded},
    send::send_with_id,
    session::WaBuffer,
};

/// The download parameters of stored media; `None` when it cannot be
/// fetched again (no path or key was stored).
pub(crate) fn download_params(media: &MediaRef) -> Option<DownloadParams> {
    let path = media.direct_path.as_deref()?;
    if media.media_key.is_empty() || media.file_sha256.is_empty() {
        return None;
    }
    Some(DownloadParams::encrypted(
        path,
        &media.media_key,
        &media.file_sha256,
        &media.file_enc_sha256,
        media.file_length.unwrap_or_default(),
        outbound::media_type(media.kind),
    ))
}

/// The media proto of stored media, as uploaded before.
fn stored_media(media: &MediaRef, caption: Option<&str>) -> Result<wa::Message> {
    let path = media
        .direct_path
        .clone()
        .filter(|_| media.downloadable())
        .ok_or_else(|| Error::bad_request("the message's media can no longer be forwarded"))?;
    let uploaded = Uploaded {
        url: format!("https://mmg.whatsapp.net{path}"),
        direct_path: path,
        media_key: media.media_key.clone(),
        file_enc_sha256: media.file_enc_sha256.clone(),
        file_sha256: media.file_sha256.clone(),
        file_length: media.file_length.unwrap_or_default(),
        media_key_timestamp: now_secs(),
        streaming_sidecar: None,
    };
    let described = Media {
        kind: media.kind,
        mimetype: media.mimetype.clone(),
        file_name: media.file_name.clone(),
        data: Default::default(),
    };
    Ok(outbound::media(&described, uploaded, caption, None))
}

/// `message` as a forward: its text or its media (by the stored keys), with
/// the context that shows "Forwarded" on phones. Other kinds are refused.
pub(crate) fn forwarded(message: &StoredMessage) -> Result<wa::Message> {
    message.check_forwardable()?;
    let context = wa::ContextInfo {
        is_forwarded: Some(true),
        forwarding_score: Some(1),
        ..Default::default()
    };
    let mut proto = match (&message.media, &message.text) {
        (Some(media), caption) => stored_media(media, caption.as_deref())?,
        (None, text) => {
            let text = text.as_deref().unwrap_or_default();
            return Ok(wa::Message::text_with_context(text, context));
        }
    };
    let slot = outbound::context_slot(&mut proto).ok_or_else(|| {
        Error::internal(zapgate_core::error::Cause(
            "a media proto without media".into(),
        ))
    })?;
    *slot = MessageField::some(context);
    Ok(proto)
}

#[async_trait]
impl MessageOps for WebProvider {
    async fn download_media(&self, instance_id: &str, media: &MediaRef) -> Result<Vec<u8>> {
        let client = self.client(instance_id)?;
        let params = download_params(media)
            .ok_or_else(|| Error::not_found("Message not found or no media available"))?;
        let downloads = &self.inner.downloads;
        downloads
            .fetch(params.file_length(), |buffer| async {
                let done = client.download_to_writer(&params, WaBuffer(buffer)).await;
                done.map(|w| w.0).map_err(|e| e.to_string())
            })
            .await
            .map_err(|skipped| skipped.into_error(downloads.limit()))
    }

    async fn forward(
        &self,
        instance_id: &str,
        to: &Jid,
        message: &StoredMessage,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        let proto = forwarded(message)?;
        let client = self.client(instance_id)?;
        let id = send_with_id(&client, outbound::wa_jid(to)?, proto, id).await?;
        Ok(SentMessage {
            id,
            timestamp: now_secs(),
            media: message.media.clone(),
        })
    }

    async fn delete_for_me(&self, instance_id: &str, message: &StoredMessage) -> Result<()> {
        let client = self.client(instance_id)?;
        let chat = outbound::wa_jid(&Jid::parse(&message.chat)?)?;
        // Only a group message of someone else names its author.
        let participant = (chat.is_group() && !message.from_me)
            .then(|| Jid::parse(&message.sender).and_then(|s| outbound::wa_jid(&s)))
            .transpose()?;
        client
            .chat_actions()
            .delete_message_for_me(
                &chat,
                participant.as_ref(),
                &message.id,
                message.from_me,
                false,
                Some(message.timestamp),
            )
            .await
            .map_err(|err| Error::Unavailable(format!("WhatsApp delete failed: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use zapgate_core::{message_store::MessageStatus, whatsapp::MediaKind};

    use super::*;

    /// Stored from a real inbound image (the fields `inbound` maps).
    fn photo() -> MediaRef {
        MediaRef {
            kind: MediaKind::Image,
            mimetype: "image/jpeg".into(),
            file_name: None,
            direct_path: Some("/o1/v/t62.7118-24/f1/m232/up-oil-image-1234.enc?ccb=9-4&oh=01_Q5AaIMx&oe=6767B3C4&_nc_sid=e6ed6c".into()),
            media_key: vec![0x42; 32],
            file_sha256: vec![0x21; 32],
            file_enc_sha256: vec![0x43; 32],
            file_length: Some(183_274),
        }
    }

    fn stored(text: Option<&str>, media: Option<MediaRef>) -> StoredMessage {
        StoredMessage {
            instance_id: "ins_1".into(),
            id: "3A5B9C2D1E0F4A6B8C7D".into(),
            chat: "5511988887777@s.whatsapp.net".into(),
            sender: "5511988887777@s.whatsapp.net".into(),
            from_me: false,
            kind: media.as_ref().map_or("text", |m| m.kind.as_str()).into(),
            text: text.map(str::to_owned),
            media,
            extra: None,
            quoted_id: None,
            source: None,
            status: MessageStatus::Delivered,
            timestamp: 1_732_260_000,
            edited_at_ms: None,
            revoked_at_ms: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn stored_keys_are_the_download_parameters() {
        let params = download_params(&photo()).unwrap();
        assert_eq!(params.direct_path(), photo().direct_path.as_deref());
        assert_eq!(params.media_key(), Some(&[0x42; 32][..]));
        assert_eq!(params.file_sha256(), Some(&[0x21; 32][..]));
        assert_eq!(params.file_enc_sha256(), Some(&[0x43; 32][..]));
        assert_eq!(params.file_length(), Some(183_274));
        assert_eq!(params.app_info(), whatsapp_rust::download::MediaType::Image);
        let described = MediaRef::described(MediaKind::Image, "image/jpeg".into(), None);
        assert!(download_params(&described).is_none());
    }

    #[test]
    fn a_forwarded_image_reuses_its_upload_and_says_forwarded() {
        let proto = forwarded(&stored(Some("look"), Some(photo()))).unwrap();
        let image = proto.image_message.as_option().unwrap();
        assert_eq!(image.direct_path, photo().direct_path);
        assert_eq!(image.media_key.as_deref(), Some(&[0x42; 32][..]));
        assert_eq!(image.file_enc_sha256.as_deref(), Some(&[0x43; 32][..]));
        assert_eq!(image.file_length, Some(183_274));
        assert_eq!(image.caption.as_deref(), Some("look"));
        let context = image.context_info.as_option().unwrap();
        assert_eq!(context.is_forwarded, Some(true));
        assert_eq!(context.forwarding_score, Some(1));
    }

    #[test]
    fn a_forwarded_text_is_an_extended_text_with_the_forward_mark() {
        let proto = forwarded(&stored(Some("Olá"), None)).unwrap();
        let text = proto.extended_text_message.as_option().unwrap();
        assert_eq!(text.text.as_deref(), Some("Olá"));
        assert_eq!(
            text.context_info.as_option().unwrap().is_forwarded,
            Some(true)
        );
    }

    #[test]
    fn deleted_messages_and_other_kinds_are_not_forwarded() {
        let mut gone = stored(Some("x"), None);
        gone.revoked_at_ms = Some(1);
        assert!(forwarded(&gone).is_err());
        let mut pin = stored(None, None);
        pin.kind = "location".into();
        pin.extra = Some(zapgate_core::whatsapp::Extra::Location {
            latitude: 1.0,
            longitude: 2.0,
            name: None,
        });
        let err = forwarded(&pin).unwrap_err();
        assert!(
            err.public_message()
                .contains("location messages cannot be forwarded")
        );
    }
}
