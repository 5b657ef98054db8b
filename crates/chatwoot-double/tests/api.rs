//! Exercises the double over HTTP the way zapgate's Chatwoot client would:
//! auth and error bodies, inbox/contacts/conversations/messages behaviour,
//! attachments, webhooks (signed, failing) and fault switches.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use chatwoot_double::{ChatwootDouble, Role, sign_webhook};
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct Env {
    cw: ChatwootDouble,
    http: reqwest::Client,
    account: i64,
    admin: String,
    admin_id: i64,
}

async fn env() -> Env {
    let cw = ChatwootDouble::start().await;
    let account = cw.add_account("Acme");
    let (admin_id, admin) = cw.add_user(
        "Maria",
        "maria@example.test",
        Role::Administrator,
        &[account],
    );
    Env {
        cw,
        http: reqwest::Client::new(),
        account,
        admin,
        admin_id,
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/accounts/{}{}",
            self.cw.base_url(),
            self.account,
            path
        )
    }
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.admin, method, &self.url(path), body)
            .await
    }
    async fn call_as(
        &self,
        token: &str,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .header("api_access_token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn inbox(&self, webhook_url: &str) -> Value {
        let (s, b) = self
            .call("POST", "/inboxes", Some(json!({"name": "WhatsApp", "channel": {"type": "api", "webhook_url": webhook_url}})))
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }
    /// inbox + contact + conversation; returns (inbox_id, contact_id, conversation display id).
    async fn thread(&self, webhook_url: &str) -> (i64, i64, i64) {
        let inbox = self.inbox(webhook_url).await["id"].as_i64().unwrap();
        let (s, c) = self
            .call("POST", "/contacts", Some(json!({"inbox_id": inbox, "name": "João", "phone_number": "+5511988887777", "identifier": "5511988887777@s.whatsapp.net"})))
            .await;
        assert_eq!(s, 200, "{c}");
        let contact = c["payload"]["contact"]["id"].as_i64().unwrap();
        let (s, conv) = self
            .call(
                "POST",
                "/conversations",
                Some(json!({"inbox_id": inbox, "contact_id": contact})),
            )
            .await;
        assert_eq!(s, 200, "{conv}");
        (inbox, contact, conv["id"].as_i64().unwrap())
    }
}

/// Local webhook receiver: forwards (headers, raw body) of every POST.
async fn receiver(status: u16) -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), rx)
}

async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
    event: &str,
) -> (HeaderMap, Bytes, Value) {
    loop {
        let (h, b) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("webhook in time")
            .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        if v["event"] == event {
            return (h, b, v);
        }
    }
}

#[tokio::test]
async fn auth_errors() {
    let e = env().await;
    let other = e.cw.add_account("Other");
    let (_, stranger) =
        e.cw.add_user("S", "s@x.test", Role::Administrator, &[other]);
    let r = e.http.get(e.url("/inboxes")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": ["You need to sign in or sign up before continuing."]})
    );
    // Bearer is not read.
    let r = e
        .http
        .get(e.url("/inboxes"))
        .bearer_auth(&e.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, b) = e.call_as("nope", "GET", &e.url("/inboxes"), None).await;
    assert_eq!((s, b), (401, json!({"error": "Invalid Access Token"})));
    let url = format!("{}/api/v1/accounts/999/inboxes", e.cw.base_url());
    let (s, b) = e.call_as(&e.admin, "GET", &url, None).await;
    assert_eq!(
        (s, b),
        (404, json!({"error": "Resource could not be found"}))
    );
    let (s, b) = e.call_as(&stranger, "GET", &e.url("/inboxes"), None).await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"error": "You are not authorized to access this account"})
        )
    );
    let (s, b) = e.call("GET", "/inboxes/4242", None).await;
    assert_eq!(
        (s, b),
        (404, json!({"error": "Resource could not be found"}))
    );
}

#[tokio::test]
async fn inbox_admin_only_limit_and_lifecycle() {
    let e = env().await;
    let (_, agent) = e.cw.add_user("Ag", "ag@x.test", Role::Agent, &[e.account]);
    let body = json!({"name": "x", "channel": {"type": "api", "webhook_url": "http://h/x"}});
    let (s, b) = e
        .call_as(&agent, "POST", &e.url("/inboxes"), Some(body.clone()))
        .await;
    assert_eq!(
        (s, b),
        (
            401,
            json!({"error": "You are not authorized to do this action"})
        )
    );
    let (s, b) = e
        .call(
            "POST",
            "/inboxes",
            Some(json!({"name": " ", "channel": {"type": "api"}})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"message": "Name can't be blank", "attributes": ["name"]})
        )
    );
    let inbox = e.inbox("http://h/x").await;
    assert_eq!(inbox["channel_type"], "Channel::Api");
    assert_eq!(inbox["webhook_url"], "http://h/x");
    assert_eq!(inbox["inbox_identifier"].as_str().unwrap().len(), 24);
    assert!(inbox["hmac_token"].is_string() && inbox["secret"].is_string());
    e.cw.set_inbox_limit(e.account, Some(1));
    let (s, b) = e.call("POST", "/inboxes", Some(body)).await;
    assert_eq!(
        (s, b),
        (
            402,
            json!({"error": "Account limit exceeded. Upgrade to a higher plan"})
        )
    );
    let id = inbox["id"].as_i64().unwrap();
    let (s, b) = e
        .call(
            "PATCH",
            &format!("/inboxes/{id}"),
            Some(json!({"channel": {"webhook_url": ""}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["webhook_url"], "");
    let (s, b) = e.call("GET", "/inboxes", None).await;
    assert_eq!((s, b["payload"].as_array().unwrap().len()), (200, 1));
    let (s, b) = e.call("DELETE", &format!("/inboxes/{id}"), None).await;
    assert_eq!(
        (s, b),
        (
            200,
            json!({"message": "Your inbox deletion request will be processed in some time."})
        )
    );
    assert_eq!(e.call("GET", &format!("/inboxes/{id}"), None).await.0, 404);
    e.cw.set_signing(false);
    let inbox = e.inbox("").await;
    assert!(inbox.get("secret").is_none());
}

#[tokio::test]
async fn contacts_validation_nested_payload_and_filter_quirk() {
    let e = env().await;
    let inbox = e.inbox("").await["id"].as_i64().unwrap();
    let (s, b) = e
        .call(
            "POST",
            "/contacts",
            Some(json!({"inbox_id": inbox, "name": "X", "phone_number": "11988887777"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"message": "Phone number should be in e164 format", "attributes": ["phone_number"]})
        )
    );
    let (s, b) = e
        .call("POST", "/contacts", Some(json!({"inbox_id": inbox, "name": "João", "phone_number": "+5511988887777", "identifier": "jid-1"})))
        .await;
    assert_eq!(s, 200);
    let contact = &b["payload"]["contact"];
    assert_eq!(
        contact["contact_inboxes"][0]["inbox"]["channel_type"],
        "Channel::Api"
    );
    assert_eq!(
        b["payload"]["contact_inbox"]["inbox"]["account_id"],
        e.account
    );
    assert_eq!(
        b["payload"]["contact_inbox"]["source_id"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    let (s, b) = e
        .call(
            "POST",
            "/contacts",
            Some(json!({"inbox_id": inbox, "name": "Y", "phone_number": "+5511988887777"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"message": "Phone number has already been taken", "attributes": ["phone_number"]})
        )
    );
    let (s, b) = e
        .call(
            "POST",
            "/contacts",
            Some(json!({"name": "Z", "identifier": "jid-1"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"message": "Identifier has already been taken", "attributes": ["identifier"]})
        )
    );
    // Invisible (unresolved) contact.
    assert_eq!(
        e.call("POST", "/contacts", Some(json!({"name": "João"})))
            .await
            .0,
        200
    );
    let clause = |v: Value| json!({"payload": [{"attribute_key": "phone_number", "filter_operator": "equal_to", "values": v, "query_operator": null}]});
    let (_, b) = e
        .call(
            "POST",
            "/contacts/filter",
            Some(clause(json!(["5511988887777"]))),
        )
        .await;
    assert_eq!(b["meta"]["count"], 1, "+ is prefixed");
    let (_, b) = e
        .call(
            "POST",
            "/contacts/filter",
            Some(clause(json!(["+5500000000000", "+5511988887777"]))),
        )
        .await;
    assert_eq!(b["meta"]["count"], 0, "only values[0] is used");
    let or = json!({"payload": [
        {"attribute_key": "phone_number", "filter_operator": "equal_to", "values": ["+5500000000000"], "query_operator": "OR"},
        {"attribute_key": "identifier", "filter_operator": "equal_to", "values": ["jid-1"], "query_operator": null}]});
    let (_, b) = e.call("POST", "/contacts/filter", Some(or)).await;
    assert_eq!(b["meta"]["count"], 1);
    let (s, b) = e.call("GET", "/contacts/search", None).await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"error": "Specify search string with parameter q"})
        )
    );
    let (_, b) = e.call("GET", "/contacts/search?q=jo%C3%A3o", None).await;
    assert_eq!(b["meta"]["count"], 1, "nameless-key contact never returned");
}

#[tokio::test]
async fn display_ids_are_per_account_and_lock_to_single() {
    let e = env().await;
    let (_, _, c1) = e.thread("").await;
    assert_eq!(c1, 1);
    let acc2 = e.cw.add_account("Two");
    let (_, t2) = e.cw.add_user("B", "b@x.test", Role::Administrator, &[acc2]);
    let base = format!("{}/api/v1/accounts/{acc2}", e.cw.base_url());
    let (_, ib) = e.call_as(&t2, "POST", &format!("{base}/inboxes"), Some(json!({"name": "I", "channel": {"type": "api"}, "lock_to_single_conversation": true}))).await;
    let (_, c) = e
        .call_as(
            &t2,
            "POST",
            &format!("{base}/contacts"),
            Some(json!({"inbox_id": ib["id"], "identifier": "a", "source_id": "src-1"})),
        )
        .await;
    let body = json!({"inbox_id": ib["id"], "contact_id": c["payload"]["contact"]["id"], "source_id": "src-1"});
    let (_, conv) = e
        .call_as(
            &t2,
            "POST",
            &format!("{base}/conversations"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(conv["id"], 1);
    assert_eq!(conv["status"], "open");
    let (_, again) = e
        .call_as(&t2, "POST", &format!("{base}/conversations"), Some(body))
        .await;
    assert_eq!(
        again["id"], 1,
        "lock_to_single_conversation returns the last one"
    );
    let (_, c2) = e
        .call(
            "POST",
            "/conversations",
            Some(json!({"source_id": "src-1"})),
        )
        .await;
    assert_eq!(
        c2,
        json!({"error": "Resource could not be found"}),
        "other account's source_id"
    );
    let (_, third) = e
        .call(
            "POST",
            "/conversations",
            Some(json!({"inbox_id": 1, "contact_id": 1})),
        )
        .await;
    assert_eq!(third["id"], 2);
}

#[tokio::test]
async fn messages_incoming_outgoing_reopen_and_webhook_signature() {
    let e = env().await;
    let (url, mut rx) = receiver(200).await;
    let (inbox, contact, conv) = e.thread(&url).await;
    let secret = e.cw.inboxes(e.account)[0]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, m) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(json!({"content": "Oi", "message_type": "incoming", "source_id": "WAID:1"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            m["message_type"].clone(),
            m["sender"]["type"].clone(),
            m["sender"]["id"].as_i64()
        ),
        (json!(0), json!("contact"), Some(contact))
    );
    assert_eq!(m["inbox_id"], inbox);
    let (h, raw, v) = next_event(&mut rx, "message_created").await;
    assert_eq!(v["message_type"], "incoming");
    assert_eq!(v["source_id"], "WAID:1");
    assert!(v["sender"].get("type").is_none());
    assert_eq!(v["conversation"]["messages"][0]["message_type"], 0);
    let ts: i64 = h["x-chatwoot-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(
        h["x-chatwoot-signature"].to_str().unwrap(),
        sign_webhook(&secret, ts, &raw)
    );
    assert!(h.contains_key("x-chatwoot-delivery"));

    let (_, out) = e
        .call("POST", &format!("/conversations/{conv}/messages"), Some(json!({"content": "Olá", "content_attributes": {"in_reply_to_external_id": "WAID:1"}})))
        .await;
    assert_eq!(out["message_type"], 1);
    assert_eq!(out["sender"]["type"], "user");
    assert_eq!(out["content_attributes"]["in_reply_to"], m["id"]);
    let (_, _, v) = next_event(&mut rx, "message_created").await;
    assert_eq!(
        (v["message_type"].clone(), v["sender"]["type"].clone()),
        (json!("outgoing"), json!("user"))
    );

    let (_, t) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/toggle_status"),
            None,
        )
        .await;
    assert_eq!(
        t,
        json!({"meta": {}, "payload": {"success": true, "conversation_id": conv, "current_status": "resolved", "snoozed_until": null}})
    );
    let (_, _, v) = next_event(&mut rx, "conversation_status_changed").await;
    assert_eq!(
        v["changed_attributes"],
        json!([{"status": {"previous_value": "open", "current_value": "resolved"}}])
    );
    e.call(
        "POST",
        &format!("/conversations/{conv}/messages"),
        Some(json!({"content": "again", "message_type": "incoming"})),
    )
    .await;
    let (_, c) = e.call("GET", &format!("/conversations/{conv}"), None).await;
    assert_eq!(
        c["status"], "open",
        "incoming reopens a resolved conversation"
    );
    let (_, _, v) = next_event(&mut rx, "conversation_status_changed").await;
    assert_eq!(v["status"], "open");

    let (_, list) = e
        .call(
            "GET",
            &format!("/conversations/{conv}/messages?after={}", m["id"]),
            None,
        )
        .await;
    let ids: Vec<i64> = list["payload"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.first().copied(), m["id"].as_i64());
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let (_, convs) = e.call("GET", "/conversations?status=open", None).await;
    assert_eq!(convs["data"]["meta"]["all_count"], 1);
}

#[tokio::test]
async fn status_patch_and_agent_delete_fire_message_updated() {
    let e = env().await;
    let (url, mut rx) = receiver(200).await;
    let (_, _, conv) = e.thread(&url).await;
    let reply =
        e.cw.agent_reply(e.account, conv, e.admin_id, "hello", vec![], false, None);
    assert_eq!(reply["source_id"], Value::Null);
    let (_, _, v) = next_event(&mut rx, "message_created").await;
    assert_eq!(v["content"], "hello");
    let mid = reply["id"].as_i64().unwrap();
    let path = format!("/conversations/{conv}/messages/{mid}");
    let (s, b) = e
        .call("PATCH", &path, Some(json!({"status": "read"})))
        .await;
    assert_eq!((s, b["status"].clone()), (200, json!("read")));
    let (_, _, v) = next_event(&mut rx, "message_updated").await;
    assert_eq!(v["id"], mid);
    let (s, b) = e
        .call("PATCH", &path, Some(json!({"status": "delivered"})))
        .await;
    assert_eq!(
        (s, b["status"].clone()),
        (200, json!("read")),
        "read→delivered ignored"
    );
    e.cw.agent_delete(e.account, conv, mid);
    let (_, _, v) = next_event(&mut rx, "message_updated").await;
    assert_eq!(v["content"], "This message was deleted");
    assert_eq!(v["content_attributes"], json!({"deleted": true}));
    // Non-API inbox: status PATCH refused, incoming refused.
    let (_, w) = e
        .call(
            "POST",
            "/inboxes",
            Some(json!({"name": "Web", "channel": {"type": "web_widget"}})),
        )
        .await;
    let (_, c) = e
        .call("POST", "/contacts", Some(json!({"identifier": "w"})))
        .await;
    let (_, wc) = e
        .call(
            "POST",
            "/conversations",
            Some(json!({"inbox_id": w["id"], "contact_id": c["payload"]["contact"]["id"]})),
        )
        .await;
    let (s, b) = e
        .call(
            "POST",
            &format!("/conversations/{}/messages", wc["id"]),
            Some(json!({"content": "x", "message_type": "incoming"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"error": "Incoming messages are only allowed in Api inboxes"})
        )
    );
    let (_, wm) = e
        .call(
            "POST",
            &format!("/conversations/{}/messages", wc["id"]),
            Some(json!({"content": "x"})),
        )
        .await;
    let (s, b) = e
        .call(
            "PATCH",
            &format!("/conversations/{}/messages/{}", wc["id"], wm["id"]),
            Some(json!({"status": "read"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            403,
            json!({"error": "Message status update is only allowed for API inboxes"})
        )
    );
}

#[tokio::test]
async fn multipart_attachments_and_data_url() {
    let e = env().await;
    let (_, _, conv) = e.thread("").await;
    let form = reqwest::multipart::Form::new()
        .text("content", "foto")
        .text("message_type", "incoming")
        .text("content_attributes", r#"{"external_created_at": 1}"#)
        .part(
            "attachments[]",
            reqwest::multipart::Part::bytes(b"\x89PNG-bytes".to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .part(
            "attachments[]",
            reqwest::multipart::Part::bytes(b"%PDF".to_vec())
                .file_name("b.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = e
        .http
        .post(e.url(&format!("/conversations/{conv}/messages")))
        .header("api_access_token", &e.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content_attributes"]["external_created_at"], 1);
    let atts = m["attachments"].as_array().unwrap();
    assert_eq!(
        (atts[0]["file_type"].clone(), atts[1]["file_type"].clone()),
        (json!("image"), json!("file"))
    );
    let data_url = atts[0]["data_url"].as_str().unwrap();
    assert!(
        data_url.starts_with(&format!(
            "{}/rails/active_storage/blobs/redirect/",
            e.cw.base_url()
        )) && data_url.ends_with("/a.png")
    );
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(no_follow.get(data_url).send().await.unwrap().status(), 302);
    let r = e.http.get(data_url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\x89PNG-bytes");
    // 16 attachments → 422.
    let mut form = reqwest::multipart::Form::new().text("content", "x");
    for i in 0..16 {
        form = form.part(
            "attachments[]",
            reqwest::multipart::Part::bytes(vec![1]).file_name(format!("{i}.bin")),
        );
    }
    let r = e
        .http
        .post(e.url(&format!("/conversations/{conv}/messages")))
        .header("api_access_token", &e.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn webhook_failure_marks_message_failed() {
    let e = env().await;
    e.cw.set_webhook_timeout(Duration::from_millis(300));
    let (url, _rx) = receiver(500).await;
    let (_, _, conv) = e.thread(&url).await;
    let (_, m) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(json!({"content": "x"})),
        )
        .await;
    assert!(e.cw.webhooks_idle(Duration::from_secs(5)).await);
    let d = e.cw.webhook_deliveries();
    assert_eq!(
        (d[0].status_code, d[0].error.as_deref()),
        (Some(500), Some("500 Internal Server Error"))
    );
    let stored = e.cw.messages(e.account, conv);
    let stored = stored.iter().find(|x| x["id"] == m["id"]).unwrap();
    assert_eq!(stored["status"], "failed");
    assert_eq!(
        stored["content_attributes"]["external_error"],
        "500 Internal Server Error"
    );
    // Unreachable receiver.
    let (s, _) = e
        .call(
            "PATCH",
            "/inboxes/1",
            Some(json!({"channel": {"webhook_url": "http://127.0.0.1:9/hook"}})),
        )
        .await;
    assert_eq!(s, 200);
    e.call(
        "POST",
        &format!("/conversations/{conv}/messages"),
        Some(json!({"content": "y"})),
    )
    .await;
    let d = e.cw.wait_for_deliveries(2, Duration::from_secs(5)).await;
    assert!(
        d[1].error
            .as_deref()
            .unwrap()
            .starts_with("Failed to open TCP connection"),
        "{:?}",
        d[1].error
    );
}

#[tokio::test]
async fn faults_fail_next_delay_down_and_recording() {
    let e = env().await;
    e.cw.fail_next(2, 500);
    let (s, b) = e.call("GET", "/inboxes", None).await;
    assert_eq!(
        (s, b),
        (
            500,
            json!({"status": 500, "error": "Internal Server Error"})
        )
    );
    e.cw.fail_next(1, 429);
    let r = e
        .http
        .get(e.url("/inboxes"))
        .header("api_access_token", &e.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(e.call("GET", "/inboxes", None).await.0, 200);
    e.cw.set_delay(Duration::from_millis(300));
    let t = std::time::Instant::now();
    assert_eq!(e.call("GET", "/inboxes", None).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    e.cw.set_delay(Duration::ZERO);
    e.cw.set_down(true);
    let err = e
        .http
        .get(e.url("/inboxes"))
        .header("api_access_token", &e.admin)
        .send()
        .await;
    assert!(err.is_err(), "connection-level failure expected");
    e.cw.set_down(false);
    assert_eq!(e.call("GET", "/inboxes", None).await.0, 200);
    assert_eq!(
        e.cw.count("GET", &format!("/api/v1/accounts/{}/inboxes", e.account)),
        5
    );
    e.cw.clear_requests();
    assert!(e.cw.requests().is_empty());
}

#[tokio::test]
async fn flood_limit_and_merge() {
    let e = env().await;
    let (inbox, contact, conv) = e.thread("").await;
    e.cw.set_message_rate_limit(3);
    for _ in 0..3 {
        assert_eq!(
            e.call(
                "POST",
                &format!("/conversations/{conv}/messages"),
                Some(json!({"content": "x"}))
            )
            .await
            .0,
            200
        );
    }
    let (s, b) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            422,
            json!({"error": "Validation failed: Too many messages"})
        )
    );
    let (_, other) = e
        .call(
            "POST",
            "/contacts",
            Some(json!({"inbox_id": inbox, "identifier": "dup", "source_id": "s2"})),
        )
        .await;
    let other = other["payload"]["contact"]["id"].as_i64().unwrap();
    let (s, _) = e
        .call(
            "POST",
            "/actions/contact_merge",
            Some(json!({"base_contact_id": contact, "mergee_contact_id": other})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        e.call("GET", &format!("/contacts/{other}"), None).await.0,
        404
    );
    let (_, b) = e.call("GET", &format!("/contacts/{contact}"), None).await;
    // contact create + conversation create without source_id (new random
    // contact_inbox, a real ContactInboxBuilder quirk) + the mergee's one.
    assert_eq!(b["payload"]["contact_inboxes"].as_array().unwrap().len(), 3);
    let (_, convs) = e
        .call("GET", &format!("/contacts/{contact}/conversations"), None)
        .await;
    assert_eq!(convs["payload"][0]["id"], conv);
}

/// What a history import sends: Chatwoot's MessageBuilder does not permit
/// `created_at` (the message gets the time it was created), keeps
/// `source_id` as given (not unique) and stores `content_attributes` keys
/// such as `external_created_at`.
#[tokio::test]
async fn created_at_is_not_taken_and_source_id_and_external_created_at_are() {
    let e = env().await;
    let (url, _rx) = receiver(200).await;
    let (_, _, conv) = e.thread(&url).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (s, m) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(json!({
                "content": "antiga",
                "message_type": "incoming",
                "source_id": "WAID:OLD",
                "created_at": 1_600_000_000,
                "content_attributes": {"external_created_at": 1_600_000_000},
            })),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert!(m["created_at"].as_i64().unwrap() >= before, "{m}");
    assert_eq!(m["source_id"], "WAID:OLD");
    assert_eq!(
        m["content_attributes"]["external_created_at"],
        1_600_000_000
    );
    // The same source id again is a second message: dedupe is the caller's.
    let (s, again) = e
        .call(
            "POST",
            &format!("/conversations/{conv}/messages"),
            Some(json!({"content": "antiga", "message_type": "incoming", "source_id": "WAID:OLD"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_ne!(again["id"], m["id"]);
}
