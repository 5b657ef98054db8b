//! Chatwoot sends each webhook once. When zapgate was down, the network
//! dropped it or the webhook refused it (the integration's queue was full),
//! an agent's reply would be lost; the reconciler reads the messages of the
//! bridge's open conversations past each one's watermark and queues every
//! agent message that has not been sent, under the same idempotency key the
//! webhook uses, so each is sent exactly once. It too stops at the queue
//! limit, leaving the rest for a later pass.

use std::sync::Arc;

use tokio::task::{JoinError, JoinSet};

use zapgate_core::{
    Result,
    chatwoot::{Integration, IntegrationStatus},
    jobs::Enqueued,
    time::now_secs,
};

use super::{
    Bridge,
    payload::{AgentAttachment, AgentMessageJob, JobPayload},
    webhook::outbound_job,
};
use crate::client::Message;

const OUTGOING: i64 = 1;

/// Passes until shutdown; a pass cut off by it is simply dropped (what it
/// queued is stored, the rest is found by the next process's pass).
pub(super) async fn run(bridge: Arc<Bridge>) {
    let mut tick = tokio::time::interval(bridge.config.reconcile_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = bridge.stop.subscribe();
    loop {
        let pass = async {
            tick.tick().await;
            if let Err(err) = bridge.reconcile_all().await {
                tracing::warn!(error = %err, "reconciler pass failed");
            }
        };
        tokio::select! {
            () = pass => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Integrations a pass visits at once: a Chatwoot that does not answer
/// holds one of these, not the whole pass.
const VISITS_AT_ONCE: usize = 8;

/// Calls one visit may make at its deadline, a few per conversation: a
/// Chatwoot answering each call just inside the call timeout cannot
/// stretch the pass (the next pass resumes from each conversation's
/// watermark).
const VISIT_CALLS: u32 = 4;

impl Bridge {
    /// One pass over every integration, [`VISITS_AT_ONCE`] at a time; returns
    /// how many messages it queued.
    pub async fn reconcile_all(self: &Arc<Self>) -> Result<usize> {
        let mut visits = JoinSet::new();
        let mut queued = 0;
        for integration in self.store.list_integrations().await? {
            if integration.status == IntegrationStatus::Error {
                continue;
            }
            if visits.len() >= VISITS_AT_ONCE
                && let Some(visited) = visits.join_next().await
            {
                queued += visit_outcome(visited);
            }
            let bridge = self.clone();
            visits.spawn(async move { bridge.visit(integration).await });
        }
        while let Some(visited) = visits.join_next().await {
            queued += visit_outcome(visited);
        }
        if queued > 0 {
            tracing::info!(
                queued,
                "reconciler queued agent messages whose webhook never came"
            );
        }
        Ok(queued)
    }

    /// One integration, within its deadline; what it queued runs at once.
    async fn visit(&self, integration: Integration) -> usize {
        let deadline = self.config.call_timeout * VISIT_CALLS;
        let outcome = tokio::time::timeout(deadline, self.reconcile(&integration)).await;
        match outcome {
            Ok(Ok(queued)) => {
                if queued > 0 {
                    self.nudge();
                }
                queued
            }
            Ok(Err(err)) => {
                tracing::info!(integration_id = %integration.id, error = %err, "reconciliation skipped");
                0
            }
            Err(_) => {
                tracing::info!(integration_id = %integration.id, "reconciliation cut off: Chatwoot is too slow");
                0
            }
        }
    }

    async fn reconcile(&self, integration: &Integration) -> Result<usize> {
        let client = self.client(integration);
        let cutoff = now_secs() - self.config.reconcile_grace.as_secs() as i64;
        let since = integration.created_at_ms / 1000;
        let mut queued = 0;
        for status in ["open", "pending"] {
            let conversations = client
                .list_conversations(integration.inbox_id, status, 1)
                .await
                .map_err(zapgate_core::Error::internal)?;
            for conversation in conversations {
                let Some(link) = self
                    .store
                    .find_chat_by_conversation(&integration.id, conversation.id)
                    .await?
                else {
                    continue;
                };
                // From the watermark on, not the latest page: a burst of
                // replies the webhook refused (queue full) is read whole,
                // a page per pass.
                let messages = client
                    .messages_after(conversation.id, link.reconciled_message_id)
                    .await
                    .map_err(zapgate_core::Error::internal)?;
                let mut watermark = link.reconciled_message_id;
                let mut full = false;
                for message in &messages {
                    if message.created_at > cutoff {
                        // Too fresh: its webhook may still be on the way.
                        break;
                    }
                    if is_agent_reply(message)
                        && message.created_at >= since
                        && self
                            .store
                            .find_messages_by_chatwoot(&integration.id, message.id)
                            .await?
                            .is_empty()
                    {
                        let job = agent_job(conversation.id, message);
                        let new = outbound_job(
                            integration,
                            "out",
                            &job,
                            JobPayload::AgentMessage(Box::new(job.clone())),
                        )?;
                        match self.enqueue_agent_job(new).await? {
                            Enqueued::New => queued += 1,
                            Enqueued::Duplicate => {}
                            // The watermark stays before this message, so a
                            // later pass sends it.
                            Enqueued::QueueFull => {
                                full = true;
                                break;
                            }
                        }
                    }
                    watermark = message.id;
                }
                if watermark > link.reconciled_message_id {
                    self.store
                        .set_reconciled(&integration.id, conversation.id, watermark)
                        .await?;
                }
                if full {
                    return Ok(queued);
                }
            }
        }
        Ok(queued)
    }
}

fn is_agent_reply(message: &Message) -> bool {
    let ours = message
        .source_id
        .as_deref()
        .is_some_and(|s| s.starts_with("WAID:"));
    let deleted = message
        .content_attributes
        .get("deleted")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    message.message_type == OUTGOING && !message.private && !ours && !deleted
}

fn agent_job(conversation_id: i64, message: &Message) -> AgentMessageJob {
    let attribute = |key: &str| message.content_attributes.get(key);
    AgentMessageJob {
        message_id: message.id,
        conversation_id,
        content: message.content.clone().filter(|c| !c.is_empty()),
        sender_name: message.sender.as_ref().and_then(|s| s.name.clone()),
        attachments: message
            .attachments
            .iter()
            .map(|a| AgentAttachment {
                data_url: a.data_url.clone(),
                file_type: a.file_type.clone().unwrap_or_else(|| "file".to_owned()),
            })
            .collect(),
        in_reply_to: attribute("in_reply_to").and_then(serde_json::Value::as_i64),
        in_reply_to_external_id: attribute("in_reply_to_external_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        contact_identifier: None,
        contact_phone: None,
    }
}

/// How many messages a visit queued (a visit that panicked queued none the
/// pass can count).
fn visit_outcome(visited: Result<usize, JoinError>) -> usize {
    visited.unwrap_or_else(|err| {
        tracing::error!(error = %err, "reconciler visit panicked");
        0
    })
}
