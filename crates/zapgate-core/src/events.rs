//! The event layer: everything that happens to an instance, from WhatsApp or
//! from its own life (created, deleting), goes through one [`EventBus`] to
//! ordered subscribers: the session recorder, the Chatwoot bridge, the event
//! log with its webhook deliveries, and the WebSocket broadcast. HTTP
//! handlers and CLI commands publish through services; no door has side
//! effects of its own.
//!
//! A subscriber that stores (durable) returns only once its row is
//! committed, and the bus stops at the first error, so a provider that
//! acknowledges WhatsApp only after [`EventSink::deliver`] returned `Ok`
//! never acknowledges a message a subscriber lost. Durable subscribers are
//! idempotent: the same event again (WhatsApp redelivers what was not
//! acknowledged) is stored once.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::{
    Error, Result,
    error::Cause,
    instance::Instance,
    whatsapp::{EventSink, WhatsAppEvent},
};

/// What subscribers hear about.
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// Something the provider reported (or a message the API sent).
    WhatsApp(WhatsAppEvent),
    /// A QR code to link the phone was issued (RyzeAPI's `qr_ready`), as a
    /// PNG data URL (the Chatwoot bot contact posts it).
    QrReady {
        instance_id: String,
        png_data_url: String,
    },
    /// The instance is about to be deleted: its rows go once every
    /// subscriber has let go of it (the Chatwoot inbox stops calling us, the
    /// WhatsApp session ends).
    InstanceDeleting(Instance),
}

/// One consumer of the bus.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    async fn on_event(&self, event: &AppEvent) -> Result<()>;
}

/// The bus. Subscribers are attached once, at wiring, because some of them
/// (the provider's session closer) are built from parts that themselves
/// publish here.
#[derive(Default)]
pub struct EventBus {
    subscribers: OnceLock<Box<[Arc<dyn Subscriber>]>>,
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches the subscribers, in the order they hear every event. Called
    /// once; a second call is a wiring bug.
    pub fn attach(&self, subscribers: Vec<Arc<dyn Subscriber>>) {
        if self.subscribers.set(subscribers.into()).is_err() {
            panic!("EventBus::attach called twice");
        }
    }

    /// Hands `event` to every subscriber in order; stops at the first error.
    pub async fn publish(&self, event: &AppEvent) -> Result<()> {
        let subscribers = self
            .subscribers
            .get()
            .ok_or_else(|| Error::internal(Cause("event published before wiring".into())))?;
        for subscriber in subscribers.iter() {
            subscriber.on_event(event).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventSink for EventBus {
    async fn deliver(&self, event: WhatsAppEvent) -> Result<()> {
        self.publish(&AppEvent::WhatsApp(event)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{
        instance::SessionStatus,
        whatsapp::{Event, WhatsAppEvent},
    };

    struct Recording {
        name: &'static str,
        heard: Arc<Mutex<Vec<&'static str>>>,
        fail: bool,
    }

    #[async_trait]
    impl Subscriber for Recording {
        async fn on_event(&self, _: &AppEvent) -> Result<()> {
            self.heard.lock().unwrap().push(self.name);
            if self.fail {
                return Err(Error::internal(Cause("refused".into())));
            }
            Ok(())
        }
    }

    fn event() -> WhatsAppEvent {
        WhatsAppEvent {
            instance_id: "ins_1".into(),
            event: Event::Session(SessionStatus::disconnected()),
        }
    }

    #[tokio::test]
    async fn subscribers_hear_in_order_and_a_failure_stops_the_rest() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sub = |name, fail| -> Arc<dyn Subscriber> {
            Arc::new(Recording {
                name,
                heard: heard.clone(),
                fail,
            })
        };
        let bus = EventBus::new();
        bus.attach(vec![sub("a", false), sub("b", true), sub("c", false)]);
        assert!(bus.deliver(event()).await.is_err());
        assert_eq!(*heard.lock().unwrap(), vec!["a", "b"]);
    }

    #[tokio::test]
    async fn an_unwired_bus_refuses_instead_of_dropping() {
        assert!(EventBus::new().deliver(event()).await.is_err());
    }
}
