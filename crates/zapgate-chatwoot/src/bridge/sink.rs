//! Where WhatsApp events enter the bridge: its subscriber of the bus. A
//! message is acknowledged to the provider (and so to WhatsApp) only once
//! its job is stored. Messages the API sent reach it the same way, as the
//! owner's own messages.

use std::sync::Arc;

use async_trait::async_trait;
use zapgate_core::{
    Result,
    chatwoot::Integration,
    events::{AppEvent, Subscriber},
    groups::GroupChange,
    instance::ConnectionState,
    jid::{BROADCAST_SERVER, Jid},
    jobs::NewJob,
    store::Store,
    time::now_ms,
    whatsapp::{Event, InboundMessage, ReceiptStatus},
};

use super::{
    Bridge,
    identity::ChatIdentity,
    payload::{INBOUND, InboundJob, JobPayload, OUTBOUND},
    render,
};

pub struct BridgeSink {
    store: Arc<dyn Store>,
    bridge: Arc<Bridge>,
}

impl BridgeSink {
    pub fn new(store: Arc<dyn Store>, bridge: Arc<Bridge>) -> Self {
        Self { store, bridge }
    }
}

#[async_trait]
impl Subscriber for BridgeSink {
    async fn on_event(&self, event: &AppEvent) -> Result<()> {
        let event = match event {
            AppEvent::WhatsApp(event) => event,
            AppEvent::QrReady {
                instance_id,
                png_data_url,
            } => {
                if let Some(integration) = self.store.find_integration(instance_id).await?
                    && let Some(job) = self.bridge.bot_qr_job(&integration, png_data_url)
                {
                    self.store.enqueue_jobs(&[job]).await?;
                    self.bridge.nudge();
                }
                return Ok(());
            }
            AppEvent::InstanceDeleting(_) => return Ok(()),
        };
        let instance_id = event.instance_id.clone();
        match &event.event {
            Event::Session(status) => {
                let integration = self.store.find_integration(&instance_id).await?;
                if let Some(job) = integration
                    .as_ref()
                    .and_then(|integration| self.bridge.bot_state_job(integration, status))
                {
                    self.store.enqueue_jobs(&[job]).await?;
                    self.bridge.nudge();
                }
                if status.state == ConnectionState::Connected {
                    // Agent replies that waited for the phone go out now.
                    self.store
                        .wake_jobs(&instance_id, OUTBOUND, now_ms())
                        .await?;
                    self.bridge.nudge();
                    // The first connection after activation starts the
                    // history import it asked for.
                    if let Some(integration) = &integration
                        && let Err(e) = self.bridge.import_on_connect(integration).await
                    {
                        tracing::warn!(instance_id = %instance_id, error = %e, "could not start the history import");
                    }
                }
                Ok(())
            }
            Event::Message(message) => {
                let Some(integration) = self.store.find_integration(&instance_id).await? else {
                    return Ok(());
                };
                if let Some(job) = inbound_job(&integration, message)? {
                    self.store.enqueue_jobs(&[job]).await?;
                    self.bridge.nudge();
                }
                Ok(())
            }
            Event::Receipt {
                message_id, status, ..
            } => {
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
                    blob: None,
                };
                self.store.enqueue_jobs(&[job]).await?;
                self.bridge.nudge();
                Ok(())
            }
            // A missed call reaches Chatwoot as the call-log message WhatsApp
            // sends with it; the signalling itself is for the event layer.
            Event::Call(_) => Ok(()),
            Event::Group(change) => {
                let Some(integration) = self.store.find_integration(&instance_id).await? else {
                    return Ok(());
                };
                if let Some(job) = group_note_job(&integration, change)? {
                    self.store.enqueue_jobs(&[job]).await?;
                    self.bridge.nudge();
                }
                Ok(())
            }
            // Chatwoot labels are Chatwoot's own; WhatsApp's are not mirrored.
            Event::Label(_) => Ok(()),
            // A vote is a tally update, not a message anyone wrote.
            Event::PollVote(_) => Ok(()),
        }
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
    let options = &integration.options;
    if options.ignores(&message.chat) || lid.is_some_and(|lid| options.ignores(lid)) {
        return Ok(None);
    }
    let identity = ChatIdentity::of(&message.chat, lid);
    Ok(Some(NewJob {
        integration_id: integration.id.clone(),
        instance_id: integration.instance_id.clone(),
        direction: INBOUND,
        chat_key: format!("chat:{}", chat_key(&identity, &message.chat)),
        dedupe_key: format!("in:{}:{}", integration.id, message.id),
        payload: JobPayload::Inbound(Box::new(InboundJob::from(message))).to_json()?,
        run_at_ms: now_ms(),
        // The same bytes the message holds, not a copy.
        blob: message.media.as_ref().map(|m| m.data.clone()),
    }))
}

/// The note for a group change, in the group's chat order; `None` when the
/// group is not routed.
fn group_note_job(integration: &Integration, change: &GroupChange) -> Result<Option<NewJob>> {
    if integration.flags.ignore_groups || integration.options.ignores(&change.group) {
        return Ok(None);
    }
    let payload = JobPayload::GroupNote {
        id: change.id.clone(),
        chat: change.group.to_string(),
        text: render::group_change(change),
    };
    Ok(Some(NewJob {
        integration_id: integration.id.clone(),
        instance_id: integration.instance_id.clone(),
        direction: INBOUND,
        chat_key: format!("chat:{}", change.group),
        dedupe_key: format!("grp:{}:{}", integration.id, change.id),
        payload: payload.to_json()?,
        run_at_ms: now_ms(),
        blob: None,
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
