//! Webhook deliveries: a worker claims due deliveries from the durable queue
//! (leased, so a crashed process's work is taken again), POSTs each event
//! signed per Standard Webhooks, and records the outcome: delivered, retried
//! with exponential backoff and jitter (`Retry-After` honoured, clamped), or
//! parked as a dead letter once the retry window is over or the receiver
//! refuses for good. At most a few deliveries per webhook run at once, so a
//! slow receiver holds back only its own.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use reqwest::{StatusCode, header};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use zapgate_core::{
    Result,
    event_log::{DeliveryOutcome, DeliveryWork, EventStore},
    store::Store,
    time::now_ms,
};

use crate::{payload, signing};

/// How deliveries are paced; every value comes from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// One attempt's budget (receivers may take over 10 s to answer).
    pub timeout: Duration,
    /// First retry delay; doubles per attempt up to `retry_max`, ±20%.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long after the event a delivery is still retried.
    pub retry_for: Duration,
    /// Deliveries waiting at once for one webhook's receiver to answer.
    /// As many again may be leased to this process, about to go (see
    /// [`LEASED_PER_PLACE`]).
    pub per_webhook: u32,
    /// Deliveries running at once in this process.
    pub max_in_flight: u32,
    /// How often an idle worker looks for due work (new work wakes it).
    pub poll: Duration,
    /// How long the event log keeps events.
    pub retention: Duration,
    /// How long the message store keeps messages; zero stores none.
    pub message_retention: Duration,
}

/// The longest `Retry-After` we honour: a receiver cannot park its queue for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How long past an attempt's timeout its lease lasts.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How long a leased delivery may wait for a place on the wire before it
/// goes back to the queue. A webhook's events are stored in bursts (one
/// commit stores many), so more of its deliveries start at once than its
/// cap lets on the wire; a fast receiver frees places within milliseconds.
const PLACE_WAIT: Duration = Duration::from_secs(2);
/// Per place on the wire, how many deliveries of a webhook may be leased
/// here at once (waiting for their event's commit, for a place, or on the
/// wire). Counting only the wire would let a slow receiver's leases pile
/// up; counting the commit's wait too (as the cap alone did) sent every
/// delivery through claims once commits took a few milliseconds: at 400
/// events/s a webhook holds ~13 deliveries in a 30 ms commit.
const LEASED_PER_PLACE: u32 = 2;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub struct Deliveries {
    store: Arc<dyn Store>,
    events: Arc<dyn EventStore>,
    client: reqwest::Client,
    settings: DeliverySettings,
    /// What `instanceData.baseUrl` says.
    public_url: String,
    wake: Notify,
    in_flight: Arc<Semaphore>,
    /// Set at shutdown: no new claims.
    stopping: AtomicBool,
    /// Instance tokens never change, so each is read and decrypted once
    /// (bounded: cleared when full).
    tokens: Mutex<HashMap<String, String>>,
    /// Deliveries running here, per webhook, and which webhooks have
    /// deliveries waiting for a claim.
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Per webhook with deliveries leased here and not answered yet.
    hooks: HashMap<String, Hook>,
    /// Deliveries answered whose outcome is not stored yet: a claim does
    /// not count them against their webhook's cap. (Counting them made the
    /// store's write latency cap each webhook's throughput once its
    /// deliveries went through claims: 8 places / (answer + write + claim).)
    answered: HashSet<i64>,
    /// Webhooks with deliveries queued for a claim, by the claim round at
    /// which the last of them was known to be stored (`u64::MAX` while one
    /// is being stored): a place freed on such a webhook wakes the worker.
    /// Its new deliveries do not queue behind them: they did while deliveries
    /// started in strict id order, and then one refusal under load sent all
    /// of a webhook's later deliveries through claims, which took ~1,400 a
    /// second: above that the backlog never drained. (With many deliveries
    /// of a webhook on the wire at once, and retries, a receiver never saw
    /// them in order anyway.)
    backlog: HashMap<String, u64>,
    /// Claims started.
    round: u64,
}

/// A webhook's deliveries here.
struct Hook {
    /// Its places on the wire, `per_webhook` of them, taken in turn (a
    /// fair semaphore: each webhook's deliveries start in the order they
    /// asked).
    places: Arc<Semaphore>,
    /// Its deliveries leased here and not answered yet.
    leased: u32,
}

/// A delivery slot held for one webhook: one of its leases here (until
/// [`Slot::answered`]), a place on its wire once taken (until then too),
/// and one among the process's deliveries in flight
/// (until the outcome is stored, or the delivery was never stored). Given
/// back when dropped.
pub struct Slot {
    deliveries: Arc<Deliveries>,
    webhook_id: String,
    places: Arc<Semaphore>,
    place: Option<OwnedSemaphorePermit>,
    /// The last moment it may take a place (its lease covers the wait).
    start_by: tokio::time::Instant,
    answered: bool,
    /// The delivery answered, until its outcome is stored.
    recording: Option<i64>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Waits for a place on the webhook's wire; `false` when none came
    /// free in time.
    async fn take_place(&mut self) -> bool {
        let place = tokio::time::timeout_at(self.start_by, self.places.clone().acquire_owned());
        match place.await {
            Ok(Ok(place)) => {
                self.place = Some(place);
                true
            }
            _ => false,
        }
    }

    /// The receiver answered delivery `delivery_id` (or it never went
    /// out): its place and its lease are free, here and for claims, while
    /// its outcome is stored.
    fn answered(&mut self, delivery_id: Option<i64>) {
        if !self.answered {
            self.answered = true;
            self.place = None;
            self.recording = delivery_id;
            self.deliveries.answered(&self.webhook_id, delivery_id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.answered(None);
        if let Some(delivery_id) = self.recording {
            self.deliveries.recorded(delivery_id);
        }
    }
}

const MAX_CACHED_TOKENS: usize = 10_000;

impl Deliveries {
    /// `client` must refuse private addresses per the operator's policy and
    /// follow no redirect (the wiring builds it).
    pub fn new(
        store: Arc<dyn Store>,
        events: Arc<dyn EventStore>,
        client: reqwest::Client,
        settings: DeliverySettings,
        public_url: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            events,
            client,
            settings,
            public_url,
            wake: Notify::new(),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight as usize)),
            stopping: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            slots: Mutex::new(Slots::default()),
        })
    }

    /// What `instanceData.baseUrl` says in every envelope.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// New work is stored: look now instead of at the next poll.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// A slot to deliver an event being appended for `webhook_id` right
    /// away, without waiting for a claim: when the webhook has room for
    /// another lease here and the process has room. `None`: the delivery
    /// is queued for a claim.
    pub fn reserve(self: &Arc<Self>, webhook_id: &str) -> Option<Slot> {
        let mut slots = self.slots.lock().expect("slots lock");
        let leased = slots.hooks.get(webhook_id).map_or(0, |hook| hook.leased);
        let permit = (!self.stopping.load(Ordering::SeqCst)
            && leased < self.settings.per_webhook.saturating_mul(LEASED_PER_PLACE))
        .then(|| self.in_flight.clone().try_acquire_owned().ok())
        .flatten();
        let Some(permit) = permit else {
            slots.backlog.insert(webhook_id.to_owned(), u64::MAX);
            return None;
        };
        Some(self.slot(&mut slots, webhook_id, permit))
    }

    /// Counts a delivery of `webhook_id` in, under `permit`.
    fn slot(
        self: &Arc<Self>,
        slots: &mut Slots,
        webhook_id: &str,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        let per_webhook = self.settings.per_webhook as usize;
        let hook = slots
            .hooks
            .entry(webhook_id.to_owned())
            .or_insert_with(|| Hook {
                places: Arc::new(Semaphore::new(per_webhook)),
                leased: 0,
            });
        hook.leased += 1;
        Slot {
            deliveries: self.clone(),
            webhook_id: webhook_id.to_owned(),
            places: hook.places.clone(),
            place: None,
            start_by: tokio::time::Instant::now() + PLACE_WAIT,
            answered: false,
            recording: None,
            _permit: permit,
        }
    }

    /// The deliveries [`Self::reserve`] refused for `webhook_ids` are
    /// stored (or failed to be): the next claim takes them.
    pub fn queued<'a>(&self, webhook_ids: impl IntoIterator<Item = &'a str>) {
        let mut slots = self.slots.lock().expect("slots lock");
        let round = slots.round;
        let mut any = false;
        for webhook_id in webhook_ids {
            slots.backlog.insert(webhook_id.to_owned(), round);
            any = true;
        }
        drop(slots);
        if any {
            self.nudge();
        }
    }

    /// Until when a delivery leased now is leased to this process: it
    /// takes a place on the wire within [`PLACE_WAIT`] and its attempt ends
    /// by its timeout; past that and a margin to record the outcome, its
    /// process died and another may take the delivery.
    pub fn lease_until(&self, now_ms: i64) -> i64 {
        now_ms + (PLACE_WAIT + self.settings.timeout + LEASE_MARGIN).as_millis() as i64
    }

    /// Makes the attempt of `work` under `slot` once a place on its
    /// webhook's wire is free, then records its outcome. A delivery that
    /// found no place in time goes back to the queue.
    pub fn launch(self: &Arc<Self>, mut slot: Slot, work: DeliveryWork) {
        let worker = self.clone();
        tokio::spawn(async move {
            let delivery_id = work.delivery.id;
            let outcome = if slot.take_place().await {
                worker.attempt_outcome(&work).await
            } else {
                tracing::debug!(delivery_id, webhook_id = %work.webhook.id,
                    "no place on the webhook's wire in time: the delivery is queued again");
                DeliveryOutcome::Released
            };
            slot.answered(Some(delivery_id));
            worker.record(delivery_id, &outcome).await;
            drop(slot);
            if outcome == DeliveryOutcome::Released {
                worker.queued([work.webhook.id.as_str()]);
            }
        });
    }

    /// Runs the worker until the process ends.
    pub fn start(self: &Arc<Self>) {
        let worker = self.clone();
        tokio::spawn(async move { worker.run().await });
    }

    /// Stops claiming and lets running deliveries finish within `grace`;
    /// those still running then are taken again after their lease, by this
    /// process's next start or another process.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let all = self.settings.max_in_flight;
        if tokio::time::timeout(grace, self.in_flight.acquire_many(all))
            .await
            .is_err()
        {
            let running = all as usize - self.in_flight.available_permits();
            tracing::warn!(
                running,
                "webhook deliveries still running at shutdown: they are taken again after their lease"
            );
        }
    }

    async fn run(self: Arc<Self>) {
        let mut last_prune = now_ms();
        while !self.stopping.load(Ordering::SeqCst) {
            let again = self.run_due().await;
            if now_ms() - last_prune > PRUNE_EVERY.as_millis() as i64 {
                last_prune = now_ms();
                self.prune().await;
            }
            if !again {
                let _ = tokio::time::timeout(self.settings.poll, self.wake.notified()).await;
            }
        }
    }

    /// Claims as many due deliveries as there are free slots and starts
    /// them; `true` when more may be due now (every free slot was filled,
    /// or a slot just came free). Otherwise the worker waits for new work,
    /// a freed slot its webhook's deliveries wait for, or the poll: no
    /// claim is spent finding nothing.
    async fn run_due(self: &Arc<Self>) -> bool {
        let free = self.in_flight.available_permits();
        if free == 0 {
            // Wait for a slot rather than spin.
            if let Ok(permit) = self.in_flight.clone().acquire_owned().await {
                drop(permit);
            }
            return true;
        }
        let now = now_ms();
        let (round, answered) = {
            let mut slots = self.slots.lock().expect("slots lock");
            slots.round += 1;
            (
                slots.round,
                slots.answered.iter().copied().collect::<Vec<_>>(),
            )
        };
        let claimed = match self
            .events
            .claim_deliveries(
                now,
                self.lease_until(now),
                free as u32,
                self.settings.per_webhook,
                &answered,
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "could not claim webhook deliveries");
                return false;
            }
        };
        let full = claimed.len() == free;
        for work in claimed {
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                break;
            };
            let slot = self.slot(
                &mut self.slots.lock().expect("slots lock"),
                &work.webhook.id,
                permit,
            );
            self.launch(slot, work);
        }
        if !full {
            // Every due delivery stored before this claim began was taken,
            // but for those of webhooks at their cap.
            let mut slots = self.slots.lock().expect("slots lock");
            let Slots { hooks, backlog, .. } = &mut *slots;
            backlog.retain(|webhook_id, stored_at| {
                *stored_at >= round
                    || hooks.get(webhook_id).map_or(0, |hook| hook.leased)
                        >= self.settings.per_webhook
            });
        }
        full
    }

    /// A delivery of `webhook_id` (stored as `delivery_id`) was answered by
    /// its receiver. When a claim counted the webhook at its cap, or it has
    /// deliveries queued for a claim, due deliveries may be waiting for the
    /// place this frees: the next claim need not wait for the poll.
    /// Otherwise every due one was claimed, and a new one starts at once or
    /// wakes the worker itself, so no claim is spent finding nothing.
    /// (Another process's deliveries count towards the cap too: what they
    /// hold back waits for the poll.)
    fn answered(&self, webhook_id: &str, delivery_id: Option<i64>) {
        let mut slots = self.slots.lock().expect("slots lock");
        let waiting = slots.backlog.contains_key(webhook_id);
        let was_full = match slots.hooks.get_mut(webhook_id) {
            Some(hook) => {
                let was_full = hook.leased >= self.settings.per_webhook;
                hook.leased -= 1;
                if hook.leased == 0 {
                    slots.hooks.remove(webhook_id);
                }
                was_full
            }
            None => true,
        };
        slots.answered.extend(delivery_id);
        drop(slots);
        if was_full || waiting {
            self.nudge();
        }
    }

    /// The outcome of answered delivery `delivery_id` is stored (or could
    /// not be: its lease runs out).
    fn recorded(&self, delivery_id: i64) {
        self.slots
            .lock()
            .expect("slots lock")
            .answered
            .remove(&delivery_id);
    }

    /// Whether messages go to the message store.
    pub fn stores_messages(&self) -> bool {
        !self.settings.message_retention.is_zero()
    }

    async fn prune(&self) {
        let before = now_ms() - self.settings.retention.as_millis() as i64;
        match self.events.prune_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old events pruned from the event log"),
            Err(err) => tracing::warn!(error = %err, "could not prune the event log"),
        }
        // With the store off, what an earlier run stored goes too.
        let keep = i64::try_from(self.settings.message_retention.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms().saturating_sub(keep);
        match self.events.prune_messages(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old messages pruned from the message store"),
            Err(err) => tracing::warn!(error = %err, "could not prune the message store"),
        }
    }

    /// The outcome of one attempt at `work`, logged.
    async fn attempt_outcome(&self, work: &DeliveryWork) -> DeliveryOutcome {
        let delivery_id = work.delivery.id;
        let outcome = match self.attempt(work).await {
            Ok(outcome) => outcome,
            // Ours, not the receiver's (the instance's token could not be read...).
            Err(err) => {
                tracing::warn!(delivery_id, error = %err, "webhook delivery could not be prepared");
                self.failed(work, None, "internal error preparing the delivery", None)
            }
        };
        match &outcome {
            DeliveryOutcome::Delivered { .. } | DeliveryOutcome::Released => {}
            DeliveryOutcome::Retry { error, .. } => tracing::debug!(
                delivery_id, webhook_id = %work.webhook.id, %error, "webhook delivery will be retried"
            ),
            DeliveryOutcome::Dead { error, .. } => tracing::warn!(
                delivery_id, webhook_id = %work.webhook.id, %error, "webhook delivery parked as a dead letter"
            ),
        }
        outcome
    }

    async fn record(&self, delivery_id: i64, outcome: &DeliveryOutcome) {
        if let Err(err) = self.events.finish_delivery(delivery_id, outcome).await {
            // The lease runs out and the delivery is tried again: at least once.
            tracing::warn!(delivery_id, error = %err, "could not record a webhook delivery");
        }
    }

    async fn attempt(&self, work: &DeliveryWork) -> Result<DeliveryOutcome> {
        let Some(instance) = self
            .store
            .find_instance_by_id(&work.event.instance_id)
            .await?
        else {
            return Ok(DeliveryOutcome::Dead {
                status: None,
                error: "the instance was deleted".into(),
            });
        };
        let token = self.instance_token(&instance.id).await?;
        let body = payload::envelope(
            &work.event,
            work.webhook.settings.media_base64,
            &self.public_url,
            &instance.name,
            &token,
        );
        let url = target_url(
            &work.webhook.settings.url,
            work.webhook.settings.by_events,
            work.event.name.as_str(),
        );
        let timestamp = now_ms() / 1000;
        let signature = signing::sign(
            &work.webhook.signing_secret,
            &work.event.id,
            timestamp,
            body.as_bytes(),
        )?;
        let mut request = self
            .client
            .post(url)
            .timeout(self.settings.timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &work.event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        if let Some(authorization) = &work.webhook.settings.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        Ok(match request.send().await {
            Ok(response) if response.status().is_success() => DeliveryOutcome::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let error = format!("the receiver answered HTTP {}", status.as_u16());
                if refuses_for_good(status) {
                    DeliveryOutcome::Dead {
                        status: Some(status.as_u16()),
                        error,
                    }
                } else {
                    self.failed(work, Some(status.as_u16()), &error, retry_after)
                }
            }
            Err(err) => {
                let error = if err.is_timeout() {
                    format!(
                        "the receiver did not answer within {}s",
                        self.settings.timeout.as_secs()
                    )
                } else {
                    format!("the receiver could not be reached: {}", describe(err))
                };
                self.failed(work, None, &error, None)
            }
        })
    }

    async fn instance_token(&self, instance_id: &str) -> Result<String> {
        if let Some(token) = self.tokens.lock().expect("token cache").get(instance_id) {
            return Ok(token.clone());
        }
        let token = self
            .store
            .instance_token(instance_id)
            .await?
            .expose()
            .to_owned();
        let mut tokens = self.tokens.lock().expect("token cache");
        if tokens.len() >= MAX_CACHED_TOKENS {
            tokens.clear();
        }
        tokens.insert(instance_id.to_owned(), token.clone());
        Ok(token)
    }

    /// A failed attempt: again later, or a dead letter once the event is
    /// older than the retry window.
    fn failed(
        &self,
        work: &DeliveryWork,
        status: Option<u16>,
        error: &str,
        retry_after: Option<Duration>,
    ) -> DeliveryOutcome {
        let now = now_ms();
        let age = now - work.event.created_at_ms;
        if age > self.settings.retry_for.as_millis() as i64 {
            return DeliveryOutcome::Dead {
                status,
                error: format!("{error}; gave up after {} attempts", work.delivery.attempts),
            };
        }
        let delay = retry_after
            .map(|d| d.min(MAX_RETRY_AFTER))
            .unwrap_or_else(|| backoff(&self.settings, work.delivery.attempts));
        DeliveryOutcome::Retry {
            run_at_ms: now + delay.as_millis() as i64,
            status,
            error: error.to_owned(),
        }
    }
}

/// The URL a delivery goes to: with `by_events`, the event name is appended
/// to the path (`https://app/wh` → `https://app/wh/message.exchange`).
fn target_url(url: &str, by_events: bool, event: &str) -> String {
    if !by_events {
        return url.to_owned();
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let path = format!("{}/{event}", parsed.path().trim_end_matches('/'));
            parsed.set_path(&path);
            parsed.to_string()
        }
        Err(_) => format!("{}/{event}", url.trim_end_matches('/')),
    }
}

/// Statuses that no retry will change; the delivery waits as a dead letter
/// for the owner to fix the receiver and replay it.
fn refuses_for_good(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::REQUEST_TIMEOUT
                | StatusCode::CONFLICT
                | StatusCode::TOO_EARLY
                | StatusCode::TOO_MANY_REQUESTS
        )
}

/// `Retry-After` in seconds (an HTTP date is read as "soon": the default
/// backoff applies).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The delay before attempt `attempts + 1`: doubling from the base, capped, ±20%.
fn backoff(settings: &DeliverySettings, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let raw = settings
        .retry_base
        .saturating_mul(1u32 << exponent)
        .min(settings.retry_max);
    let jitter = zapgate_core::token::random_bytes::<1>()[0] as f64 / 255.0 * 0.4 + 0.8;
    raw.mul_f64(jitter)
}

/// The error's chain, without the URL (it may carry credentials).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            timeout: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(86_400),
            per_webhook: 8,
            max_in_flight: 64,
            poll: Duration::from_millis(200),
            retention: Duration::from_secs(72 * 3600),
            message_retention: Duration::from_secs(30 * 86_400),
        }
    }

    /// Deliveries on a fresh SQLite store, at most one per webhook at once,
    /// and the store.
    async fn one_per_webhook(
        dir: &tempfile::TempDir,
    ) -> (Arc<Deliveries>, Arc<zapgate_store::SqlStore>) {
        let url = format!("sqlite:{}", dir.path().join("zapgate.db").display());
        let store =
            zapgate_store::SqlStore::connect(&url, zapgate_store::SecretBox::new([7; 32], vec![]))
                .await
                .expect("connect");
        store.migrate().await.expect("migrate");
        let store = Arc::new(store);
        let deliveries = Deliveries::new(
            store.clone(),
            store.clone(),
            reqwest::Client::new(),
            DeliverySettings {
                per_webhook: 1,
                ..settings()
            },
            "http://zapgate.test".to_owned(),
        );
        (deliveries, store)
    }

    /// An instance with one enabled webhook, to a port nothing listens on.
    async fn instance_with_webhook(store: &zapgate_store::SqlStore) -> (String, String) {
        use zapgate_core::{
            account::NewAccount,
            event_log::{EventName, WebhookSettings},
            instance::{InstanceName, InstanceSettings, NewInstance, WebhookConfig},
            token::Token,
        };
        let account = store
            .create_account(
                &NewAccount::parse("Deliveries", 1, None).expect("account"),
                &Token::generate_account(),
            )
            .await
            .expect("create account");
        let new = NewInstance {
            name: InstanceName::parse("suporte").expect("name"),
            token: Token::generate_instance(),
            settings: InstanceSettings::default(),
            webhook: WebhookConfig::default(),
            webhook_authorization: None,
        };
        let instance = store
            .create_instance(&account, &new)
            .await
            .expect("create instance");
        let settings = WebhookSettings {
            label: "default".into(),
            enabled: true,
            url: "http://127.0.0.1:9/hook".into(),
            authorization: None,
            by_events: false,
            events: vec![EventName::MessageExchange],
            media_base64: false,
        };
        let webhook = store
            .save_webhook(&instance.id, &settings)
            .await
            .expect("save webhook");
        (instance.id, webhook.id)
    }

    #[tokio::test]
    async fn a_webhook_place_is_free_once_the_receiver_answered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (deliveries, _) = one_per_webhook(&dir).await;
        // One place on the wire, and one more lease about to go.
        let mut first = deliveries.reserve("wh_1").expect("under the cap");
        let second = deliveries.reserve("wh_1").expect("leased, about to go");
        assert!(deliveries.reserve("wh_1").is_none(), "at the cap");
        let other = deliveries
            .reserve("wh_2")
            .expect("another webhook's own cap");
        first.answered(None);
        // Its outcome is not stored yet, but its receiver is free.
        let third = deliveries
            .reserve("wh_1")
            .expect("the first delivery was answered");
        assert!(deliveries.reserve("wh_1").is_none(), "at the cap again");
        drop((first, second, third, other));
    }

    #[tokio::test]
    async fn an_answered_delivery_holds_no_place_for_a_claim() {
        use zapgate_core::event_log::{NewDelivery, NewEvent};
        let dir = tempfile::tempdir().expect("temp dir");
        let (deliveries, store) = one_per_webhook(&dir).await;
        let (instance_id, webhook_id) = instance_with_webhook(&store).await;
        let event = |key: &str| NewEvent {
            instance_id: instance_id.clone(),
            name: zapgate_core::event_log::EventName::MessageExchange,
            dedupe_key: key.into(),
            data: "{}".into(),
        };
        let mut first = deliveries.reserve(&webhook_id).expect("under the cap");
        let leased = NewDelivery {
            webhook_id: webhook_id.clone(),
            lease_until_ms: Some(deliveries.lease_until(now_ms())),
        };
        let (_, first_ids) = store
            .append_event(&event("k1"), &[leased])
            .await
            .expect("append")
            .expect("new event");
        // A lease that is never stored: with it, no more are taken here.
        let unstored = deliveries.reserve(&webhook_id).expect("one more lease");
        assert!(deliveries.reserve(&webhook_id).is_none(), "at the cap");
        let waiting = NewDelivery {
            webhook_id: webhook_id.clone(),
            lease_until_ms: None,
        };
        let (_, waiting_ids) = store
            .append_event(&event("k2"), &[waiting])
            .await
            .expect("append")
            .expect("new event");
        deliveries.queued([webhook_id.as_str()]);
        let attempts = || async {
            let listed = store
                .deliveries(&instance_id, None, 10)
                .await
                .expect("list");
            listed
                .iter()
                .find(|d| d.id == waiting_ids[0])
                .expect("listed")
                .attempts
        };
        assert!(!deliveries.run_due().await);
        assert_eq!(attempts().await, 0, "the first one holds the only place");
        // Answered, its outcome not stored yet: the place is free.
        first.answered(Some(first_ids[0]));
        assert!(!deliveries.run_due().await);
        assert_eq!(attempts().await, 1, "claimed behind the answered one");
        drop((first, unstored));
    }

    #[tokio::test]
    async fn a_lease_with_no_place_in_time_goes_back_to_the_queue_unattempted() {
        use zapgate_core::event_log::{DeliveryStatus, NewDelivery, NewEvent};
        let dir = tempfile::tempdir().expect("temp dir");
        let (deliveries, store) = one_per_webhook(&dir).await;
        let (instance_id, webhook_id) = instance_with_webhook(&store).await;
        // The webhook's one place on the wire is taken.
        let mut on_the_wire = deliveries.reserve(&webhook_id).expect("under the cap");
        assert!(on_the_wire.take_place().await);
        let waiting = deliveries
            .reserve(&webhook_id)
            .expect("leased, about to go");
        let leased = NewDelivery {
            webhook_id: webhook_id.clone(),
            lease_until_ms: Some(deliveries.lease_until(now_ms())),
        };
        let new = NewEvent {
            instance_id: instance_id.clone(),
            name: zapgate_core::event_log::EventName::MessageExchange,
            dedupe_key: "k1".into(),
            data: "{}".into(),
        };
        let (event, ids) = store
            .append_event(&new, &[leased])
            .await
            .expect("append")
            .expect("new event");
        let listed = || async {
            store
                .deliveries(&instance_id, None, 10)
                .await
                .expect("list")
                .remove(0)
        };
        let webhook = store
            .webhooks(&instance_id)
            .await
            .expect("webhooks")
            .remove(0);
        deliveries.launch(
            waiting,
            DeliveryWork {
                delivery: listed().await,
                webhook,
                event,
            },
        );
        tokio::time::sleep(PLACE_WAIT / 2).await;
        let delivery = listed().await;
        assert_eq!(
            delivery.status,
            DeliveryStatus::Running,
            "still waiting for the place"
        );
        // Released at PLACE_WAIT: polled, so a slow machine cannot fail it.
        let mut delivery = listed().await;
        for _ in 0..100 {
            if delivery.status != DeliveryStatus::Running {
                break;
            }
            tokio::time::sleep(PLACE_WAIT / 20).await;
            delivery = listed().await;
        }
        assert_eq!(delivery.id, ids[0]);
        assert_eq!(delivery.status, DeliveryStatus::Queued, "back in the queue");
        assert_eq!(delivery.attempts, 0, "no attempt was made");
        drop(on_the_wire);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = settings();
        for (attempts, base) in [(1, 1.0), (2, 2.0), (5, 16.0), (20, 3600.0)] {
            let delay = backoff(&s, attempts).as_secs_f64();
            assert!(
                delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9,
                "attempt {attempts}: {delay}"
            );
        }
    }

    #[test]
    fn by_events_appends_the_event_name() {
        assert_eq!(
            target_url("https://app.example/wh/", true, "message.exchange"),
            "https://app.example/wh/message.exchange"
        );
        assert_eq!(
            target_url("https://app.example/wh?k=1", true, "instance.state"),
            "https://app.example/wh/instance.state?k=1"
        );
        assert_eq!(
            target_url("https://app.example/wh", false, "instance.state"),
            "https://app.example/wh"
        );
    }

    #[test]
    fn only_lasting_refusals_are_final() {
        assert!(refuses_for_good(StatusCode::UNAUTHORIZED));
        assert!(refuses_for_good(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert!(!refuses_for_good(StatusCode::TOO_MANY_REQUESTS));
        assert!(!refuses_for_good(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!refuses_for_good(StatusCode::REQUEST_TIMEOUT));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
