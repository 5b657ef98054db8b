//! The chat module's chat-state routes end to end on the sandbox: contacts
//! by phone and `@lid`, checkNumbers, read marks, presence, archive, pin,
//! mute, block and deleteChat, each effect read back through the sandbox's
//! `chats` and `outbox` views.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    groups::{ok, refused},
    harness::TestServer,
};

const PHONE: &str = "5511999990000";
const MARIA: &str = "5511988887777";
const JOAO: &str = "5511977776666";
const GROUP: &str = "120363000000000001@g.us";

/// A paired instance `suporte` whose address book holds Maria and João.
async fn phone(server: &TestServer) -> String {
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", PHONE).await;
    let added = server
        .post(
            "/api/sandbox/suporte/directory",
            Some(&token),
            json!({"contacts": [
                {"number": MARIA, "name": "Maria Souza", "pushName": "Mari"},
                {"number": format!("+{JOAO}"), "business": true},
            ]}),
        )
        .await;
    ok(&added);
    token
}

async fn chats(server: &TestServer, token: &str) -> Value {
    let reply = server.get("/api/sandbox/suporte/chats", Some(token)).await;
    ok(&reply).clone()
}

async fn post(server: &TestServer, token: &str, route: &str, body: Value) -> Value {
    let reply = server
        .post(&format!("/api/chat/{route}/suporte"), Some(token), body)
        .await;
    ok(&reply).clone()
}

#[tokio::test]
async fn contacts_are_found_by_phone_and_by_lid_and_unknown_ones_are_not() {
    let server = TestServer::start().await;
    let token = phone(&server).await;

    // What a RyzeAPI client asks first: its own number, for its own LID.
    let own = server
        .get(
            &format!("/api/chat/contacts/suporte?number={PHONE}"),
            Some(&token),
        )
        .await;
    let contact = ok(&own)["contact"].clone();
    assert_eq!(contact["found"], true);
    assert_eq!(contact["jid"], format!("{PHONE}@s.whatsapp.net"));
    let own_lid = contact["lid"].as_str().unwrap().to_owned();
    assert!(own_lid.ends_with("@lid"), "{own_lid}");

    let maria = server
        .get(
            &format!("/api/chat/contacts/suporte?number={MARIA}"),
            Some(&token),
        )
        .await;
    let contact = ok(&maria)["contact"].clone();
    assert_eq!(contact["found"], true);
    assert_eq!(contact["name"], "Maria Souza");
    assert_eq!(contact["push_name"], "Mari");
    let lid = contact["lid"].as_str().unwrap().to_owned();

    // By LID (a device part tolerated), the phone comes back.
    let device_lid = lid.replace("@lid", ":12@lid");
    for asked in [lid.as_str(), device_lid.as_str()] {
        let by_lid = server
            .get(
                &format!("/api/chat/contacts/suporte?number={asked}"),
                Some(&token),
            )
            .await;
        let contact = &ok(&by_lid)["contact"];
        assert_eq!(contact["found"], true, "{asked}");
        assert_eq!(contact["jid"], format!("{MARIA}@s.whatsapp.net"));
        assert_eq!(contact["lid"], json!(lid));
    }

    // Unknown: still a 200, `found: false`.
    for unknown in ["5511911112222", "999999999999999@lid"] {
        let reply = server
            .get(
                &format!("/api/chat/contacts/suporte?number={unknown}"),
                Some(&token),
            )
            .await;
        assert_eq!(ok(&reply)["contact"]["found"], false, "{unknown}");
        assert_eq!(reply.body["contact"]["jid"], Value::Null);
    }

    let all = server.get("/api/chat/contacts/suporte", Some(&token)).await;
    assert_eq!(ok(&all)["total"], 2);
    let jids: Vec<&str> = all.body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jid"].as_str().unwrap())
        .collect();
    assert_eq!(
        jids,
        [
            format!("{JOAO}@s.whatsapp.net"),
            format!("{MARIA}@s.whatsapp.net")
        ]
    );

    for bad in ["abc", GROUP] {
        let reply = server
            .get(
                &format!("/api/chat/contacts/suporte?number={bad}"),
                Some(&token),
            )
            .await;
        refused(&reply, "number");
    }
    server.stop().await;
}

#[tokio::test]
async fn check_numbers_answers_which_are_on_whatsapp_in_the_order_asked() {
    let server = TestServer::start().await;
    let token = phone(&server).await;

    let reply = post(
        &server,
        &token,
        "checkNumbers",
        json!({"numbers": ["5511911112222", JOAO, format!("{MARIA}@s.whatsapp.net")]}),
    )
    .await;
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["number"], "5511911112222");
    assert_eq!(results[0]["exists"], false);
    assert_eq!(results[0]["jid"], Value::Null);
    assert_eq!(results[1]["exists"], true);
    assert_eq!(results[1]["jid"], format!("{JOAO}@s.whatsapp.net"));
    assert_eq!(results[1]["isBusiness"], true);
    assert!(results[1]["lid"].as_str().unwrap().ends_with("@lid"));
    assert_eq!(results[2]["exists"], true);
    assert_eq!(results[2]["isBusiness"], false);

    let too_many: Vec<String> = (0..51).map(|i| format!("55119{i:08}")).collect();
    for (body, field) in [
        (json!({"numbers": too_many}), "numbers"),
        (json!({"numbers": []}), "numbers"),
        (json!({}), "numbers"),
        (json!({"numbers": [JOAO, "nope"]}), "numbers[1]"),
        (json!({"numbers": [GROUP]}), "numbers[0]"),
        (json!({"numbers": [JOAO], "extra": 1}), "extra"),
    ] {
        let reply = server
            .post("/api/chat/checkNumbers/suporte", Some(&token), body)
            .await;
        refused(&reply, field);
    }
    server.stop().await;
}

#[tokio::test]
async fn mark_read_sends_receipts_with_the_group_author() {
    let server = TestServer::start().await;
    let token = phone(&server).await;

    post(
        &server,
        &token,
        "markRead",
        json!({"number": MARIA, "messageIds": ["3EB0A1", "3EB0A2"]}),
    )
    .await;
    post(
        &server,
        &token,
        "markRead",
        json!({"number": GROUP, "messageIds": ["3EB0B1"], "participant": JOAO}),
    )
    .await;
    let state = chats(&server, &token).await;
    assert_eq!(state["reads"][0]["chat"], format!("{MARIA}@s.whatsapp.net"));
    assert_eq!(state["reads"][0]["messageIds"], json!(["3EB0A1", "3EB0A2"]));
    assert_eq!(state["reads"][0].get("sender"), None);
    assert_eq!(state["reads"][1]["chat"], GROUP);
    assert_eq!(
        state["reads"][1]["sender"],
        format!("{JOAO}@s.whatsapp.net")
    );

    let long_id = "A".repeat(129);
    let many: Vec<String> = (0..101).map(|i| format!("ID{i}")).collect();
    for (body, field) in [
        (json!({"messageIds": ["X"]}), "number"),
        (json!({"number": MARIA}), "messageIds"),
        (json!({"number": MARIA, "messageIds": []}), "messageIds"),
        (json!({"number": MARIA, "messageIds": many}), "messageIds"),
        (
            json!({"number": MARIA, "messageIds": [long_id]}),
            "messageIds",
        ),
        (json!({"number": GROUP, "messageIds": ["X"]}), "participant"),
        (
            json!({"number": MARIA, "messageIds": ["X"], "participant": JOAO}),
            "participant",
        ),
        (
            json!({"number": GROUP, "messageIds": ["X"], "participant": GROUP}),
            "participant",
        ),
    ] {
        let reply = server
            .post("/api/chat/markRead/suporte", Some(&token), body)
            .await;
        refused(&reply, field);
    }
    assert_eq!(
        chats(&server, &token).await["reads"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn archive_pin_mute_mark_chat_read_and_delete_set_the_chat_flags() {
    let server = TestServer::start().await;
    let token = phone(&server).await;
    let maria = format!("{MARIA}@s.whatsapp.net");

    assert_eq!(
        post(&server, &token, "archive", json!({"number": MARIA})).await["message"],
        "Chat archived"
    );
    post(&server, &token, "pin", json!({"number": GROUP})).await;
    post(
        &server,
        &token,
        "markChatRead",
        json!({"number": MARIA, "read": false}),
    )
    .await;
    let muted = post(
        &server,
        &token,
        "mute",
        json!({"number": MARIA, "duration": 3600}),
    )
    .await;
    let until = muted["mutedUntil"].as_i64().unwrap();
    post(&server, &token, "mute", json!({"number": GROUP})).await;

    let state = chats(&server, &token).await;
    let flags = &state["chats"][&maria];
    assert_eq!(flags["archived"], true);
    assert_eq!(flags["pinned"], false);
    assert_eq!(flags["read"], false);
    assert_eq!(flags["muted"], until.to_string());
    assert_eq!(state["chats"][GROUP]["pinned"], true);
    assert_eq!(state["chats"][GROUP]["muted"], "forever");

    let unarchived = post(
        &server,
        &token,
        "archive",
        json!({"number": MARIA, "archive": false}),
    )
    .await;
    assert_eq!(unarchived["message"], "Chat unarchived");
    post(
        &server,
        &token,
        "pin",
        json!({"number": GROUP, "pin": false}),
    )
    .await;
    let unmuted = post(
        &server,
        &token,
        "mute",
        json!({"number": MARIA, "mute": false}),
    )
    .await;
    assert_eq!(unmuted["mutedUntil"], Value::Null);
    let state = chats(&server, &token).await;
    assert_eq!(state["chats"][&maria]["archived"], false);
    assert_eq!(state["chats"][&maria]["muted"], "off");
    assert_eq!(state["chats"][GROUP]["pinned"], false);

    let deleted = server
        .call(
            Method::DELETE,
            "/api/chat/deleteChat/suporte",
            Some(&token),
            Some(json!({"number": GROUP})),
        )
        .await;
    ok(&deleted);
    let state = chats(&server, &token).await;
    assert_eq!(state["chats"][GROUP]["deleted"], true);
    assert_eq!(state["chats"][GROUP]["muted"], "off");

    for (route, body, field) in [
        ("archive", json!({}), "number"),
        ("archive", json!({"number": "x@example.com"}), "number"),
        ("archive", json!({"number": MARIA, "pin": true}), "pin"),
        ("pin", json!({"number": MARIA, "archive": true}), "archive"),
        (
            "markChatRead",
            json!({"number": MARIA, "archive": true}),
            "archive",
        ),
        ("pin", json!({"number": MARIA, "pinned": true}), "pinned"),
        ("mute", json!({"number": MARIA, "duration": 0}), "duration"),
        (
            "mute",
            json!({"number": MARIA, "duration": 40_000_000}),
            "duration",
        ),
        (
            "mute",
            json!({"number": MARIA, "mute": false, "duration": 60}),
            "duration",
        ),
    ] {
        let reply = server
            .post(&format!("/api/chat/{route}/suporte"), Some(&token), body)
            .await;
        refused(&reply, field);
    }
    let reply = server
        .call(
            Method::DELETE,
            "/api/chat/deleteChat/suporte",
            Some(&token),
            Some(json!({})),
        )
        .await;
    refused(&reply, "number");
    server.stop().await;
}

#[tokio::test]
async fn block_and_unblock_a_contact_by_phone_or_lid() {
    let server = TestServer::start().await;
    let token = phone(&server).await;

    post(&server, &token, "block", json!({"number": MARIA})).await;
    post(
        &server,
        &token,
        "block",
        json!({"number": "271060335329480@lid"}),
    )
    .await;
    assert_eq!(
        chats(&server, &token).await["blocked"],
        json!(["271060335329480@lid", format!("{MARIA}@s.whatsapp.net")])
    );
    let unblocked = post(
        &server,
        &token,
        "block",
        json!({"number": MARIA, "block": false}),
    )
    .await;
    assert_eq!(unblocked["message"], "Contact unblocked");
    assert_eq!(
        chats(&server, &token).await["blocked"],
        json!(["271060335329480@lid"])
    );

    for body in [
        json!({"number": GROUP}),
        json!({}),
        json!({"number": MARIA, "block": "yes"}),
    ] {
        let reply = server
            .post("/api/chat/block/suporte", Some(&token), body)
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    }
    let reply = server
        .post(
            "/api/chat/block/suporte",
            Some(&token),
            json!({"number": GROUP}),
        )
        .await;
    refused(&reply, "number");
    server.stop().await;
}

/// The outbox's chat presences, waited for until `count` are there.
async fn chat_presences(server: &TestServer, token: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outbox = server.get("/api/sandbox/suporte/outbox", Some(token)).await;
        let entries = ok(&outbox)["chatPresence"].as_array().unwrap().clone();
        if entries.len() >= count {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "{count} presences never came: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn presence_shows_typing_then_pauses_after_its_duration_and_sets_the_account_presence() {
    let server = TestServer::start().await;
    let token = phone(&server).await;

    // The contract's body: the answer comes at once, the pause after 1 s.
    let started = Instant::now();
    post(
        &server,
        &token,
        "presence",
        json!({"number": MARIA, "state": "typing", "duration": 1}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered only after the duration"
    );
    let entries = chat_presences(&server, &token, 2).await;
    assert_eq!(entries[0]["state"], "typing");
    assert_eq!(entries[0]["chat"], format!("{MARIA}@s.whatsapp.net"));
    assert_eq!(entries[1]["state"], "paused");

    post(
        &server,
        &token,
        "presence",
        json!({"number": GROUP, "state": "recording"}),
    )
    .await;
    let entries = chat_presences(&server, &token, 3).await;
    assert_eq!(entries[2]["state"], "recording");
    assert_eq!(entries[2]["chat"], GROUP);

    post(&server, &token, "presence", json!({"state": "unavailable"})).await;
    assert_eq!(chats(&server, &token).await["presence"], "unavailable");
    post(&server, &token, "presence", json!({"state": "available"})).await;
    assert_eq!(chats(&server, &token).await["presence"], "available");

    for (body, field) in [
        (json!({"number": MARIA, "state": "composing"}), "state"),
        (json!({"number": MARIA}), "state"),
        (json!({"state": "typing"}), "number"),
        (
            json!({"number": MARIA, "state": "typing", "duration": 0}),
            "duration",
        ),
        (
            json!({"number": MARIA, "state": "typing", "duration": 61}),
            "duration",
        ),
        (
            json!({"number": MARIA, "state": "paused", "duration": 5}),
            "duration",
        ),
        (json!({"number": MARIA, "state": "available"}), "number"),
        (json!({"state": "available", "duration": 5}), "duration"),
        (
            json!({"number": MARIA, "state": "typing", "chat": "x"}),
            "chat",
        ),
    ] {
        let reply = server
            .post("/api/chat/presence/suporte", Some(&token), body)
            .await;
        refused(&reply, field);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_chat_state_route_needs_a_connected_session() {
    let server = TestServer::start().await;
    let token = phone(&server).await;
    ok(&server
        .post("/api/sandbox/suporte/disconnect", Some(&token), json!({}))
        .await);

    let routes = [
        (Method::GET, "contacts", None),
        (
            Method::POST,
            "checkNumbers",
            Some(json!({"numbers": [MARIA]})),
        ),
        (
            Method::POST,
            "markRead",
            Some(json!({"number": MARIA, "messageIds": ["X"]})),
        ),
        (Method::POST, "markChatRead", Some(json!({"number": MARIA}))),
        (
            Method::POST,
            "presence",
            Some(json!({"number": MARIA, "state": "typing"})),
        ),
        (
            Method::POST,
            "presence",
            Some(json!({"state": "available"})),
        ),
        (Method::POST, "archive", Some(json!({"number": MARIA}))),
        (Method::POST, "pin", Some(json!({"number": MARIA}))),
        (Method::POST, "mute", Some(json!({"number": MARIA}))),
        (Method::POST, "block", Some(json!({"number": MARIA}))),
        (Method::DELETE, "deleteChat", Some(json!({"number": MARIA}))),
    ];
    for (method, route, body) in routes {
        let reply = server
            .call(
                method,
                &format!("/api/chat/{route}/suporte"),
                Some(&token),
                body,
            )
            .await;
        reply.assert_error(503, "Instance is not connected to WhatsApp");
    }
    let state = chats(&server, &token).await;
    assert_eq!(state["reads"], json!([]));
    assert_eq!(state["chats"], json!({}));
    assert_eq!(state["blocked"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_chat_state_route_with_its_errors() {
    let server = TestServer::start().await;
    let doc = server.get("/openapi.json", None).await;
    for (method, route) in [
        ("get", "contacts"),
        ("post", "checkNumbers"),
        ("post", "markRead"),
        ("post", "markChatRead"),
        ("post", "presence"),
        ("post", "archive"),
        ("post", "pin"),
        ("post", "mute"),
        ("post", "block"),
        ("delete", "deleteChat"),
    ] {
        let path = format!("/api/chat/{route}/{{instance}}");
        let responses = &doc.body["paths"][&path][method]["responses"];
        for status in ["200", "400", "401", "404", "429", "503"] {
            assert!(
                responses.get(status).is_some(),
                "{method} {path} lacks {status}: {responses}"
            );
        }
    }
    server.stop().await;
}
