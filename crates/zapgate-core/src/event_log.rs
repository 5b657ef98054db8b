//! RyzeAPI's events module, as data: the six event names, an instance's
//! webhooks and WebSocket settings, the event log with its per-instance
//! sequence, and the webhook deliveries that ride on it. The storage
//! contract for all of it is [`EventStore`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    message_store::{MessageWrite, StatusChange, StoredMessage, StoredVote},
};

/// At most this many enabled webhooks per instance (RyzeAPI).
pub const MAX_ENABLED_WEBHOOKS: usize = 3;
/// The label RyzeAPI gives a webhook saved without one.
pub const DEFAULT_WEBHOOK_LABEL: &str = "default";
pub const MAX_WEBHOOK_LABEL_LEN: usize = 100;
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;
pub const MAX_WEBHOOK_AUTHORIZATION_LEN: usize = 2048;

/// The six event names of RyzeAPI's events module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventName {
    #[serde(rename = "message.exchange")]
    MessageExchange,
    #[serde(rename = "message.status")]
    MessageStatus,
    #[serde(rename = "call.update")]
    CallUpdate,
    #[serde(rename = "group.flow")]
    GroupFlow,
    #[serde(rename = "instance.state")]
    InstanceState,
    #[serde(rename = "label.update")]
    LabelUpdate,
}

impl EventName {
    pub const ALL: [Self; 6] = [
        Self::MessageExchange,
        Self::MessageStatus,
        Self::CallUpdate,
        Self::GroupFlow,
        Self::InstanceState,
        Self::LabelUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageExchange => "message.exchange",
            Self::MessageStatus => "message.status",
            Self::CallUpdate => "call.update",
            Self::GroupFlow => "group.flow",
            Self::InstanceState => "instance.state",
            Self::LabelUpdate => "label.update",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.as_str() == raw)
    }
}

/// Which events a subscription receives: the names given, in the order
/// given (clients compare the read-back as an ordered list); none means all.
pub fn subscribed(events: &[EventName], name: EventName) -> bool {
    events.is_empty() || events.contains(&name)
}

/// Parses a subscription's event list, keeping the caller's order and
/// dropping repeats; `field` names the body field in the error.
pub fn parse_event_names(field: &str, raw: &[String]) -> Result<Vec<EventName>> {
    let mut names = Vec::with_capacity(raw.len());
    for value in raw {
        let name = EventName::parse(value).ok_or_else(|| {
            Error::bad_request(format!(
                "invalid body: {field} has an unknown event name {value:?} (known: {})",
                EventName::ALL.map(EventName::as_str).join(", ")
            ))
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A webhook as its owner configures it. With `enabled: false` the row is
/// kept but `url`, `authorization`, `events` and `media_base64` are cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub label: String,
    pub enabled: bool,
    pub url: String,
    /// Sent as the `Authorization` header of each delivery; encrypted at rest.
    pub authorization: Option<String>,
    /// Append the event name to the URL path.
    pub by_events: bool,
    pub events: Vec<EventName>,
    pub media_base64: bool,
}

impl WebhookSettings {
    /// What is stored for a disabled webhook.
    pub fn disabled(label: String, by_events: bool) -> Self {
        Self {
            label,
            enabled: false,
            url: String::new(),
            authorization: None,
            by_events,
            events: Vec::new(),
            media_base64: false,
        }
    }
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub instance_id: String,
    pub settings: WebhookSettings,
    /// `whsec_<base64>`: the Standard Webhooks signing secret.
    pub signing_secret: String,
}

/// A new Standard Webhooks signing secret: `whsec_` and 32 random bytes in
/// base64.
pub fn new_signing_secret() -> String {
    use base64::Engine;
    let secret: [u8; 32] = crate::token::random_bytes();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(secret)
    )
}

/// The instance's one WebSocket configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebsocketSettings {
    pub enabled: bool,
    pub events: Vec<EventName>,
    pub media_base64: bool,
}

/// An event to append to an instance's log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub instance_id: String,
    pub name: EventName,
    /// The same key again (a redelivered WhatsApp message) is not stored twice.
    pub dedupe_key: String,
    /// The event's `data`, as JSON text.
    pub data: String,
}

/// A delivery queued with an appended event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook_id: String,
    /// Leased to the appending process until then: it makes the first
    /// attempt at once, as if it had claimed the delivery (and if it dies,
    /// the lease runs out and a claim takes it). `None`: queued for a claim.
    pub lease_until_ms: Option<i64>,
}

/// An event in the log. `sequence` grows by one per event of the instance,
/// in commit order, so a reader resuming after a sequence misses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// `evt_<random>`: unique, and the `webhook-id` of its deliveries.
    pub id: String,
    pub instance_id: String,
    pub sequence: i64,
    pub name: EventName,
    pub data: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    Running,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "delivered" => Self::Delivered,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: String,
    pub webhook_label: String,
    pub event_id: String,
    pub event_name: EventName,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is next tried (queued) or was last tried.
    pub run_at_ms: i64,
    /// The receiver's last HTTP status, when it answered.
    pub response_status: Option<u16>,
    pub last_error: String,
    pub updated_at_ms: i64,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct DeliveryWork {
    pub delivery: Delivery,
    pub webhook: Webhook,
    pub event: StoredEvent,
}

/// How an attempt ended, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        status: u16,
    },
    /// Tried again at `run_at_ms`.
    Retry {
        run_at_ms: i64,
        status: Option<u16>,
        error: String,
    },
    /// Parked as a dead letter.
    Dead {
        status: Option<u16>,
        error: String,
    },
    /// Never attempted: it waited too long for a place under its webhook's
    /// cap. Queued again, due now, its attempt uncounted and its last
    /// answer kept.
    Released,
}

/// Storage of the events module.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Creates or updates the instance's webhook with `settings.label`.
    /// A fourth enabled webhook is refused (`409`), atomically.
    async fn save_webhook(&self, instance_id: &str, settings: &WebhookSettings) -> Result<Webhook>;
    /// The instance's webhooks, sorted by label, disabled ones included.
    async fn webhooks(&self, instance_id: &str) -> Result<Vec<Webhook>>;

    async fn save_websocket(&self, instance_id: &str, settings: &WebsocketSettings) -> Result<()>;
    async fn websocket(&self, instance_id: &str) -> Result<Option<WebsocketSettings>>;

    /// Appends the event and stores `deliveries` (one per webhook), in one
    /// transaction; the stored event and the ids of its deliveries, in the
    /// order of `deliveries`. `None` when `dedupe_key` was stored before
    /// (nothing is queued again).
    async fn append_event(
        &self,
        event: &NewEvent,
        deliveries: &[NewDelivery],
    ) -> Result<Option<(StoredEvent, Vec<i64>)>> {
        self.record(Some(event), deliveries, None).await
    }
    /// [`Self::append_event`] for `event` when given, and `message` applied
    /// to the message store, all in one transaction.
    async fn record(
        &self,
        event: Option<&NewEvent>,
        deliveries: &[NewDelivery],
        message: Option<&MessageWrite>,
    ) -> Result<Option<(StoredEvent, Vec<i64>)>>;
    /// The stored message `id` of the instance.
    async fn message(&self, instance_id: &str, id: &str) -> Result<Option<StoredMessage>>;
    /// The statuses the message reached, oldest first.
    async fn message_history(&self, instance_id: &str, id: &str) -> Result<Vec<StatusChange>>;
    /// The latest vote of each voter on the stored poll `poll_id`.
    async fn poll_votes(&self, instance_id: &str, poll_id: &str) -> Result<Vec<StoredVote>>;
    /// Forgets one message; `false` when it was not stored.
    async fn delete_message(&self, instance_id: &str, id: &str) -> Result<bool>;
    /// Forgets messages stored before `before_ms`.
    async fn prune_messages(&self, before_ms: i64) -> Result<u64>;
    /// Stores messages of the phone's history (no event, no webhook: they
    /// are not news), where a Chatwoot import reads them. A message stored
    /// before keeps its row.
    async fn store_history(&self, messages: &[StoredMessage]) -> Result<()>;
    /// The instance's messages sent in `[from_secs, until_secs)`, by chat,
    /// then oldest first; at most `limit`.
    async fn messages_between(
        &self,
        instance_id: &str,
        from_secs: i64,
        until_secs: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>>;
    /// Up to `limit` events of the instance after `after` (a sequence), oldest first.
    async fn events_after(
        &self,
        instance_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Forgets events (and their deliveries) stored before `before_ms`.
    async fn prune_events(&self, before_ms: i64) -> Result<u64>;

    /// Leases up to `limit` due deliveries until `lease_until_ms`, taking at
    /// most `per_webhook` running ones per webhook, so a slow receiver holds
    /// back only its own deliveries. Running deliveries in `answered` (their
    /// receiver answered; the caller is storing their outcome) hold no place.
    /// Safe across processes.
    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        per_webhook: u32,
        answered: &[i64],
    ) -> Result<Vec<DeliveryWork>>;
    async fn finish_delivery(&self, delivery_id: i64, outcome: &DeliveryOutcome) -> Result<()>;
    /// The instance's most recent deliveries, newest first.
    async fn deliveries(
        &self,
        instance_id: &str,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Dead letters of the instance (or only `delivery_id`) back to the queue.
    async fn replay_deliveries(
        &self,
        instance_id: &str,
        delivery_id: Option<i64>,
        now_ms: i64,
    ) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_the_callers_order() {
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(name));
        }
        let raw = ["instance.state", "message.exchange", "instance.state"].map(String::from);
        assert_eq!(
            parse_event_names("events", &raw).unwrap(),
            vec![EventName::InstanceState, EventName::MessageExchange]
        );
        let err = parse_event_names("events", &["message.sent".into()]).unwrap_err();
        assert!(err.public_message().starts_with("invalid body: events"));
    }

    #[test]
    fn no_names_means_every_event() {
        assert!(subscribed(&[], EventName::CallUpdate));
        assert!(!subscribed(&[EventName::GroupFlow], EventName::CallUpdate));
    }
}
