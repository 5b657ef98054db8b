//! The event-log subscriber: a durable subscriber of the bus. While an
//! instance has an enabled webhook or WebSocket, each of its events is
//! appended to the log with one queued delivery per subscribed webhook, in
//! one transaction, before the bus lets the provider acknowledge WhatsApp;
//! then the stored event goes to the live WebSocket clients. Messages and
//! receipts also go to the message store, in the same transaction (and
//! alone when nobody listens), unless the retention is zero.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use zapgate_core::{
    Result,
    event_log::{
        Delivery, DeliveryStatus, DeliveryWork, EventName, EventStore, NewDelivery, NewEvent,
        Webhook, WebsocketSettings, subscribed,
    },
    events::{AppEvent, Subscriber},
    message_store::MessageWrite,
    store::Store,
    time::now_ms,
};

use crate::{
    delivery::{Deliveries, Slot},
    hub::Hub,
    payload::{self, Payload},
};

/// How long an instance's subscriptions are remembered. Saves through this
/// process are seen at once; another process's within this.
const SUBSCRIPTIONS_TTL: Duration = Duration::from_secs(1);

/// Who listens to an instance's events.
#[derive(Debug, Clone, Default)]
struct Subscriptions {
    webhooks: Vec<Webhook>,
    websocket: Option<WebsocketSettings>,
}

impl Subscriptions {
    fn websocket_wants(&self, name: EventName) -> Option<&WebsocketSettings> {
        self.websocket
            .as_ref()
            .filter(|ws| ws.enabled && subscribed(&ws.events, name))
    }

    fn webhooks_for(&self, name: EventName) -> impl Iterator<Item = &Webhook> {
        self.webhooks
            .iter()
            .filter(move |w| w.settings.enabled && subscribed(&w.settings.events, name))
    }

    fn anyone(&self) -> bool {
        self.webhooks.iter().any(|w| w.settings.enabled)
            || self.websocket.as_ref().is_some_and(|ws| ws.enabled)
    }

    /// Whether someone who hears `name` wants media bytes inline.
    fn wants_media(&self, name: EventName) -> bool {
        self.webhooks_for(name).any(|w| w.settings.media_base64)
            || self.websocket_wants(name).is_some_and(|ws| ws.media_base64)
    }
}

pub struct EventRecorder {
    store: Arc<dyn Store>,
    events: Arc<dyn EventStore>,
    hub: Arc<Hub>,
    deliveries: Arc<Deliveries>,
    cache: Mutex<HashMap<String, (Instant, Arc<Subscriptions>)>>,
}

impl EventRecorder {
    pub fn new(
        store: Arc<dyn Store>,
        events: Arc<dyn EventStore>,
        hub: Arc<Hub>,
        deliveries: Arc<Deliveries>,
    ) -> Self {
        Self {
            store,
            events,
            hub,
            deliveries,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets what the instance's subscriptions were (they were just saved).
    pub fn forget(&self, instance_id: &str) {
        self.cache.lock().expect("cache lock").remove(instance_id);
    }

    async fn subscriptions(&self, instance_id: &str) -> Result<Arc<Subscriptions>> {
        if let Some((at, subs)) = self.cache.lock().expect("cache lock").get(instance_id)
            && at.elapsed() < SUBSCRIPTIONS_TTL
        {
            return Ok(subs.clone());
        }
        let subs = Arc::new(Subscriptions {
            webhooks: self.events.webhooks(instance_id).await?,
            websocket: self.events.websocket(instance_id).await?,
        });
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(instance_id.to_owned(), (Instant::now(), subs.clone()));
        Ok(subs)
    }

    /// Logs the event built by `build` (given whether media bytes are
    /// wanted) for the instance's subscribers `subs`, with `message`.
    async fn record(
        &self,
        instance_id: &str,
        subs: &Subscriptions,
        build: impl Fn(bool) -> Option<Payload>,
        message: Option<MessageWrite>,
    ) -> Result<()> {
        let logged = build(false).and_then(|probe| {
            let name = probe.name;
            let payload = if subs.wants_media(name) {
                build(true).unwrap_or(probe)
            } else {
                probe
            };
            let webhooks: Vec<&Webhook> = subs.webhooks_for(name).collect();
            if webhooks.is_empty() && subs.websocket_wants(name).is_none() {
                return None;
            }
            let new = NewEvent {
                instance_id: instance_id.to_owned(),
                name,
                dedupe_key: payload.dedupe_key,
                data: payload.data.to_string(),
            };
            Some((new, webhooks))
        });
        let (new, webhooks) = match logged {
            Some((new, webhooks)) => (Some(new), webhooks),
            None if message.is_some() => (None, Vec::new()),
            None => return Ok(()),
        };
        // A webhook with room here gets its delivery leased to this process
        // and started as soon as the event is stored: no claim, no wait for
        // the worker. The others are queued for a claim.
        let slots: Vec<Option<Slot>> = webhooks
            .iter()
            .map(|w| self.deliveries.reserve(&w.id))
            .collect();
        let lease = self.deliveries.lease_until(now_ms());
        let deliveries: Vec<NewDelivery> = webhooks
            .iter()
            .zip(&slots)
            .map(|(w, slot)| NewDelivery {
                webhook_id: w.id.clone(),
                lease_until_ms: slot.as_ref().map(|_| lease),
            })
            .collect();
        let appended = self
            .events
            .record(new.as_ref(), &deliveries, message.as_ref())
            .await;
        let queued = webhooks
            .iter()
            .zip(&slots)
            .filter(|(_, slot)| slot.is_none())
            .map(|(w, _)| w.id.as_str());
        self.deliveries.queued(queued);
        let Some((stored, ids)) = appended? else {
            return Ok(());
        };
        for ((webhook, slot), id) in webhooks.into_iter().zip(slots).zip(ids) {
            if let Some(slot) = slot {
                let work = DeliveryWork {
                    delivery: Delivery {
                        id,
                        webhook_id: webhook.id.clone(),
                        webhook_label: webhook.settings.label.clone(),
                        event_id: stored.id.clone(),
                        event_name: stored.name,
                        status: DeliveryStatus::Running,
                        attempts: 1,
                        run_at_ms: stored.created_at_ms,
                        response_status: None,
                        last_error: String::new(),
                        updated_at_ms: stored.created_at_ms,
                    },
                    webhook: webhook.clone(),
                    event: stored.clone(),
                };
                self.deliveries.launch(slot, work);
            }
        }
        self.hub.publish(stored);
        Ok(())
    }
}

#[async_trait]
impl Subscriber for EventRecorder {
    async fn on_event(&self, event: &AppEvent) -> Result<()> {
        let instance_id = match event {
            AppEvent::WhatsApp(e) => &e.instance_id,
            AppEvent::QrReady { instance_id, .. } => instance_id,
            // Its rows go with it.
            AppEvent::InstanceDeleting(_) => return Ok(()),
        };
        let message = match event {
            AppEvent::WhatsApp(e) if self.deliveries.stores_messages() => {
                MessageWrite::of(instance_id, &e.event)
            }
            _ => None,
        };
        // Most instances have no consumer: settle that (cached) first.
        let subs = self.subscriptions(instance_id).await?;
        if !subs.anyone() {
            if message.is_some() {
                self.events.record(None, &[], message.as_ref()).await?;
            }
            return Ok(());
        }
        let Some(instance) = self.store.find_instance_by_id(instance_id).await? else {
            return Ok(());
        };
        let build = |media| match event {
            AppEvent::WhatsApp(e) => payload::of_whatsapp(&instance.name, &e.event, media),
            AppEvent::QrReady { .. } => {
                Some(payload::instance_state(&instance.name, "qr_ready", None))
            }
            AppEvent::InstanceDeleting(_) => None,
        };
        self.record(instance_id, &subs, build, message).await
    }
}
