//! The Chatwoot module's part in an instance's deletion: before the rows go,
//! the integration is deactivated (the inbox stops calling us and is kept,
//! queued agent replies are marked failed), whichever door deleted it.

use std::sync::Arc;

use async_trait::async_trait;
use zapgate_core::{
    Error, Result,
    events::{AppEvent, Subscriber},
};

use crate::ChatwootService;

pub struct ChatwootLifecycle {
    service: Arc<ChatwootService>,
}

impl ChatwootLifecycle {
    pub fn new(service: Arc<ChatwootService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl Subscriber for ChatwootLifecycle {
    async fn on_event(&self, event: &AppEvent) -> Result<()> {
        let AppEvent::InstanceDeleting(instance) = event else {
            return Ok(());
        };
        match self.service.deactivate(instance).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            // The deletion goes on: Chatwoot may be away for good.
            Err(err) => {
                tracing::warn!(instance_id = %instance.id, error = %err, "chatwoot deactivation on delete failed")
            }
        }
        Ok(())
    }
}
