//! Sending through a live session: media is uploaded first, then the message
//! goes out under the id the caller chose, so a retry after a crash is the
//! same message to WhatsApp, not a second one.

use whatsapp_rust::{
    Client,
    features::{ChatStateType, StatusSendOptions},
    send::{RevokeType, SendError, SendOptions},
    upload::UploadOptions,
    waproto::whatsapp as wa,
};
use zapgate_core::{
    Error, Result,
    whatsapp::{ChatPresence, Media, MediaRef, Outgoing, StatusPost},
};

use super::{
    kinds,
    outbound::{self, Quote},
    polls,
    session::Session,
};

/// Sends `message`, returning the WhatsApp id it went out under, and where
/// its media was uploaded.
pub(super) async fn send(
    session: &Session,
    message: Outgoing,
    id: Option<&str>,
) -> Result<(String, Option<MediaRef>)> {
    let client = session.client();
    let quote = |chat: &whatsapp_rust::Jid, quoted_id: Option<String>| {
        quoted_id.map(|id| Quote {
            id,
            chat: chat.clone(),
            participant: None,
            message: None,
        })
    };
    let id = match message {
        Outgoing::Text {
            to,
            text,
            quoted_id,
            context,
            preview,
        } => {
            let to = outbound::wa_jid(&to)?;
            let quote = quote(&to, quoted_id);
            let message = outbound::text(&text, quote.as_ref());
            let message = outbound::with_preview(message, preview.as_deref());
            let message = outbound::with_context(message, &context)?;
            send_with_id(client, to, message, id).await
        }
        Outgoing::Media {
            to,
            media,
            caption,
            quoted_id,
            context,
        } => {
            let to = outbound::wa_jid(&to)?;
            let upload = upload(client, &media).await?;
            let quote = quote(&to, quoted_id);
            let stored = outbound::uploaded_ref(&media, &upload);
            let message = outbound::with_context(
                outbound::media(&media, upload, caption.as_deref(), quote.as_ref()),
                &context,
            )?;
            return send_with_id(client, to, message, id)
                .await
                .map(|id| (id, Some(stored)));
        }
        Outgoing::Reaction {
            to,
            target_id,
            emoji,
            from_me,
            participant,
        } => {
            let to = outbound::wa_jid(&to)?;
            let participant = participant.as_ref().map(outbound::wa_jid).transpose()?;
            let key = outbound::reaction_key(&to, &target_id, from_me, participant.as_ref());
            let sent = client
                .send_reaction(to, key, &emoji)
                .await
                .map_err(send_failed)?;
            Ok(sent.message_id)
        }
        Outgoing::Edit {
            to,
            target_id,
            text,
        } => {
            let to = outbound::wa_jid(&to)?;
            client
                .edit_message(to, target_id, outbound::text(&text, None))
                .await
                .map_err(send_failed)
        }
        Outgoing::Revoke { to, target_id } => {
            let to = outbound::wa_jid(&to)?;
            client
                .revoke_message(to, target_id.clone(), RevokeType::Sender)
                .await
                .map_err(send_failed)?;
            Ok(target_id)
        }
        Outgoing::Read { chat, target_id } => {
            let chat = outbound::wa_jid(&chat)?;
            client
                .mark_as_read(&chat, None, &[target_id.as_str()])
                .await
                .map_err(|err| {
                    Error::Unavailable(format!("WhatsApp read receipt failed: {err}"))
                })?;
            Ok(target_id)
        }
        Outgoing::Location {
            to,
            location,
            quoted_id,
            context,
        } => {
            let to = outbound::wa_jid(&to)?;
            let message = kinds::location(&location, quote(&to, quoted_id).as_ref());
            let message = outbound::with_context(message, &context)?;
            send_with_id(client, to, message, id).await
        }
        Outgoing::Contacts {
            to,
            cards,
            quoted_id,
            context,
        } => {
            let to = outbound::wa_jid(&to)?;
            let message = kinds::contacts(&cards, quote(&to, quoted_id).as_ref());
            let message = outbound::with_context(message, &context)?;
            send_with_id(client, to, message, id).await
        }
        Outgoing::Poll {
            to,
            question,
            options,
            selectable,
            quoted_id,
            context,
        } => {
            let to = outbound::wa_jid(&to)?;
            let secret = zapgate_core::token::random_bytes::<32>();
            let quote = quote(&to, quoted_id);
            let message = kinds::poll(&question, &options, selectable, secret, quote.as_ref());
            let message = outbound::with_context(message, &context)?;
            let sent = send_with_id(client, to.clone(), message, id).await?;
            polls::keep_secret(client, &to, &sent, &secret).await;
            Ok(sent)
        }
        Outgoing::Event {
            to,
            event,
            quoted_id,
            context,
        } => {
            let to = outbound::wa_jid(&to)?;
            let secret = zapgate_core::token::random_bytes::<32>();
            let message = kinds::event(&event, secret, quote(&to, quoted_id).as_ref());
            let message = outbound::with_context(message, &context)?;
            send_with_id(client, to, message, id).await
        }
        Outgoing::Status { post, .. } => {
            let book = session.address_book();
            let audience = kinds::status_audience(book.values());
            let (message, stored) = match post {
                StatusPost::Text {
                    text,
                    background_argb,
                    font,
                } => (kinds::status_text(&text, background_argb, font), None),
                StatusPost::Media { media, caption } => {
                    let upload = upload(client, &media).await?;
                    let stored = outbound::uploaded_ref(&media, &upload);
                    let message = outbound::media(&media, upload, caption.as_deref(), None);
                    (message, Some(stored))
                }
            };
            let options = StatusSendOptions {
                message_id: id.map(str::to_owned),
                ..Default::default()
            };
            // No contacts: the crate refuses ("cannot send status with no
            // recipients"), answered 400 by `send_failed`.
            let sent = client
                .status()
                .send_raw(message, &audience, options)
                .await
                .map_err(send_failed)?;
            return Ok((sent.message_id, stored));
        }
    };
    id.map(|id| (id, None))
}

/// Uploads `media`'s bytes as its kind.
async fn upload(client: &Client, media: &Media) -> Result<outbound::Uploaded> {
    client
        .upload(
            // The library takes an owned buffer to encrypt on a blocking
            // thread; the bytes are shared with the echo, so this is a copy
            // (dropped once encrypted).
            media.data.to_vec(),
            outbound::media_type(media.kind),
            UploadOptions::default(),
        )
        .await
        .map(Into::into)
        .map_err(|err| Error::Unavailable(format!("WhatsApp media upload failed: {err}")))
}

/// Shows "typing..." or "recording..." in `chat`, or stops it.
pub(super) async fn chat_presence(
    session: &Session,
    chat: &zapgate_core::jid::Jid,
    presence: ChatPresence,
) -> Result<()> {
    let chat = outbound::wa_jid(chat)?;
    let state = match presence {
        ChatPresence::Typing => ChatStateType::Composing,
        ChatPresence::Recording => ChatStateType::Recording,
        ChatPresence::Paused => ChatStateType::Paused,
    };
    session
        .client()
        .chatstate()
        .send(&chat, state)
        .await
        .map_err(|err| Error::Unavailable(format!("WhatsApp presence failed: {err}")))
}

/// Sends a new message, under `id` when the caller chose one.
pub(super) async fn send_with_id(
    client: &Client,
    to: whatsapp_rust::Jid,
    message: wa::Message,
    id: Option<&str>,
) -> Result<String> {
    let options = match id {
        Some(id) => SendOptions::default().with_message_id(id),
        None => SendOptions::default(),
    };
    let sent = client
        .send_message_with_options(to, message, options)
        .await
        .map_err(send_failed)?;
    Ok(sent.message_id)
}

/// A session that lost its login reads as "not connected" (the bridge then
/// waits); a request WhatsApp can never accept is final; the rest is worth
/// retrying.
fn send_failed(err: SendError) -> Error {
    match err {
        SendError::NotLoggedIn => Error::NotConnected,
        SendError::InvalidRequest(reason) => {
            Error::bad_request(format!("WhatsApp refused the message: {reason}"))
        }
        other => Error::Unavailable(format!("WhatsApp send failed: {other}")),
    }
}
