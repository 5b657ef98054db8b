//! Chatwoot → WhatsApp: an agent's message is sent once (its WhatsApp id is
//! derived from the Chatwoot id, so a resend after a crash is the same
//! message), signed when asked, with its attachments and quote; an agent's
//! deletion revokes what was sent; the outcome goes back to Chatwoot as the
//! message's status.

use serde_json::Value;
use sha2::{Digest, Sha256};
use zapgate_core::{
    Error,
    chat_state::MAX_READ_IDS,
    chatwoot::Integration,
    jid::{Jid, parse_phone_number},
    jobs::{AgentMessageLinks, Job, MessageLink},
    messages,
    time::now_ms,
    whatsapp::{ChatPresence, Media, MediaKind, Outgoing, SendContext},
};

use super::{
    Bridge, Failure,
    bot::bot_identifier,
    payload::{
        AgentMessageJob, JobPayload, OUTBOUND, VOICE_NOTE_MIMETYPE, is_ogg_opus, media_kind_for,
    },
    render,
    webhook::DELETED,
};
use crate::client::ChatwootError;

impl Bridge {
    /// Sends the parts of `message` not yet sent. Done, with the link of the
    /// last part sent, to store with the job's completion (one write after
    /// the send, as for an inbound post, instead of two).
    pub(super) async fn send_agent_message(
        &self,
        job: &Job,
        integration: &Integration,
        message: &AgentMessageJob,
    ) -> Result<Option<MessageLink>, Failure> {
        let AgentMessageLinks {
            sent: links,
            conversation_chat,
        } = self
            .store
            .find_agent_message_links(&integration.id, message.message_id, message.conversation_id)
            .await?;
        // Deleted before it (or its rest) could go: a tombstone.
        if links.iter().any(|l| l.direction == DELETED) {
            return Ok(None);
        }
        // Each attachment is its own WhatsApp message (the text alone is one
        // part): after a failure mid-way, only the parts not yet sent go.
        let text = render::signed(
            message.content.as_deref(),
            message.sender_name.as_deref(),
            integration.flags.sign_messages,
            &integration.options,
        );
        let parts = match message.attachments.len() {
            0 => usize::from(text.is_some()),
            n => n,
        };
        let pending: Vec<usize> = (0..parts)
            .filter(|&part| {
                let id = whatsapp_id(&integration.id, message.message_id, part);
                !links.iter().any(|l| l.wa_message_id == id)
            })
            .collect();
        if pending.is_empty() {
            return Ok(None);
        }
        let to = recipient(
            integration,
            conversation_chat.as_deref(),
            message.contact_identifier.as_deref(),
            message.contact_phone.as_deref(),
        )?;
        if integration.options.ignores(&to) {
            return Err(Failure::Rejected {
                error: format!("{to} is in this integration's ignoreJids: nothing is sent to it"),
            });
        }
        let instance_id = &integration.instance_id;
        let whatsapp = self.whatsapp()?;
        let connected = whatsapp
            .status(instance_id)
            .is_some_and(|s| s.state == zapgate_core::instance::ConnectionState::Connected);
        if !connected {
            return Err(self.wait_for_whatsapp(job));
        }

        if integration.options.mark_read_on_reply {
            self.mark_customer_read(integration, message.conversation_id, &to)
                .await;
        }
        let quoted_id = self.quoted_wa_id(integration, message).await?;
        let mut sent_link = None;
        for part in pending {
            // A part's link is stored before the next part goes, so a failure
            // there sends only the parts not yet sent when retried.
            if let Some(link) = sent_link.take() {
                self.store.save_message_link(&link).await?;
            }
            let outgoing = match message.attachments.get(part) {
                Some(attachment) => {
                    let download = self.downloader.fetch(&attachment.data_url).await?;
                    // Ogg/Opus (what Chatwoot's recorder makes) goes as a
                    // voice note: the provider sends `audio/ogg` as `ptt`.
                    let (kind, mimetype) = if is_ogg_opus(&download.data) {
                        (MediaKind::Audio, VOICE_NOTE_MIMETYPE.to_owned())
                    } else {
                        (
                            media_kind_for(&attachment.file_type, &download.mimetype),
                            download.mimetype,
                        )
                    };
                    Outgoing::Media {
                        to: to.clone(),
                        media: Media {
                            kind,
                            mimetype,
                            file_name: Some(download.file_name),
                            data: download.data.into(),
                        },
                        // The text rides on the first attachment as its caption.
                        caption: if part == 0 { text.clone() } else { None },
                        quoted_id: if part == 0 { quoted_id.clone() } else { None },
                        context: SendContext::default(),
                    }
                }
                None => Outgoing::Text {
                    to: to.clone(),
                    text: text.clone().unwrap_or_default(),
                    quoted_id: quoted_id.clone(),
                    context: SendContext::default(),
                    preview: None,
                },
            };
            let id = whatsapp_id(&integration.id, message.message_id, part);
            // Providers send under the id asked for, so the link is how the
            // next attempt recognises the part as sent.
            let sent = whatsapp
                .send(instance_id, outgoing, Some(&id))
                .await
                .map_err(|e| send_failure(e, job))?;
            sent_link = Some(MessageLink {
                integration_id: integration.id.clone(),
                wa_message_id: sent.id,
                chatwoot_message_id: message.message_id,
                chatwoot_conversation_id: message.conversation_id,
                direction: OUTBOUND.to_owned(),
            });
        }
        Ok(sent_link)
    }

    /// An agent reply waits for WhatsApp, up to the expiry.
    fn wait_for_whatsapp(&self, job: &Job) -> Failure {
        let waited = now_ms() - job.created_at_ms;
        let expiry = self.config.outbound_expiry;
        if waited >= expiry.as_millis() as i64 {
            return Failure::Rejected {
                error: format!(
                    "WhatsApp was not connected for {}; the message was not sent",
                    human_duration(expiry)
                ),
            };
        }
        Failure::Wait {
            reason: "waiting for WhatsApp to reconnect".to_owned(),
            after: self.config.wait_poll,
        }
    }

    /// `markReadOnReply`: the customer's messages since the last reply get
    /// read receipts (blue ticks) before the reply goes. Best effort: a
    /// receipt that fails is not worth holding the reply back. Once a part
    /// of the reply is sent, its link bounds the next look, so a retried
    /// reply sends no second receipt.
    async fn mark_customer_read(
        &self,
        integration: &Integration,
        conversation_id: i64,
        chat: &Jid,
    ) {
        let unread = match self
            .store
            .unread_inbound(
                &integration.id,
                &integration.instance_id,
                conversation_id,
                MAX_READ_IDS as u32,
            )
            .await
        {
            Ok(unread) => unread,
            Err(e) => {
                tracing::warn!(integration_id = %integration.id, error = %e, "unread messages not found");
                return;
            }
        };
        // A group's receipt names the member who wrote the messages.
        let mut by_sender: Vec<(Option<Jid>, Vec<String>)> = Vec::new();
        for message in unread.into_iter().rev() {
            let sender = match (chat.is_group(), &message.sender) {
                (false, _) => None,
                (true, Some(sender)) => match Jid::parse(sender) {
                    Ok(jid) => Some(jid),
                    Err(_) => continue,
                },
                // The message store no longer knows who wrote it.
                (true, None) => continue,
            };
            match by_sender.iter_mut().find(|(s, _)| *s == sender) {
                Some((_, ids)) => ids.push(message.wa_message_id),
                None => by_sender.push((sender, vec![message.wa_message_id])),
            }
        }
        let Ok(whatsapp) = self.whatsapp() else {
            return;
        };
        for (sender, ids) in by_sender {
            if let Err(e) = whatsapp
                .mark_read(&integration.instance_id, chat, sender.as_ref(), &ids)
                .await
            {
                tracing::debug!(integration_id = %integration.id, error = %e, "read receipts not sent");
            }
        }
    }

    /// An agent typing (`conversation_typing_on/off`) shows as "typing..."
    /// in the WhatsApp chat. Best effort and at once: a presence that comes
    /// late means nothing, so it is neither queued nor retried. A private
    /// note being typed, and a contact typing, show nothing.
    pub(super) async fn agent_typing(
        &self,
        integration: &Integration,
        event: &Value,
        typing: bool,
    ) {
        let private = event
            .get("is_private")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let by_contact = event.pointer("/user/type").and_then(Value::as_str) == Some("contact");
        let Some(conversation_id) = event.pointer("/conversation/id").and_then(Value::as_i64)
        else {
            return;
        };
        if private || by_contact {
            return;
        }
        let text_at = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
        let Ok(link) = self
            .store
            .find_chat_by_conversation(&integration.id, conversation_id)
            .await
        else {
            return;
        };
        let Ok(to) = recipient(
            integration,
            link.as_ref().map(|l| l.chat_jid.as_str()),
            text_at("/conversation/meta/sender/identifier"),
            text_at("/conversation/meta/sender/phone_number"),
        ) else {
            return;
        };
        let Ok(whatsapp) = self.whatsapp() else {
            return;
        };
        if integration.options.ignores(&to) {
            return;
        }
        let presence = if typing {
            ChatPresence::Typing
        } else {
            ChatPresence::Paused
        };
        let shown = whatsapp.chat_presence(&integration.instance_id, &to, presence);
        match tokio::time::timeout(TYPING_DEADLINE, shown).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(integration_id = %integration.id, error = %e, "agent typing not shown")
            }
            Err(_) => {
                tracing::debug!(integration_id = %integration.id, "agent typing not shown in time")
            }
        }
    }

    async fn quoted_wa_id(
        &self,
        integration: &Integration,
        message: &AgentMessageJob,
    ) -> Result<Option<String>, Failure> {
        if let Some(external) = message
            .in_reply_to_external_id
            .as_deref()
            .and_then(|e| e.strip_prefix("WAID:"))
        {
            return Ok(Some(external.to_owned()));
        }
        let Some(reply_to) = message.in_reply_to else {
            return Ok(None);
        };
        let links = self
            .store
            .find_messages_by_chatwoot(&integration.id, reply_to)
            .await?;
        Ok(links
            .into_iter()
            .find(|l| l.direction != DELETED)
            .map(|l| l.wa_message_id))
    }

    pub(super) async fn revoke_agent_message(
        &self,
        integration: &Integration,
        conversation_id: i64,
        message_id: i64,
    ) -> Result<(), Failure> {
        let sent: Vec<_> = self
            .store
            .find_messages_by_chatwoot(&integration.id, message_id)
            .await?
            .into_iter()
            .filter(|link| link.direction != DELETED)
            .collect();
        if sent.is_empty() {
            return Ok(());
        }
        let Some(link) = self
            .store
            .find_chat_by_conversation(&integration.id, conversation_id)
            .await?
        else {
            return Err(Failure::Rejected {
                error: "no WhatsApp chat for the conversation".to_owned(),
            });
        };
        let to = Jid::parse(&link.chat_jid).map_err(|e| Failure::Rejected {
            error: e.to_string(),
        })?;
        let whatsapp = self.whatsapp()?;
        for message in sent {
            let revoke = Outgoing::Revoke {
                to: to.clone(),
                target_id: message.wa_message_id.clone(),
            };
            let id = format!("{}R", message.wa_message_id);
            whatsapp
                .send(&integration.instance_id, revoke, Some(&id))
                .await
                .map_err(|e| match e {
                    Error::NotConnected => Failure::Wait {
                        reason: messages::INSTANCE_NOT_CONNECTED.to_owned(),
                        after: self.config.wait_poll,
                    },
                    other => Failure::from(other),
                })?;
        }
        Ok(())
    }

    /// Tells Chatwoot an agent message will not reach WhatsApp, with why.
    pub(super) async fn report_failed(&self, job: &Job, error: &str) {
        let Ok(JobPayload::AgentMessage(message)) = JobPayload::from_json(&job.payload) else {
            return;
        };
        let Ok(Some(integration)) = self.store.find_integration_by_id(&job.integration_id).await
        else {
            return;
        };
        let outcome = self
            .client(&integration)
            .update_message_status(
                message.conversation_id,
                message.message_id,
                "failed",
                Some(error),
            )
            .await;
        match outcome {
            Ok(()) | Err(ChatwootError::Status { status: 404, .. }) => {}
            Err(e) => {
                tracing::warn!(job_id = job.id, error = %e, "could not mark the agent message failed in Chatwoot")
            }
        }
    }
}

/// How long showing "typing..." may hold up Chatwoot's webhook call.
const TYPING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// The WhatsApp chat of a conversation: the one the bridge linked
/// (`conversation_chat`), else the contact's JID or phone number from the
/// webhook.
fn recipient(
    integration: &Integration,
    conversation_chat: Option<&str>,
    contact_identifier: Option<&str>,
    contact_phone: Option<&str>,
) -> Result<Jid, Failure> {
    // The bot contact's conversation never reaches WhatsApp.
    if contact_identifier == Some(bot_identifier(integration).as_str()) {
        return Err(Failure::Rejected {
            error: "the bot contact's conversation is not sent to WhatsApp".to_owned(),
        });
    }
    if let Some(jid) = conversation_chat.and_then(|chat| Jid::parse(chat).ok()) {
        return Ok(jid);
    }
    if let Some(jid) = contact_identifier
        .and_then(|i| Jid::parse(i).ok())
        .filter(|j| j.server != "broadcast")
    {
        return Ok(jid);
    }
    if let Some(digits) = contact_phone.and_then(|p| parse_phone_number(p).ok()) {
        return Ok(Jid::user(&digits));
    }
    Err(Failure::Rejected {
        error: "the conversation's contact has no WhatsApp number".to_owned(),
    })
}

/// The WhatsApp id of part `part` of Chatwoot message `message_id`: stable,
/// so sending again after a crash is recognised as the same message.
pub(crate) fn whatsapp_id(integration_id: &str, message_id: i64, part: usize) -> String {
    let digest = Sha256::digest(format!("{integration_id}/{message_id}/{part}").as_bytes());
    format!("3EB0{}", hex::encode_upper(&digest[..8]))
}

/// How a failed send is handled: the phone offline waits, a refusal is
/// final, anything else is retried.
fn send_failure(err: Error, job: &Job) -> Failure {
    match err {
        Error::NotConnected => Failure::Wait {
            reason: messages::INSTANCE_NOT_CONNECTED.to_owned(),
            after: std::time::Duration::from_secs(1),
        },
        Error::BadRequest(m) | Error::NotFound(m) => Failure::Rejected { error: m },
        other => {
            tracing::info!(job_id = job.id, error = %other, "WhatsApp send failed");
            Failure::Transient {
                error: other.public_message().to_owned(),
                after: None,
            }
        }
    }
}

fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}
