//! The bus subscriber that keeps the persisted session state in step with
//! the provider, so a restart knows which phones were linked.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Result,
    events::{AppEvent, Subscriber},
    store::Store,
    whatsapp::Event,
};

pub struct SessionRecorder {
    store: Arc<dyn Store>,
}

impl SessionRecorder {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Subscriber for SessionRecorder {
    async fn on_event(&self, event: &AppEvent) -> Result<()> {
        let AppEvent::WhatsApp(event) = event else {
            return Ok(());
        };
        match &event.event {
            Event::Session(status) => {
                self.store
                    .set_session_status(&event.instance_id, status)
                    .await?;
                tracing::info!(
                    instance_id = %event.instance_id,
                    state = status.state.as_str(),
                    "session state changed"
                );
            }
            Event::Message(message) => tracing::debug!(
                instance_id = %event.instance_id,
                message_id = %message.id,
                from_me = message.from_me,
                "message received"
            ),
            Event::Receipt {
                message_id, status, ..
            } => tracing::debug!(
                instance_id = %event.instance_id,
                %message_id,
                ?status,
                "receipt received"
            ),
            Event::Call(call) => tracing::debug!(
                instance_id = %event.instance_id,
                call_id = %call.id,
                status = call.status.as_str(),
                "call"
            ),
            Event::Group(change) => tracing::debug!(
                instance_id = %event.instance_id,
                group = %change.group,
                kind = change.kind.as_str(),
                "group change"
            ),
            Event::Label(change) => tracing::debug!(
                instance_id = %event.instance_id,
                label_id = %change.label_id,
                kind = change.kind.as_str(),
                "label change"
            ),
            Event::PollVote(vote) => tracing::debug!(
                instance_id = %event.instance_id,
                poll_id = %vote.poll_id,
                "poll vote"
            ),
        }
        Ok(())
    }
}
