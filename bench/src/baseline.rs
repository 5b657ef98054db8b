//! The baselines, in process: a minimal forwarder (inbound JSON in, the same
//! message JSON posted to the same Chatwoot double, no durability; agent
//! webhooks appended to an in-memory outbox; inbound JSON in, an event
//! envelope posted to the webhook receiver) and a bare axum route that
//! returns fixed bytes.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use anyhow::Context;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Per (instance, chat): the conversation id, created once.
type ChatConversations = Mutex<HashMap<(usize, String), Arc<OnceCell<i64>>>>;

pub struct Forwarder {
    chatwoot: String,
    token: String,
    http: reqwest::Client,
    inboxes: Mutex<Vec<i64>>,
    chats: ChatConversations,
    next_id: AtomicU64,
    pub outbox: Mutex<Vec<(i64, SystemTime)>>,
    bare: Mutex<HashMap<String, Bytes>>,
    /// Where `/event/:instance` posts (the events runs' webhook receiver).
    receiver: OnceLock<String>,
}

pub struct Running {
    pub base: String,
    pub state: Arc<Forwarder>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    /// Events go to `<url>/hook/<instance>`, as zapgate's webhooks do in the events runs.
    pub fn set_receiver(&self, url: &str) {
        let _ = self.state.receiver.set(url.to_owned());
    }

    /// Serves `bytes` (as JSON) at `/bare/<key>`.
    pub fn set_bare(&self, key: &str, bytes: Bytes) {
        self.state
            .bare
            .lock()
            .unwrap()
            .insert(key.to_owned(), bytes);
    }

    /// One API inbox per instance in the double, its webhook pointing here.
    pub async fn create_inboxes(&self, n: usize) -> anyhow::Result<()> {
        for i in 0..n {
            let resp: Value = self
                .state
                .http
                .post(format!("{}/inboxes", self.state.chatwoot))
                .header("api_access_token", &self.state.token)
                .json(&json!({
                    "name": format!("Baseline {i}"),
                    "channel": {"type": "api", "webhook_url": format!("{}/webhook/{i}", self.base)},
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = resp["id"].as_i64().context("inbox id")?;
            self.state.inboxes.lock().unwrap().push(id);
        }
        Ok(())
    }
}

/// Starts the baseline on 127.0.0.1:0. `chatwoot_account_url` is
/// `<double>/api/v1/accounts/<id>`.
pub async fn start(chatwoot_account_url: String, token: String) -> anyhow::Result<Running> {
    let state = Arc::new(Forwarder {
        chatwoot: chatwoot_account_url,
        token,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?,
        inboxes: Mutex::new(Vec::new()),
        chats: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        outbox: Mutex::new(Vec::new()),
        bare: Mutex::new(HashMap::new()),
        receiver: OnceLock::new(),
    });
    let app = Router::new()
        .route("/inbound/{instance}", post(inbound))
        .route("/webhook/{instance}", post(webhook))
        .route("/event/{instance}", post(event))
        .route("/bare/{key}", get(bare))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running { base, state, task })
}

async fn bare(State(s): State<Arc<Forwarder>>, Path(key): Path<String>) -> impl IntoResponse {
    let bytes = s
        .bare
        .lock()
        .unwrap()
        .get(&key)
        .cloned()
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], bytes)
}

async fn webhook(
    State(s): State<Arc<Forwarder>>,
    Path(_instance): Path<usize>,
    body: Bytes,
) -> impl IntoResponse {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"success": false})));
    };
    let outgoing = event["event"] == "message_created"
        && event["message_type"] == "outgoing"
        && event["private"] != json!(true);
    if outgoing && let Some(id) = event["id"].as_i64() {
        s.outbox.lock().unwrap().push((id, SystemTime::now()));
    }
    (
        StatusCode::OK,
        Json(json!({"success": true, "message": "queued"})),
    )
}

async fn inbound(
    State(s): State<Arc<Forwarder>>,
    Path(instance): Path<usize>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    match forward(&s, instance, &body).await {
        Ok(id) => (StatusCode::OK, Json(json!({"success": true, "id": id}))),
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"success": false, "error": {"message": err.to_string()}})),
        ),
    }
}

/// The events baseline: the sandbox's inbound JSON in, an envelope shaped
/// like zapgate's `message.exchange` posted to the receiver, answered once the
/// receiver took it. Nothing stored, nothing signed, no retry.
async fn event(
    State(s): State<Arc<Forwarder>>,
    Path(instance): Path<usize>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("BASE{n}");
    let from = body["from"].as_str().unwrap_or_default();
    let jid = format!("{from}@s.whatsapp.net");
    let envelope = json!({
        "event": "message.exchange",
        "data": {
            "id": id,
            "direction": "incoming",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "chat": {"jid": jid, "type": "private", "isCommunity": false},
            "sender": {"jid": jid, "pushName": body["pushName"]},
            "content": {"type": "text", "text": body["text"]},
        },
        "instanceData": {"baseUrl": "http://127.0.0.1", "instance": format!("bench{instance}"), "token": ""},
        "id": format!("evt{n}"),
        "sequence": n,
    });
    let Some(receiver) = s.receiver.get() else {
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({"success": false, "error": {"message": "no receiver"}})),
        );
    };
    let sent = s
        .http
        .post(format!("{receiver}/hook/{instance}"))
        .json(&envelope)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    match sent {
        Ok(_) => (StatusCode::OK, Json(json!({"success": true, "id": id}))),
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"success": false, "error": {"message": err.to_string()}})),
        ),
    }
}

async fn forward(s: &Forwarder, instance: usize, body: &Value) -> anyhow::Result<String> {
    let from = body["from"].as_str().context("from")?.to_owned();
    let inbox = *s
        .inboxes
        .lock()
        .unwrap()
        .get(instance)
        .context("instance")?;
    let cell = s
        .chats
        .lock()
        .unwrap()
        .entry((instance, from.clone()))
        .or_default()
        .clone();
    let conversation = *cell
        .get_or_try_init(|| async {
            let contact: Value = s
                .http
                .post(format!("{}/contacts", s.chatwoot))
                .header("api_access_token", &s.token)
                .json(&json!({
                    "inbox_id": inbox,
                    "name": body["pushName"].as_str().unwrap_or(&from),
                    "phone_number": format!("+{from}"),
                    "identifier": format!("{from}@s.whatsapp.net"),
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let contact_id = contact["payload"]["contact"]["id"]
                .as_i64()
                .context("contact id")?;
            let source_id = contact["payload"]["contact_inbox"]["source_id"]
                .as_str()
                .context("source id")?
                .to_owned();
            let conversation: Value = s
                .http
                .post(format!("{}/conversations", s.chatwoot))
                .header("api_access_token", &s.token)
                .json(&json!({
                    "inbox_id": inbox, "contact_id": contact_id,
                    "source_id": source_id, "status": "open",
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            conversation["id"].as_i64().context("conversation id")
        })
        .await?;
    let id = format!("BASE{}", s.next_id.fetch_add(1, Ordering::Relaxed));
    s.http
        .post(format!(
            "{}/conversations/{conversation}/messages",
            s.chatwoot
        ))
        .header("api_access_token", &s.token)
        .json(&json!({
            "content": body["text"],
            "message_type": "incoming",
            "private": false,
            "source_id": format!("WAID:{id}"),
        }))
        .send()
        .await?
        .error_for_status()?;
    Ok(id)
}
