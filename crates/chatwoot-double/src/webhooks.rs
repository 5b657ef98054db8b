//! Outbound webhooks to an API inbox's `webhook_url`, delivered like
//! Chatwoot's `WebhookJob` / `Webhooks::Trigger`: one POST per event, sent
//! asynchronously (one ordered queue + worker task per inbox, so events leave
//! in creation order), timeout `WEBHOOK_TIMEOUT` (default 5 s), never retried.
//! Any failure (transport error, timeout, non-2xx — RestClient raises on
//! those) of a `message_created`/`message_updated` marks the message `failed`
//! with `content_attributes.external_error` = the error text. With signing on
//! (v4.13+) each POST carries `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(
//! secret, "<ts>.<body>")>`, `X-Chatwoot-Timestamp`, `X-Chatwoot-Delivery`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::Shared;
use crate::state::State;

/// One webhook POST the double attempted (see [`crate::ChatwootDouble::webhook_deliveries`]).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Target `webhook_url`.
    pub url: String,
    /// `message_created`, `message_updated`, `conversation_status_changed`.
    pub event: String,
    /// HTTP status the receiver answered, if it answered.
    pub status_code: Option<u16>,
    /// Error text when delivery failed (also what is stored as `external_error`).
    pub error: Option<String>,
    /// The JSON body that was POSTed.
    pub body: Value,
    /// Whether signature headers were attached.
    pub signed: bool,
    /// The `X-Chatwoot-Delivery` id when signed.
    pub delivery_id: Option<String>,
}

pub(crate) struct Job {
    url: String,
    body: Value,
    secret: Option<String>,
    message_id: Option<i64>,
}

/// Enqueues `body` (which carries its own `event`) for `inbox_id` if the inbox
/// is an API inbox with a non-empty `webhook_url`. Call while holding the
/// state lock so queue order equals creation order.
pub(crate) fn emit(
    shared: &Arc<Shared>,
    st: &State,
    inbox_id: i64,
    body: Value,
    message_id: Option<i64>,
) {
    let Some(inbox) = st.inboxes.get(&inbox_id) else {
        return;
    };
    if !inbox.is_api() || inbox.webhook_url.is_empty() {
        return;
    }
    let secret = shared.config().signing.then(|| inbox.secret.clone());
    let job = Job {
        url: inbox.webhook_url.clone(),
        body,
        secret,
        message_id,
    };
    let mut queues = shared.queues.lock().expect("queues lock");
    let tx = queues.entry(inbox_id).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        shared.runtime.spawn(worker(Arc::downgrade(shared), rx));
        tx
    });
    shared
        .pending
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if tx.send(job).is_err() {
        shared
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn worker(shared: std::sync::Weak<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let lag = shared.config().webhook_lag;
        if !lag.is_zero() {
            tokio::time::sleep(lag).await;
        }
        deliver(&shared, job).await;
        shared
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        shared.delivered.notify_waiters();
    }
}

/// `sha256=<hex>` over `"<ts>.<body>"` with the inbox secret.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(shared: &Arc<Shared>, job: Job) {
    let event = job
        .body
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let raw = serde_json::to_vec(&job.body).expect("json");
    let timeout = shared.config().webhook_timeout;
    let mut req = shared
        .http
        .post(&job.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    let mut delivery_id = None;
    if let Some(secret) = &job.secret {
        let ts = chrono::Utc::now().timestamp();
        let id = uuid::Uuid::new_v4().to_string();
        req = req
            .header("X-Chatwoot-Signature", sign(secret, ts, &raw))
            .header("X-Chatwoot-Timestamp", ts.to_string())
            .header("X-Chatwoot-Delivery", &id);
        delivery_id = Some(id);
    }
    let started = Instant::now();
    let result = req.body(raw).send().await;
    let (status_code, error) = match result {
        Ok(resp) => {
            let code = resp.status();
            // Response body is ignored, as in Chatwoot.
            let _ = resp.bytes().await;
            if code.is_success() {
                (Some(code.as_u16()), None)
            } else {
                let reason = code.canonical_reason().unwrap_or("");
                (
                    Some(code.as_u16()),
                    Some(format!("{} {reason}", code.as_u16())),
                )
            }
        }
        Err(e) => (
            None,
            Some(error_text(&e, &job.url, started.elapsed(), timeout)),
        ),
    };
    let marks_message = event == "message_created" || event == "message_updated";
    if let (Some(err), Some(mid), true) = (&error, job.message_id, marks_message) {
        crate::ops::mark_failed(shared, mid, err);
    }
    shared
        .deliveries
        .lock()
        .expect("deliveries lock")
        .push(Delivery {
            url: job.url,
            event,
            status_code,
            error,
            body: job.body,
            signed: job.secret.is_some(),
            delivery_id,
        });
}

/// Error texts in the spirit of RestClient's exception messages.
fn error_text(e: &reqwest::Error, url: &str, elapsed: Duration, timeout: Duration) -> String {
    if e.is_timeout() || elapsed >= timeout {
        "Timed out reading data from server".to_string()
    } else if e.is_connect() {
        let hostport = reqwest::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        format!("Failed to open TCP connection to {hostport} (Connection refused)")
    } else {
        format!("Server broke connection: {e}")
    }
}
