//! Where WhatsApp events enter the bridge. A message is acknowledged to the
//! provider (and so to WhatsApp) only once its job is stored.

use std::sync::Arc;

use async_trait::async_trait;
use zapgate_core::{
    Result,
    chatwoot::Integration,
    instance::ConnectionState,
    jid::{BROADCAST_SERVER, Jid},
    jobs::NewJob,
    service::SessionRecorder,
    store::Store,
    time::now_ms,
    whatsapp::{Event, EventSink, InboundMessage, ReceiptStatus, WhatsAppEvent},
};

use super::{
    Bridge,
    identity::ChatIdentity,
    payload::{INBOUND, InboundJob, JobPayload, OUTBOUND},
};

pub struct BridgeSink {
    recorder: SessionRecorder,
    store: Arc<dyn Store>,
    bridge: Arc<Bridge>,
}

impl BridgeSink {
    pub fn new(store: Arc<dyn Store>, bridge: Arc<Bridge>) -> Self {
        Self {
            recorder: SessionRecorder::new(store.clone()),
            store,
            bridge,
        }
    }
}

#[async_trait]
impl EventSink for BridgeSink {
    async fn deliver(&self, event: WhatsAppEvent) -> Result<()> {
        let instance_id = event.instance_id.clone();
        match &event.event {
            Event::Session(status) => {
                let connected = status.state == ConnectionState::Connected;
                self.recorder.deliver(event).await?;
                if connected {
                    // Agent replies that waited for the phone go out now.
                    self.store
                        .wake_jobs(&instance_id, OUTBOUND, now_ms())
                        .await?;
                    self.bridge.nudge();
                }
                Ok(())
            }
            Event::Message(message) => {
                let Some(integration) = self.store.find_integration(&instance_id).await? else {
                    return self.recorder.deliver(event).await;
                };
                if let Some(job) = inbound_job(&integration, message)? {
                    self.store.enqueue_jobs(&[job]).await?;
                    self.bridge.nudge();
                }
                Ok(())
            }
            Event::Receipt { message_id, status } => {
                let Some(integration) = self.store.find_integration(&instance_id).await? else {
                    return Ok(());
                };
                let Some(link) = self
                    .store
                    .find_message_by_wa(&integration.id, message_id)
                    .await?
                    .filter(|l| l.direction == OUTBOUND)
                else {
                    return Ok(());
                };
                let status = match status {
                    ReceiptStatus::Delivered => "delivered",
                    ReceiptStatus::Read => "read",
                };
                let job = NewJob {
                    integration_id: integration.id.clone(),
                    instance_id,
                    direction: INBOUND,
                    chat_key: format!("conv:{}", link.chatwoot_conversation_id),
                    dedupe_key: format!("rcpt:{}:{message_id}:{status}", integration.id),
                    payload: JobPayload::Receipt {
                        wa_message_id: message_id.clone(),
                        status: status.to_owned(),
                    }
                    .to_json()?,
                    run_at_ms: now_ms(),
                };
                self.store.enqueue_jobs(&[job]).await?;
                self.bridge.nudge();
                Ok(())
            }
            // A missed call reaches Chatwoot as the call-log message WhatsApp
            // sends with it; the signalling itself is for the event layer.
            Event::Call(_) => self.recorder.deliver(event).await,
        }
    }
}

impl Bridge {
    /// A message the API sent on the owner's behalf shows in Chatwoot as
    /// outgoing, like one the owner typed on the phone. Its WhatsApp id is
    /// its idempotency key, so an echo from WhatsApp is not posted twice.
    pub async fn mirror_sent(&self, instance_id: &str, message: &InboundMessage) -> Result<()> {
        let Some(integration) = self.store.find_integration(instance_id).await? else {
            return Ok(());
        };
        if let Some(job) = inbound_job(&integration, message)? {
            self.store.enqueue_jobs(&[job]).await?;
            self.nudge();
        }
        Ok(())
    }
}

/// The job for a WhatsApp message, or `None` when it is not routed
/// (status broadcasts, groups when the integration ignores them).
pub(crate) fn inbound_job(
    integration: &Integration,
    message: &InboundMessage,
) -> Result<Option<NewJob>> {
    if message.chat.server == BROADCAST_SERVER {
        return Ok(None);
    }
    if message.chat.is_group() && integration.flags.ignore_groups {
        return Ok(None);
    }
    let lid = (!message.chat.is_group() && !message.from_me)
        .then_some(message.sender_lid.as_ref())
        .flatten();
    let identity = ChatIdentity::of(&message.chat, lid);
    Ok(Some(NewJob {
        integration_id: integration.id.clone(),
        instance_id: integration.instance_id.clone(),
        direction: INBOUND,
        chat_key: format!("chat:{}", chat_key(&identity, &message.chat)),
        dedupe_key: format!("in:{}:{}", integration.id, message.id),
        payload: JobPayload::Inbound(Box::new(InboundJob::from(message))).to_json()?,
        run_at_ms: now_ms(),
    }))
}

/// Messages of one person share a key whichever form of their number came.
fn chat_key(identity: &ChatIdentity, chat: &Jid) -> String {
    if identity.is_group {
        chat.to_string()
    } else {
        identity.chat_jid.clone()
    }
}
