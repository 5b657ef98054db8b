//! Chatwoot's inbox webhook. Chatwoot waits at most 5 s and never retries,
//! so the answer comes right after the job is stored; the work happens in
//! the worker. Only an agent's public outgoing message is sent, never a
//! private note and never a message the bridge itself wrote (`WAID:`).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use zapgate_core::{
    Error, Result,
    chatwoot::Integration,
    jobs::{Enqueued, MessageLink, NewJob},
    time::{now_ms, now_secs},
};

use super::{
    Bridge,
    bot::bot_identifier,
    payload::{AgentAttachment, AgentMessageJob, JobPayload, OUTBOUND},
    render,
};

pub const INVALID_WEBHOOK: &str = "Invalid webhook credentials";
/// The webhook's answer while the integration's queue is full.
pub const QUEUE_FULL: &str = "Too many agent messages queued for this integration";
/// The direction of a tombstone link: an agent message deleted before it
/// was sent.
pub(super) const DELETED: &str = "deleted";
const DELETED_PREFIX: &str = "deleted:";
/// How far a signed webhook's timestamp may be from our clock.
const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Chatwoot's signature headers, when it sent them (v4.13+).
pub struct Signature<'a> {
    pub timestamp: &'a str,
    /// `sha256=<hex>`.
    pub signature: &'a str,
}

/// What the webhook did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A job was stored (or was already stored).
    Queued,
    /// Nothing to do (a note, an echo, an event we do not route).
    Ignored,
}

impl Bridge {
    /// The integration whose webhook URL carries `secret`. Called before the
    /// body is read: a caller without the secret costs no more than this.
    pub async fn authenticate_webhook(
        &self,
        integration_id: &str,
        secret: &str,
    ) -> Result<Integration> {
        self.store
            .find_integration_by_id(integration_id)
            .await?
            .filter(|i| same_secret(i.webhook_secret.expose(), secret))
            .ok_or_else(|| Error::unauthorized(INVALID_WEBHOOK))
    }

    /// Checks the signature of a delivery to `integration` (authenticated
    /// by [`Self::authenticate_webhook`]) and stores what it asks for.
    pub async fn accept_webhook(
        &self,
        integration: &Integration,
        signature: Option<Signature<'_>>,
        body: &[u8],
    ) -> Result<WebhookOutcome> {
        // Chatwoot signs every delivery once the inbox has a secret (v4.13+):
        // an unsigned one then is a forgery or a downgrade.
        if let Some(key) = &integration.inbox_secret {
            let signature =
                signature.ok_or_else(|| Error::unauthorized("Invalid webhook signature"))?;
            verify_signature(key.expose(), &signature, body)?;
        }
        let event: Value = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("Invalid webhook body: {e}")))?;
        match event.get("event").and_then(Value::as_str).unwrap_or("") {
            "message_created" => self.agent_message(integration, &event).await,
            "message_updated" => self.message_updated(integration, &event).await,
            "conversation_typing_on" | "conversation_typing_off" => {
                let typing = event["event"] == "conversation_typing_on";
                self.agent_typing(integration, &event, typing).await;
                Ok(WebhookOutcome::Ignored)
            }
            "conversation_status_changed" => {
                let (Some(id), Some(status)) = (
                    event.get("id").and_then(Value::as_i64),
                    event.get("status").and_then(Value::as_str),
                ) else {
                    return Ok(WebhookOutcome::Ignored);
                };
                self.store
                    .set_conversation_status(&integration.id, id, status)
                    .await?;
                Ok(WebhookOutcome::Ignored)
            }
            _ => Ok(WebhookOutcome::Ignored),
        }
    }

    async fn agent_message(
        &self,
        integration: &Integration,
        event: &Value,
    ) -> Result<WebhookOutcome> {
        let Some(message) = agent_message_job(event) else {
            return Ok(WebhookOutcome::Ignored);
        };
        if is_bot(integration, &message) {
            let Some(job) =
                self.bot_command_job(integration, message.message_id, message.content.as_deref())
            else {
                return Ok(WebhookOutcome::Ignored);
            };
            self.store.enqueue_jobs(&[job]).await?;
            self.nudge();
            return Ok(WebhookOutcome::Queued);
        }
        self.queue_agent_message(integration, "out", message).await
    }

    /// Stores the send of `message` under `<prefix>:<integration>:<id>`.
    async fn queue_agent_message(
        &self,
        integration: &Integration,
        prefix: &str,
        message: AgentMessageJob,
    ) -> Result<WebhookOutcome> {
        let job = outbound_job(
            integration,
            prefix,
            &message,
            JobPayload::AgentMessage(Box::new(message.clone())),
        )?;
        if self.enqueue_agent_job(job).await? == Enqueued::QueueFull {
            tracing::info!(integration_id = %integration.id, message_id = message.message_id, "agent message refused: the integration's queue is full (the reconciler sends it later)");
            return Err(Error::RateLimited(QUEUE_FULL.to_owned()));
        }
        self.nudge();
        Ok(WebhookOutcome::Queued)
    }

    /// Stores an agent message's job unless its integration already has
    /// `max_queued` agent messages queued.
    pub(super) async fn enqueue_agent_job(&self, job: NewJob) -> Result<Enqueued> {
        self.store.enqueue_capped(job, self.config.max_queued).await
    }

    /// A deletion, or Chatwoot's Retry on a failed message. The rest (our
    /// own status updates, edits) is not for WhatsApp.
    async fn message_updated(
        &self,
        integration: &Integration,
        event: &Value,
    ) -> Result<WebhookOutcome> {
        let Some(message) = agent_message_job(event) else {
            return Ok(WebhookOutcome::Ignored);
        };
        if is_bot(integration, &message) {
            return Ok(WebhookOutcome::Ignored);
        }
        let deleted = event
            .pointer("/content_attributes/deleted")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if deleted {
            self.agent_deletion(integration, message).await
        } else {
            self.agent_retry(integration, event, message).await
        }
    }

    /// Chatwoot's Retry sets a failed message `sent` and clears its
    /// `external_error`, which fires `message_updated` (whose data has no
    /// status). A message whose every part went (or that was deleted) is
    /// not sent again: that update was a receipt of ours or a retry of a
    /// delivered message. Else it is queued once, under its own key, so a
    /// dead-lettered original does not hold it back.
    async fn agent_retry(
        &self,
        integration: &Integration,
        event: &Value,
        message: AgentMessageJob,
    ) -> Result<WebhookOutcome> {
        let failure_report = event
            .pointer("/content_attributes/external_error")
            .is_some_and(|e| !e.is_null());
        if failure_report {
            return Ok(WebhookOutcome::Ignored);
        }
        let links = self
            .store
            .find_messages_by_chatwoot(&integration.id, message.message_id)
            .await?;
        let sent = links.iter().filter(|l| l.direction == OUTBOUND).count();
        if links.iter().any(|l| l.direction == DELETED) || sent >= message.attachments.len().max(1)
        {
            return Ok(WebhookOutcome::Ignored);
        }
        tracing::info!(integration_id = %integration.id, message_id = message.message_id, "agent message retried from Chatwoot");
        self.queue_agent_message(integration, "retry", message)
            .await
    }

    async fn agent_deletion(
        &self,
        integration: &Integration,
        message: AgentMessageJob,
    ) -> Result<WebhookOutcome> {
        // Deleted on the phone and shown deleted by us: nothing to revoke.
        let links = self
            .store
            .find_messages_by_chatwoot(&integration.id, message.message_id)
            .await?;
        if links.iter().any(|l| l.direction == DELETED) {
            return Ok(WebhookOutcome::Ignored);
        }
        // A tombstone: a queued send (waiting for the phone, or with parts
        // still to go) finds the message settled and sends nothing more;
        // the revocation takes back what went.
        self.store
            .save_message_link(&tombstone(
                integration,
                message.conversation_id,
                message.message_id,
            ))
            .await?;
        let payload = JobPayload::AgentDelete {
            conversation_id: message.conversation_id,
            message_id: message.message_id,
        };
        let job = outbound_job(integration, "del", &message, payload)?;
        self.store.enqueue_jobs(&[job]).await?;
        self.nudge();
        Ok(WebhookOutcome::Queued)
    }
}

/// The link that marks Chatwoot message `message_id` deleted.
pub(super) fn tombstone(
    integration: &Integration,
    conversation_id: i64,
    message_id: i64,
) -> MessageLink {
    MessageLink {
        integration_id: integration.id.clone(),
        wa_message_id: format!("{DELETED_PREFIX}{message_id}"),
        chatwoot_message_id: message_id,
        chatwoot_conversation_id: conversation_id,
        direction: DELETED.to_owned(),
    }
}

/// The job of an agent's message; `None` for everything not to be sent.
pub(super) fn agent_message_job(event: &Value) -> Option<AgentMessageJob> {
    // An agent's reply, or what Chatwoot itself sends the customer as a
    // `template` (CSAT survey, greeting, out-of-office message).
    let outgoing = matches!(
        event.get("message_type").and_then(Value::as_str),
        Some("outgoing" | "template")
    );
    let private = event
        .get("private")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ours = event
        .get("source_id")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("WAID:"));
    if !outgoing || private || ours {
        return None;
    }
    let str_at = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    };
    let attachments = event
        .get("attachments")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(AgentAttachment {
                        data_url: a.get("data_url")?.as_str()?.to_owned(),
                        file_type: a
                            .get("file_type")
                            .and_then(Value::as_str)
                            .unwrap_or("file")
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(AgentMessageJob {
        message_id: event.get("id")?.as_i64()?,
        conversation_id: event.pointer("/conversation/id")?.as_i64()?,
        content: render::interactive(
            str_at("/content").as_deref(),
            event
                .get("content_type")
                .and_then(Value::as_str)
                .unwrap_or("text"),
            event.get("content_attributes").unwrap_or(&Value::Null),
        ),
        sender_name: str_at("/sender/name"),
        attachments,
        in_reply_to: event
            .pointer("/content_attributes/in_reply_to")
            .and_then(Value::as_i64),
        in_reply_to_external_id: str_at("/content_attributes/in_reply_to_external_id"),
        contact_identifier: str_at("/conversation/meta/sender/identifier")
            .or_else(|| str_at("/conversation/contact_inbox/source_id")),
        contact_phone: str_at("/conversation/meta/sender/phone_number"),
    })
}

/// A message in the bot contact's conversation: never for WhatsApp.
fn is_bot(integration: &Integration, message: &AgentMessageJob) -> bool {
    message.contact_identifier.as_deref() == Some(bot_identifier(integration).as_str())
}

pub(super) fn outbound_job(
    integration: &Integration,
    prefix: &str,
    message: &AgentMessageJob,
    payload: JobPayload,
) -> Result<NewJob> {
    Ok(NewJob {
        integration_id: integration.id.clone(),
        instance_id: integration.instance_id.clone(),
        direction: OUTBOUND,
        chat_key: format!("conv:{}", message.conversation_id),
        dedupe_key: format!("{prefix}:{}:{}", integration.id, message.message_id),
        payload: payload.to_json()?,
        run_at_ms: now_ms(),
        blob: None,
    })
}

/// Compares digests, so the comparison's time says nothing about the secret.
fn same_secret(expected: &str, given: &str) -> bool {
    Sha256::digest(expected.as_bytes()) == Sha256::digest(given.as_bytes())
}

/// `sha256=HMAC-SHA256(secret, "<timestamp>.<raw body>")`, within five
/// minutes of our clock.
fn verify_signature(secret: &str, signature: &Signature<'_>, body: &[u8]) -> Result<()> {
    let invalid = || Error::unauthorized("Invalid webhook signature");
    let timestamp: i64 = signature.timestamp.trim().parse().map_err(|_| invalid())?;
    if (now_secs() - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(invalid());
    }
    let given = signature
        .signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or_else(invalid)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| invalid())?;
    mac.update(signature.timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agent_reply() -> Value {
        json!({
            "event": "message_created", "id": 10, "content": "Olá", "message_type": "outgoing",
            "private": false, "source_id": null, "sender": {"name": "Ana", "type": "user"},
            "conversation": {"id": 3, "meta": {"sender": {"identifier": "5511988887777@s.whatsapp.net"}}},
            "attachments": [{"data_url": "https://cw/x.jpg", "file_type": "image"}],
            "content_attributes": {"in_reply_to": 9}
        })
    }

    #[test]
    fn an_agent_reply_becomes_a_job() {
        let job = agent_message_job(&agent_reply()).unwrap();
        assert_eq!((job.message_id, job.conversation_id), (10, 3));
        assert_eq!(job.sender_name.as_deref(), Some("Ana"));
        assert_eq!(job.attachments.len(), 1);
        assert_eq!(job.in_reply_to, Some(9));
        assert_eq!(
            job.contact_identifier.as_deref(),
            Some("5511988887777@s.whatsapp.net")
        );
    }

    #[test]
    fn notes_echoes_and_incoming_are_not_sent() {
        let mut note = agent_reply();
        note["private"] = json!(true);
        assert!(agent_message_job(&note).is_none());
        let mut echo = agent_reply();
        echo["source_id"] = json!("WAID:ABC");
        assert!(agent_message_job(&echo).is_none());
        let mut incoming = agent_reply();
        incoming["message_type"] = json!("incoming");
        assert!(agent_message_job(&incoming).is_none());
    }

    #[test]
    fn chatwoot_templates_are_sent_as_text() {
        let mut csat = agent_reply();
        csat["message_type"] = json!("template");
        csat["content_type"] = json!("input_csat");
        csat["sender"] = Value::Null;
        csat["content"] = json!("Please rate this conversation, https://cw/survey/responses/u");
        let job = agent_message_job(&csat).unwrap();
        assert_eq!(
            job.content.as_deref(),
            Some("Please rate this conversation, https://cw/survey/responses/u")
        );
        assert_eq!(job.sender_name, None);
        let mut activity = agent_reply();
        activity["message_type"] = json!("activity");
        assert!(agent_message_job(&activity).is_none());
    }

    #[test]
    fn signatures_are_checked_over_timestamp_and_body() {
        let body = br#"{"event":"message_created"}"#;
        let ts = now_secs().to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sig = |s: &str| {
            Signature {
                timestamp: &ts,
                signature: s,
            }
            .signature
            .to_owned()
        };
        assert!(
            verify_signature(
                "k",
                &Signature {
                    timestamp: &ts,
                    signature: &sig(&good)
                },
                body
            )
            .is_ok()
        );
        assert!(
            verify_signature(
                "other",
                &Signature {
                    timestamp: &ts,
                    signature: &good
                },
                body
            )
            .is_err()
        );
        assert!(
            verify_signature(
                "k",
                &Signature {
                    timestamp: &ts,
                    signature: &good
                },
                b"{}"
            )
            .is_err()
        );
        let old = (now_secs() - 3600).to_string();
        assert!(
            verify_signature(
                "k",
                &Signature {
                    timestamp: &old,
                    signature: &good
                },
                body
            )
            .is_err()
        );
    }
}
