//! The WebSocket transport, watched: the crate retries a refused connection
//! quietly in its run loop and emits no event for it, so a `connect` call
//! waiting for a QR code would only learn of the failure at its deadline.
//! This wrapper reports every failed dial to the session, which answers the
//! waiting caller at once with the reason.

use std::sync::Arc;

use whatsapp_rust::{
    anyhow, async_channel, async_trait,
    wacore::net::{Transport, TransportEvent, TransportFactory},
};

/// Told about each failed dial, with the transport's own reason.
pub(super) type DialFailed = Arc<dyn Fn(String) + Send + Sync>;

pub(super) struct ObservedTransportFactory {
    inner: Arc<dyn TransportFactory>,
    on_failure: DialFailed,
}

impl ObservedTransportFactory {
    pub(super) fn new(inner: Arc<dyn TransportFactory>, on_failure: DialFailed) -> Self {
        Self { inner, on_failure }
    }
}

#[async_trait]
impl TransportFactory for ObservedTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), anyhow::Error> {
        let created = self.inner.create_transport().await;
        if let Err(err) = &created {
            (self.on_failure)(format!("{err:#}"));
        }
        created
    }
}
