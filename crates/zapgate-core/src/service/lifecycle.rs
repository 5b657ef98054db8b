//! The lifecycle use cases that span doors: an account's deletion (over
//! HTTP or from the CLI) and the provider's part in an instance's deletion.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Error, Result,
    events::{AppEvent, EventBus, Subscriber},
    messages,
    store::Store,
    whatsapp::WhatsApp,
};

/// Deletes accounts the same way from every door: each instance goes
/// through the bus as in an instance deletion, then the account.
#[derive(Clone)]
pub struct AccountService {
    store: Arc<dyn Store>,
    bus: Arc<EventBus>,
}

impl AccountService {
    pub fn new(store: Arc<dyn Store>, bus: Arc<EventBus>) -> Self {
        Self { store, bus }
    }

    /// `false` when there was no such account.
    pub async fn delete(&self, account_id: &str) -> Result<bool> {
        for instance in self.store.list_instances(account_id, None).await?.iter() {
            // The account goes whatever one instance's subscribers say:
            // its rows are removed with the account below.
            let instance_id = instance.id.clone();
            if let Err(err) = self
                .bus
                .publish(&AppEvent::InstanceDeleting(instance.clone()))
                .await
            {
                tracing::warn!(%instance_id, error = %err, "an instance did not let go cleanly");
            }
        }
        let deleted = self.store.delete_account(account_id).await?;
        if deleted {
            tracing::info!(%account_id, "account deleted");
        }
        Ok(deleted)
    }
}

/// The provider's subscriber: a deleted instance's session is logged out
/// and forgotten before its rows go.
pub struct SessionCloser {
    whatsapp: Arc<dyn WhatsApp>,
}

impl SessionCloser {
    pub fn new(whatsapp: Arc<dyn WhatsApp>) -> Self {
        Self { whatsapp }
    }
}

#[async_trait]
impl Subscriber for SessionCloser {
    async fn on_event(&self, event: &AppEvent) -> Result<()> {
        let AppEvent::InstanceDeleting(instance) = event else {
            return Ok(());
        };
        self.whatsapp.remove(&instance.id).await.map_err(|err| {
            Error::internal_with(
                format!("{}: {}", messages::FAILED_TO_DELETE, err.public_message()),
                err,
            )
        })
    }
}
