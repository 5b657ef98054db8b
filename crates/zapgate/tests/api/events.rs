//! The events module end to end: webhooks configured over the API, events
//! from the sandbox phone delivered to a real HTTP receiver, signed per
//! Standard Webhooks (checked with the specification's published library),
//! retried through failures, listed, replayed, and read back from the log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Env, Receiver, Reply, TestServer};

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

/// A paired instance `suporte` whose webhook (message.exchange only) goes
/// to a receiver answering after `delay`; its token and the receiver.
async fn hooked(server: &TestServer, delay: Duration) -> (String, Receiver) {
    let (_, instance) = paired(server).await;
    let (receiver, url) = Receiver::start().await;
    *receiver.delay.lock().unwrap() = delay;
    ok(&server
        .post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"enabled": true, "url": format!("{url}/hook"), "events": ["message.exchange"]}),
        )
        .await);
    (instance, receiver)
}

/// Waits until no delivery of the instance is queued or running.
async fn settled(server: &TestServer, token: &str) {
    for _ in 0..1200 {
        let list = server
            .get("/api/events/deliveries/suporte", Some(token))
            .await;
        let busy = ok(&list)["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "queued" || d["status"] == "running");
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries still pending");
}

/// The events a real RyzeAPI client subscribes to, in its order.
fn client_events() -> Value {
    json!([
        "message.exchange",
        "instance.state",
        "message.status",
        "group.flow"
    ])
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true), "{}", reply.text);
    &reply.body
}

async fn run(server: TestServer) {
    let (receiver, url) = Receiver::start().await;
    let (account, instance) = paired(&server).await;
    let events = client_events();
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
    for _ in 0..1200 {
        if receiver.bodies().len() >= before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(receiver.bodies().len() >= before + 2, "retried");
    receiver.answer(0);
    settled(&server, &instance).await;
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
    for _ in 0..1200 {
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
    // The receiver answers before zapgate records the delivery: wait for
    // the record, not for the receiver.
    let mut delivered = Value::Null;
    for _ in 0..1200 {
        let list = server
            .get(
                "/api/events/deliveries/suporte?status=delivered",
                Some(&instance),
            )
            .await;
        delivered = ok(&list)["deliveries"].clone();
        if delivered
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == dead[0]["id"])
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        delivered
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == dead[0]["id"]),
        "{delivered}"
    );
    let refused_bodies = receiver
        .bodies()
        .iter()
        .filter(|(_, _, b)| b["data"]["id"] == json!(refused_id))
        .count();
    assert_eq!(refused_bodies, 2, "refused once, replayed once");

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
    let events = client_events();
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

async fn deliveries_wait_out_an_unreachable_receiver_and_reach_it_once_fixed(server: TestServer) {
    let (_, instance) = paired(&server).await;
    // Nothing listens on port 9 (discard) here: every attempt is refused.
    let save = |url: String| {
        server.post(
            "/api/events/webhook/suporte",
            Some(&instance),
            json!({"enabled": true, "url": url, "events": ["message.exchange"]}),
        )
    };
    ok(&save("http://127.0.0.1:9/down".to_owned()).await);
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(inbound(&server, &instance, &format!("while down {n}")).await);
    }
    let mut retried = false;
    for _ in 0..1200 {
        let list = server
            .get(
                "/api/events/deliveries/suporte?status=queued",
                Some(&instance),
            )
            .await;
        let queued = ok(&list)["deliveries"].as_array().unwrap().clone();
        if queued.len() == 5
            && queued.iter().all(|d| {
                d["attempts"].as_u64() >= Some(1)
                    && d["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("the receiver could not be reached")
            })
        {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        retried,
        "every delivery failed at least once and waits to retry"
    );

    // The owner points the webhook at a receiver that answers: the queued
    // deliveries go there, each event once.
    let (receiver, url) = Receiver::start().await;
    ok(&save(format!("{url}/up")).await);
    let delivered = receiver.wait_for("message.exchange", 5).await;
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|(_, _, b)| b["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    sent.sort();
    assert_eq!(ids, sent);
}

/// `ZAPGATE_WEBHOOK_CONCURRENCY`'s default.
const WEBHOOK_CONCURRENCY: usize = 16;

async fn a_slow_receiver_delays_only_its_own_deliveries(server: TestServer) {
    let (_, account) = server.create_account("acme", 10).await;
    let slow_token = server.create_instance(&account, "slow").await;
    let fast_token = server.create_instance(&account, "suporte").await;
    server.pair(&slow_token, "slow", "5511999990001").await;
    server.pair(&fast_token, "suporte", "5511999990000").await;
    let (slow, slow_url) = Receiver::start().await;
    *slow.delay.lock().unwrap() = Duration::from_secs(20);
    let (fast, fast_url) = Receiver::start().await;
    for (name, token, url) in [
        ("slow", &slow_token, slow_url),
        ("suporte", &fast_token, fast_url),
    ] {
        ok(&server
            .post(
                &format!("/api/events/webhook/{name}"),
                Some(token),
                json!({"enabled": true, "url": format!("{url}/hook"), "events": ["message.exchange"]}),
            )
            .await);
    }
    // Far more than the slow receiver may take at once, or have leased.
    for n in 0..3 * WEBHOOK_CONCURRENCY {
        let reply = server
            .post(
                "/api/sandbox/slow/inbound",
                Some(&slow_token),
                json!({"from": "5511988887777", "text": format!("slow {n}")}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let started = std::time::Instant::now();
    inbound(&server, &fast_token, "on time").await;
    fast.wait_for("message.exchange", 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the other instance's delivery waited {:?}",
        started.elapsed()
    );
    let running = server
        .get(
            "/api/events/deliveries/slow?status=running",
            Some(&slow_token),
        )
        .await;
    // The cap on the wire, and at most as many again leased, waiting for
    // a place (they go back to the queue after two seconds).
    let running = ok(&running)["deliveries"].as_array().unwrap().len();
    assert!(
        running <= 2 * WEBHOOK_CONCURRENCY,
        "{running} deliveries leased at once for one webhook"
    );
    assert!(
        slow.bodies().len() <= WEBHOOK_CONCURRENCY,
        "{} deliveries on one webhook's wire",
        slow.bodies().len()
    );
}

async fn a_receiver_that_never_answers_is_retried_after_the_attempt_timeout(server: TestServer) {
    let (instance, _receiver) = hooked(&server, Duration::from_secs(30)).await;
    inbound(&server, &instance, "anyone there?").await;
    let mut error = Value::Null;
    for _ in 0..1200 {
        let list = server
            .get(
                "/api/events/deliveries/suporte?status=queued",
                Some(&instance),
            )
            .await;
        error = ok(&list)["deliveries"][0]["error"].clone();
        if !error.is_null() && error != "" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(error, "the receiver did not answer within 1s");
}

async fn three_webhooks_each_get_their_own_events_at_their_own_urls(server: TestServer) {
    let (_, instance) = paired(&server).await;
    let (receiver, url) = Receiver::start().await;
    for (label, events, by_events) in [
        ("messages", json!(["message.exchange"]), false),
        ("statuses", json!(["message.status"]), false),
        ("everything", json!([]), true),
    ] {
        ok(&server
            .post(
                "/api/events/webhook/suporte",
                Some(&instance),
                json!({"label": label, "enabled": true, "url": format!("{url}/{label}"),
                       "events": events, "byEvents": by_events}),
            )
            .await);
    }
    inbound(&server, &instance, "Olá").await;
    let sent = server
        .post(
            "/api/message/text/suporte",
            Some(&instance),
            json!({"number": "5511988887777", "message": "Oi"}),
        )
        .await;
    let sent_id = ok(&sent)["data"]["messageId"].clone();
    ok(&server
        .post(
            "/api/sandbox/suporte/receipt",
            Some(&instance),
            json!({"id": sent_id, "status": "delivered"}),
        )
        .await);
    // Two messages and a receipt: 2 + 1 + 3 deliveries.
    let mut paths = Vec::new();
    for _ in 0..1200 {
        paths = receiver
            .bodies()
            .into_iter()
            .map(|(path, _, body)| (path, body["event"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>();
        if paths.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    paths.sort();
    let expected: Vec<(String, String)> = [
        ("/everything/message.exchange", "message.exchange"),
        ("/everything/message.exchange", "message.exchange"),
        ("/everything/message.status", "message.status"),
        ("/messages", "message.exchange"),
        ("/messages", "message.exchange"),
        ("/statuses", "message.status"),
    ]
    .iter()
    .map(|(p, e)| ((*p).to_owned(), (*e).to_owned()))
    .collect();
    assert_eq!(paths, expected);
}

/// Label changes on the phone reach a webhook subscribed to `label.update`
/// (and only it), in the order they happened; the sandbox refuses a body
/// that mixes an edit with a chat.
async fn label_changes_reach_a_label_update_webhook(server: TestServer) {
    let (_, instance) = paired(&server).await;
    let (receiver, url) = Receiver::start().await;
    for (label, events) in [
        ("labels", json!(["label.update"])),
        ("messages", json!(["message.exchange"])),
    ] {
        ok(&server
            .post(
                "/api/events/webhook/suporte",
                Some(&instance),
                json!({"label": label, "enabled": true, "url": format!("{url}/{label}"),
                       "events": events}),
            )
            .await);
    }
    let mixed = server
        .post(
            "/api/sandbox/suporte/label",
            Some(&instance),
            json!({"labelId": "5", "name": "Pago", "chat": "5511988887777"}),
        )
        .await;
    assert_eq!(mixed.status.as_u16(), 400, "{}", mixed.text);
    assert_eq!(
        mixed.body["error"]["message"],
        "invalid body: name edits a label and cannot go with chat"
    );
    for (body, kind) in [
        (json!({"labelId": "5", "name": "Pago", "color": 3}), "edit"),
        (json!({"labelId": "5", "chat": "5511988887777"}), "add"),
        (
            json!({"labelId": "5", "chat": "5511988887777", "labeled": false}),
            "remove",
        ),
        (json!({"labelId": "5", "deleted": true}), "delete"),
    ] {
        let reply = server
            .post("/api/sandbox/suporte/label", Some(&instance), body)
            .await;
        assert_eq!(ok(&reply)["type"], kind);
    }
    let mut bodies = Vec::new();
    for _ in 0..1200 {
        bodies = receiver.bodies();
        if bodies.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        bodies.iter().all(|(path, _, _)| path == "/labels"),
        "{bodies:?}"
    );
    bodies.sort_by_key(|(_, _, body)| body["sequence"].as_i64());
    let data: Vec<Value> = bodies
        .iter()
        .map(|(_, _, body)| {
            assert_eq!(body["event"], "label.update");
            let mut data = body["data"].clone();
            assert!(data["timestamp"].as_str().unwrap().ends_with('Z'));
            data.as_object_mut().unwrap().remove("timestamp");
            data
        })
        .collect();
    let chat = json!({"jid": "5511988887777@s.whatsapp.net", "type": "private"});
    assert_eq!(
        data,
        [
            json!({"type": "edit", "labelId": "5", "name": "Pago", "color": 3}),
            json!({"type": "add", "labelId": "5", "chat": chat}),
            json!({"type": "remove", "labelId": "5", "chat": chat}),
            json!({"type": "delete", "labelId": "5", "name": null, "color": null}),
        ]
    );
}

async fn a_delivery_in_flight_at_shutdown_finishes_before_the_server_stops(database_url: &str) {
    let server = TestServer::start_on(database_url, env()).await;
    let (instance, receiver) = hooked(&server, Duration::from_millis(1500)).await;
    inbound(&server, &instance, "in flight").await;
    let mut running = false;
    for _ in 0..1200 {
        let list = server
            .get(
                "/api/events/deliveries/suporte?status=running",
                Some(&instance),
            )
            .await;
        if !ok(&list)["deliveries"].as_array().unwrap().is_empty() {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(running, "the delivery was on the wire");
    server.stop().await;
    assert_eq!(receiver.bodies().len(), 1, "it finished during the drain");

    // Recorded as delivered: the next start does not send it again.
    let server = TestServer::start_on(database_url, env()).await;
    let list = server
        .get("/api/events/deliveries/suporte", Some(&instance))
        .await;
    let deliveries = ok(&list)["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], "delivered");
}

#[tokio::test]
async fn a_delivery_in_flight_at_shutdown_finishes_before_the_server_stops_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("zapgate.db").display());
    a_delivery_in_flight_at_shutdown_finishes_before_the_server_stops(&url).await;
}

#[tokio::test]
async fn a_delivery_in_flight_at_shutdown_finishes_before_the_server_stops_on_postgres() {
    if let Some(database) = crate::harness::TempDatabase::create().await {
        a_delivery_in_flight_at_shutdown_finishes_before_the_server_stops(&database.url).await;
    }
}

/// Runs each scenario on a fresh SQLite server and on PostgreSQL (where it
/// answers; CI requires it), with the scenario's environment.
macro_rules! on_both_backends {
    ($($name:ident($env:expr)),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(TestServer::start_with($env).await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(server) = TestServer::start_postgres($env).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    deliveries_wait_out_an_unreachable_receiver_and_reach_it_once_fixed(env()),
    a_slow_receiver_delays_only_its_own_deliveries(env()),
    a_receiver_that_never_answers_is_retried_after_the_attempt_timeout(
        env().with("ZAPGATE_WEBHOOK_TIMEOUT_SECS", "1")
    ),
    three_webhooks_each_get_their_own_events_at_their_own_urls(env()),
    label_changes_reach_a_label_update_webhook(env()),
);

mod websocket {
    use futures_util::StreamExt;
    use tokio_tungstenite::{connect_async, tungstenite::Message};

    use super::*;

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    fn ws_url(server: &TestServer, query: &str) -> String {
        format!(
            "{}/ws/suporte{query}",
            server.base.replacen("http", "ws", 1)
        )
    }

    /// The next JSON text frame.
    async fn next_event(socket: &mut Socket) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a frame within 10 s")
                .expect("the socket is open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The upgrade's refusal: status and error message.
    async fn refused(url: String) -> (u16, String) {
        match connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                (
                    response.status().as_u16(),
                    body["error"]["message"].as_str().unwrap().to_owned(),
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn events_stream_in_order_and_resume_without_gap_or_duplicate() {
        let server = TestServer::start_with(env()).await;
        let (_, instance) = paired(&server).await;

        assert_eq!(
            refused(ws_url(&server, "")).await,
            (
                401,
                "Missing token in header, Authorization header, or query parameter".to_owned()
            )
        );
        assert_eq!(
            refused(ws_url(&server, &format!("?token={instance}"))).await,
            (
                400,
                "WebSocket is not enabled for this instance. Configure it first using POST /api/events/websocket/suporte".to_owned()
            )
        );
        ok(&server
            .post(
                "/api/events/websocket/suporte",
                Some(&instance),
                json!({"enabled": true, "events": ["message.exchange"]}),
            )
            .await);

        let (mut socket, _) = connect_async(ws_url(&server, &format!("?token={instance}")))
            .await
            .unwrap();
        let mut sent = Vec::new();
        for n in 0..3 {
            sent.push(inbound(&server, &instance, &format!("msg {n}")).await);
        }
        let mut first = Vec::new();
        for id in &sent {
            let event = next_event(&mut socket).await;
            assert_eq!(event["event"], "message.exchange");
            assert_eq!(&event["data"]["id"], id);
            assert_eq!(event["instanceData"]["instance"], "suporte");
            first.push(event["sequence"].as_i64().unwrap());
        }
        assert!(first.windows(2).all(|w| w[1] == w[0] + 1), "{first:?}");
        socket.close(None).await.unwrap();

        // Away: two more events; back with ?after= the first one seen.
        sent.push(inbound(&server, &instance, "while away 1").await);
        sent.push(inbound(&server, &instance, "while away 2").await);
        let (mut socket, _) = connect_async(ws_url(
            &server,
            &format!("?token={instance}&after={}", first[0]),
        ))
        .await
        .unwrap();
        sent.push(inbound(&server, &instance, "live again").await);
        let mut ids = Vec::new();
        for _ in 1..sent.len() {
            ids.push(next_event(&mut socket).await["data"]["id"].clone());
        }
        assert_eq!(ids, sent[1..].to_vec(), "replayed then live, each once");
        socket.close(None).await.unwrap();
    }

    /// A client that never reads: once its buffers are full the server
    /// stops writing to it and drops it (a bounded wait per frame), and a
    /// client reading alongside gets every event without waiting for it.
    #[tokio::test]
    async fn a_client_that_never_reads_is_dropped_without_delaying_others() {
        let server = TestServer::start_with(env()).await;
        let (_, instance) = paired(&server).await;
        ok(&server
            .post(
                "/api/events/websocket/suporte",
                Some(&instance),
                json!({"enabled": true, "events": ["message.exchange"]}),
            )
            .await);
        let url = ws_url(&server, &format!("?token={instance}"));

        // The stalled client: a small receive window, and it never reads.
        let address = server.base.trim_start_matches("http://").to_owned();
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        let stream = tcp.connect(address.parse().unwrap()).await.unwrap();
        let (mut stalled, _) = tokio_tungstenite::client_async(url.as_str(), stream)
            .await
            .unwrap();
        let (mut reader, _) = connect_async(url.as_str()).await.unwrap();

        // Far more than the stalled client's socket buffers hold.
        let text = "x".repeat(60_000);
        const EVENTS: usize = 150;
        let started = std::time::Instant::now();
        for n in 0..EVENTS {
            let id = inbound(&server, &instance, &format!("{n} {text}")).await;
            let event = next_event(&mut reader).await;
            assert_eq!(
                event["data"]["id"], id,
                "the reader gets each event in turn"
            );
        }
        let sending = started.elapsed();
        assert!(
            sending < Duration::from_secs(30),
            "the reader was held back: {sending:?}"
        );

        // Within the server's per-frame budget (10 s) the stalled client
        // is dropped: reading now, it finds the frames that were already on
        // their way and then the end of the connection, not the rest.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let mut got = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => got += 1,
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => break,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("the stalled client is still connected after {got} frames"),
            }
        }
        assert!(
            got < EVENTS,
            "it was dropped before every event reached it: {got}"
        );

        // The server goes on: the reader still gets new events.
        let id = inbound(&server, &instance, "after the drop").await;
        assert_eq!(next_event(&mut reader).await["data"]["id"], id);
    }
}

/// A query that does not parse is the contract's 400 envelope naming the
/// parameter (axum's own rejection was plain text, undocumented).
#[tokio::test]
async fn a_malformed_query_is_a_json_400_naming_the_parameter() {
    let server = TestServer::start_with(env()).await;
    let (_, instance) = paired(&server).await;
    let reply = server
        .get(
            "/api/events/log/suporte?after=0&mediaBase64=maybe",
            Some(&instance),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(false), "{}", reply.text);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("mediaBase64"), "{message}");
}
