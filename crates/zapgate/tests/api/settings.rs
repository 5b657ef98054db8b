//! Instance settings (RyzeAPI §4.6): read, partial update, refusals, and each
//! setting's effect, observed on the sandbox phone and in the Chatwoot double.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    bridge::{CUSTOMER, Fixture},
    harness::{Reply, TestServer},
};

const HISTORY_SYNC_UNSUPPORTED: &str = "Invalid disableHistorySync: false is not supported yet (zapgate does not import message history)";
const GROUP: &str = "120363024567890123@g.us";

fn defaults() -> Value {
    json!({
        "autoRejectCalls": false,
        "callRejectMessage": "",
        "ignoreGroupMessages": false,
        "keepOnlineStatus": false,
        "autoReadMessages": false,
        "disableHistorySync": true,
        "ignoreStatus": false,
    })
}

/// `defaults()` with `changes` laid over it.
fn settings_with(changes: Value) -> Value {
    let mut settings = defaults();
    for (k, v) in changes.as_object().unwrap() {
        settings[k] = v.clone();
    }
    settings
}

async fn get_settings(server: &TestServer, token: &str, name: &str) -> Reply {
    server
        .get(&format!("/api/instance/getSettings/{name}"), Some(token))
        .await
}

async fn set(server: &TestServer, token: &str, name: &str, body: Value) -> Reply {
    server
        .post(&format!("/api/instance/settings/{name}"), Some(token), body)
        .await
}

fn assert_updated(reply: &Reply, settings: Value) {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Settings updated successfully", "settings": settings})
    );
}

async fn outbox(server: &TestServer, token: &str, name: &str) -> Value {
    let reply = server
        .get(&format!("/api/sandbox/{name}/outbox"), Some(token))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.body
}

#[tokio::test]
async fn get_settings_shows_the_defaults_to_either_token() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let instance = server.create_instance(&account, "suporte").await;
    for token in [&account, &instance] {
        let reply = get_settings(&server, token, "suporte").await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
        assert_eq!(
            reply.body,
            json!({"success": true, "message": "Settings retrieved successfully", "settings": defaults()})
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_partial_update_keeps_the_other_settings() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let instance = server.create_instance(&account, "suporte").await;

    let first = set(
        &server,
        &instance,
        "suporte",
        json!({"ignoreGroupMessages": true, "callRejectMessage": "Só mensagens, por favor"}),
    )
    .await;
    let expected = settings_with(
        json!({"ignoreGroupMessages": true, "callRejectMessage": "Só mensagens, por favor"}),
    );
    assert_updated(&first, expected.clone());

    // Unknown fields are ignored, like everywhere else in the API.
    let second = set(
        &server,
        &account,
        "suporte",
        json!({"autoReadMessages": true, "somethingElse": 1}),
    )
    .await;
    let expected = settings_with(json!({
        "ignoreGroupMessages": true,
        "callRejectMessage": "Só mensagens, por favor",
        "autoReadMessages": true,
    }));
    assert_updated(&second, expected.clone());
    assert_eq!(
        get_settings(&server, &instance, "suporte").await.body["settings"],
        expected
    );
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["instances"][0]["settings"], expected,
        "{}",
        list.text
    );

    // The real client's round trip (client contract §1.3).
    set(
        &server,
        &instance,
        "suporte",
        json!({"ignoreGroupMessages": false}),
    )
    .await;
    let back = get_settings(&server, &instance, "suporte").await;
    assert_eq!(back.body["settings"]["ignoreGroupMessages"], json!(false));
    assert_eq!(back.body["settings"]["autoReadMessages"], json!(true));
    server.stop().await;
}

#[tokio::test]
async fn bad_settings_bodies_are_400_and_change_nothing() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let instance = server.create_instance(&account, "suporte").await;
    for (body, message) in [
        (json!({}), "At least one setting must be provided"),
        (
            json!({"unknown": true}),
            "At least one setting must be provided",
        ),
        (
            json!({"ignoreGroupMessages": null}),
            "At least one setting must be provided",
        ),
        (
            json!({"ignoreGroupMessages": "yes"}),
            "Invalid ignoreGroupMessages: a boolean is required",
        ),
        (
            json!({"keepOnlineStatus": 1, "ignoreStatus": true}),
            "Invalid keepOnlineStatus: a boolean is required",
        ),
        (
            json!({"callRejectMessage": 5}),
            "Invalid callRejectMessage: a string is required",
        ),
        (
            json!({"callRejectMessage": "x".repeat(1025)}),
            "Invalid callRejectMessage: at most 1024 characters",
        ),
        (
            json!({"disableHistorySync": false, "ignoreStatus": true}),
            HISTORY_SYNC_UNSUPPORTED,
        ),
        (json!("ignoreStatus"), "Invalid request body"),
    ] {
        set(&server, &instance, "suporte", body)
            .await
            .assert_error(400, message);
    }
    let malformed = server
        .client
        .post(server.url("/api/instance/settings/suporte"))
        .header("token", &instance)
        .header("content-type", "application/json")
        .body("{\"ignoreStatus\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let text = malformed.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"success":false,"error":{"message":"Invalid request body"}}"#
    );
    // Exactly 1024 characters is fine.
    let longest = "é".repeat(1024);
    let reply = set(
        &server,
        &instance,
        "suporte",
        json!({"callRejectMessage": longest}),
    )
    .await;
    assert_updated(&reply, settings_with(json!({"callRejectMessage": longest})));
    set(
        &server,
        &instance,
        "suporte",
        json!({"disableHistorySync": true}),
    )
    .await;
    assert_eq!(
        get_settings(&server, &instance, "suporte").await.body["settings"],
        settings_with(json!({"callRejectMessage": longest}))
    );
    server.stop().await;
}

#[tokio::test]
async fn creation_refuses_settings_zapgate_cannot_honour() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for (body, message) in [
        (
            json!({"name": "a", "disableHistorySync": false}),
            HISTORY_SYNC_UNSUPPORTED,
        ),
        (
            json!({"name": "a", "callRejectMessage": "x".repeat(1025)}),
            "Invalid callRejectMessage: at most 1024 characters",
        ),
    ] {
        server
            .post("/api/instance/new", Some(&account), body)
            .await
            .assert_error(400, message);
    }
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(list.body["message"], json!("0 Instances found"));
    // What the real client sends is accepted and shown back.
    let created = server
        .post(
            "/api/instance/new",
            Some(&account),
            json!({"name": "a", "disableHistorySync": true, "ignoreGroupMessages": true, "ignoreStatus": true}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(
        get_settings(&server, &account, "a").await.body["settings"],
        settings_with(json!({"ignoreGroupMessages": true, "ignoreStatus": true}))
    );
    server.stop().await;
}

#[tokio::test]
async fn settings_at_creation_take_effect_once_the_phone_is_linked() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let created = server
        .post(
            "/api/instance/new",
            Some(&account),
            json!({"name": "loja", "keepOnlineStatus": true, "autoRejectCalls": true,
                   "callRejectMessage": "Não atendemos ligações"}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let token = created.body["instance"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.pair(&token, "loja", "5511999990000").await;
    assert_eq!(
        outbox(&server, &token, "loja").await["presence"],
        json!("available")
    );

    let call = server
        .post(
            "/api/sandbox/loja/call",
            Some(&token),
            json!({"from": CUSTOMER, "video": true}),
        )
        .await;
    assert_eq!(call.status.as_u16(), 200, "{}", call.text);
    assert_eq!(call.body["call"]["status"], json!("rejected"));
    assert_eq!(call.body["call"]["video"], json!(true));
    let sent = outbox(&server, &token, "loja").await;
    assert_eq!(sent["calls"][0]["status"], json!("rejected"), "{sent}");
    assert_eq!(
        sent["calls"][0]["from"],
        json!(format!("{CUSTOMER}@s.whatsapp.net"))
    );
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{sent}");
    assert_eq!(messages[0]["kind"], json!("text"));
    assert_eq!(
        messages[0]["to"],
        json!(format!("{CUSTOMER}@s.whatsapp.net"))
    );
    assert_eq!(messages[0]["text"], json!("Não atendemos ligações"));
    server.stop().await;
}

#[tokio::test]
async fn calls_ring_until_auto_reject_is_on_and_an_empty_message_sends_nothing() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    let ring = || {
        server.post(
            "/api/sandbox/suporte/call",
            Some(&token),
            json!({"from": CUSTOMER}),
        )
    };
    ring()
        .await
        .assert_error(400, "Instance is not connected to WhatsApp");
    server.pair(&token, "suporte", "5511999990000").await;
    let first = ring().await;
    assert_eq!(
        first.body["call"]["status"],
        json!("offer"),
        "{}",
        first.text
    );

    set(&server, &token, "suporte", json!({"autoRejectCalls": true})).await;
    let second = ring().await;
    assert_eq!(
        second.body["call"]["status"],
        json!("rejected"),
        "{}",
        second.text
    );
    assert_ne!(second.body["call"]["id"], first.body["call"]["id"]);
    let sent = outbox(&server, &token, "suporte").await;
    let statuses: Vec<_> = sent["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("offer"), json!("rejected")]);
    // No callRejectMessage: the caller is declined without a text.
    assert_eq!(sent["messages"], json!([]), "{sent}");
    server
        .post(
            "/api/sandbox/suporte/call",
            Some(&token),
            json!({"from": GROUP}),
        )
        .await
        .assert_error(400, "from must be a person's id");
    server.stop().await;
}

#[tokio::test]
async fn keep_online_is_applied_live_to_a_connected_session() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    // Not connected: nothing to announce yet.
    set(
        &server,
        &token,
        "suporte",
        json!({"keepOnlineStatus": true}),
    )
    .await;
    assert_eq!(
        outbox(&server, &token, "suporte").await["presence"],
        json!(null)
    );
    server.pair(&token, "suporte", "5511999990000").await;
    assert_eq!(
        outbox(&server, &token, "suporte").await["presence"],
        json!("available")
    );
    set(
        &server,
        &token,
        "suporte",
        json!({"keepOnlineStatus": false}),
    )
    .await;
    assert_eq!(
        outbox(&server, &token, "suporte").await["presence"],
        json!("unavailable")
    );
    set(
        &server,
        &token,
        "suporte",
        json!({"keepOnlineStatus": true}),
    )
    .await;
    assert_eq!(
        outbox(&server, &token, "suporte").await["presence"],
        json!("available")
    );
    server.stop().await;
}

// ------------------------------------------------ through the bridge

async fn inbound(f: &Fixture, body: Value) -> Reply {
    let reply = f
        .server
        .post("/api/sandbox/suporte/inbound", Some(&f.token), body)
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply
}

/// Waits until Chatwoot has `n` conversations, then a moment more to show
/// no other one is coming.
async fn settle_conversations(f: &Fixture, n: usize) -> Vec<Value> {
    f.until(&format!("{n} conversations"), || {
        let found = f.conversations();
        (found.len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.conversations()
}

#[tokio::test]
async fn ignored_group_messages_and_status_posts_never_reach_chatwoot() {
    let f = Fixture::start(json!({})).await;
    set(
        &f.server,
        &f.token,
        "suporte",
        json!({"ignoreGroupMessages": true, "ignoreStatus": true}),
    )
    .await;
    let group =
        json!({"from": CUSTOMER, "text": "no grupo", "group": {"jid": GROUP, "subject": "Loja"}});
    let dropped = inbound(&f, group.clone()).await;
    assert_eq!(dropped.body["delivered"], json!(false), "{}", dropped.text);
    let status = json!({"from": CUSTOMER, "text": "meu status", "statusPost": true});
    let dropped = inbound(&f, status.clone()).await;
    assert_eq!(dropped.body["delivered"], json!(false), "{}", dropped.text);
    // What the API sends to the group stays out of Chatwoot as well.
    let sent = f
        .server
        .post(
            "/api/message/text/suporte",
            Some(&f.token),
            json!({"number": GROUP, "message": "para o grupo"}),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 200, "{}", sent.text);
    // A direct message still goes through, and it is the only one.
    inbound(&f, json!({"from": CUSTOMER, "text": "direto"})).await;
    let conversations = settle_conversations(&f, 1).await;
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    let id = conversations[0]["id"].as_i64().unwrap();
    let texts: Vec<_> = f
        .messages(id)
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert!(!texts.iter().any(|t| t.contains("no grupo")), "{texts:?}");

    // Switched off, the group is delivered again (status posts are delivered
    // to the event sink, which the bridge leaves out of Chatwoot).
    set(
        &f.server,
        &f.token,
        "suporte",
        json!({"ignoreGroupMessages": false, "ignoreStatus": false}),
    )
    .await;
    let kept = inbound(&f, status).await;
    assert_eq!(kept.body["delivered"], json!(true), "{}", kept.text);
    let kept = inbound(&f, group).await;
    assert_eq!(kept.body["delivered"], json!(true), "{}", kept.text);
    let conversations = settle_conversations(&f, 2).await;
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    f.server.stop().await;
}

#[tokio::test]
async fn auto_read_marks_a_stored_message_read_on_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let plain = inbound(&f, json!({"from": CUSTOMER, "text": "sem leitura"})).await;
    set(
        &f.server,
        &f.token,
        "suporte",
        json!({"autoReadMessages": true}),
    )
    .await;
    let read = inbound(&f, json!({"from": CUSTOMER, "text": "lida"})).await;
    inbound(
        &f,
        json!({"from": CUSTOMER, "text": "do celular", "fromMe": true}),
    )
    .await;
    let marks: Vec<Value> = f
        .outbox()
        .await
        .into_iter()
        .filter(|m| m["kind"] == json!("read"))
        .collect();
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0]["targetId"], read.body["id"]);
    assert_ne!(marks[0]["targetId"], plain.body["id"]);
    assert_eq!(marks[0]["to"], json!(format!("{CUSTOMER}@s.whatsapp.net")));
    // And the message itself reached Chatwoot.
    settle_conversations(&f, 1).await;
    f.server.stop().await;
}

#[tokio::test]
async fn the_event_log_has_calls_and_only_the_chats_the_settings_keep() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;
    // Events are logged for a consumer: a WebSocket taking every event.
    let ws = server
        .post(
            "/api/events/websocket/suporte",
            Some(&token),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(ws.status.as_u16(), 200, "{}", ws.text);
    set(
        &server,
        &token,
        "suporte",
        json!({"ignoreGroupMessages": true, "autoRejectCalls": true}),
    )
    .await;
    let sandbox = |action: &str| format!("/api/sandbox/suporte/{action}");
    for body in [
        json!({"from": CUSTOMER, "text": "no grupo", "group": {"jid": GROUP}}),
        json!({"from": CUSTOMER, "text": "meu status", "statusPost": true}),
    ] {
        let reply = server.post(&sandbox("inbound"), Some(&token), body).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let call = server
        .post(&sandbox("call"), Some(&token), json!({"from": CUSTOMER}))
        .await;
    let call_id = call.body["call"]["id"].clone();

    let log = server
        .get("/api/events/log/suporte?after=0", Some(&token))
        .await;
    assert_eq!(log.status.as_u16(), 200, "{}", log.text);
    let events = log.body["events"].as_array().unwrap();
    let exchanged: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == json!("message.exchange"))
        .map(|e| e["data"].to_string())
        .collect();
    assert_eq!(exchanged.len(), 1, "{}", log.text);
    assert!(
        exchanged[0].contains("status@broadcast"),
        "{}",
        exchanged[0]
    );
    assert!(!log.text.contains(GROUP), "{}", log.text);
    let calls: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e["event"] == json!("call.update"))
        .map(|e| (e["data"]["id"].clone(), e["data"]["status"].clone()))
        .collect();
    assert_eq!(
        calls,
        [
            (call_id.clone(), json!("offer")),
            (call_id, json!("rejected"))
        ],
        "{}",
        log.text
    );
    server.stop().await;
}
