//! The events module's use cases, called by the HTTP handlers: webhooks and
//! the WebSocket setting (saved, then heard by the recorder at once), the
//! delivery history and its replay, and the event log read by cursor.

use std::sync::Arc;

use tokio::sync::broadcast;
use zapgate_core::{
    Error, Result,
    event_log::{
        DEFAULT_WEBHOOK_LABEL, Delivery, DeliveryStatus, EventStore, StoredEvent, Webhook,
        WebhookSettings, WebsocketSettings,
    },
    instance::Instance,
    message_store::{MESSAGE_NOT_FOUND, StatusChange, StoredMessage, StoredVote, stored},
    time::now_ms,
    whatsapp::{HistorySink, InboundMessage},
};

use crate::{delivery::Deliveries, hub::Hub, payload, recorder::EventRecorder};

pub const NO_MESSAGE_STORE: &str =
    "the message store is off (ZAPGATE_MESSAGE_RETENTION_DAYS=0): history has nowhere to go";

pub const WEBHOOK_NOT_FOUND: &str = "Webhook not found";
pub const WEBSOCKET_NOT_ENABLED: &str = "WebSocket is not enabled for this instance. Configure it first using POST /api/events/websocket/";

#[derive(Clone)]
pub struct EventsService {
    events: Arc<dyn EventStore>,
    recorder: Arc<EventRecorder>,
    deliveries: Arc<Deliveries>,
    hub: Arc<Hub>,
}

impl EventsService {
    pub fn new(
        events: Arc<dyn EventStore>,
        recorder: Arc<EventRecorder>,
        deliveries: Arc<Deliveries>,
        hub: Arc<Hub>,
    ) -> Self {
        Self {
            events,
            recorder,
            deliveries,
            hub,
        }
    }

    /// Creates or updates the webhook `settings.label` (already validated).
    pub async fn save_webhook(
        &self,
        instance: &Instance,
        settings: WebhookSettings,
    ) -> Result<Webhook> {
        let settings = if settings.enabled {
            settings
        } else {
            WebhookSettings::disabled(settings.label, settings.by_events)
        };
        let saved = self.events.save_webhook(&instance.id, &settings).await?;
        self.recorder.forget(&instance.id);
        tracing::info!(instance_id = %instance.id, label = %saved.settings.label, enabled = saved.settings.enabled, "webhook saved");
        Ok(saved)
    }

    /// Keeps messages of the phone's history in the message store (no
    /// event: they are not news); a Chatwoot import reads them there.
    pub async fn store_history(
        &self,
        instance: &Instance,
        messages: &[InboundMessage],
    ) -> Result<usize> {
        self.keep_history(&instance.id, messages).await
    }

    async fn keep_history(&self, instance_id: &str, messages: &[InboundMessage]) -> Result<usize> {
        if !self.deliveries.stores_messages() {
            return Err(Error::Unavailable(NO_MESSAGE_STORE.to_owned()));
        }
        let rows: Vec<StoredMessage> = messages.iter().map(|m| stored(instance_id, m)).collect();
        self.events.store_history(&rows).await?;
        Ok(rows.len())
    }

    pub async fn webhooks(&self, instance: &Instance) -> Result<Vec<Webhook>> {
        self.events.webhooks(&instance.id).await
    }

    /// The webhook with `label` (empty means `default`).
    pub async fn webhook(&self, instance: &Instance, label: &str) -> Result<Webhook> {
        let label = if label.is_empty() {
            DEFAULT_WEBHOOK_LABEL
        } else {
            label
        };
        self.webhooks(instance)
            .await?
            .into_iter()
            .find(|w| w.settings.label == label)
            .ok_or_else(|| Error::not_found(WEBHOOK_NOT_FOUND))
    }

    /// Saves the WebSocket setting; disabling clears its events and media
    /// flag. Clients already connected stay; new ones are refused.
    pub async fn save_websocket(
        &self,
        instance: &Instance,
        settings: WebsocketSettings,
    ) -> Result<WebsocketSettings> {
        let settings = if settings.enabled {
            settings
        } else {
            WebsocketSettings::default()
        };
        self.events.save_websocket(&instance.id, &settings).await?;
        self.recorder.forget(&instance.id);
        Ok(settings)
    }

    pub async fn websocket(&self, instance: &Instance) -> Result<Option<WebsocketSettings>> {
        self.events.websocket(&instance.id).await
    }

    /// The setting a new WebSocket client runs under; refused when not enabled.
    pub async fn open_websocket(
        &self,
        instance: &Instance,
    ) -> Result<(WebsocketSettings, broadcast::Receiver<Arc<StoredEvent>>)> {
        let settings = self
            .websocket(instance)
            .await?
            .filter(|ws| ws.enabled)
            .ok_or_else(|| {
                Error::bad_request(format!("{WEBSOCKET_NOT_ENABLED}{}", instance.name))
            })?;
        // Subscribed before any replay from the log, so nothing falls between.
        Ok((settings, self.hub.subscribe(&instance.id)))
    }

    pub async fn deliveries(
        &self,
        instance: &Instance,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.events.deliveries(&instance.id, status, limit).await
    }

    /// Dead letters (or one of them) back to the queue; how many.
    pub async fn replay(&self, instance: &Instance, delivery_id: Option<i64>) -> Result<u64> {
        let replayed = self
            .events
            .replay_deliveries(&instance.id, delivery_id, now_ms())
            .await?;
        if replayed > 0 {
            self.deliveries.nudge();
        }
        Ok(replayed)
    }

    pub async fn log(
        &self,
        instance: &Instance,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        self.events.events_after(&instance.id, after, limit).await
    }

    /// The envelope of a stored event as a consumer of `instance` receives it.
    pub fn envelope(
        &self,
        event: &StoredEvent,
        media: bool,
        instance: &Instance,
        token: &str,
    ) -> String {
        payload::envelope(
            event,
            media,
            self.deliveries.public_url(),
            &instance.name,
            token,
        )
    }

    /// The stored message `id` of `instance` (`404 Message not found`).
    pub async fn message(&self, instance: &Instance, id: &str) -> Result<StoredMessage> {
        self.events
            .message(&instance.id, id)
            .await?
            .ok_or_else(|| Error::not_found(MESSAGE_NOT_FOUND))
    }

    /// The statuses `id` reached, oldest first.
    pub async fn message_history(
        &self,
        instance: &Instance,
        id: &str,
    ) -> Result<Vec<StatusChange>> {
        self.events.message_history(&instance.id, id).await
    }

    /// The latest vote of each voter on the stored poll `id`.
    pub async fn poll_votes(&self, instance: &Instance, id: &str) -> Result<Vec<StoredVote>> {
        self.events.poll_votes(&instance.id, id).await
    }

    /// Forgets a stored message (deleted for me).
    pub async fn forget_message(&self, instance: &Instance, id: &str) -> Result<()> {
        self.events.delete_message(&instance.id, id).await.map(drop)
    }

    /// `replyTo` of a send: a message of this instance in the store. With
    /// the store off (retention 0) nothing could pass, so it is sent as given.
    pub async fn check_reply(&self, instance: &Instance, reply_to: Option<&str>) -> Result<()> {
        match reply_to {
            Some(id) if self.deliveries.stores_messages() => {
                self.message(instance, id).await.map(drop)
            }
            _ => Ok(()),
        }
    }
}

/// The `web` provider's history for a Chatwoot import lands where the
/// sandbox's history fixture does.
#[async_trait::async_trait]
impl HistorySink for EventsService {
    async fn store_history(&self, instance_id: &str, messages: &[InboundMessage]) -> Result<usize> {
        self.keep_history(instance_id, messages).await
    }
}
