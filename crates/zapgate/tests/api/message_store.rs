//! The message store and the chat module's message routes (issue 15):
//! what is stored from inbound messages, sends, edits, revocations and
//! receipts; `replyTo` checked against it; `getMessage`, `status`, `base64`,
//! `edit`, `delete` and `forward` through the real HTTP API and the sandbox
//! phone; retention 0; both databases.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Env, Reply, TestServer};

const CUSTOMER: &str = "5511977776666";
const OTHER: &str = "5511955554444";
/// A 1 x 1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

async fn paired(server: &TestServer) -> String {
    let (_, account) = server.create_account("acme", 5).await;
    let token = server.create_instance(&account, "loja").await;
    server.pair(&token, "loja", "5511900001111").await;
    token
}

/// A customer writes `body` (the sandbox inbound fields); returns its id.
async fn inbound(server: &TestServer, token: &str, body: Value) -> String {
    let reply = server
        .post("/api/sandbox/loja/inbound", Some(token), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn send_text(server: &TestServer, token: &str, body: Value) -> Reply {
    server
        .post("/api/message/text/loja", Some(token), body)
        .await
}

fn sent_id(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["data"]["messageId"].as_str().unwrap().to_owned()
}

async fn get_message(server: &TestServer, token: &str, id: &str) -> Reply {
    server
        .get(
            &format!("/api/chat/getMessage/loja?messageId={id}"),
            Some(token),
        )
        .await
}

async fn found(server: &TestServer, token: &str, id: &str) -> Value {
    let reply = get_message(server, token, id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["message"], json!("Message found"));
    assert_eq!(reply.body["status"], json!("found"));
    assert_eq!(reply.body["messageId"], json!(id));
    reply.body["data"].clone()
}

async fn outbox(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = server.get("/api/sandbox/loja/outbox", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["messages"].as_array().unwrap().clone()
}

async fn chat(server: &TestServer, token: &str, method: Method, route: &str, body: Value) -> Reply {
    server
        .call(
            method,
            &format!("/api/chat/{route}/loja"),
            Some(token),
            Some(body),
        )
        .await
}

async fn stores_inbound_and_sent_messages_with_their_statuses(server: &TestServer) {
    let token = paired(server).await;
    let customer = format!("{CUSTOMER}@s.whatsapp.net");
    let id = inbound(
        server,
        &token,
        json!({"from": CUSTOMER, "pushName": "Maria", "text": "Oi!", "timestamp": 1_776_680_130}),
    )
    .await;
    let data = found(server, &token, &id).await;
    assert_eq!(data["content"], json!("Oi!"));
    assert_eq!(data["type"], json!("text"));
    assert_eq!(data["from"], json!(customer));
    assert_eq!(data["to"], json!("5511900001111@s.whatsapp.net"));
    assert_eq!(data["chat"], json!(customer));
    assert_eq!(data["timestamp"], json!("2026-04-20T10:15:30Z"));
    assert_eq!(data["isGroup"], json!(false));
    assert_eq!(data["direction"], json!("incoming"));
    assert_eq!(data["status"], json!("delivered"));

    // A reply through the API, quoting it, with a trace label.
    let reply = send_text(
        server,
        &token,
        json!({"number": CUSTOMER, "message": "Olá, Maria!", "replyTo": id, "source": "agent-7"}),
    )
    .await;
    let sent = sent_id(&reply);
    assert_eq!(reply.body["data"]["source"], json!("agent-7"));
    let data = found(server, &token, &sent).await;
    assert_eq!(data["content"], json!("Olá, Maria!"));
    assert_eq!(data["fromMe"], json!(true));
    assert_eq!(data["direction"], json!("outgoing"));
    assert_eq!(data["source"], json!("agent-7"));
    assert_eq!(data["replyTo"], json!(id));
    assert_eq!(data["status"], json!("sent"));

    // Receipts move the status forward, never back.
    for status in ["delivered", "read", "delivered"] {
        let receipt = server
            .post(
                "/api/sandbox/loja/receipt",
                Some(&token),
                json!({"id": sent, "status": status}),
            )
            .await;
        assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.text);
    }
    let status = server
        .get(
            &format!("/api/chat/status/loja?messageId={sent}"),
            Some(&token),
        )
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.body["message_id"], json!(sent));
    assert_eq!(status.body["direction"], json!("sent"));
    assert_eq!(status.body["chat_jid"], json!(customer));
    assert_eq!(status.body["status"], json!("read"));
    let history: Vec<&Value> = status.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["status"])
        .collect();
    assert_eq!(
        history,
        [&json!("sent"), &json!("delivered"), &json!("read")]
    );
    let inbound_status = server
        .get(
            &format!("/api/chat/status/loja?messageId={id}"),
            Some(&token),
        )
        .await;
    assert_eq!(inbound_status.body["direction"], json!("received"));

    // Group messages are stored too, with their group.
    let group = "120363041234567890@g.us";
    let in_group = inbound(
        server,
        &token,
        json!({"from": CUSTOMER, "text": "Bom dia", "group": {"jid": group, "subject": "Loja"}}),
    )
    .await;
    let data = found(server, &token, &in_group).await;
    assert_eq!(data["chat"], json!(group));
    assert_eq!(data["from"], json!(customer));
    assert_eq!(data["isGroup"], json!(true));

    // A redelivery keeps the first row.
    inbound(
        server,
        &token,
        json!({"id": id, "from": CUSTOMER, "text": "changed?"}),
    )
    .await;
    assert_eq!(found(server, &token, &id).await["content"], json!("Oi!"));
}

#[tokio::test]
async fn inbound_and_sent_messages_are_stored_with_their_statuses() {
    let server = TestServer::start().await;
    stores_inbound_and_sent_messages_with_their_statuses(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_store_works_on_postgres() {
    let Some(server) = TestServer::start_postgres(Env::default()).await else {
        return;
    };
    stores_inbound_and_sent_messages_with_their_statuses(&server).await;
    edits_revocations_and_deletes_apply(&server).await;
    ignored_chats_stay_out(&server).await;
    poll_votes_are_kept_and_tallied(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn reply_to_must_be_a_message_of_this_instance() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let unknown = send_text(
        &server,
        &token,
        json!({"number": CUSTOMER, "message": "oi", "replyTo": "3A0000000000000000"}),
    )
    .await;
    unknown.assert_error(404, "Message not found");
    let location = server
        .post(
            "/api/message/location/loja",
            Some(&token),
            json!({"number": CUSTOMER, "latitude": 1.5, "longitude": 2.5, "replyTo": "3A0000000000000000"}),
        )
        .await;
    location.assert_error(404, "Message not found");
    assert!(outbox(&server, &token).await.is_empty(), "nothing went out");

    // Another instance's message is not this one's.
    let (_, account) = server.create_account("other", 5).await;
    let other = server.create_instance(&account, "outra").await;
    server.pair(&other, "outra", "5511900002222").await;
    let foreign = server
        .post(
            "/api/sandbox/outra/inbound",
            Some(&other),
            json!({"from": CUSTOMER, "text": "oi"}),
        )
        .await;
    let foreign = foreign.body["id"].as_str().unwrap().to_owned();
    send_text(
        &server,
        &token,
        json!({"number": CUSTOMER, "message": "oi", "replyTo": foreign}),
    )
    .await
    .assert_error(404, "Message not found");

    let id = inbound(
        &server,
        &token,
        json!({"from": CUSTOMER, "text": "pedido?"}),
    )
    .await;
    let ok = send_text(
        &server,
        &token,
        json!({"number": CUSTOMER, "message": "chegou", "replyTo": id}),
    )
    .await;
    let sent = sent_id(&ok);
    let entry = outbox(&server, &token).await.pop().unwrap();
    assert_eq!(entry["id"], json!(sent));
    assert_eq!(entry["quotedId"], json!(id));
    server.stop().await;
}

#[tokio::test]
async fn retention_zero_stores_nothing_and_leaves_reply_to_unchecked() {
    let server =
        TestServer::start_with(Env::default().with("ZAPGATE_MESSAGE_RETENTION_DAYS", "0")).await;
    let token = paired(&server).await;
    let id = inbound(&server, &token, json!({"from": CUSTOMER, "text": "oi"})).await;
    get_message(&server, &token, &id)
        .await
        .assert_error(404, "Message not found");
    let reply = send_text(
        &server,
        &token,
        json!({"number": CUSTOMER, "message": "oi", "replyTo": "3A0000000000000000"}),
    )
    .await;
    let sent = sent_id(&reply);
    get_message(&server, &token, &sent)
        .await
        .assert_error(404, "Message not found");
    server.stop().await;
}

async fn edits_revocations_and_deletes_apply(server: &TestServer) {
    let (_, account) = server.create_account("edits", 5).await;
    let token = server.create_instance(&account, "loja").await;
    server.pair(&token, "loja", "5511900003333").await;

    // Ours, edited through the API.
    let sent = sent_id(
        &send_text(
            server,
            &token,
            json!({"number": CUSTOMER, "message": "preço: 10"}),
        )
        .await,
    );
    let edit = chat(
        server,
        &token,
        Method::POST,
        "edit",
        json!({"messageId": sent, "message": "preço: 12"}),
    )
    .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.text);
    assert_eq!(edit.body["messageId"], json!(sent));
    let data = found(server, &token, &sent).await;
    assert_eq!(data["content"], json!("preço: 12"));
    assert_eq!(data["edited"], json!(true));
    let entry = outbox(server, &token).await.pop().unwrap();
    assert_eq!(entry["kind"], json!("edit"));
    assert_eq!(entry["targetId"], json!(sent));
    assert_eq!(entry["text"], json!("preço: 12"));

    // The customer's, edited and then deleted on their phone.
    let theirs = inbound(server, &token, json!({"from": CUSTOMER, "text": "rua A"})).await;
    inbound(
        server,
        &token,
        json!({"from": CUSTOMER, "edit": {"targetId": theirs, "text": "rua B"}}),
    )
    .await;
    assert_eq!(
        found(server, &token, &theirs).await["content"],
        json!("rua B")
    );
    // Not ours to edit.
    chat(
        server,
        &token,
        Method::POST,
        "edit",
        json!({"messageId": theirs, "message": "x"}),
    )
    .await
    .assert_error(
        409,
        "Message cannot be edited: only messages sent by this instance can be edited",
    );
    inbound(
        server,
        &token,
        json!({"from": CUSTOMER, "revoke": {"targetId": theirs}}),
    )
    .await;
    let data = found(server, &token, &theirs).await;
    assert_eq!(data["revoked"], json!(true));
    assert_eq!(data["content"], json!(null));

    // Ours, deleted for everyone.
    let delete = chat(
        server,
        &token,
        Method::DELETE,
        "delete",
        json!({"messageId": sent}),
    )
    .await;
    assert_eq!(delete.status, StatusCode::OK, "{}", delete.text);
    assert_eq!(found(server, &token, &sent).await["revoked"], json!(true));
    let entry = outbox(server, &token).await.pop().unwrap();
    assert_eq!(entry["kind"], json!("revoke"));
    assert_eq!(entry["targetId"], json!(sent));

    // Theirs, deleted for me: gone from the store too.
    let other = inbound(server, &token, json!({"from": CUSTOMER, "text": "spam"})).await;
    chat(
        server,
        &token,
        Method::DELETE,
        "delete",
        json!({"messageId": other}),
    )
    .await
    .assert_error(
        409,
        "Message cannot be deleted for everyone: only messages sent by this instance can be",
    );
    let delete = chat(
        server,
        &token,
        Method::DELETE,
        "delete",
        json!({"messageId": other, "forEveryone": false}),
    )
    .await;
    assert_eq!(delete.status, StatusCode::OK, "{}", delete.text);
    let entry = outbox(server, &token).await.pop().unwrap();
    assert_eq!(entry["kind"], json!("deleteForMe"));
    assert_eq!(entry["targetId"], json!(other));
    get_message(server, &token, &other)
        .await
        .assert_error(404, "Message not found");
}

#[tokio::test]
async fn edits_revocations_and_deletes_apply_to_stored_messages() {
    let server = TestServer::start().await;
    edits_revocations_and_deletes_apply(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn base64_downloads_the_media_again_with_its_stored_keys() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let pdf = b"%PDF-1.4 a small document".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let sent = sent_id(
        &server
            .post(
                "/api/message/media/loja",
                Some(&token),
                json!({"number": CUSTOMER, "mediaType": "document", "mediaBase64": b64,
                       "mimeType": "application/pdf", "fileName": "nota.pdf", "message": "sua nota"}),
            )
            .await,
    );
    let data = found(&server, &token, &sent).await;
    assert_eq!(data["type"], json!("document"));
    assert_eq!(data["content"], json!("sua nota"));
    assert_eq!(data["media"]["mimetype"], json!("application/pdf"));
    assert_eq!(data["media"]["fileName"], json!("nota.pdf"));
    assert_eq!(data["media"]["size"], json!(pdf.len()));
    let reply = server
        .get(
            &format!("/api/chat/base64/loja?messageId={sent}"),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["message"],
        json!("Base64 retrieved successfully")
    );
    assert_eq!(reply.body["message_id"], json!(sent));
    assert_eq!(reply.body["mime_type"], json!("application/pdf"));
    assert_eq!(reply.body["media_type"], json!("document"));
    assert_eq!(reply.body["base64"], json!(b64));

    // Media a customer sent.
    let photo = inbound(
        &server,
        &token,
        json!({"from": CUSTOMER, "media": {"type": "image", "mimetype": "image/png", "base64": PNG}}),
    )
    .await;
    let reply = server
        .get(
            &format!("/api/chat/base64/loja?messageId={photo}"),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["base64"], json!(PNG));
    assert_eq!(reply.body["media_type"], json!("image"));

    // A text has none; nothing asked; a phone offline.
    let text = inbound(&server, &token, json!({"from": CUSTOMER, "text": "oi"})).await;
    server
        .get(
            &format!("/api/chat/base64/loja?messageId={text}"),
            Some(&token),
        )
        .await
        .assert_error(404, "Message not found or no media available");
    for route in ["base64", "getMessage", "status"] {
        server
            .get(&format!("/api/chat/{route}/loja"), Some(&token))
            .await
            .assert_error(400, "Message ID is required (use ?messageId=<message-id>)");
    }
    let down = server
        .post("/api/sandbox/loja/disconnect", Some(&token), json!({}))
        .await;
    assert_eq!(down.status, StatusCode::OK, "{}", down.text);
    server
        .get(
            &format!("/api/chat/base64/loja?messageId={sent}"),
            Some(&token),
        )
        .await
        .assert_error(503, "Instance is not connected to WhatsApp");
    // The store itself still answers.
    found(&server, &token, &sent).await;
    server.stop().await;
}

#[tokio::test]
async fn forward_sends_text_and_media_by_their_stored_keys() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let text = inbound(
        &server,
        &token,
        json!({"from": CUSTOMER, "text": "promoção!"}),
    )
    .await;
    let reply = chat(
        &server,
        &token,
        Method::POST,
        "forward",
        json!({"messageId": text, "number": OTHER, "source": "fwd-bot"}),
    )
    .await;
    let forwarded = sent_id(&reply);
    assert_eq!(reply.body["status"], json!("sent"));
    assert_eq!(reply.body["data"]["messageType"], json!("text"));
    assert_eq!(reply.body["data"]["source"], json!("fwd-bot"));
    let entry = outbox(&server, &token).await.pop().unwrap();
    assert_eq!(entry["kind"], json!("forward"));
    assert_eq!(entry["to"], json!(format!("{OTHER}@s.whatsapp.net")));
    assert_eq!(entry["text"], json!("promoção!"));
    assert_eq!(entry["targetId"], json!(text));
    let data = found(&server, &token, &forwarded).await;
    assert_eq!(data["source"], json!("fwd-bot"));
    assert_eq!(data["chat"], json!(format!("{OTHER}@s.whatsapp.net")));

    let photo = inbound(
        &server,
        &token,
        json!({"from": CUSTOMER, "media": {"type": "image", "mimetype": "image/png", "base64": PNG}}),
    )
    .await;
    let reply = chat(
        &server,
        &token,
        Method::POST,
        "forward",
        json!({"messageId": photo, "number": OTHER}),
    )
    .await;
    let forwarded = sent_id(&reply);
    let entry = outbox(&server, &token).await.pop().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    assert_eq!(
        entry["media"]["sha256"],
        json!(hex::encode(Sha256::digest(&png)))
    );
    // The forward's media downloads again like the original's.
    let again = server
        .get(
            &format!("/api/chat/base64/loja?messageId={forwarded}"),
            Some(&token),
        )
        .await;
    assert_eq!(again.body["base64"], json!(PNG), "{}", again.text);

    let place = inbound(
        &server,
        &token,
        json!({"from": CUSTOMER, "location": {"latitude": 1.5, "longitude": 2.5}}),
    )
    .await;
    chat(
        &server,
        &token,
        Method::POST,
        "forward",
        json!({"messageId": place, "number": OTHER}),
    )
    .await
    .assert_error(
        400,
        "location messages cannot be forwarded (only text and media)",
    );
    let unknown = chat(
        &server,
        &token,
        Method::POST,
        "forward",
        json!({"messageId": text, "number": OTHER, "caption": "x"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    assert!(
        unknown
            .error()
            .starts_with("invalid body: caption: unknown field"),
        "{}",
        unknown.text
    );
    server.stop().await;
}

/// With `ignoreGroupMessages` and `ignoreStatus` a group message or a status
/// post (received, or sent through the API) is not stored; the same group
/// is stored again once the setting is off.
async fn ignored_chats_stay_out(server: &TestServer) {
    let (_, account) = server.create_account("quiet", 5).await;
    let token = server.create_instance(&account, "calada").await;
    server.pair(&token, "calada", "5511900003333").await;
    let set = |body: Value| {
        let token = token.clone();
        async move {
            let reply = server
                .post("/api/instance/settings/calada", Some(&token), body)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
    };
    let inbound = |body: Value| {
        let token = token.clone();
        async move {
            let reply = server
                .post("/api/sandbox/calada/inbound", Some(&token), body)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.body["id"].as_str().unwrap().to_owned()
        }
    };
    let stored = |id: String| {
        let token = token.clone();
        async move {
            let reply = server
                .get(
                    &format!("/api/chat/getMessage/calada?messageId={id}"),
                    Some(&token),
                )
                .await;
            match reply.status {
                StatusCode::OK => true,
                _ => {
                    reply.assert_error(404, "Message not found");
                    false
                }
            }
        }
    };
    let group = json!({"jid": "120363041234567890@g.us", "subject": "Loja"});
    set(json!({"ignoreGroupMessages": true, "ignoreStatus": true})).await;
    let in_group = inbound(json!({"from": CUSTOMER, "text": "Bom dia", "group": group})).await;
    let post = inbound(json!({"from": CUSTOMER, "text": "Promo!", "statusPost": true})).await;
    let in_dm = inbound(json!({"from": CUSTOMER, "text": "Oi"})).await;
    let sent = server
        .post(
            "/api/message/text/calada",
            Some(&token),
            json!({"number": "120363041234567890@g.us", "message": "Olá, grupo"}),
        )
        .await;
    let sent = sent_id(&sent);
    // A receipt for the unstored message does not create it.
    let receipt = server
        .post(
            "/api/sandbox/calada/receipt",
            Some(&token),
            json!({"id": sent, "status": "read"}),
        )
        .await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.text);
    assert!(
        !stored(in_group).await,
        "an ignored group message is not stored"
    );
    assert!(!stored(post).await, "an ignored status post is not stored");
    assert!(
        !stored(sent).await,
        "a send to an ignored group is not stored"
    );
    assert!(stored(in_dm).await, "other chats still are");

    set(json!({"ignoreGroupMessages": false, "ignoreStatus": false})).await;
    let in_group = inbound(json!({"from": CUSTOMER, "text": "Boa tarde", "group": group})).await;
    let post = inbound(json!({"from": CUSTOMER, "text": "Promo 2", "statusPost": true})).await;
    assert!(stored(in_group).await, "stored once groups are not ignored");
    assert!(
        stored(post).await,
        "stored once status posts are not ignored"
    );
}

#[tokio::test]
async fn ignored_chats_are_not_stored() {
    let server = TestServer::start().await;
    ignored_chats_stay_out(&server).await;
    server.stop().await;
}

/// Votes on a poll the instance sent arrive (decrypted by the provider),
/// are kept per voter (the latest counts; none withdraws) and `chat/poll`
/// tallies them per option.
async fn poll_votes_are_kept_and_tallied(server: &TestServer) {
    let (_, account) = server.create_account("polls", 5).await;
    let token = server.create_instance(&account, "loja").await;
    server.pair(&token, "loja", "5511900004444").await;
    let sent = server
        .post(
            "/api/message/poll/loja",
            Some(&token),
            json!({"number": CUSTOMER, "question": "Entrega?", "options": ["Sim", "Não", "Talvez"],
                   "maxAnswer": 2}),
        )
        .await;
    let poll = sent_id(&sent);
    let tally = |expected: Value| {
        let token = token.clone();
        let poll = poll.clone();
        async move {
            let reply = server
                .get(
                    &format!("/api/chat/poll/loja?messageId={poll}"),
                    Some(&token),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            assert_eq!(reply.body["success"], json!(true));
            assert_eq!(reply.body["messageId"], json!(poll));
            assert_eq!(reply.body["poll"], expected, "{}", reply.text);
        }
    };
    let vote = |from: &'static str, options: Value| {
        let token = token.clone();
        let poll = poll.clone();
        async move {
            server
                .post(
                    "/api/sandbox/loja/pollVote",
                    Some(&token),
                    json!({"pollId": poll, "from": from, "options": options}),
                )
                .await
        }
    };
    let option = |name: &str, voters: &[&str]| {
        let voters: Vec<String> = voters
            .iter()
            .map(|v| format!("{v}@s.whatsapp.net"))
            .collect();
        json!({"name": name, "votes": voters.len(), "voters": voters})
    };
    tally(json!({"question": "Entrega?", "totalVoters": 0,
                 "options": [option("Sim", &[]), option("Não", &[]), option("Talvez", &[])]}))
    .await;

    for (from, options) in [
        (CUSTOMER, json!(["Sim"])),
        (OTHER, json!(["Sim", "Talvez"])),
        // A later vote replaces the earlier one.
        (CUSTOMER, json!(["Não"])),
    ] {
        let reply = vote(from, options).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    tally(json!({"question": "Entrega?", "totalVoters": 2,
                 "options": [option("Sim", &[OTHER]), option("Não", &[CUSTOMER]),
                             option("Talvez", &[OTHER])]}))
    .await;
    // Withdrawn: counts for nothing.
    let reply = vote(OTHER, json!([])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    tally(json!({"question": "Entrega?", "totalVoters": 1,
                 "options": [option("Sim", &[]), option("Não", &[CUSTOMER]), option("Talvez", &[])]}))
    .await;

    // The sandbox phone offers only the poll's options, as many as allowed.
    vote(CUSTOMER, json!(["Nunca"]))
        .await
        .assert_error(400, "invalid body: Nunca is not an option of the poll");
    vote(CUSTOMER, json!(["Sim", "Não", "Talvez"]))
        .await
        .assert_error(400, "invalid body: the poll allows at most 2 options");

    // The route's refusals.
    server
        .get("/api/chat/poll/loja", Some(&token))
        .await
        .assert_error(400, "Message ID is required (use ?messageId=<message-id>)");
    server
        .get(
            "/api/chat/poll/loja?messageId=3A0000000000000000",
            Some(&token),
        )
        .await
        .assert_error(404, "Message not found");
    let text =
        sent_id(&send_text(server, &token, json!({"number": CUSTOMER, "message": "oi"})).await);
    server
        .get(
            &format!("/api/chat/poll/loja?messageId={text}"),
            Some(&token),
        )
        .await
        .assert_error(409, "Message is not a poll");
}

#[tokio::test]
async fn poll_votes_are_tallied_per_option() {
    let server = TestServer::start().await;
    poll_votes_are_kept_and_tallied(&server).await;
    server.stop().await;
}
