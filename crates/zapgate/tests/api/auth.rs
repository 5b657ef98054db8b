//! Tokens and tenancy (spec §1 "Tokens and auth"): which token reaches what,
//! and someone else's instance looking exactly like a missing one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Env, Reply, TestServer};

/// Every REST route that takes a token, with a valid body where it needs one.
fn routes(instance: &str) -> Vec<(Method, String, Option<Value>)> {
    let sandbox = |action: &str| format!("/api/sandbox/{instance}/{action}");
    vec![
        (
            Method::POST,
            "/api/instance/new".to_owned(),
            Some(json!({"name": "fresh"})),
        ),
        (
            Method::GET,
            format!("/api/instance/connect/{instance}"),
            None,
        ),
        (Method::GET, "/api/instance/connect/".to_owned(), None),
        (Method::GET, "/api/instance/list".to_owned(), None),
        (
            Method::GET,
            format!("/api/instance/getSettings/{instance}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/instance/settings/{instance}"),
            Some(json!({"ignoreGroupMessages": true, "autoRejectCalls": true})),
        ),
        (
            Method::DELETE,
            format!("/api/instance/logout/{instance}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/instance/delete/{instance}"),
            None,
        ),
        (
            Method::POST,
            sandbox("pair"),
            Some(json!({"number": "5511988887777"})),
        ),
        (Method::POST, sandbox("disconnect"), None),
        (Method::POST, sandbox("reconnect"), None),
        (
            Method::POST,
            sandbox("inbound"),
            Some(json!({"from": "5511977776666", "text": "hi"})),
        ),
        (
            Method::POST,
            sandbox("receipt"),
            Some(json!({"id": "3EB0000000000000", "status": "read"})),
        ),
        (
            Method::POST,
            sandbox("pollVote"),
            Some(json!({"pollId": "3EB0000000000000", "from": "5511977776666", "options": []})),
        ),
        (
            Method::POST,
            sandbox("call"),
            Some(json!({"from": "5511977776666"})),
        ),
        (
            Method::POST,
            sandbox("label"),
            Some(json!({"labelId": "5", "chat": "5511977776666"})),
        ),
        (Method::GET, sandbox("outbox"), None),
        (
            Method::POST,
            format!("/api/message/text/{instance}"),
            Some(json!({"number": "5511977776666", "message": "hi"})),
        ),
        (
            Method::POST,
            format!("/api/message/media/{instance}"),
            Some(json!({"number": "5511977776666", "mediaType": "image", "mediaBase64": "aGk="})),
        ),
        (
            Method::POST,
            format!("/api/message/location/{instance}"),
            Some(json!({"number": "5511977776666", "latitude": 1.5, "longitude": 2.5})),
        ),
        (
            Method::POST,
            format!("/api/message/contact/{instance}"),
            Some(
                json!({"number": "5511977776666", "vcard": [{"fullName": "Ana", "phone": "5511988887777"}]}),
            ),
        ),
        (
            Method::POST,
            format!("/api/message/reaction/{instance}"),
            Some(json!({"number": "5511977776666", "messageId": "3A11", "reaction": "👍"})),
        ),
        (
            Method::POST,
            format!("/api/message/poll/{instance}"),
            Some(json!({"number": "5511977776666", "question": "Q?", "options": ["a", "b"]})),
        ),
        (
            Method::POST,
            format!("/api/message/event/{instance}"),
            Some(
                json!({"number": "5511977776666", "name": "E", "startAt": "2027-01-01T10:00:00Z"}),
            ),
        ),
        (
            Method::POST,
            format!("/api/message/sticker/{instance}"),
            Some(
                json!({"number": "5511977776666", "imageUrl": "data:image/webp;base64,UklGRhoAAABXRUJQ"}),
            ),
        ),
        (
            Method::POST,
            format!("/api/message/button/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/message/list/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/message/carousel/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/message/form/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/message/pix/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/message/status/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/events/webhook/{instance}"),
            Some(json!({"enabled": true, "url": "https://hooks.example.test/x"})),
        ),
        (
            Method::GET,
            format!("/api/events/getWebhook/{instance}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/events/websocket/{instance}"),
            Some(json!({"enabled": true})),
        ),
        (
            Method::GET,
            format!("/api/events/getWebsocket/{instance}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/events/deliveries/{instance}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/events/deliveries/{instance}/replay"),
            None,
        ),
        (
            Method::GET,
            format!("/api/events/log/{instance}?after=0"),
            None,
        ),
        (
            Method::POST,
            sandbox("faults"),
            Some(json!({"send": "error"})),
        ),
        (
            Method::POST,
            sandbox("community"),
            Some(json!({"name": "Bairro"})),
        ),
        (
            Method::POST,
            sandbox("directory"),
            Some(json!({"contacts": [{"number": "5511977776666"}]})),
        ),
        (Method::GET, sandbox("chats"), None),
        (
            Method::POST,
            sandbox("history"),
            Some(
                json!({"messages": [{"from": "5511977776666", "text": "old", "timestamp": 1_700_000_000}]}),
            ),
        ),
        (
            Method::POST,
            format!("/api/group/create/{instance}"),
            Some(json!({"name": "G", "participants": ["5511977776666"]})),
        ),
        (Method::GET, format!("/api/group/list/{instance}"), None),
        (
            Method::GET,
            format!("/api/group/info/{instance}?identifier={GROUP}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/group/update/{instance}"),
            Some(json!({"groupJid": GROUP, "name": "G2"})),
        ),
        (
            Method::POST,
            format!("/api/group/participants/{instance}"),
            Some(json!({"groupJid": GROUP, "action": "add", "participants": ["5511977776666"]})),
        ),
        (
            Method::POST,
            format!("/api/group/join/{instance}"),
            Some(json!({"identifier": "AbCdEfGhIjKlMnOpQrStUv"})),
        ),
        (
            Method::POST,
            format!("/api/group/resetLink/{instance}"),
            Some(json!({"groupJid": GROUP})),
        ),
        (
            Method::GET,
            format!("/api/group/requests/{instance}?groupJid={GROUP}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/group/leave/{instance}?groupJid={GROUP}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/community/listSubGroups/{instance}?communityJid={GROUP}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/profile/getAccount/{instance}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/profile/account/{instance}"),
            Some(json!({"name": "Central"})),
        ),
        (
            Method::GET,
            format!("/api/profile/getPrivacy/{instance}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/profile/privacy/{instance}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/profile/privacy/{instance}"),
            Some(json!({"visibility": {"lastSeen": "none"}})),
        ),
        (
            Method::GET,
            format!("/api/chat/contacts/{instance}?number=5511977776666"),
            None,
        ),
        (Method::GET, format!("/api/chat/contacts/{instance}"), None),
        (
            Method::POST,
            format!("/api/chat/checkNumbers/{instance}"),
            Some(json!({"numbers": ["5511977776666"]})),
        ),
        (
            Method::POST,
            format!("/api/chat/markRead/{instance}"),
            Some(json!({"number": "5511977776666", "messageIds": ["3EB0AA"]})),
        ),
        (
            Method::POST,
            format!("/api/chat/markChatRead/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/chat/presence/{instance}"),
            Some(json!({"number": "5511977776666", "state": "typing"})),
        ),
        (
            Method::POST,
            format!("/api/chat/archive/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/chat/pin/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::POST,
            format!("/api/chat/mute/{instance}"),
            Some(json!({"number": "5511977776666", "duration": 3600})),
        ),
        (
            Method::POST,
            format!("/api/chat/block/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::DELETE,
            format!("/api/chat/deleteChat/{instance}"),
            Some(json!({"number": "5511977776666"})),
        ),
        (
            Method::GET,
            format!("/api/chat/getMessage/{instance}?messageId={MESSAGE}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/chat/status/{instance}?messageId={MESSAGE}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/chat/poll/{instance}?messageId={MESSAGE}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/chat/base64/{instance}?messageId={MESSAGE}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/chat/edit/{instance}"),
            Some(json!({"messageId": MESSAGE, "message": "new"})),
        ),
        (
            Method::DELETE,
            format!("/api/chat/delete/{instance}"),
            Some(json!({"messageId": MESSAGE})),
        ),
        (
            Method::POST,
            format!("/api/chat/forward/{instance}"),
            Some(json!({"messageId": MESSAGE, "number": "5511977776666"})),
        ),
    ]
}

/// A message id for the chat routes.
const MESSAGE: &str = "3EB0AAAAAAAAAAAAAAAA";

/// A group jid for the group and community routes.
const GROUP: &str = "120363000000000001@g.us";

/// The routes that name an instance and take either token.
fn instance_routes(instance: &str) -> Vec<(Method, String, Option<Value>)> {
    routes(instance)
        .into_iter()
        .filter(|(_, path, _)| {
            path.split(['/', '?']).any(|segment| segment == instance)
                && !path.starts_with("/api/instance/delete/")
        })
        .collect()
}

async fn send(
    server: &TestServer,
    route: &(Method, String, Option<Value>),
    token: Option<&str>,
) -> Reply {
    let (method, path, body) = route;
    // POST routes always get a JSON body, so the token is what is judged.
    let body = match (method, body) {
        (&Method::POST, None) => Some(json!({})),
        (_, body) => body.clone(),
    };
    server.call(method.clone(), path, token, body).await
}

/// A's view of B: B's instance is listed, still connected to its phone.
async fn assert_untouched(server: &TestServer, token: &str, name: &str, number: &str) {
    let list = server
        .get(
            &format!("/api/instance/list?instanceName={name}"),
            Some(token),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["message"], json!("1 Instance found"));
    let item = &list.body["instances"][0];
    assert_eq!(item["name"], json!(name));
    assert_eq!(item["connection"]["state"], json!("connected"), "{item}");
    assert_eq!(
        item["connection"]["numberJid"],
        json!(format!("{number}@s.whatsapp.net"))
    );
    let outbox = server
        .get(&format!("/api/sandbox/{name}/outbox"), Some(token))
        .await;
    assert_eq!(outbox.status, StatusCode::OK, "{}", outbox.text);
    assert_eq!(outbox.body["messages"], json!([]), "{}", outbox.text);
    assert_eq!(outbox.body["calls"], json!([]), "{}", outbox.text);
    let settings = server
        .get(&format!("/api/instance/getSettings/{name}"), Some(token))
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text);
    assert_eq!(
        settings.body["settings"]["ignoreGroupMessages"],
        json!(false)
    );
    assert_eq!(settings.body["settings"]["autoRejectCalls"], json!(false));
}

/// A server for the route matrices: they send more requests from one client
/// than the default per-minute budget allows (the rate limit has its own tests).
async fn matrix_server() -> TestServer {
    TestServer::start_with(Env::default().with("ZAPGATE_RATE_LIMIT_PER_MINUTE", "100000")).await
}

#[tokio::test]
async fn every_route_without_a_token_is_a_401_missing_token_in_header() {
    let server = matrix_server().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;

    for route in routes("suporte") {
        send(&server, &route, None)
            .await
            .assert_error(401, "Missing token in header");
    }
    // An empty token header counts as none.
    for route in routes("suporte") {
        send(&server, &route, Some(""))
            .await
            .assert_error(401, "Missing token in header");
    }
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn every_route_with_an_unknown_token_is_a_401_invalid_token() {
    let server = matrix_server().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;

    for unknown in ["zga_0000000000000000000000000000000000000000", "nonsense"] {
        for route in routes("suporte") {
            send(&server, &route, Some(unknown))
                .await
                .assert_error(401, "Invalid token");
        }
    }
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn an_authorization_bearer_header_is_accepted_in_place_of_the_token_header() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;

    let created = server
        .client
        .post(server.url("/api/instance/new"))
        .header("Authorization", format!("Bearer {account}"))
        .json(&json!({"name": "suporte"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.unwrap();
    let instance_token = body["instance"]["token"].as_str().unwrap().to_owned();

    for (scheme, token) in [("Bearer", &account), ("bearer", &instance_token)] {
        let list = server
            .client
            .get(server.url("/api/instance/list"))
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), StatusCode::OK);
        let body: Value = list.json().await.unwrap();
        assert_eq!(body["message"], json!("1 Instance found"));
        assert_eq!(body["instances"][0]["name"], json!("suporte"));
    }

    // A bearer with an unknown token is judged like any unknown token.
    let reply = server
        .client
        .get(server.url("/api/instance/list"))
        .header("Authorization", "Bearer not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": false, "error": {"message": "Invalid token"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn an_instance_token_cannot_create_or_delete_instances() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;

    server
        .post(
            "/api/instance/new",
            Some(&token),
            json!({"name": "another"}),
        )
        .await
        .assert_error(401, "Invalid token");
    server
        .delete("/api/instance/delete/suporte", Some(&token))
        .await
        .assert_error(401, "Invalid token");

    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["message"], json!("1 Instance found"));
    assert_eq!(list.body["instances"][0]["name"], json!("suporte"));
    // The token itself still works where it is allowed.
    let own = server.get("/api/instance/list", Some(&token)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    server.stop().await;
}

#[tokio::test]
async fn another_accounts_instance_looks_exactly_like_a_missing_one() {
    let server = matrix_server().await;
    let (_, account_a) = server.create_account("a", 10).await;
    let (_, account_b) = server.create_account("b", 10).await;
    let token_a = server.create_instance(&account_a, "mine").await;
    let token_b = server.create_instance(&account_b, "theirs").await;
    server.pair(&token_b, "theirs", "5511955554444").await;

    for caller in [&account_a, &token_a] {
        for route in instance_routes("theirs") {
            let reply = send(&server, &route, Some(caller)).await;
            reply.assert_error(404, "Instance not found");
            // Indistinguishable from a name nobody has.
            let ghost = (
                route.0.clone(),
                route.1.replace("theirs", "ghost"),
                route.2.clone(),
            );
            let missing = send(&server, &ghost, Some(caller)).await;
            assert_eq!(missing.status, reply.status, "{}", route.1);
            assert_eq!(missing.body, reply.body, "{}", route.1);
        }
    }
    server
        .delete("/api/instance/delete/theirs", Some(&account_a))
        .await
        .assert_error(404, "Instance not found");
    server
        .get("/api/instance/list?instanceName=theirs", Some(&account_a))
        .await
        .assert_error(404, "Instance not found");
    let list = server
        .get(
            "/api/instance/list?instanceName=theirs,mine",
            Some(&account_a),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["message"], json!("1 Instance found"));
    assert_eq!(list.body["instances"][0]["name"], json!("mine"));

    assert_untouched(&server, &account_b, "theirs", "5511955554444").await;
    assert_untouched(&server, &token_b, "theirs", "5511955554444").await;
    server.stop().await;
}

#[tokio::test]
async fn an_instance_token_cannot_reach_a_sibling_instance_of_its_account() {
    let server = matrix_server().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token_a = server.create_instance(&account, "a").await;
    let token_b = server.create_instance(&account, "b").await;
    server.pair(&token_b, "b", "5511944443333").await;

    for route in instance_routes("b") {
        send(&server, &route, Some(&token_a))
            .await
            .assert_error(404, "Instance not found");
    }
    // Its own instance is within reach.
    let own = server.get("/api/instance/connect/a", Some(&token_a)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);

    assert_untouched(&server, &account, "b", "5511944443333").await;
    assert_untouched(&server, &token_b, "b", "5511944443333").await;
    server.stop().await;
}

/// Tokens are resolved once and remembered for a moment: a deletion in this
/// server must still revoke them at once, even right after they were used.
async fn deleted_owners_tokens_stop_working_at_once(server: &TestServer) {
    let (id, account) = server.create_account("acme", 10).await;
    let token_one = server.create_instance(&account, "one").await;
    let token_two = server.create_instance(&account, "two").await;
    let (_, other) = server.create_account("other", 10).await;
    let token_other = server.create_instance(&other, "one").await;
    let use_all = [&account, &token_one, &token_two, &other, &token_other];
    for token in use_all {
        let list = server.get("/api/instance/list", Some(token)).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    }

    let deleted = server
        .delete("/api/instance/delete/one", Some(&account))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    server
        .get("/api/instance/list", Some(&token_one))
        .await
        .assert_error(401, "Invalid token");
    server
        .get("/api/instance/connect/one", Some(&token_one))
        .await
        .assert_error(401, "Invalid token");
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );
    let own = server.get("/api/instance/list", Some(&token_two)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);

    let deleted = server
        .delete(&format!("/admin/accounts/{id}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    for token in [&account, &token_two] {
        server
            .get("/api/instance/list", Some(token))
            .await
            .assert_error(401, "Invalid token");
        server
            .post("/api/instance/new", Some(token), json!({"name": "again"}))
            .await
            .assert_error(401, "Invalid token");
    }
    // The other account's tokens were not disturbed.
    for token in [&other, &token_other] {
        let list = server.get("/api/instance/list", Some(token)).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        assert_eq!(list.body["instances"][0]["name"], json!("one"));
    }
}

#[tokio::test]
async fn a_deleted_instance_or_account_is_refused_at_once_even_right_after_use() {
    let server = TestServer::start().await;
    deleted_owners_tokens_stop_working_at_once(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_instance_or_account_is_refused_at_once_on_postgres() {
    let Some(server) = TestServer::start_postgres(Env::default()).await else {
        return;
    };
    deleted_owners_tokens_stop_working_at_once(&server).await;
    server.stop().await;
}
