//! The Chatwoot module (spec §3) end to end, against the in-process
//! Chatwoot double: the module switch, the order of checks, activation and
//! every error row of §3.2, info, deactivation, inline activation at
//! instance creation, tenant isolation, secrets at rest and the webhook URL
//! refresh after `ZAPGATE_PUBLIC_URL` changes.

use std::time::Duration;

use chatwoot_double::{ChatwootDouble, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Row, SqlitePool, TypeInfo, ValueRef};

use crate::harness::{ADMIN_TOKEN, Env, TestServer};

const PUBLIC: &str = "https://zap.example.com";

/// The defaults of this module: the double listens on loopback, the live
/// check runs on every info call.
fn env() -> Env {
    Env::default()
        .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
        .with("ZAPGATE_PUBLIC_URL", PUBLIC)
        .with("ZAPGATE_CHATWOOT_CACHE_SECS", "0")
}

/// A server, a Chatwoot double with one account and its administrator, and
/// a zapgate account.
struct World {
    server: TestServer,
    cw: ChatwootDouble,
    /// The Chatwoot account id.
    acc: i64,
    /// The Chatwoot administrator's access token.
    admin: String,
    /// The zapgate TokenAccount.
    token: String,
}

async fn world(env: Env) -> World {
    let server = TestServer::start_with(env).await;
    let cw = ChatwootDouble::start().await;
    let acc = cw.add_account("Acme");
    let (_, admin) = cw.add_user("Admin", "admin@acme.test", Role::Administrator, &[acc]);
    let (_, token) = server.create_account("acme", 20).await;
    World {
        server,
        cw,
        acc,
        admin,
        token,
    }
}

fn body(url: &str, account: i64, token: &str) -> Value {
    json!({"chatwootBaseUrl": url, "chatwootAccountId": account, "chatwootApiToken": token})
}

fn set_path(name: &str) -> String {
    format!("/api/chatwoot/set/{name}")
}

fn info_path(name: &str) -> String {
    format!("/api/chatwoot/list/{name}")
}

fn delete_path(name: &str) -> String {
    format!("/api/chatwoot/delete/{name}")
}

/// The inbox `id` of `account` as the double holds it.
fn inbox(cw: &ChatwootDouble, account: i64, id: i64) -> Option<Value> {
    cw.inboxes(account)
        .into_iter()
        .find(|i| i["id"].as_i64() == Some(id))
}

/// Deletes an inbox through the double's API, as an administrator would.
async fn delete_inbox(cw: &ChatwootDouble, account: i64, admin: &str, id: i64) {
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/api/v1/accounts/{account}/inboxes/{id}",
            cw.base_url()
        ))
        .header("api_access_token", admin)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.status());
    assert!(inbox(cw, account, id).is_none());
}

/// The `chatwoot` summary of `name` in the instance list.
async fn summary(server: &TestServer, token: &str, name: &str) -> Value {
    let list = server
        .get(
            &format!("/api/instance/list?instanceName={name}"),
            Some(token),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    list.body["instances"][0]["chatwoot"].clone()
}

/// A body sent as is, with a JSON content type: (status, parsed body).
async fn raw_post(server: &TestServer, path: &str, token: &str, raw: &str) -> (u16, Value) {
    let response = server
        .client
        .post(server.url(path))
        .header("token", token)
        .header("content-type", "application/json")
        .body(raw.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn error_message(body: &Value) -> String {
    assert_eq!(body["success"], json!(false), "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// A port on 127.0.0.1 with nothing listening.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// A server that is not a Chatwoot: every path answers `status` with `body`.
async fn not_chatwoot(status: u16, content_type: &'static str, body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", content_type)],
                body,
            )
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

// ------------------------------------------------------------ module switch

#[tokio::test]
async fn a_disabled_module_answers_503_before_token_and_instance() {
    let cw = ChatwootDouble::start().await;
    let acc = cw.add_account("Acme");
    let (_, admin) = cw.add_user("Admin", "a@acme.test", Role::Administrator, &[acc]);
    let server = TestServer::start_with(env().with("ZAPGATE_CHATWOOT_ENABLED", "false")).await;
    let (_, token) = server.create_account("acme", 10).await;
    let instance_token = server.create_instance(&token, "suporte").await;
    let message = "integration gateway not configured";

    for name in ["anything", "suporte"] {
        for t in [None, Some("not-a-token-at-all"), Some(token.as_str())] {
            server
                .post(&set_path(name), t, body(&cw.base_url(), acc, &admin))
                .await
                .assert_error(503, message);
            server
                .get(&info_path(name), t)
                .await
                .assert_error(503, message);
            server
                .delete(&delete_path(name), t)
                .await
                .assert_error(503, message);
            server
                .post(&format!("/api/chatwoot/replay/{name}"), t, json!({}))
                .await
                .assert_error(503, message);
            server
                .post(
                    &format!("/api/chatwoot/import/{name}"),
                    t,
                    json!({"days": 1}),
                )
                .await
                .assert_error(503, message);
            server
                .delete(&format!("/api/chatwoot/import/{name}"), t)
                .await
                .assert_error(503, message);
        }
    }
    // Before the body, too.
    let (status, reply) = raw_post(&server, &set_path("suporte"), &instance_token, "{").await;
    assert_eq!(status, 503);
    assert_eq!(error_message(&reply), message);

    // Inline activation reports it, and the instance is created anyway.
    let mut create = body(&cw.base_url(), acc, &admin);
    create["name"] = json!("vendas");
    create["chatwootEnabled"] = json!(true);
    let created = server.post("/api/instance/new", Some(&token), create).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(
        created.body["chatwoot"],
        json!({"status": "error", "error": message})
    );
    assert_eq!(
        summary(&server, &token, "vendas").await,
        json!({"enabled": false})
    );
    assert!(cw.requests().is_empty(), "{:?}", cw.requests());
    server.stop().await;
}

// ------------------------------------------------------------- check order

#[tokio::test]
async fn checks_run_token_then_instance_then_body() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let good = body(&cw.base_url(), w.acc, &w.admin);

    // No token: 401, even for an unknown instance and a bad body.
    for name in ["anything", "suporte"] {
        server
            .post(&set_path(name), None, json!([]))
            .await
            .assert_error(401, "Missing token in header");
        server
            .get(&info_path(name), None)
            .await
            .assert_error(401, "Missing token in header");
        server
            .delete(&delete_path(name), None)
            .await
            .assert_error(401, "Missing token in header");
        server
            .get(&info_path(name), Some("unknown-token-0123456789"))
            .await
            .assert_error(401, "Invalid token");
    }
    // Unknown instance: 404 in the module's casing, before the body.
    server
        .post(&set_path("anything"), Some(&w.token), json!([]))
        .await
        .assert_error(404, "instance not found");
    let (status, reply) = raw_post(server, &set_path("anything"), &w.token, "{").await;
    assert_eq!(status, 404);
    assert_eq!(error_message(&reply), "instance not found");
    server
        .get(&info_path("anything"), Some(&w.token))
        .await
        .assert_error(404, "instance not found");
    server
        .delete(&delete_path("anything"), Some(&w.token))
        .await
        .assert_error(404, "instance not found");

    // Bodies that are not JSON objects.
    for raw in ["{", "not json", "", "[1,2]", "\"text\"", "42", "null"] {
        let (status, reply) = raw_post(server, &set_path("suporte"), &w.token, raw).await;
        assert_eq!(status, 400, "{raw:?}: {reply}");
        let message = error_message(&reply);
        assert!(message.starts_with("invalid body: "), "{raw:?}: {message}");
    }

    // Each field, missing or wrong, named in the message.
    let with = |key: &str, value: Value| {
        let mut b = good.clone();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("chatwootBaseUrl"), "chatwootBaseUrl"),
        (with("chatwootBaseUrl", json!(5)), "chatwootBaseUrl"),
        (
            with("chatwootBaseUrl", json!("not a url")),
            "chatwootBaseUrl",
        ),
        (
            with("chatwootBaseUrl", json!("ftp://chat.example.com")),
            "chatwootBaseUrl",
        ),
        (
            with("chatwootBaseUrl", json!("chat.example.com")),
            "chatwootBaseUrl",
        ),
        (without("chatwootAccountId"), "chatwootAccountId"),
        (with("chatwootAccountId", json!(0)), "chatwootAccountId"),
        (with("chatwootAccountId", json!(-1)), "chatwootAccountId"),
        (with("chatwootAccountId", json!("5")), "chatwootAccountId"),
        (with("chatwootAccountId", json!(1.5)), "chatwootAccountId"),
        (without("chatwootApiToken"), "chatwootApiToken"),
        (with("chatwootApiToken", json!("")), "chatwootApiToken"),
        (with("chatwootApiToken", json!(123)), "chatwootApiToken"),
        (with("inboxName", json!("")), "inboxName"),
        (with("inboxName", json!(7)), "inboxName"),
        (with("signMessages", json!("yes")), "signMessages"),
        (with("ignoreGroups", json!(1)), "ignoreGroups"),
        (with("startAsPending", json!("true")), "startAsPending"),
        (with("reopenResolved", json!({})), "reopenResolved"),
    ];
    for (b, field) in cases {
        let reply = server
            .post(&set_path("suporte"), Some(&w.token), b.clone())
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{b}: {}", reply.text);
        let message = reply.error();
        assert!(
            message.starts_with(&format!("invalid body: {field} ")),
            "{b}: {message}"
        );
    }
    let reply = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            with("chatwootAccountId", json!(0)),
        )
        .await;
    reply.assert_error(
        400,
        "invalid body: chatwootAccountId must be an integer greater than 0",
    );
    server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            without("chatwootBaseUrl"),
        )
        .await
        .assert_error(400, "invalid body: chatwootBaseUrl is required");

    // Nothing reached Chatwoot, nothing was stored.
    assert!(cw.requests().is_empty(), "{:?}", cw.requests());
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
}

// ------------------------------------------------------------------ set: ok

#[tokio::test]
async fn set_creates_an_api_inbox_pointing_back_at_us() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let instance_token = server.create_instance(&w.token, "suporte").await;
    server.create_instance(&w.token, "vendas").await;

    // With the TokenInstance, an inbox name, a trailing slash.
    let mut b = body(&format!("{}/", cw.base_url()), w.acc, &w.admin);
    b["inboxName"] = json!("WhatsApp - Orion");
    let reply = server
        .post(&set_path("suporte"), Some(&instance_token), b)
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    let obj = reply.body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["bridge_integration_id", "instance", "message", "status"],
        "{}",
        reply.text
    );
    assert_eq!(reply.body["instance"], json!("suporte"));
    assert_eq!(reply.body["status"], json!("active"));
    assert_eq!(
        reply.body["message"],
        json!("chatwoot integration activated")
    );
    let id = reply.body["bridge_integration_id"].as_str().unwrap();
    assert!(id.starts_with("int_") && id.len() > 4, "{id}");

    let inboxes = cw.inboxes(w.acc);
    assert_eq!(inboxes.len(), 1, "{inboxes:?}");
    let created = &inboxes[0];
    assert_eq!(created["name"], json!("WhatsApp - Orion"));
    assert_eq!(created["channel_type"], json!("Channel::Api"));
    let hook = created["webhook_url"].as_str().unwrap();
    let prefix = format!("{PUBLIC}/chatwoot/webhook/{id}/");
    let secret = hook
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{hook} does not start with {prefix}"));
    assert!(
        !secret.is_empty() && !secret.contains('/'),
        "secret {secret:?}"
    );

    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["chatwoot_base_url"], json!(cw.base_url()));
    assert_eq!(info.body["chatwoot_inbox_id"], created["id"]);
    assert_eq!(info.body["chatwoot_inbox_name"], json!("WhatsApp - Orion"));
    assert_eq!(info.body["bridge_integration_id"], json!(id));
    assert!(!info.text.contains(secret), "info leaks the webhook secret");

    // Without inboxName: the instance name.
    let reply = server
        .post(
            &set_path("vendas"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    let other = reply.body["bridge_integration_id"].as_str().unwrap();
    assert_ne!(other, id);
    let inboxes = cw.inboxes(w.acc);
    assert_eq!(inboxes.len(), 2);
    let vendas = inboxes
        .iter()
        .find(|i| i["name"] == json!("vendas"))
        .unwrap_or_else(|| panic!("no inbox named vendas: {inboxes:?}"));
    assert_eq!(vendas["channel_type"], json!("Channel::Api"));
    assert!(
        vendas["webhook_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PUBLIC}/chatwoot/webhook/{other}/"))
    );
}

// -------------------------------------------------------------- set: errors

#[tokio::test]
async fn set_maps_every_chatwoot_refusal() {
    let w = world(env().with("ZAPGATE_CHATWOOT_SET_TIMEOUT_SECS", "1")).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let url = cw.base_url();
    let path = set_path("suporte");
    let set = |b: Value| server.post(&path, Some(&w.token), b);

    // An account that does not exist: Chatwoot 404.
    set(body(&url, 999, &w.admin)).await.assert_error(
        400,
        &format!(
            "Chatwoot account or endpoint not found - verify chatwootBaseUrl ({url}) and chatwootAccountId (999). Detail: {{\"error\":\"Resource could not be found\"}}"
        ),
    );

    // A user of another account: Chatwoot 401 "not authorized to access this account".
    let other = cw.add_account("Other");
    let (_, outsider) = cw.add_user("Out", "out@other.test", Role::Administrator, &[other]);
    set(body(&url, w.acc, &outsider)).await.assert_error(
        400,
        &format!(
            "Chatwoot account or endpoint not found - verify chatwootBaseUrl ({url}) and chatwootAccountId ({}). Detail: {{\"error\":\"You are not authorized to access this account\"}}",
            w.acc
        ),
    );

    // An unknown token: 401.
    set(body(&url, w.acc, "no-such-chatwoot-token")).await.assert_error(
        401,
        "Chatwoot rejected the API token - verify chatwootApiToken. Detail: {\"error\":\"Invalid Access Token\"}",
    );

    // An agent's token: 403.
    let (_, agent) = cw.add_user("Agent", "agent@acme.test", Role::Agent, &[w.acc]);
    set(body(&url, w.acc, &agent)).await.assert_error(
        403,
        &format!(
            "Chatwoot denied the request - verify the API token has admin scope on account {}. Detail: {{\"error\":\"You are not authorized to do this action\"}}",
            w.acc
        ),
    );

    // The inbox limit: 402.
    cw.set_inbox_limit(w.acc, Some(0));
    set(body(&url, w.acc, &w.admin)).await.assert_error(
        400,
        "Chatwoot refused to create the inbox - the account's inbox limit is reached. Detail: {\"error\":\"Account limit exceeded. Upgrade to a higher plan\"}",
    );
    cw.set_inbox_limit(w.acc, None);

    // 422.
    cw.fail_next(1, 422);
    let reply = set(body(&url, w.acc, &w.admin)).await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let message = reply.error();
    assert!(
        message.starts_with("Chatwoot rejected the request as invalid - verify "),
        "{message}"
    );
    assert!(message.contains(". Detail: {"), "{message}");
    assert!(message.contains("Unprocessable"), "{message}");

    // 500 and 429.
    cw.fail_next(1, 500);
    let reply = set(body(&url, w.acc, &w.admin)).await;
    assert_eq!(reply.status.as_u16(), 502, "{}", reply.text);
    let message = reply.error();
    assert!(
        message.starts_with("Chatwoot failed - HTTP 500. Detail: "),
        "{message}"
    );
    assert!(message.contains("Internal Server Error"), "{message}");
    cw.fail_next(1, 429);
    let reply = set(body(&url, w.acc, &w.admin)).await;
    assert_eq!(reply.status.as_u16(), 502, "{}", reply.text);
    assert!(
        reply
            .error()
            .starts_with("Chatwoot failed - HTTP 429. Detail: Retry later"),
        "{}",
        reply.text
    );

    // Nothing listening.
    let dead = format!("http://127.0.0.1:{}", closed_port().await);
    let reply = set(body(&dead, w.acc, &w.admin)).await;
    assert_eq!(reply.status.as_u16(), 502, "{}", reply.text);
    let message = reply.error();
    let prefix = format!("Chatwoot unreachable - verify chatwootBaseUrl ({dead}). Detail: ");
    assert!(
        message.starts_with(&prefix) && message.len() > prefix.len(),
        "{message}"
    );

    // The double down.
    cw.set_down(true);
    let reply = set(body(&url, w.acc, &w.admin)).await;
    assert_eq!(reply.status.as_u16(), 502, "{}", reply.text);
    let message = reply.error();
    let prefix = format!("Chatwoot unreachable - verify chatwootBaseUrl ({url}). Detail: ");
    assert!(message.starts_with(&prefix), "{message}");
    cw.set_down(false);

    // Too slow.
    cw.set_delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    set(body(&url, w.acc, &w.admin))
        .await
        .assert_error(504, "Chatwoot did not answer within 1s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    cw.set_delay(Duration::ZERO);

    // Nothing was stored by any of these.
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": false})
    );
}

#[tokio::test]
async fn set_refuses_a_url_that_is_not_a_chatwoot() {
    let w = world(env()).await;
    let server = &w.server;
    server.create_instance(&w.token, "suporte").await;
    let prefix = |url: &str| {
        format!(
            "Chatwoot account or endpoint not found - verify chatwootBaseUrl ({url}) and chatwootAccountId ({}). Detail: ",
            w.acc
        )
    };

    // A web page answering 200 with HTML.
    let html = not_chatwoot(
        200,
        "text/html",
        "<html><body>Welcome to my blog</body></html>".to_owned(),
    )
    .await;
    let reply = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&html, w.acc, &w.admin),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    assert!(reply.error().starts_with(&prefix(&html)), "{}", reply.text);

    // A server answering 404 with a long body: the detail is cut at 500 characters.
    let long = "x".repeat(2000);
    let missing = not_chatwoot(404, "text/plain", long).await;
    let reply = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&missing, w.acc, &w.admin),
        )
        .await;
    reply.assert_error(400, &format!("{}{}", prefix(&missing), "x".repeat(500)));

    // A 500 with a long body: cut too.
    let failing = not_chatwoot(500, "text/plain", "é".repeat(800)).await;
    let reply = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&failing, w.acc, &w.admin),
        )
        .await;
    reply.assert_error(
        502,
        &format!("Chatwoot failed - HTTP 500. Detail: {}", "é".repeat(500)),
    );
}

// ------------------------------------------------------------- SSRF guard

#[tokio::test]
async fn private_addresses_are_refused_without_the_switch() {
    let server = TestServer::start_with(Env::default().with("ZAPGATE_PUBLIC_URL", PUBLIC)).await;
    let cw = ChatwootDouble::start().await;
    let acc = cw.add_account("Acme");
    let (_, admin) = cw.add_user("Admin", "a@acme.test", Role::Administrator, &[acc]);
    let (_, token) = server.create_account("acme", 10).await;
    server.create_instance(&token, "suporte").await;
    let port = cw.addr().port();

    server
        .post(
            &set_path("suporte"),
            Some(&token),
            body(&format!("http://127.0.0.1:{port}"), acc, &admin),
        )
        .await
        .assert_error(
            400,
            "invalid body: chatwootBaseUrl resolves to a private address (127.0.0.1); set ZAPGATE_ALLOW_PRIVATE_URLS=true to allow it",
        );

    // An IPv6 literal.
    server
        .post(
            &set_path("suporte"),
            Some(&token),
            body(&format!("http://[::1]:{port}"), acc, &admin),
        )
        .await
        .assert_error(
            400,
            "invalid body: chatwootBaseUrl resolves to a private address (::1); set ZAPGATE_ALLOW_PRIVATE_URLS=true to allow it",
        );

    // A name resolving to loopback.
    let reply = server
        .post(
            &set_path("suporte"),
            Some(&token),
            body(&format!("http://localhost:{port}"), acc, &admin),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let message = reply.error();
    let expected = |ip: &str| {
        format!(
            "invalid body: chatwootBaseUrl resolves to a private address ({ip}); set ZAPGATE_ALLOW_PRIVATE_URLS=true to allow it"
        )
    };
    assert!(
        message == expected("127.0.0.1") || message == expected("::1"),
        "{message}"
    );

    // Inline activation is guarded the same way.
    let mut create = body(&format!("http://127.0.0.1:{port}"), acc, &admin);
    create["name"] = json!("vendas");
    create["chatwootEnabled"] = json!(true);
    let created = server.post("/api/instance/new", Some(&token), create).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["chatwoot"]["status"], json!("error"));
    assert_eq!(
        created.body["chatwoot"]["error"],
        json!(expected("127.0.0.1"))
    );

    assert!(cw.requests().is_empty(), "{:?}", cw.requests());
    assert!(cw.inboxes(acc).is_empty());
    server.stop().await;
}

// --------------------------------------------------------- re-activation

#[tokio::test]
async fn set_again_keeps_the_inbox_and_updates_credentials_and_flags() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let url = cw.base_url();

    let first = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text);
    let id = first.body["bridge_integration_id"].clone();
    let inbox_id = cw.inboxes(w.acc)[0]["id"].as_i64().unwrap();
    let hook = cw.inboxes(w.acc)[0]["webhook_url"].clone();
    let first_info = server.get(&info_path("suporte"), Some(&w.token)).await;
    let first_created_at = first_info.body["created_at"].clone();
    assert!(first_created_at.is_string(), "{}", first_info.text);

    // Same URL (with a trailing slash) and account; another admin token, new flags.
    let (_, admin2) = cw.add_user("Admin 2", "admin2@acme.test", Role::Administrator, &[w.acc]);
    let mut b = body(&format!("{url}/"), w.acc, &admin2);
    b["signMessages"] = json!(true);
    b["reopenResolved"] = json!(true);
    let second = server.post(&set_path("suporte"), Some(&w.token), b).await;
    assert_eq!(second.status.as_u16(), 201, "{}", second.text);
    assert_eq!(second.body["bridge_integration_id"], id);
    assert_eq!(second.body["status"], json!("active"));
    let inboxes = cw.inboxes(w.acc);
    assert_eq!(inboxes.len(), 1, "a new inbox was created: {inboxes:?}");
    assert_eq!(inboxes[0]["id"], json!(inbox_id));
    assert_eq!(inboxes[0]["webhook_url"], hook);
    assert_eq!(
        cw.count("POST", &format!("/api/v1/accounts/{}/inboxes", w.acc)),
        1
    );

    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["chatwoot_inbox_id"], json!(inbox_id));
    assert_eq!(info.body["chatwoot_api_token"], json!(admin2));
    assert_eq!(info.body["sign_messages"], json!(true));
    assert_eq!(info.body["reopen_resolved"], json!(true));
    assert_eq!(info.body["ignore_groups"], json!(false));
    assert_eq!(info.body["start_as_pending"], json!(false));
    assert_eq!(info.body["bridge_integration_id"], id);
    assert_eq!(info.body["created_at"], first_created_at);

    // Flags back off.
    let third = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &admin2),
        )
        .await;
    assert_eq!(third.status.as_u16(), 201, "{}", third.text);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["sign_messages"], json!(false));
    assert_eq!(info.body["reopen_resolved"], json!(false));
    assert_eq!(cw.inboxes(w.acc).len(), 1);

    // The inbox deleted in Chatwoot: a new one.
    delete_inbox(cw, w.acc, &w.admin, inbox_id).await;
    let fourth = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(fourth.status.as_u16(), 201, "{}", fourth.text);
    let inboxes = cw.inboxes(w.acc);
    assert_eq!(inboxes.len(), 1, "{inboxes:?}");
    let new_inbox = inboxes[0]["id"].as_i64().unwrap();
    assert_ne!(new_inbox, inbox_id);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["chatwoot_inbox_id"], json!(new_inbox));
    assert_eq!(info.body["status"], json!("paused"), "{}", info.text);
    assert_eq!(info.body["last_error"], json!(""));
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "paused", "inboxId": new_inbox})
    );

    // An agent's token on the kept inbox: 403, the stored token unchanged.
    let (_, agent) = cw.add_user("Agent", "agent@acme.test", Role::Agent, &[w.acc]);
    let created_at = info.body["created_at"].clone();
    server
        .post(&set_path("suporte"), Some(&w.token), body(&url, w.acc, &agent))
        .await
        .assert_error(
            403,
            &format!(
                "Chatwoot denied the request - verify the API token has admin scope on account {}. Detail: {{\"error\":\"You are not authorized to do this action\"}}",
                w.acc
            ),
        );
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["chatwoot_api_token"], json!(w.admin));
    assert_eq!(info.body["created_at"], created_at);
    assert_eq!(cw.inboxes(w.acc).len(), 1);

    // Another account: a new inbox there; the first account keeps its inbox.
    let acc2 = cw.add_account("Acme 2");
    let (_, admin3) = cw.add_user("Admin 3", "admin3@acme.test", Role::Administrator, &[acc2]);
    let fifth = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, acc2, &admin3),
        )
        .await;
    assert_eq!(fifth.status.as_u16(), 201, "{}", fifth.text);
    let there = cw.inboxes(acc2);
    assert_eq!(there.len(), 1, "{there:?}");
    assert_eq!(cw.inboxes(w.acc).len(), 1);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["chatwoot_account_id"], json!(acc2));
    assert_eq!(info.body["chatwoot_inbox_id"], there[0]["id"]);
    assert_eq!(info.body["chatwoot_api_token"], json!(admin3));
}

// -------------------------------------------------------------------- info

#[tokio::test]
async fn info_shows_every_field_and_the_live_state() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let instance_token = server.create_instance(&w.token, "suporte").await;
    server.create_instance(&w.token, "vendas").await;

    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": false})
    );

    let mut b = body(&cw.base_url(), w.acc, &w.admin);
    b["inboxName"] = json!("Suporte WA");
    let set = server.post(&set_path("suporte"), Some(&w.token), b).await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    let inbox_id = cw.inboxes(w.acc)[0]["id"].as_i64().unwrap();

    let info = server
        .get(&info_path("suporte"), Some(&instance_token))
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    let obj = info.body.as_object().unwrap();
    // The seeds' 14 fields, and `options` with the settings beyond them.
    assert_eq!(obj.len(), 15, "{}", info.text);
    assert_eq!(
        obj["options"],
        json!({"ignoreJids": [], "signDelimiter": "\n", "signFormat": "*{agent}*:", "importMessagesDays": 0, "importContacts": false, "markReadOnReply": true, "contactAvatars": true, "botContact": false, "botName": null, "botOfflineMinutes": 5})
    );
    assert!(obj.get("success").is_none());
    assert_eq!(obj["instance_name"], json!("suporte"));
    assert_eq!(obj["status"], json!("paused"), "not connected: paused");
    assert_eq!(
        obj["bridge_integration_id"],
        set.body["bridge_integration_id"]
    );
    assert_eq!(obj["chatwoot_base_url"], json!(cw.base_url()));
    assert_eq!(obj["chatwoot_account_id"], json!(w.acc));
    assert!(obj["chatwoot_account_id"].is_i64());
    assert_eq!(obj["chatwoot_api_token"], json!(w.admin));
    assert_eq!(obj["chatwoot_inbox_id"], json!(inbox_id));
    assert_eq!(obj["chatwoot_inbox_name"], json!("Suporte WA"));
    assert_eq!(obj["last_error"], json!(""));
    let created_at = obj["created_at"].as_str().unwrap();
    assert!(is_rfc3339_utc(created_at), "{created_at}");
    for flag in [
        "sign_messages",
        "ignore_groups",
        "start_as_pending",
        "reopen_resolved",
    ] {
        assert_eq!(obj[flag], json!(false), "{flag}");
    }
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "paused", "inboxId": inbox_id})
    );
    assert_eq!(
        summary(server, &w.token, "vendas").await,
        json!({"enabled": false})
    );

    // Paired: active.
    server
        .pair(&instance_token, "suporte", "5511999990001")
        .await;
    let mut status = Value::Null;
    for _ in 0..50 {
        let info = server.get(&info_path("suporte"), Some(&w.token)).await;
        status = info.body["status"].clone();
        if status == json!("active") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, json!("active"));
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "active", "inboxId": inbox_id})
    );

    // Chatwoot down: the stored row, no error.
    cw.set_down(true);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["status"], json!("active"));
    assert_eq!(info.body["last_error"], json!(""));
    cw.set_down(false);

    // Chatwoot refusing the token (the double cannot revoke a token: a 401
    // stands in for it).
    cw.fail_next(1, 401);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["status"], json!("error"), "{}", info.text);
    let last_error = info.body["last_error"].as_str().unwrap();
    assert!(last_error.contains("token"), "{last_error}");
    assert!(
        last_error.contains("POST /api/chatwoot/set"),
        "{last_error}"
    );
    // Chatwoot accepts it again: the live state follows.
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["status"], json!("active"), "{}", info.text);
    assert_eq!(info.body["last_error"], json!(""));

    // The inbox deleted in Chatwoot: error, persisted.
    delete_inbox(cw, w.acc, &w.admin, inbox_id).await;
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["status"], json!("error"), "{}", info.text);
    let last_error = info.body["last_error"].as_str().unwrap().to_owned();
    assert!(
        last_error.contains("inbox") && last_error.contains(&inbox_id.to_string()),
        "{last_error}"
    );
    assert!(
        last_error.contains("POST /api/chatwoot/set"),
        "{last_error}"
    );
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "error", "inboxId": inbox_id})
    );
    cw.set_down(true);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["status"], json!("error"));
    assert_eq!(info.body["last_error"], json!(last_error));
    cw.set_down(false);

    // A new set fixes it: a new inbox, the error gone, created_at kept.
    let again = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.text);
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["status"], json!("active"), "{}", info.text);
    assert_eq!(info.body["last_error"], json!(""));
    let new_inbox = info.body["chatwoot_inbox_id"].as_i64().unwrap();
    assert_ne!(new_inbox, inbox_id);
    assert!(inbox(cw, w.acc, new_inbox).is_some());
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "active", "inboxId": new_inbox})
    );
}

#[tokio::test]
async fn info_falls_back_to_the_stored_row_when_chatwoot_is_slow() {
    let w = world(env().with("ZAPGATE_CHATWOOT_INFO_TIMEOUT_SECS", "1")).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    cw.set_delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert!(started.elapsed() < Duration::from_millis(2900));
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["status"], json!("paused"));
    assert_eq!(info.body["last_error"], json!(""));
    cw.set_delay(Duration::ZERO);
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1) && b.len() > 21))
}

// ------------------------------------------------------------------ delete

#[tokio::test]
async fn delete_stops_the_webhook_and_keeps_the_inbox() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let instance_token = server.create_instance(&w.token, "suporte").await;
    let url = cw.base_url();

    server
        .delete(&delete_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration to delete");

    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    let inbox_id = cw.inboxes(w.acc)[0]["id"].as_i64().unwrap();

    let reply = server
        .delete(&delete_path("suporte"), Some(&instance_token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"message": "chatwoot integration deactivated"})
    );
    let kept = inbox(cw, w.acc, inbox_id).expect("the inbox is kept");
    assert_eq!(kept["webhook_url"], json!(""));
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": false})
    );
    server
        .delete(&delete_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration to delete");

    // A later activation creates a new inbox.
    let again = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.text);
    let inboxes = cw.inboxes(w.acc);
    assert_eq!(inboxes.len(), 2, "{inboxes:?}");
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    let new_inbox = info.body["chatwoot_inbox_id"].as_i64().unwrap();
    assert_ne!(new_inbox, inbox_id);
    assert_eq!(
        inbox(cw, w.acc, inbox_id).unwrap()["webhook_url"],
        json!("")
    );

    // The inbox already gone in Chatwoot: still 200.
    delete_inbox(cw, w.acc, &w.admin, new_inbox).await;
    let reply = server.delete(&delete_path("suporte"), Some(&w.token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"message": "chatwoot integration deactivated"})
    );
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");

    // Chatwoot failing: still 200, the row goes.
    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    cw.fail_next(1, 500);
    let reply = server.delete(&delete_path("suporte"), Some(&w.token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"message": "chatwoot integration deactivated"})
    );
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");

    // Chatwoot down: still 200.
    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    cw.set_down(true);
    let reply = server.delete(&delete_path("suporte"), Some(&w.token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    cw.set_down(false);
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
}

// ------------------------------------------------------ inline activation

#[tokio::test]
async fn inline_activation_at_instance_creation() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let url = cw.base_url();
    let create = |name: &str, extra: Value| {
        let mut b = json!({
            "name": name,
            "chatwootBaseUrl": url,
            "chatwootAccountId": w.acc,
            "chatwootApiToken": w.admin,
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        server.post("/api/instance/new", Some(&w.token), b)
    };

    // Disabled or absent: the block is ignored, Chatwoot is not called.
    let off = create("off", json!({"chatwootEnabled": false})).await;
    assert_eq!(off.status.as_u16(), 201, "{}", off.text);
    assert!(off.body.get("chatwoot").is_none(), "{}", off.text);
    let absent = create("absent", json!({"chatwootAccountId": 0})).await;
    assert_eq!(absent.status.as_u16(), 201, "{}", absent.text);
    assert!(absent.body.get("chatwoot").is_none(), "{}", absent.text);
    assert!(cw.requests().is_empty(), "{:?}", cw.requests());
    assert_eq!(
        summary(server, &w.token, "off").await,
        json!({"enabled": false})
    );

    // Success.
    let ok = create(
        "suporte",
        json!({
            "chatwootEnabled": true,
            "chatwootInboxName": "WhatsApp - Suporte",
            "inboxName": "not this one",
            "chatwootSignMessages": true,
        }),
    )
    .await;
    assert_eq!(ok.status.as_u16(), 201, "{}", ok.text);
    assert_eq!(ok.body["success"], json!(true));
    assert_eq!(ok.body["instance"]["name"], json!("suporte"));
    let block = ok.body["chatwoot"].as_object().unwrap();
    assert_eq!(block.len(), 3, "{}", ok.text);
    assert_eq!(block["status"], json!("active"));
    let id = block["bridge_integration_id"].as_str().unwrap();
    assert!(id.starts_with("int_"), "{id}");
    let inbox_id = block["inbox_id"].as_i64().unwrap();
    let created = inbox(cw, w.acc, inbox_id).expect("inbox created");
    assert_eq!(created["name"], json!("WhatsApp - Suporte"));
    assert_eq!(created["channel_type"], json!("Channel::Api"));
    assert!(
        created["webhook_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PUBLIC}/chatwoot/webhook/{id}/"))
    );
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["bridge_integration_id"], json!(id));
    assert_eq!(info.body["sign_messages"], json!(true));
    assert_eq!(
        summary(server, &w.token, "suporte").await,
        json!({"enabled": true, "status": "paused", "inboxId": inbox_id})
    );

    // Chatwoot refusing: the instance exists anyway.
    let bad = create(
        "vendas",
        json!({"chatwootEnabled": true, "chatwootApiToken": "wrong-token"}),
    )
    .await;
    assert_eq!(bad.status.as_u16(), 201, "{}", bad.text);
    assert_eq!(bad.body["instance"]["name"], json!("vendas"));
    let block = bad.body["chatwoot"].as_object().unwrap();
    assert_eq!(block.len(), 2, "{}", bad.text);
    assert_eq!(block["status"], json!("error"));
    assert_eq!(
        block["error"],
        json!(
            "Chatwoot rejected the API token - verify chatwootApiToken. Detail: {\"error\":\"Invalid Access Token\"}"
        )
    );
    assert_eq!(
        summary(server, &w.token, "vendas").await,
        json!({"enabled": false})
    );
    // And can be fixed with set.
    let vendas_token = bad.body["instance"]["token"].as_str().unwrap().to_owned();
    let fixed = server
        .post(
            &set_path("vendas"),
            Some(&vendas_token),
            body(&url, w.acc, &w.admin),
        )
        .await;
    assert_eq!(fixed.status.as_u16(), 201, "{}", fixed.text);

    // An invalid field: the set message, the instance created.
    let requests = cw.requests().len();
    let invalid = create(
        "financeiro",
        json!({"chatwootEnabled": true, "chatwootAccountId": 0}),
    )
    .await;
    assert_eq!(invalid.status.as_u16(), 201, "{}", invalid.text);
    assert_eq!(invalid.body["chatwoot"]["status"], json!("error"));
    let error = invalid.body["chatwoot"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("invalid body: chatwootAccountId "),
        "{error}"
    );
    let invalid = create(
        "juridico",
        json!({"chatwootEnabled": true, "chatwootInboxName": 5}),
    )
    .await;
    assert_eq!(invalid.status.as_u16(), 201, "{}", invalid.text);
    let error = invalid.body["chatwoot"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("invalid body: chatwootInboxName "),
        "{error}"
    );
    assert_eq!(cw.requests().len(), requests);
    let list = server
        .get(
            "/api/instance/list?instanceName=financeiro,juridico",
            Some(&w.token),
        )
        .await;
    assert_eq!(
        list.body["instances"].as_array().unwrap().len(),
        2,
        "{}",
        list.text
    );
}

// ------------------------------------------------------- tenant isolation

#[tokio::test]
async fn another_tenants_instance_looks_missing() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let url = cw.base_url();
    let (_, token_b) = server.create_account("globex", 10).await;
    server.create_instance(&token_b, "b1").await;
    let a1 = server.create_instance(&w.token, "a1").await;
    server.create_instance(&w.token, "a2").await;
    for (token, name) in [(&token_b, "b1"), (&w.token, "a2")] {
        let set = server
            .post(&set_path(name), Some(token), body(&url, w.acc, &w.admin))
            .await;
        assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    }
    let before_requests = cw.requests().len();
    let before_inboxes = cw.inboxes(w.acc);

    for (token, name) in [
        (w.token.as_str(), "b1"),
        (a1.as_str(), "a2"),
        (a1.as_str(), "b1"),
    ] {
        server
            .post(&set_path(name), Some(token), body(&url, w.acc, &w.admin))
            .await
            .assert_error(404, "instance not found");
        server
            .get(&info_path(name), Some(token))
            .await
            .assert_error(404, "instance not found");
        server
            .delete(&delete_path(name), Some(token))
            .await
            .assert_error(404, "instance not found");
        server
            .post(
                &format!("/api/chatwoot/replay/{name}"),
                Some(token),
                json!({}),
            )
            .await
            .assert_error(404, "instance not found");
        server
            .post(
                &format!("/api/chatwoot/import/{name}"),
                Some(token),
                json!({"days": 1}),
            )
            .await
            .assert_error(404, "instance not found");
        server
            .delete(&format!("/api/chatwoot/import/{name}"), Some(token))
            .await
            .assert_error(404, "instance not found");
    }
    assert_eq!(cw.requests().len(), before_requests);
    assert_eq!(cw.inboxes(w.acc), before_inboxes);
    for (token, name) in [(&token_b, "b1"), (&w.token, "a2")] {
        let info = server.get(&info_path(name), Some(token)).await;
        assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    }
    // The instance's own token works on its own instance only.
    server
        .get(&info_path("a1"), Some(&a1))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    server
        .post("/api/chatwoot/replay/a1", Some(&a1), json!({}))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    server
        .post("/api/chatwoot/import/a1", Some(&a1), json!({"days": 1}))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
    server
        .delete("/api/chatwoot/import/a1", Some(&a1))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
}

// -------------------------------------------------------- account delete

#[tokio::test]
async fn deleting_the_account_deactivates_its_integrations() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    let (account_id, token) = server.create_account("leaving", 5).await;
    server.create_instance(&token, "suporte").await;
    let set = server
        .post(
            &set_path("suporte"),
            Some(&token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    let inbox_id = cw.inboxes(w.acc)[0]["id"].as_i64().unwrap();
    assert_ne!(
        inbox(cw, w.acc, inbox_id).unwrap()["webhook_url"],
        json!("")
    );
    let reply = server
        .delete(&format!("/admin/accounts/{account_id}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let kept = inbox(cw, w.acc, inbox_id).expect("the inbox is kept");
    assert_eq!(
        kept["webhook_url"],
        json!(""),
        "Chatwoot no longer calls us"
    );
}

// -------------------------------------------------------- instance delete

#[tokio::test]
async fn deleting_the_instance_deactivates_the_integration() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    let inbox_id = cw.inboxes(w.acc)[0]["id"].as_i64().unwrap();
    let reply = server
        .delete("/api/instance/delete/suporte", Some(&w.token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let kept = inbox(cw, w.acc, inbox_id).expect("the inbox is kept");
    assert_eq!(kept["webhook_url"], json!(""));
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "instance not found");

    // Chatwoot down: the instance is deleted all the same.
    server.create_instance(&w.token, "vendas").await;
    let set = server
        .post(
            &set_path("vendas"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    cw.set_down(true);
    let reply = server
        .delete("/api/instance/delete/vendas", Some(&w.token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    cw.set_down(false);
    server
        .get(&info_path("vendas"), Some(&w.token))
        .await
        .assert_error(404, "instance not found");

    // A new instance of the same name starts without an integration.
    server.create_instance(&w.token, "suporte").await;
    server
        .get(&info_path("suporte"), Some(&w.token))
        .await
        .assert_error(404, "no chatwoot integration for this instance");
}

// --------------------------------------------------------- secrets at rest

#[tokio::test]
async fn the_chatwoot_token_is_not_stored_in_the_clear() {
    let w = world(env()).await;
    let (server, cw) = (&w.server, &w.cw);
    server.create_instance(&w.token, "suporte").await;
    let set = server
        .post(
            &set_path("suporte"),
            Some(&w.token),
            body(&cw.base_url(), w.acc, &w.admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);

    let pool = SqlitePool::connect(&format!("sqlite://{}", server.sqlite_file().display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t == "chatwoot_integrations"),
        "{tables:?}"
    );
    let mut integration_rows = 0;
    for table in &tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{table}\""))
            .fetch_all(&pool)
            .await
            .unwrap();
        if table == "chatwoot_integrations" {
            integration_rows = rows.len();
        }
        for row in &rows {
            for i in 0..row.len() {
                let raw = row.try_get_raw(i).unwrap();
                if raw.is_null() {
                    continue;
                }
                let kind = raw.type_info().name().to_owned();
                let bytes = match kind.as_str() {
                    "TEXT" => row.try_get_unchecked::<String, _>(i).unwrap().into_bytes(),
                    "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(i).unwrap(),
                    _ => continue,
                };
                assert!(
                    !bytes
                        .windows(w.admin.len())
                        .any(|b| b == w.admin.as_bytes()),
                    "the Chatwoot token is in {table}, column {i}"
                );
            }
        }
    }
    assert_eq!(integration_rows, 1);
    pool.close().await;

    // Still readable through the API.
    let info = server.get(&info_path("suporte"), Some(&w.token)).await;
    assert_eq!(info.body["chatwoot_api_token"], json!(w.admin));
}

// ------------------------------------------------------ public URL change

#[tokio::test]
async fn a_new_public_url_repoints_the_inbox_webhook() {
    let cw = ChatwootDouble::start().await;
    let acc = cw.add_account("Acme");
    let (_, admin) = cw.add_user("Admin", "a@acme.test", Role::Administrator, &[acc]);
    let dir = tempfile::tempdir().unwrap();
    let a = "https://a.zap.example.com";
    let b = "https://b.zap.example.com/";

    let server = TestServer::start_in(dir.path(), env().with("ZAPGATE_PUBLIC_URL", a)).await;
    let (_, token) = server.create_account("acme", 10).await;
    server.create_instance(&token, "suporte").await;
    let set = server
        .post(
            &set_path("suporte"),
            Some(&token),
            body(&cw.base_url(), acc, &admin),
        )
        .await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    let id = set.body["bridge_integration_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = cw.inboxes(acc)[0]["webhook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = before
        .strip_prefix(&format!("{a}/chatwoot/webhook/{id}/"))
        .unwrap_or_else(|| panic!("{before}"))
        .to_owned();
    server.stop().await;

    // Same public URL again: nothing to update.
    let server = TestServer::start_in(dir.path(), env().with("ZAPGATE_PUBLIC_URL", a)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cw.count("PATCH", "/api/v1/accounts"), 0);
    server.stop().await;

    let server = TestServer::start_in(dir.path(), env().with("ZAPGATE_PUBLIC_URL", b)).await;
    let expected = format!("https://b.zap.example.com/chatwoot/webhook/{id}/{secret}");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = cw.inboxes(acc)[0]["webhook_url"]
            .as_str()
            .unwrap()
            .to_owned();
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, expected);
    assert_eq!(cw.inboxes(acc).len(), 1);

    // The integration is intact behind the new URL.
    let info = server.get(&info_path("suporte"), Some(&token)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    assert_eq!(info.body["bridge_integration_id"], json!(id));
    server.stop().await;
}
