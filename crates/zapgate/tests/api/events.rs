//! The events module end to end: webhooks configured over the API, events
//! from the sandbox phone delivered to a real HTTP receiver, signed per
//! Standard Webhooks (checked with the specification's published library),
//! retried through failures, listed, replayed, and read back from the log.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::harness::{Env, Reply, TestServer};

/// A webhook receiver: records every delivery, answers with the status the
/// test sets (200 by default).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>,
    /// The status to answer with; 0 means 200.
    answer: Arc<Mutex<u16>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn answer(&self, status: u16) {
        *self.answer.lock().unwrap() = status;
    }

    fn bodies(&self) -> Vec<(String, HeaderMap, Value)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(path, headers, body)| {
                (
                    path.clone(),
                    headers.clone(),
                    serde_json::from_slice(body).unwrap(),
                )
            })
            .collect()
    }

    /// Waits until `count` deliveries matching `event` arrived.
    async fn wait_for(&self, event: &str, count: usize) -> Vec<(String, HeaderMap, Value)> {
        for _ in 0..200 {
            let matching: Vec<_> = self
                .bodies()
                .into_iter()
                .filter(|(_, _, body)| body["event"] == event)
                .collect();
            if matching.len() >= count {
                return matching;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {count} {event} deliveries: {:?}", self.bodies());
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver
        .seen
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), headers, body));
    match *receiver.answer.lock().unwrap() {
        0 => StatusCode::OK,
        status => StatusCode::from_u16(status).unwrap(),
    }
}

fn env() -> Env {
    Env::default()
        .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
        .with("ZAPGATE_WEBHOOK_RETRY_BASE_MS", "50")
        .with("ZAPGATE_WEBHOOK_RETRY_MAX_MS", "200")
        .with("ZAPGATE_WEBHOOK_POLL_MS", "20")
        .with("ZAPGATE_RATE_LIMIT", "off")
}

/// An account, a paired instance `suporte`; (account token, instance token).
async fn paired(server: &TestServer) -> (String, String) {
    let (_, account) = server.create_account("acme", 10).await;
    let instance = server.create_instance(&account, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    (account, instance)
}

async fn inbound(server: &TestServer, token: &str, text: &str) -> String {
    let reply = server
        .post(
            "/api/sandbox/suporte/inbound",
            Some(token),
            json!({"from": "5511988887777", "pushName": "Maria", "text": text}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true), "{}", reply.text);
    &reply.body
}

async fn run(server: TestServer) {
    let (receiver, url) = Receiver::start().await;
    let (account, instance) = paired(&server).await;
    let events = json!([
        "message.exchange",
        "instance.state",
        "message.status",
        "group.flow"
    ]);
    let saved = server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"label": "agent-bot", "enabled": true, "url": format!("{url}/ryzeapi/events"),
                   "authorization": "Bearer s3cret", "events": events, "mediaBase64": true,
                   "byEvents": false}),
        )
        .await;
    let webhook = ok(&saved)["webhook"].clone();
    assert_eq!(saved.body["message"], "Webhook saved");
    assert_eq!(webhook["events"], events, "the caller's order is kept");
    assert_eq!(webhook["authorization"], "Bearer s3cret");
    let secret = webhook["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    // The read-back a RyzeAPI client checks field by field.
    let one = server
        .get(
            "/api/events/getWebhook/suporte?label=agent-bot",
            Some(&instance),
        )
        .await;
    assert_eq!(ok(&one)["webhook"], webhook);

    let id = inbound(&server, &instance, "Olá!").await;
    let delivered = receiver.wait_for("message.exchange", 1).await;
    let (path, headers, body) = &delivered[0];
    assert_eq!(path, "/ryzeapi/events");
    assert_eq!(headers["authorization"], "Bearer s3cret");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["data"]["id"], json!(id));
    assert_eq!(body["data"]["message"]["direction"], "incoming");
    assert_eq!(body["data"]["message"]["content"]["text"], "Olá!");
    assert_eq!(
        body["data"]["message"]["sender"]["jid"],
        "5511988887777@s.whatsapp.net"
    );
    assert_eq!(body["instanceData"]["instance"], "suporte");
    assert_eq!(body["instanceData"]["token"], json!(instance));
    assert_eq!(
        headers["webhook-id"].to_str().unwrap(),
        body["id"].as_str().unwrap()
    );

    // The signature, checked by the specification's own library.
    let raw = receiver
        .seen
        .lock()
        .unwrap()
        .iter()
        .find(|(_, h, _)| h["webhook-id"] == headers["webhook-id"])
        .map(|(_, _, b)| b.clone())
        .unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut http_headers = headers.clone();
    verifier
        .verify(&raw, &http_headers)
        .expect("a valid signature");
    http_headers.insert("webhook-id", "msg_forged".parse().unwrap());
    assert!(verifier.verify(&raw, &http_headers).is_err());

    // A message sent through the API is an outgoing message.exchange.
    let sent = server
        .post(
            "/api/message/text/suporte",
            Some(&instance),
            json!({"number": "5511988887777", "message": "Oi, Maria"}),
        )
        .await;
    let sent_id = ok(&sent)["data"]["messageId"].as_str().unwrap().to_owned();
    let exchanged = receiver.wait_for("message.exchange", 2).await;
    let outgoing = exchanged
        .iter()
        .find(|(_, _, b)| b["data"]["id"] == json!(sent_id))
        .expect("the sent message");
    assert_eq!(outgoing.2["data"]["message"]["direction"], "outgoing");

    // A receipt for it is a message.status.
    let receipt = server
        .post(
            "/api/sandbox/suporte/receipt",
            Some(&instance),
            json!({"id": sent_id, "status": "read"}),
        )
        .await;
    assert_eq!(receipt.status.as_u16(), 200, "{}", receipt.text);
    let status = receiver.wait_for("message.status", 1).await;
    assert_eq!(status[0].2["data"]["messageIds"], json!([sent_id]));
    assert_eq!(status[0].2["data"]["status"], "read");

    // Sequences grow per instance, and the log reads them back by cursor.
    let log = server
        .get("/api/events/log/suporte?after=0", Some(&instance))
        .await;
    let logged = ok(&log)["events"].as_array().unwrap().clone();
    assert!(logged.len() >= 3, "{}", log.text);
    let sequences: Vec<i64> = logged
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );
    let after = sequences[0];
    let rest = server
        .get(
            &format!("/api/events/log/suporte?after={after}"),
            Some(&instance),
        )
        .await;
    assert_eq!(
        ok(&rest)["events"].as_array().unwrap().len(),
        logged.len() - 1
    );

    // The receiver fails: the delivery is retried, then it succeeds.
    receiver.answer(503);
    inbound(&server, &instance, "retry me").await;
    let before = receiver.bodies().len();
    for _ in 0..200 {
        if receiver.bodies().len() >= before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(receiver.bodies().len() >= before + 2, "retried");
    receiver.answer(0);
    let retried = receiver.wait_for("message.exchange", 4).await;
    let ids: Vec<_> = retried
        .iter()
        .filter(|(_, _, b)| b["data"]["message"]["content"]["text"] == "retry me")
        .map(|(_, h, _)| h["webhook-id"].clone())
        .collect();
    assert!(
        ids.len() >= 2 && ids.iter().all(|i| *i == ids[0]),
        "a retry keeps its webhook-id"
    );

    // A lasting refusal is parked, listed, and replayed on demand.
    receiver.answer(401);
    let refused_id = inbound(&server, &instance, "refused").await;
    let mut dead = Value::Null;
    for _ in 0..200 {
        let list = server
            .get(
                "/api/events/deliveries/suporte?status=failed",
                Some(&instance),
            )
            .await;
        dead = ok(&list)["deliveries"].clone();
        if !dead.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(dead[0]["status"], "dead", "{dead}");
    assert_eq!(dead[0]["responseStatus"], 401);
    assert_eq!(dead[0]["webhook"], "agent-bot");
    receiver.answer(0);
    let replayed = server
        .post(
            "/api/events/deliveries/suporte/replay",
            Some(&instance),
            json!({"id": dead[0]["id"]}),
        )
        .await;
    assert_eq!(ok(&replayed)["replayed"], 1);
    for _ in 0..200 {
        if receiver
            .bodies()
            .iter()
            .filter(|(_, _, b)| b["data"]["id"] == json!(refused_id))
            .count()
            >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let delivered = server
        .get(
            "/api/events/deliveries/suporte?status=delivered",
            Some(&instance),
        )
        .await;
    assert!(
        ok(&delivered)["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == dead[0]["id"]),
        "{}",
        delivered.text
    );

    // Another account sees none of it.
    let (_, other) = server.create_account("other", 1).await;
    for path in [
        "/api/events/getWebhook/suporte",
        "/api/events/getWebsocket/suporte",
        "/api/events/deliveries/suporte",
        "/api/events/log/suporte",
    ] {
        server
            .get(path, Some(&other))
            .await
            .assert_error(404, "Instance not found");
    }
    server
        .post(
            "/api/events/webhook/suporte",
            Some(&other),
            json!({"enabled": true, "url": url}),
        )
        .await
        .assert_error(404, "Instance not found");
    let _ = account;
}

#[tokio::test]
async fn webhooks_deliver_signed_events_with_retries_and_replay_on_sqlite() {
    run(TestServer::start_with(env()).await).await;
}

#[tokio::test]
async fn webhooks_deliver_signed_events_with_retries_and_replay_on_postgres() {
    if let Some(server) = TestServer::start_postgres(env()).await {
        run(server).await;
    }
}

#[tokio::test]
async fn webhook_configuration_follows_the_contract() {
    let server = TestServer::start_with(env()).await;
    let (_, instance) = paired(&server).await;
    let url = "http://127.0.0.1:9/hook";

    // Nothing configured: an empty list, a 404 by label, a disabled WebSocket.
    let all = server
        .get("/api/events/getWebhook/suporte", Some(&instance))
        .await;
    assert_eq!(ok(&all)["webhooks"], json!([]));
    server
        .get("/api/events/getWebhook/suporte?label=", Some(&instance))
        .await
        .assert_error(404, "Webhook not found");
    let ws = server
        .get("/api/events/getWebsocket/suporte", Some(&instance))
        .await;
    assert_eq!(
        ok(&ws)["websocket"],
        json!({"enabled": false, "events": [], "mediaBase64": false})
    );

    // Bad input names the field.
    for (body, message) in [
        (json!({"url": url}), "invalid body: enabled is required"),
        (
            json!({"enabled": true}),
            "invalid body: url is required when enabled",
        ),
        (
            json!({"enabled": true, "url": "ftp://x"}),
            "invalid body: url must be an absolute http(s) URL",
        ),
        (
            json!({"enabled": true, "url": url, "label": "x".repeat(101)}),
            "invalid body: label must be 1-100 letters, digits, '-' or '_'",
        ),
    ] {
        server
            .post("/api/events/webhook/suporte", Some(&instance), body)
            .await
            .assert_error(400, message);
    }
    let unknown = server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"enabled": true, "url": url, "events": ["message.sent"]}),
        )
        .await;
    assert_eq!(unknown.status.as_u16(), 400);
    assert!(
        unknown.error().starts_with("invalid body: events"),
        "{}",
        unknown.text
    );

    // Three enabled at most; a disabled one does not count and keeps its row.
    for label in ["a", "b", "c"] {
        let saved = server
            .post(
                "/api/events/webhook/suporte",
                Some(&instance),
                json!({"label": label, "enabled": true, "url": url}),
            )
            .await;
        ok(&saved);
    }
    server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"label": "d", "enabled": true, "url": url}),
        )
        .await
        .assert_error(
            409,
            "Webhook limit reached: an instance can have at most 3 enabled webhooks",
        );
    let disabled = server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"label": "a", "enabled": false, "url": url, "authorization": "x"}),
        )
        .await;
    assert_eq!(ok(&disabled)["webhook"]["url"], "");
    assert_eq!(disabled.body["webhook"]["authorization"], Value::Null);
    ok(&server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"label": "d", "enabled": true, "url": url}),
        )
        .await);
    let labels: Vec<Value> = ok(&server
        .get("/api/events/getWebhook/suporte", Some(&instance))
        .await)["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["label"].clone())
        .collect();
    assert_eq!(labels, vec![json!("a"), json!("b"), json!("c"), json!("d")]);

    // The WebSocket setting reads back in the caller's order.
    let events = json!([
        "message.exchange",
        "instance.state",
        "message.status",
        "group.flow"
    ]);
    let saved = server
        .post(
            "/api/events/websocket/suporte",
            Some(&instance),
            json!({"enabled": true, "events": events, "mediaBase64": true}),
        )
        .await;
    assert_eq!(ok(&saved)["websocket"]["events"], events);
    let read = server
        .get("/api/events/getWebsocket/suporte", Some(&instance))
        .await;
    assert_eq!(
        ok(&read)["websocket"],
        json!({"enabled": true, "events": events, "mediaBase64": true})
    );
    assert_eq!(read.body["message"], "WebSocket configuration retrieved");
}

#[tokio::test]
async fn instance_creation_webhook_fields_make_the_default_webhook() {
    let server = TestServer::start_with(env()).await;
    let (receiver, url) = Receiver::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let created = server
        .post(
            "/api/instance/new",
            Some(&account),
            json!({"name": "suporte", "webhookEnabled": true, "webhookURL": format!("{url}/wh"),
                   "webhookByEvents": true, "webhookEvents": ["instance.state"]}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let instance = created.body["instance"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let default = server
        .get(
            "/api/events/getWebhook/suporte?label=default",
            Some(&instance),
        )
        .await;
    assert_eq!(ok(&default)["webhook"]["byEvents"], true);

    server.pair(&instance, "suporte", "5511999990000").await;
    let mut states = Vec::new();
    for count in 1..=10 {
        states = receiver.wait_for("instance.state", count).await;
        if states
            .iter()
            .any(|(_, _, b)| b["data"]["state"] == "connected")
        {
            break;
        }
    }
    assert!(
        states
            .iter()
            .all(|(path, _, _)| path == "/wh/instance.state")
    );
    let names: Vec<&Value> = states.iter().map(|(_, _, b)| &b["data"]["state"]).collect();
    assert!(names.contains(&&json!("qr_ready")), "{names:?}");
    assert!(names.contains(&&json!("connected")), "{names:?}");
    // Deliveries are queued before the inbound is acknowledged: none for
    // an event the webhook does not subscribe to.
    inbound(&server, &instance, "not subscribed").await;
    let queued = server
        .get("/api/events/deliveries/suporte", Some(&instance))
        .await;
    let queued = ok(&queued)["deliveries"].as_array().unwrap().clone();
    assert!(!queued.is_empty());
    assert!(
        queued.iter().all(|d| d["event"] == "instance.state"),
        "{queued:?}"
    );
}
