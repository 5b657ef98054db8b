//! The sandbox phone's API under `/api/sandbox/:instance/*`: either token,
//! ownership checked, every route.
//!
//! Not covered: "the routes are 404 when the sandbox is not the provider".
//! `sandbox` is the only provider this build accepts, so there is no server
//! without it; the tests only show the routes live under `/api/sandbox`.

use serde_json::{Value, json};

use crate::harness::{Env, Reply, TestServer};

const NO_LOGIN_PENDING: &str = "No login pending: call GET /api/instance/connect/:instance first";
const NOTHING_TO_RECONNECT: &str = "No paired session to reconnect: pair the phone first";
const NOT_CONNECTED: &str = "Instance is not connected to WhatsApp";

/// An account with one instance; (account token, instance token).
async fn setup(server: &TestServer, name: &str) -> (String, String) {
    let (_, account) = server.create_account("acme", 10).await;
    let instance = server.create_instance(&account, name).await;
    (account, instance)
}

async fn connection(server: &TestServer, token: &str, name: &str) -> Value {
    let list = server
        .get(
            &format!("/api/instance/list?instanceName={name}"),
            Some(token),
        )
        .await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    list.body["instances"][0]["connection"].clone()
}

fn assert_ok(reply: &Reply, expected: Value) {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body, expected);
}

/// A successful inbound: exactly `{"success":true,"id":"...","delivered":true}`; the id.
fn inbound_id(reply: &Reply) -> String {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let object = reply.body.as_object().expect("a JSON object");
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["delivered", "id", "success"], "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["delivered"], json!(true));
    let id = reply.body["id"]
        .as_str()
        .expect("id is a string")
        .to_owned();
    assert!(!id.is_empty());
    id
}

#[tokio::test]
async fn pair_without_a_pending_connect_is_409() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&instance),
            json!({"number": "5511999990000"}),
        )
        .await
        .assert_error(409, NO_LOGIN_PENDING);
    let state = connection(&server, &instance, "suporte").await;
    assert_eq!(state["state"], json!("disconnected"));
    assert_eq!(state["numberJid"], json!(null));
    server.stop().await;
}

#[tokio::test]
async fn pair_after_connect_shows_connected_with_the_number_in_the_list() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    let connect = server
        .get("/api/instance/connect/suporte", Some(&instance))
        .await;
    assert_eq!(connect.status.as_u16(), 200, "{}", connect.text);
    assert_eq!(
        connection(&server, &account, "suporte").await["state"],
        json!("connecting")
    );

    let paired = server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&account),
            json!({"number": "5511999990000"}),
        )
        .await;
    assert_ok(
        &paired,
        json!({
            "success": true,
            "message": "Phone paired",
            "status": "connected",
            "numberJid": "5511999990000@s.whatsapp.net",
        }),
    );
    let state = connection(&server, &instance, "suporte").await;
    assert_eq!(state["state"], json!("connected"));
    assert_eq!(state["numberJid"], json!("5511999990000@s.whatsapp.net"));

    // The login was used up: pairing again needs another connect.
    server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&account),
            json!({"number": "5511999990000"}),
        )
        .await
        .assert_error(409, NO_LOGIN_PENDING);
    server.stop().await;
}

#[tokio::test]
async fn a_pairing_code_pairs_only_the_number_it_was_issued_for() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    let connect = server
        .get(
            "/api/instance/connect/suporte?number=5511999990000",
            Some(&instance),
        )
        .await;
    assert_eq!(connect.status.as_u16(), 200, "{}", connect.text);
    assert_eq!(connect.body["status"], json!("pairing"));
    server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&instance),
            json!({"number": "5511888880000"}),
        )
        .await
        .assert_error(400, "Pairing code was issued for another number");
    assert_eq!(
        connection(&server, &instance, "suporte").await["state"],
        json!("connecting")
    );
    let paired = server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&instance),
            json!({"number": "5511999990000"}),
        )
        .await;
    assert_eq!(paired.status.as_u16(), 200, "{}", paired.text);
    assert_eq!(
        paired.body["numberJid"],
        json!("5511999990000@s.whatsapp.net")
    );
    server.stop().await;
}

#[tokio::test]
async fn disconnect_keeps_the_number_and_reconnect_brings_the_phone_back() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    server
        .post("/api/sandbox/suporte/reconnect", Some(&instance), json!({}))
        .await
        .assert_error(409, NOTHING_TO_RECONNECT);
    server
        .post(
            "/api/sandbox/suporte/disconnect",
            Some(&instance),
            json!({}),
        )
        .await
        .assert_error(409, NOT_CONNECTED);
    server.pair(&instance, "suporte", "5511999990000").await;

    let down = server
        .post(
            "/api/sandbox/suporte/disconnect",
            Some(&instance),
            json!({}),
        )
        .await;
    assert_ok(
        &down,
        json!({
            "success": true,
            "message": "Phone disconnected",
            "status": "disconnected",
            "numberJid": "5511999990000@s.whatsapp.net",
        }),
    );
    let state = connection(&server, &account, "suporte").await;
    assert_eq!(state["state"], json!("disconnected"));
    assert_eq!(state["numberJid"], json!("5511999990000@s.whatsapp.net"));
    server
        .post("/api/sandbox/suporte/disconnect", Some(&account), json!({}))
        .await
        .assert_error(409, NOT_CONNECTED);

    let up = server
        .post("/api/sandbox/suporte/reconnect", Some(&account), json!({}))
        .await;
    assert_ok(
        &up,
        json!({
            "success": true,
            "message": "Phone reconnected",
            "status": "connected",
            "numberJid": "5511999990000@s.whatsapp.net",
        }),
    );
    assert_eq!(
        connection(&server, &instance, "suporte").await["state"],
        json!("connected")
    );
    // Reconnecting a connected phone is harmless.
    let again = server
        .post("/api/sandbox/suporte/reconnect", Some(&instance), json!({}))
        .await;
    assert_eq!(again.status.as_u16(), 200, "{}", again.text);
    assert_eq!(again.body["status"], json!("connected"));
    server.stop().await;
}

#[tokio::test]
async fn inbound_text_answers_only_success_and_the_id() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    let first = inbound_id(
        &server
            .post(
                "/api/sandbox/suporte/inbound",
                Some(&instance),
                json!({"from": "5511988887777@s.whatsapp.net", "pushName": "Ana", "text": "oi"}),
            )
            .await,
    );
    let second = inbound_id(
        &server
            .post(
                "/api/sandbox/suporte/inbound",
                Some(&account),
                json!({"from": "5511988887777", "text": "tudo bem?"}),
            )
            .await,
    );
    assert_ne!(first, second, "generated ids are fresh");
    server.stop().await;
}

#[tokio::test]
async fn inbound_with_a_given_id_twice_returns_that_id_both_times() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    let body = json!({"id": "3AFIXED0001", "from": "5511988887777@s.whatsapp.net", "text": "oi"});
    for _ in 0..2 {
        let reply = server
            .post(
                "/api/sandbox/suporte/inbound",
                Some(&instance),
                body.clone(),
            )
            .await;
        assert_eq!(inbound_id(&reply), "3AFIXED0001");
    }
    server.stop().await;
}

#[tokio::test]
async fn inbound_from_a_lid_only_group_and_media_are_accepted() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    let post = |body: Value| {
        let server = &server;
        let token = instance.clone();
        async move {
            server
                .post("/api/sandbox/suporte/inbound", Some(&token), body)
                .await
        }
    };

    inbound_id(&post(json!({"lid": "123456789012345@lid", "text": "sem número"})).await);
    inbound_id(
        &post(json!({
            "from": "5511988887777@s.whatsapp.net",
            "lid": "123456789012345@lid",
            "text": "os dois",
        }))
        .await,
    );
    inbound_id(
        &post(json!({
            "from": "5511988887777@s.whatsapp.net",
            "group": {"jid": "120363012345678901@g.us", "subject": "Equipe"},
            "text": "no grupo",
        }))
        .await,
    );
    inbound_id(
        &post(json!({
            "from": "5511988887777@s.whatsapp.net",
            "media": {
                "type": "image",
                "mimetype": "image/png",
                "fileName": "foto.png",
                "base64": "iVBORw0KGgo=",
            },
        }))
        .await,
    );
    inbound_id(
        &post(json!({
            "from": "5511988887777@s.whatsapp.net",
            "fromMe": true,
            "text": "escrito no telefone",
        }))
        .await,
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_inbound_messages_are_400() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    let from = "5511988887777@s.whatsapp.net";
    for (body, message) in [
        (json!({"text": "oi"}), "from or lid is required"),
        (
            json!({"from": from}),
            zapgate_whatsapp::sandbox::NOTHING_TO_DELIVER,
        ),
        (
            json!({"from": from, "text": ""}),
            zapgate_whatsapp::sandbox::NOTHING_TO_DELIVER,
        ),
        (
            json!({"from": from, "media": {"type": "hologram", "mimetype": "x/y", "base64": "aGk="}}),
            "Invalid media.type: image, video, audio, document or sticker",
        ),
        (
            json!({"from": from, "media": {"type": "image", "mimetype": "image/png", "base64": "not base64!"}}),
            "Invalid media.base64: not base64",
        ),
        (
            json!({"lid": "5511988887777@s.whatsapp.net", "text": "oi"}),
            "lid must be an @lid id",
        ),
        (
            json!({"from": "120363012345678901@g.us", "text": "oi"}),
            "from must be a phone number id",
        ),
        (
            json!({"from": from, "group": {"jid": "5511977776666@s.whatsapp.net"}, "text": "oi"}),
            "Invalid group.jid: a <id>@g.us id is required",
        ),
        (
            json!({"from": "someone@example.com", "text": "oi"}),
            "Invalid WhatsApp id: someone@example.com",
        ),
        (json!({"from": from, "text": 5}), "Invalid request body"),
    ] {
        server
            .post(
                "/api/sandbox/suporte/inbound",
                Some(&instance),
                body.clone(),
            )
            .await
            .assert_error(400, message);
    }
    server.stop().await;
}

#[tokio::test]
async fn inbound_while_disconnected_is_400_not_connected() {
    let server = TestServer::start().await;
    let (_, instance) = setup(&server, "suporte").await;
    let body = json!({"from": "5511988887777@s.whatsapp.net", "text": "oi"});
    // Never paired.
    server
        .post(
            "/api/sandbox/suporte/inbound",
            Some(&instance),
            body.clone(),
        )
        .await
        .assert_error(400, NOT_CONNECTED);
    // Paired, then offline.
    server.pair(&instance, "suporte", "5511999990000").await;
    let down = server
        .post(
            "/api/sandbox/suporte/disconnect",
            Some(&instance),
            json!({}),
        )
        .await;
    assert_eq!(down.status.as_u16(), 200, "{}", down.text);
    server
        .post("/api/sandbox/suporte/inbound", Some(&instance), body)
        .await
        .assert_error(400, NOT_CONNECTED);
    server.stop().await;
}

#[tokio::test]
async fn a_receipt_for_an_unknown_message_is_404_and_a_bad_status_is_400() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    for token in [&account, &instance] {
        server
            .post(
                "/api/sandbox/suporte/receipt",
                Some(token),
                json!({"id": "3EB0DOESNOTEXIST", "status": "read"}),
            )
            .await
            .assert_error(404, "Message not found");
    }
    server
        .post(
            "/api/sandbox/suporte/receipt",
            Some(&instance),
            json!({"id": "3EB0DOESNOTEXIST", "status": "seen"}),
        )
        .await
        .assert_error(400, "Invalid status: delivered or read");
    server.stop().await;
}

#[tokio::test]
async fn the_outbox_starts_empty() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    for token in [&account, &instance] {
        let reply = server.get("/api/sandbox/suporte/outbox", Some(token)).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
        assert_eq!(
            reply.text,
            r#"{"success":true,"messages":[],"calls":[],"presence":null,"chatPresence":[]}"#
        );
    }
    server.pair(&instance, "suporte", "5511999990000").await;
    let reply = server
        .get("/api/sandbox/suporte/outbox", Some(&instance))
        .await;
    // Connected without keepOnlineStatus: the session says it is away.
    assert_ok(
        &reply,
        json!({"success": true, "messages": [], "calls": [], "presence": "unavailable", "chatPresence": []}),
    );
    server.stop().await;
}

#[tokio::test]
async fn send_faults_take_ok_not_on_whatsapp_or_error_only() {
    let server = TestServer::start().await;
    let (account, instance) = setup(&server, "suporte").await;
    for (token, send) in [
        (&account, "not_on_whatsapp"),
        (&instance, "error"),
        (&account, "ok"),
    ] {
        let reply = server
            .post(
                "/api/sandbox/suporte/faults",
                Some(token),
                json!({"send": send}),
            )
            .await;
        assert_ok(
            &reply,
            json!({"success": true, "message": "Send faults set", "send": send}),
        );
    }
    server
        .post(
            "/api/sandbox/suporte/faults",
            Some(&instance),
            json!({"send": "sometimes"}),
        )
        .await
        .assert_error(400, "Invalid send: ok, not_on_whatsapp or error");
    server
        .post("/api/sandbox/suporte/faults", Some(&instance), json!({}))
        .await
        .assert_error(400, "Invalid request body");
    // Setting a fault does not make the instance look like it has a session.
    assert_eq!(
        connection(&server, &account, "suporte").await["state"],
        json!("disconnected")
    );
    server.stop().await;
}

/// Every sandbox route, with a body each accepts.
fn routes(name: &str) -> Vec<(reqwest::Method, String, Option<Value>)> {
    let p = |r: &str| format!("/api/sandbox/{name}/{r}");
    vec![
        (
            reqwest::Method::POST,
            p("pair"),
            Some(json!({"number": "5511999990000"})),
        ),
        (reqwest::Method::POST, p("disconnect"), Some(json!({}))),
        (reqwest::Method::POST, p("reconnect"), Some(json!({}))),
        (
            reqwest::Method::POST,
            p("inbound"),
            Some(json!({"from": "5511988887777@s.whatsapp.net", "text": "oi"})),
        ),
        (
            reqwest::Method::POST,
            p("receipt"),
            Some(json!({"id": "x", "status": "read"})),
        ),
        (
            reqwest::Method::POST,
            p("call"),
            Some(json!({"from": "5511988887777"})),
        ),
        (reqwest::Method::GET, p("outbox"), None),
        (
            reqwest::Method::POST,
            p("faults"),
            Some(json!({"send": "error"})),
        ),
    ]
}

#[tokio::test]
async fn someone_elses_instance_is_404_on_every_sandbox_route() {
    let server = TestServer::start().await;
    let (owner, owner_instance) = setup(&server, "suporte").await;
    let sibling_instance = server.create_instance(&owner, "vendas").await;
    let (_, stranger) = server.create_account("globex", 10).await;
    let stranger_instance = server.create_instance(&stranger, "outra").await;
    server
        .pair(&owner_instance, "suporte", "5511999990000")
        .await;

    for token in [&stranger, &stranger_instance, &sibling_instance] {
        for (method, path, body) in routes("suporte") {
            server
                .call(method, &path, Some(token), body)
                .await
                .assert_error(404, "Instance not found");
        }
    }
    for (method, path, body) in routes("nosuch") {
        server
            .call(method, &path, Some(&owner), body)
            .await
            .assert_error(404, "Instance not found");
    }
    // Nothing the strangers sent reached the instance: still connected, no fault.
    let state = connection(&server, &owner, "suporte").await;
    assert_eq!(state["state"], json!("connected"));
    assert_eq!(state["numberJid"], json!("5511999990000@s.whatsapp.net"));
    server.stop().await;
}

#[tokio::test]
async fn sandbox_routes_need_a_token() {
    let server = TestServer::start().await;
    let (_, _instance) = setup(&server, "suporte").await;
    for (method, path, body) in routes("suporte") {
        server
            .call(method.clone(), &path, None, body.clone())
            .await
            .assert_error(401, "Missing token in header");
        server
            .call(method, &path, Some("zga_unknown-token-value"), body)
            .await
            .assert_error(401, "Invalid token");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_sandbox_routes_live_only_under_api_sandbox() {
    let server = TestServer::start().await;
    let (account, _) = setup(&server, "suporte").await;
    server
        .post(
            "/sandbox/suporte/pair",
            Some(&account),
            json!({"number": "5511999990000"}),
        )
        .await
        .assert_error(404, "Not found");
    server
        .post(
            "/api/instance/suporte/pair",
            Some(&account),
            json!({"number": "5511999990000"}),
        )
        .await
        .assert_error(404, "Not found");
    server
        .post("/api/sandbox/suporte/unknown", Some(&account), json!({}))
        .await
        .assert_error(404, "Not found");
    server
        .get("/api/sandbox/suporte/pair", Some(&account))
        .await
        .assert_error(405, "Method not allowed");
    server.stop().await;
}

#[tokio::test]
async fn a_paired_session_is_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Env::default()).await;
    let (account, instance) = setup(&server, "suporte").await;
    let idle = server.create_instance(&account, "parada").await;
    server.pair(&instance, "suporte", "5511999990000").await;
    // More paired sessions, which resume side by side.
    let mut others = Vec::new();
    for n in 1..=3 {
        let name = format!("filial{n}");
        let token = server.create_instance(&account, &name).await;
        server
            .pair(&token, &name, &format!("551199999000{n}"))
            .await;
        others.push((name, token, n));
    }
    assert!(server.sqlite_file().starts_with(dir.path()));
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Env::default()).await;
    let state = connection(&server, &instance, "suporte").await;
    assert_eq!(state["state"], json!("connected"));
    assert_eq!(state["numberJid"], json!("5511999990000@s.whatsapp.net"));
    for (name, token, n) in &others {
        let state = connection(&server, token, name).await;
        assert_eq!(state["state"], json!("connected"), "{name}");
        assert_eq!(
            state["numberJid"],
            json!(format!("551199999000{n}@s.whatsapp.net")),
            "{name}"
        );
    }
    // A never-paired instance stays disconnected.
    assert_eq!(
        connection(&server, &idle, "parada").await["state"],
        json!("disconnected")
    );
    // The resumed session works: it takes messages and can go offline.
    inbound_id(
        &server
            .post(
                "/api/sandbox/suporte/inbound",
                Some(&instance),
                json!({"from": "5511988887777@s.whatsapp.net", "text": "de volta"}),
            )
            .await,
    );
    let down = server
        .post("/api/sandbox/suporte/disconnect", Some(&account), json!({}))
        .await;
    assert_eq!(down.status.as_u16(), 200, "{}", down.text);
    server.stop().await;
}
