//! Chatwoot → WhatsApp: an agent's message is sent once (its WhatsApp id is
//! derived from the Chatwoot id, so a resend after a crash is the same
//! message), signed when asked, with its attachments and quote; an agent's
//! deletion revokes what was sent; the outcome goes back to Chatwoot as the
//! message's status.

use sha2::{Digest, Sha256};
use zapgate_core::{
    Error,
    chatwoot::Integration,
    jid::{Jid, parse_phone_number},
    jobs::{Job, MessageLink},
    messages,
    time::now_ms,
    whatsapp::{Media, Outgoing},
};

use super::{
    Bridge, Failure,
    payload::{AgentMessageJob, JobPayload, OUTBOUND, media_kind_for},
    render,
    webhook::DELETED,
};
use crate::client::ChatwootError;

impl Bridge {
    pub(super) async fn send_agent_message(
        &self,
        job: &Job,
        integration: &Integration,
        message: &AgentMessageJob,
    ) -> Result<(), Failure> {
        // Sent before (a retry, a duplicate webhook), or deleted before it
        // could go (a tombstone).
        let settled = self
            .store
            .find_messages_by_chatwoot(&integration.id, message.message_id)
            .await?;
        if !settled.is_empty() {
            return Ok(());
        }
        let to = self.recipient(integration, message).await?;
        let instance_id = &integration.instance_id;
        let whatsapp = self.whatsapp()?;
        let connected = whatsapp
            .status(instance_id)
            .is_some_and(|s| s.state == zapgate_core::instance::ConnectionState::Connected);
        if !connected {
            return self.wait_for_whatsapp(job);
        }

        let text = render::signed(
            message.content.as_deref(),
            message.sender_name.as_deref(),
            integration.flags.sign_messages,
        );
        let quoted_id = self.quoted_wa_id(integration, message).await?;
        let mut parts = Vec::new();
        for (i, attachment) in message.attachments.iter().enumerate() {
            let download = self.downloader.fetch(&attachment.data_url).await?;
            parts.push(Outgoing::Media {
                to: to.clone(),
                media: Media {
                    kind: media_kind_for(&attachment.file_type, &download.mimetype),
                    mimetype: download.mimetype,
                    file_name: Some(download.file_name),
                    data: download.data,
                },
                // The text rides on the first attachment as its caption.
                caption: if i == 0 { text.clone() } else { None },
                quoted_id: if i == 0 { quoted_id.clone() } else { None },
            });
        }
        if parts.is_empty() {
            let Some(text) = text else {
                return Ok(());
            };
            parts.push(Outgoing::Text {
                to: to.clone(),
                text,
                quoted_id,
            });
        }

        for (part, outgoing) in parts.into_iter().enumerate() {
            let id = whatsapp_id(&integration.id, message.message_id, part);
            let sent = whatsapp
                .send(instance_id, outgoing, Some(&id))
                .await
                .map_err(|e| send_failure(e, job))?;
            self.store
                .save_message_link(&MessageLink {
                    integration_id: integration.id.clone(),
                    wa_message_id: sent.id,
                    chatwoot_message_id: message.message_id,
                    chatwoot_conversation_id: message.conversation_id,
                    direction: OUTBOUND.to_owned(),
                })
                .await?;
        }
        Ok(())
    }

    /// An agent reply waits for WhatsApp, up to the expiry.
    fn wait_for_whatsapp(&self, job: &Job) -> Result<(), Failure> {
        let waited = now_ms() - job.created_at_ms;
        let expiry = self.config.outbound_expiry;
        if waited >= expiry.as_millis() as i64 {
            return Err(Failure::Rejected {
                error: format!(
                    "WhatsApp was not connected for {}; the message was not sent",
                    human_duration(expiry)
                ),
            });
        }
        Err(Failure::Wait {
            reason: "waiting for WhatsApp to reconnect".to_owned(),
            after: self.config.wait_poll,
        })
    }

    /// The WhatsApp chat of the conversation: the one the bridge linked,
    /// else the contact's JID or phone number from the webhook.
    async fn recipient(
        &self,
        integration: &Integration,
        message: &AgentMessageJob,
    ) -> Result<Jid, Failure> {
        if let Some(link) = self
            .store
            .find_chat_by_conversation(&integration.id, message.conversation_id)
            .await?
            && let Ok(jid) = Jid::parse(&link.chat_jid)
        {
            return Ok(jid);
        }
        if let Some(jid) = message
            .contact_identifier
            .as_deref()
            .and_then(|i| Jid::parse(i).ok())
            .filter(|j| j.server != "broadcast")
        {
            return Ok(jid);
        }
        if let Some(digits) = message
            .contact_phone
            .as_deref()
            .and_then(|p| parse_phone_number(p).ok())
        {
            return Ok(Jid::user(&digits));
        }
        Err(Failure::Rejected {
            error: "the conversation's contact has no WhatsApp number".to_owned(),
        })
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
