//! The send module's kinds beyond text and media (issue 15): sticker,
//! location, contact, reaction, poll and event through the real HTTP API
//! and the sandbox phone, the kinds answered 501, field-naming 400s, and
//! `Idempotency-Key` on both backends.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Env, Reply, TestServer};

const CUSTOMER: &str = "5511977776666";
const GROUP: &str = "120363041234567890@g.us";
/// A 1 x 1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// An account with the paired instance `loja`; returns its TokenInstance.
pub(crate) async fn paired(server: &TestServer) -> String {
    let (_, account) = server.create_account("acme", 5).await;
    let token = server.create_instance(&account, "loja").await;
    server.pair(&token, "loja", "5511900001111").await;
    token
}

pub(crate) async fn send(server: &TestServer, token: &str, kind: &str, body: Value) -> Reply {
    server
        .post(&format!("/api/message/{kind}/loja"), Some(token), body)
        .await
}

/// Checks the answer's shape; returns the message id.
pub(crate) fn sent(reply: &Reply, kind: &str) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["status"], json!("sent"));
    assert_eq!(reply.body["data"]["messageType"], json!(kind));
    assert_eq!(reply.body["data"]["direction"], json!("outgoing"));
    let id = reply.body["data"]["messageId"].as_str().unwrap().to_owned();
    assert_eq!(reply.body["messageId"], json!(id));
    id
}

pub(crate) async fn outbox(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = server.get("/api/sandbox/loja/outbox", Some(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["messages"].as_array().unwrap().clone()
}

pub(crate) async fn last_sent(server: &TestServer, token: &str, id: &str) -> Value {
    let all = outbox(server, token).await;
    all.into_iter()
        .find(|m| m["id"] == json!(id))
        .expect("the message is in the outbox")
}

#[tokio::test]
async fn a_location_goes_out_with_its_place_and_reply() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    // The message replied to is one the customer sent (replyTo is checked).
    let quoted = server
        .post(
            "/api/sandbox/loja/inbound",
            Some(&token),
            json!({"id": "3A5B9C2D1E0F4A6B8C7D", "from": CUSTOMER, "text": "onde fica?"}),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.text);
    let reply = send(
        &server,
        &token,
        "location",
        json!({"number": CUSTOMER, "latitude": -23.561414, "longitude": -46.655881,
               "name": "MASP", "address": "Av. Paulista, 1578", "replyTo": "3A5B9C2D1E0F4A6B8C7D",
               "source": "agent-7"}),
    )
    .await;
    let id = sent(&reply, "location");
    assert_eq!(
        reply.body["data"]["chat"],
        json!(format!("{CUSTOMER}@s.whatsapp.net"))
    );
    assert_eq!(reply.body["data"]["replyTo"], json!("3A5B9C2D1E0F4A6B8C7D"));
    assert_eq!(reply.body["data"]["source"], json!("agent-7"));
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("location"));
    assert_eq!(entry["to"], json!(format!("{CUSTOMER}@s.whatsapp.net")));
    assert_eq!(entry["quotedId"], json!("3A5B9C2D1E0F4A6B8C7D"));
    assert_eq!(
        entry["location"],
        json!({"latitude": -23.561414, "longitude": -46.655881, "name": "MASP", "address": "Av. Paulista, 1578"})
    );
}

#[tokio::test]
async fn bad_locations_name_the_field() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let cases = [
        (
            json!({"latitude": 91, "longitude": 0}),
            "invalid body: latitude must be between -90 and 90",
        ),
        (
            json!({"latitude": 10, "longitude": -180.5}),
            "invalid body: longitude must be between -180 and 180",
        ),
        (
            json!({"latitude": 0, "longitude": 0}),
            "invalid body: latitude and longitude (0,0) is not a place",
        ),
        (
            json!({"longitude": 10}),
            "invalid body: latitude is required",
        ),
        (
            json!({"latitude": 1, "longitude": 2, "zoom": 3}),
            "invalid body: zoom: unknown field `zoom`, expected one of `latitude`, `longitude`, `name`, `address`",
        ),
    ];
    for (mut body, message) in cases {
        body["number"] = json!(CUSTOMER);
        send(&server, &token, "location", body)
            .await
            .assert_error(400, message);
    }
    let reply = send(
        &server,
        &token,
        "location",
        json!({"number": CUSTOMER, "latitude": "north", "longitude": 1}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .starts_with("invalid body: latitude: invalid type"),
        "{}",
        reply.text
    );
    send(
        &server,
        &token,
        "location",
        json!({"latitude": 1, "longitude": 2}),
    )
    .await
    .assert_error(400, "number is required");
    assert!(outbox(&server, &token).await.is_empty());
}

#[tokio::test]
async fn contact_cards_become_vcards() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let reply = send(
        &server,
        &token,
        "contact",
        json!({"number": CUSTOMER, "vcard": [
            {"fullName": "Ana Souza", "phone": "+55 11 98888-7777", "organization": "Padaria Central",
             "email": "ana@example.com", "url": "https://example.com/ana"},
            {"fullName": "Bruno", "phone": "5521998765432"}
        ]}),
    )
    .await;
    let id = sent(&reply, "contact");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("contact"));
    let vcards = entry["vcards"].as_array().unwrap();
    assert_eq!(vcards.len(), 2);
    assert_eq!(
        vcards[0],
        json!(
            "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Souza\nORG:Padaria Central\nTEL;type=CELL;type=VOICE;waid=5511988887777:+55 11 98888-7777\nEMAIL:ana@example.com\nURL:https://example.com/ana\nEND:VCARD"
        )
    );
    assert!(
        vcards[1]
            .as_str()
            .unwrap()
            .contains("waid=5521998765432:5521998765432")
    );

    send(
        &server,
        &token,
        "contact",
        json!({"number": CUSTOMER, "vcard": []}),
    )
    .await
    .assert_error(400, "invalid body: vcard must hold 1 to 100 contacts");
    send(
        &server,
        &token,
        "contact",
        json!({"number": CUSTOMER, "vcard": [{"fullName": "X", "phone": "abc"}]}),
    )
    .await
    .assert_error(
        400,
        "invalid body: vcard[0].phone must be a phone number in international format",
    );
    send(&server, &token, "contact", json!({"number": CUSTOMER, "vcard": [{"fullName": "X", "phone": "5511988887777", "url": "http://x.test"}]}))
        .await
        .assert_error(400, "invalid body: vcard[0].url must be an https URL");
    send(
        &server,
        &token,
        "contact",
        json!({"number": CUSTOMER, "vcard": [{"phone": "5511988887777"}]}),
    )
    .await
    .assert_error(400, "invalid body: vcard[0].fullName is required");
}

#[tokio::test]
async fn reactions_name_their_target_and_remove_with_remove() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let reply = send(
        &server,
        &token,
        "reaction",
        json!({"number": CUSTOMER, "messageId": "3A5B9C2D1E0F4A6B8C7D", "reaction": "👍"}),
    )
    .await;
    let id = sent(&reply, "reaction");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("reaction"));
    assert_eq!(entry["text"], json!("👍"));
    assert_eq!(entry["targetId"], json!("3A5B9C2D1E0F4A6B8C7D"));
    assert_eq!(entry["fromMe"], json!(false));

    let reply = send(&server, &token, "reaction",
        json!({"number": GROUP, "messageId": "3A11", "reaction": "remove", "participant": "5521998765432@s.whatsapp.net"})).await;
    let id = sent(&reply, "reaction");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["text"], json!(""));
    assert_eq!(entry["participant"], json!("5521998765432@s.whatsapp.net"));

    let reply = send(
        &server,
        &token,
        "reaction",
        json!({"number": GROUP, "messageId": "3EB0AA", "reaction": "❤️", "fromMe": true}),
    )
    .await;
    let id = sent(&reply, "reaction");
    assert_eq!(last_sent(&server, &token, &id).await["fromMe"], json!(true));

    send(
        &server,
        &token,
        "reaction",
        json!({"number": GROUP, "messageId": "3A11", "reaction": "👍"}),
    )
    .await
    .assert_error(
        400,
        "invalid body: participant is required in a group unless fromMe is true",
    );
    send(&server, &token, "reaction", json!({"number": CUSTOMER, "messageId": "3A11", "reaction": "👍", "participant": "5521998765432"}))
        .await
        .assert_error(400, "invalid body: participant is only for group chats");
    send(
        &server,
        &token,
        "reaction",
        json!({"number": CUSTOMER, "messageId": "3A11", "reaction": " "}),
    )
    .await
    .assert_error(400, "invalid body: reaction is required");
    // Reactions take no replyTo (nor delay), as in RyzeAPI.
    let reply = send(
        &server,
        &token,
        "reaction",
        json!({"number": CUSTOMER, "messageId": "3A11", "reaction": "👍", "replyTo": "x"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .starts_with("invalid body: replyTo: unknown field `replyTo`"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn polls_carry_their_options_and_choice_count() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let reply = send(&server, &token, "poll",
        json!({"number": CUSTOMER, "question": "Qual sabor?", "options": ["Chocolate", "Morango", "Creme"], "maxAnswer": 2})).await;
    let id = sent(&reply, "poll");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("poll"));
    assert_eq!(
        entry["poll"],
        json!({"question": "Qual sabor?", "options": ["Chocolate", "Morango", "Creme"], "selectable": 2})
    );
    let reply = send(
        &server,
        &token,
        "poll",
        json!({"number": CUSTOMER, "question": "Confirma?", "options": ["Sim", "Não"]}),
    )
    .await;
    let id = sent(&reply, "poll");
    assert_eq!(
        last_sent(&server, &token, &id).await["poll"]["selectable"],
        json!(1)
    );

    let cases = [
        (
            json!({"question": "Q", "options": ["Só"]}),
            "invalid body: options must hold 2 to 12 options",
        ),
        (
            json!({"question": "Q", "options": ["a","b","c","d","e","f","g","h","i","j","k","l","m"]}),
            "invalid body: options must hold 2 to 12 options",
        ),
        (
            json!({"question": "Q", "options": ["Sim", "Sim"]}),
            "invalid body: options[1] repeats another option",
        ),
        (
            json!({"question": "Q", "options": ["Sim", ""]}),
            "invalid body: options[1] is required",
        ),
        (
            json!({"question": "Q", "options": ["Sim", "Não"], "maxAnswer": 3}),
            "invalid body: maxAnswer must be between 1 and 2 (the number of options)",
        ),
        (
            json!({"question": "Q", "options": ["Sim", "Não"], "maxAnswer": 0}),
            "invalid body: maxAnswer must be between 1 and 2 (the number of options)",
        ),
        (
            json!({"options": ["Sim", "Não"]}),
            "invalid body: question is required",
        ),
    ];
    for (mut body, message) in cases {
        body["number"] = json!(CUSTOMER);
        send(&server, &token, "poll", body)
            .await
            .assert_error(400, message);
    }
}

#[tokio::test]
async fn events_carry_their_times_and_place() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let reply = send(&server, &token, "event", json!({
        "number": CUSTOMER, "name": "Inauguração", "startAt": "2027-01-01T10:00:00-03:00",
        "endAt": "2027-01-01T12:00:00-03:00", "description": "Venha!",
        "location": {"name": "MASP", "latitude": -23.56, "longitude": -46.65},
        "joinLink": "https://call.whatsapp.com/video/abc", "hasReminder": true, "reminderOffsetSec": 3600,
        "extraGuestsAllowed": true
    })).await;
    let id = sent(&reply, "event");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("event"));
    let event = &entry["event"];
    assert_eq!(event["name"], json!("Inauguração"));
    assert_eq!(event["start"], json!(1_798_808_400));
    assert_eq!(event["end"], json!(1_798_815_600));
    assert_eq!(event["location"]["name"], json!("MASP"));
    assert_eq!(
        event["joinLink"],
        json!("https://call.whatsapp.com/video/abc")
    );
    assert_eq!(event["reminderOffsetSecs"], json!(3600));
    assert_eq!(event["extraGuestsAllowed"], json!(true));
    assert_eq!(event["canceled"], json!(false));

    let cases = [
        (
            json!({"name": "E", "startAt": "2027-01-01T10:00:00"}),
            "invalid body: startAt must be an ISO 8601 date and time with a zone",
        ),
        (json!({"name": "E"}), "invalid body: startAt is required"),
        (
            json!({"name": "E", "startAt": "2027-01-01T10:00:00Z", "endAt": "2027-01-01T09:00:00Z"}),
            "invalid body: endAt must be later than startAt",
        ),
        (
            json!({"name": "E", "startAt": "2027-01-01T10:00:00Z", "joinLink": "ftp://x"}),
            "invalid body: joinLink must be an https URL",
        ),
        (
            json!({"name": "E", "startAt": "2027-01-01T10:00:00Z", "location": {"latitude": 100, "longitude": 0}}),
            "invalid body: location.latitude must be between -90 and 90",
        ),
        (
            json!({"name": "E", "startAt": "2027-01-01T10:00:00Z", "reminderOffsetSec": 60}),
            "invalid body: reminderOffsetSec needs hasReminder true",
        ),
    ];
    for (mut body, message) in cases {
        body["number"] = json!(CUSTOMER);
        send(&server, &token, "event", body)
            .await
            .assert_error(400, message);
    }
}

#[tokio::test]
async fn stickers_are_webp_converted_from_png_or_sent_as_they_are() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let reply = send(
        &server,
        &token,
        "sticker",
        json!({"number": CUSTOMER, "imageUrl": format!("data:image/png;base64,{PNG}")}),
    )
    .await;
    let id = sent(&reply, "sticker");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["kind"], json!("media"));
    assert_eq!(entry["media"]["kind"], json!("sticker"));
    assert_eq!(entry["media"]["mimetype"], json!("image/webp"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    assert_ne!(
        entry["media"]["sha256"],
        json!(hex::encode(Sha256::digest(&png)))
    );

    // A WebP goes as it is, byte for byte.
    let webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00";
    let encoded = base64::engine::general_purpose::STANDARD.encode(webp);
    let reply = send(
        &server,
        &token,
        "sticker",
        json!({"number": CUSTOMER, "imageUrl": format!("data:image/webp;base64,{encoded}")}),
    )
    .await;
    let id = sent(&reply, "sticker");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(
        entry["media"]["sha256"],
        json!(hex::encode(Sha256::digest(webp)))
    );

    let gif = base64::engine::general_purpose::STANDARD.encode(b"GIF89a\x01\x00\x01\x00");
    send(
        &server,
        &token,
        "sticker",
        json!({"number": CUSTOMER, "imageUrl": format!("data:image/gif;base64,{gif}")}),
    )
    .await
    .assert_error(
        400,
        "invalid body: imageUrl must be a WebP, PNG or JPEG image",
    );
    send(
        &server,
        &token,
        "sticker",
        json!({"number": CUSTOMER, "imageUrl": "http://example.com/a.png"}),
    )
    .await
    .assert_error(400, "invalid body: imageUrl must be an https URL");
    send(&server, &token, "sticker", json!({"number": CUSTOMER}))
        .await
        .assert_error(400, "invalid body: imageUrl is required");
}

#[tokio::test]
async fn kinds_a_linked_device_cannot_send_are_501_never_a_fake_success() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    for kind in ["button", "list", "carousel", "form", "pix"] {
        send(
            &server,
            &token,
            kind,
            json!({"number": CUSTOMER, "contentText": "x"}),
        )
        .await
        .assert_error(
            501,
            &format!("{kind} messages are not supported by this server"),
        );
    }
    assert!(outbox(&server, &token).await.is_empty());
}

#[tokio::test]
async fn sends_of_every_kind_refuse_a_disconnected_instance() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 5).await;
    let token = server.create_instance(&account, "loja").await;
    send(
        &server,
        &token,
        "poll",
        json!({"number": CUSTOMER, "question": "Q", "options": ["a", "b"]}),
    )
    .await
    .assert_error(503, "Instance is not connected to WhatsApp");
}

#[tokio::test]
async fn the_event_layer_reports_each_kind_as_an_outgoing_message_exchange() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let ws = server
        .post(
            "/api/events/websocket/loja",
            Some(&token),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(ws.status, StatusCode::OK, "{}", ws.text);
    let location = sent(
        &send(
            &server,
            &token,
            "location",
            json!({"number": CUSTOMER, "latitude": 1.5, "longitude": 2.5, "name": "Aqui"}),
        )
        .await,
        "location",
    );
    let poll = sent(
        &send(
            &server,
            &token,
            "poll",
            json!({"number": CUSTOMER, "question": "Q?", "options": ["a", "b"]}),
        )
        .await,
        "poll",
    );
    let event = sent(
        &send(
            &server,
            &token,
            "event",
            json!({"number": CUSTOMER, "name": "Festa", "startAt": "2027-01-01T10:00:00Z"}),
        )
        .await,
        "event",
    );
    let contact = sent(
        &send(
            &server,
            &token,
            "contact",
            json!({"number": CUSTOMER, "vcard": [{"fullName": "Ana", "phone": "5511988887777"}]}),
        )
        .await,
        "contact",
    );

    let mut events = Vec::new();
    for _ in 0..50 {
        let log = server
            .get("/api/events/log/loja?after=0", Some(&token))
            .await;
        events = log.body["events"].as_array().cloned().unwrap_or_default();
        if events
            .iter()
            .filter(|e| e["event"] == json!("message.exchange"))
            .count()
            >= 4
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message = |id: &str| {
        events
            .iter()
            .find(|e| e["event"] == json!("message.exchange") && e["data"]["id"] == json!(id))
            .unwrap_or_else(|| panic!("no message.exchange for {id}: {events:?}"))["data"]["message"]
            .clone()
    };
    let m = message(&location);
    assert_eq!(m["type"], json!("location"));
    assert_eq!(m["direction"], json!("outgoing"));
    assert_eq!(
        m["location"],
        json!({"latitude": 1.5, "longitude": 2.5, "address": "Aqui"})
    );
    let m = message(&poll);
    assert_eq!(m["type"], json!("poll"));
    assert_eq!(
        m["poll"],
        json!({"title": "Q?", "options": [{"name": "a"}, {"name": "b"}]})
    );
    let m = message(&event);
    assert_eq!(m["type"], json!("event"));
    assert_eq!(
        m["event"],
        json!({"name": "Festa", "startAt": "2027-01-01T10:00:00Z"})
    );
    let m = message(&contact);
    assert_eq!(m["type"], json!("contact"));
    assert_eq!(m["contact"]["display_name"], json!("Ana"));
}

#[tokio::test]
async fn a_delay_shows_typing_or_recording_first() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let started = std::time::Instant::now();
    let reply = send(
        &server,
        &token,
        "poll",
        json!({"number": CUSTOMER, "question": "Q?", "options": ["a", "b"], "delay": 1}),
    )
    .await;
    sent(&reply, "poll");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let text = send(
        &server,
        &token,
        "text",
        json!({"number": GROUP, "message": "oi", "delay": 1}),
    )
    .await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text);
    let audio = send(
        &server,
        &token,
        "media",
        json!({"number": CUSTOMER, "mediaType": "audio", "mediaBase64": "T2dnUw==", "delay": 1}),
    )
    .await;
    assert_eq!(audio.status, StatusCode::OK, "{}", audio.text);
    let none = send(
        &server,
        &token,
        "text",
        json!({"number": CUSTOMER, "message": "já", "delay": 0}),
    )
    .await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.text);

    let reply = server.get("/api/sandbox/loja/outbox", Some(&token)).await;
    let shown: Vec<(String, String)> = reply.body["chatPresence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["chat"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let customer = format!("{CUSTOMER}@s.whatsapp.net");
    assert_eq!(
        shown,
        [
            (customer.clone(), "typing".to_owned()),
            (GROUP.to_owned(), "typing".to_owned()),
            (customer, "recording".to_owned()),
        ]
    );
    for (kind, body) in [
        (
            "location",
            json!({"number": CUSTOMER, "latitude": 1, "longitude": 1, "delay": 31}),
        ),
        (
            "text",
            json!({"number": CUSTOMER, "message": "x", "delay": 31}),
        ),
    ] {
        send(&server, &token, kind, body)
            .await
            .assert_error(400, "invalid body: delay must be between 0 and 30 seconds");
    }
}

pub(crate) async fn keyed(
    server: &TestServer,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Reply {
    let response = server
        .client
        .post(server.url(path))
        .header("token", token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers: Default::default(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// The same key sends once and answers the first answer again; another
/// body under it is a 409; another key sends anew; a failed send frees
/// its key.
async fn idempotency_keys_send_at_most_once(server: TestServer) {
    let token = paired(&server).await;
    let body = json!({"number": CUSTOMER, "message": "Pedido 42 confirmado"});
    let first = keyed(&server, &token, "/api/message/text/loja", "order-42", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let id = first.body["data"]["messageId"].as_str().unwrap().to_owned();
    let again = keyed(&server, &token, "/api/message/text/loja", "order-42", &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, first.body);
    assert_eq!(outbox(&server, &token).await.len(), 1);

    let other = json!({"number": CUSTOMER, "message": "Pedido 43 confirmado"});
    keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "order-42",
        &other,
    )
    .await
    .assert_error(
        409,
        "Idempotency-Key was already used with a different request",
    );
    // Same body, another route: a different request too.
    keyed(&server, &token, "/api/message/poll/loja", "order-42", &body)
        .await
        .assert_error(
            409,
            "Idempotency-Key was already used with a different request",
        );

    let next = keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "order-43",
        &other,
    )
    .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    assert_ne!(next.body["data"]["messageId"], json!(id));
    assert_eq!(outbox(&server, &token).await.len(), 2);

    // Every kind honours keys.
    let poll = json!({"number": CUSTOMER, "question": "Q?", "options": ["a", "b"]});
    let p1 = keyed(&server, &token, "/api/message/poll/loja", "poll-1", &poll).await;
    let p2 = keyed(&server, &token, "/api/message/poll/loja", "poll-1", &poll).await;
    assert_eq!(p1.status, StatusCode::OK, "{}", p1.text);
    assert_eq!(p1.body, p2.body);
    assert_eq!(outbox(&server, &token).await.len(), 3);

    // A refused request leaves its key free for a corrected one.
    let bad = json!({"number": CUSTOMER});
    keyed(&server, &token, "/api/message/text/loja", "order-44", &bad)
        .await
        .assert_error(400, "message is required");
    let fixed = json!({"number": CUSTOMER, "message": "ok"});
    let reply = keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "order-44",
        &fixed,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // A failed send frees it too, and the retry goes out under the same id.
    let fault = server
        .post(
            "/api/sandbox/loja/faults",
            Some(&token),
            json!({"send": "error", "times": 1}),
        )
        .await;
    assert_eq!(fault.status, StatusCode::OK, "{}", fault.text);
    let flaky = json!({"number": CUSTOMER, "message": "retry me"});
    let failed = keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "order-45",
        &flaky,
    )
    .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
    let retried = keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "order-45",
        &flaky,
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);

    keyed(
        &server,
        &token,
        "/api/message/text/loja",
        "has space",
        &fixed,
    )
    .await
    .assert_error(
        400,
        "Invalid Idempotency-Key: 1 to 255 visible ASCII characters",
    );

    // Keys are per instance: another account's instance is simply not found.
    let (_, other_account) = server.create_account("other", 5).await;
    keyed(
        &server,
        &other_account,
        "/api/message/text/loja",
        "order-42",
        &body,
    )
    .await
    .assert_error(404, "Instance not found");
    server.stop().await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(TestServer::start_with(Env::default()).await).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(server) = TestServer::start_postgres(Env::default()).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(idempotency_keys_send_at_most_once);

#[tokio::test]
async fn the_openapi_document_lists_every_send_kind_and_the_idempotency_key() {
    let server = TestServer::start().await;
    let reply = server.get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let paths = &reply.body["paths"];
    for kind in [
        "text", "media", "sticker", "location", "contact", "reaction", "poll", "event", "button",
        "list", "carousel", "form", "pix", "status",
    ] {
        let post = &paths[format!("/api/message/{kind}/{{instance}}")]["post"];
        assert!(post.is_object(), "{kind} missing");
    }
    for kind in ["text", "location"] {
        let params = paths[format!("/api/message/{kind}/{{instance}}")]["post"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == json!("Idempotency-Key") && p["in"] == json!("header")),
            "{kind}: {params:?}"
        );
    }
    let poll = &paths["/api/message/poll/{instance}"]["post"]["responses"];
    assert!(poll["409"].is_object());
    let pix = &paths["/api/message/pix/{instance}"]["post"]["responses"];
    assert!(pix["501"].is_object());
    let status = &paths["/api/message/status/{instance}"]["post"];
    assert!(status["responses"]["200"].is_object());
    assert!(status["responses"]["501"].is_null());
    let body = &status["requestBody"]["content"]["application/json"]["schema"];
    // The fields' body comes first; rules across fields follow it.
    let body = body["allOf"].get(0).unwrap_or(body);
    let body = if let Some(reference) = body["$ref"].as_str() {
        &reply.body["components"]["schemas"][reference.rsplit('/').next().unwrap()]
    } else {
        body
    };
    for field in [
        "type",
        "message",
        "mediaUrl",
        "backgroundColor",
        "font",
        "source",
    ] {
        assert!(
            body["properties"][field].is_object(),
            "status body lacks {field}: {body}"
        );
    }
    assert!(body["properties"]["number"].is_null(), "{body}");
}

/// A group the instance `loja` created with two customers; its jid.
async fn group_with_customers(server: &TestServer, token: &str) -> String {
    let reply = server
        .post(
            "/api/group/create/loja",
            Some(token),
            json!({"name": "Clientes", "participants": [CUSTOMER, "5511955554444"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["group"]["groupJid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn mentions_and_private_replies_reach_the_phone() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let group = group_with_customers(&server, &token).await;
    let customer = format!("{CUSTOMER}@s.whatsapp.net");

    // Named mentions, a phone as typed and a LID, on text, media and a kind.
    let reply = send(
        &server,
        &token,
        "text",
        json!({"number": group, "message": "@5511977776666 chegou!", "linkPreview": false,
               "mention": ["+55 11 97777-6666", "203571934891234@lid", CUSTOMER]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.body["data"]["messageId"].as_str().unwrap().to_owned();
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["to"], json!(group));
    assert_eq!(
        entry["mentions"],
        json!([customer, "203571934891234@lid"]),
        "deduplicated, in order"
    );
    let media = send(
        &server,
        &token,
        "media",
        json!({"number": group, "mediaType": "image", "mediaBase64": PNG,
               "message": "@5511977776666", "mention": [CUSTOMER]}),
    )
    .await;
    let id = sent(&media, "image");
    assert_eq!(
        last_sent(&server, &token, &id).await["mentions"],
        json!([customer])
    );
    let poll = send(
        &server,
        &token,
        "poll",
        json!({"number": group, "question": "Entrega?", "options": ["sim", "não"],
               "mention": [CUSTOMER]}),
    )
    .await;
    let id = sent(&poll, "poll");
    assert_eq!(
        last_sent(&server, &token, &id).await["mentions"],
        json!([customer])
    );

    // mentionAll names every member as WhatsApp lists them now.
    let all = send(
        &server,
        &token,
        "text",
        json!({"number": group, "message": "Atenção, todos", "mentionAll": true}),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let id = all.body["data"]["messageId"].as_str().unwrap().to_owned();
    let mut mentioned: Vec<String> = last_sent(&server, &token, &id).await["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    mentioned.sort();
    assert_eq!(
        mentioned,
        [
            "5511900001111@s.whatsapp.net",
            "5511955554444@s.whatsapp.net",
            "5511977776666@s.whatsapp.net"
        ]
    );

    // A private reply: to the author of a group message, quoting it, with
    // the group named; the answer and the store show the private chat.
    let asked = server
        .post(
            "/api/sandbox/loja/inbound",
            Some(&token),
            json!({"from": CUSTOMER, "text": "qual o meu saldo?",
                   "group": {"jid": group, "subject": "Clientes"}}),
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    let asked = asked.body["id"].as_str().unwrap().to_owned();
    let private = send(
        &server,
        &token,
        "text",
        json!({"number": group, "message": "Te respondo aqui", "replyTo": asked,
               "replyPrivate": true}),
    )
    .await;
    assert_eq!(private.status, StatusCode::OK, "{}", private.text);
    assert_eq!(private.body["data"]["chat"], json!(customer));
    assert_eq!(private.body["data"]["replyTo"], json!(asked));
    let id = private.body["data"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(entry["to"], json!(customer));
    assert_eq!(entry["quotedId"], json!(asked));
    assert_eq!(entry["quotedChat"], json!(group));
    assert!(entry.get("mentions").is_none(), "{entry}");
    let stored = server
        .get(
            &format!("/api/chat/getMessage/loja?messageId={id}"),
            Some(&token),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.body["data"]["chat"], json!(customer));
    assert_eq!(stored.body["data"]["isGroup"], json!(false));

    // The structured kinds take it too.
    let location = send(
        &server,
        &token,
        "location",
        json!({"number": group, "latitude": -23.5, "longitude": -46.6, "replyTo": asked,
               "replyPrivate": true}),
    )
    .await;
    let id = sent(&location, "location");
    let entry = last_sent(&server, &token, &id).await;
    assert_eq!(
        (&entry["to"], &entry["quotedChat"]),
        (&json!(customer), &json!(group))
    );
    server.stop().await;
}

#[tokio::test]
async fn mention_and_reply_private_are_refused_where_they_cannot_apply() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let group = group_with_customers(&server, &token).await;
    let in_dm = server
        .post(
            "/api/sandbox/loja/inbound",
            Some(&token),
            json!({"from": CUSTOMER, "text": "oi"}),
        )
        .await;
    let in_dm = in_dm.body["id"].as_str().unwrap().to_owned();
    let own = send(
        &server,
        &token,
        "text",
        json!({"number": group, "message": "bom dia"}),
    )
    .await;
    let own = own.body["data"]["messageId"].as_str().unwrap().to_owned();
    let sent_before = outbox(&server, &token).await.len();
    let eleven: Vec<String> = (0..11).map(|i| format!("55119777766{i:02}")).collect();
    let cases = [
        (
            "text",
            json!({"number": CUSTOMER, "message": "oi", "mention": [CUSTOMER]}),
            400,
            "invalid body: mention is only for group chats",
        ),
        (
            "text",
            json!({"number": CUSTOMER, "message": "oi", "mentionAll": true}),
            400,
            "invalid body: mentionAll is only for group chats",
        ),
        (
            "media",
            json!({"number": CUSTOMER, "mediaType": "image", "mediaBase64": PNG, "mention": [CUSTOMER]}),
            400,
            "invalid body: mention is only for group chats",
        ),
        (
            "poll",
            json!({"number": CUSTOMER, "question": "?", "options": ["a", "b"], "mentionAll": true}),
            400,
            "invalid body: mentionAll is only for group chats",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "mention": eleven}),
            400,
            "invalid body: mention must hold at most 10 numbers",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "mention": [group]}),
            400,
            "invalid body: mention[0] must be a phone number or a LID",
        ),
        (
            "location",
            json!({"number": group, "latitude": 1.5, "longitude": 2.5, "mention": ["  "]}),
            400,
            "invalid body: mention[0] is required",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "replyPrivate": true}),
            400,
            "invalid body: replyPrivate needs replyTo (the group message answered)",
        ),
        (
            "text",
            json!({"number": CUSTOMER, "message": "oi", "replyTo": in_dm, "replyPrivate": true}),
            400,
            "invalid body: replyPrivate needs number to be the group of replyTo",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "replyTo": in_dm, "replyPrivate": true,
                   "mention": [CUSTOMER]}),
            400,
            "invalid body: mention and mentionAll are only for group chats (a private reply goes to one person)",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "replyTo": "3A0000000000000000", "replyPrivate": true}),
            404,
            "Message not found",
        ),
        (
            "contact",
            json!({"number": group, "vcard": [{"fullName": "Ana", "phone": "+5511988887777"}],
                   "replyTo": "3A0000000000000000", "replyPrivate": true}),
            404,
            "Message not found",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "replyTo": in_dm, "replyPrivate": true}),
            400,
            "invalid body: replyTo is not a message of the group number names",
        ),
        (
            "text",
            json!({"number": group, "message": "oi", "replyTo": own, "replyPrivate": true}),
            400,
            "invalid body: replyPrivate answers another member's message, not the instance's own",
        ),
    ];
    for (kind, body, status, message) in cases {
        send(&server, &token, kind, body)
            .await
            .assert_error(status, message);
    }
    // A reaction takes neither (refused by name, as any other field).
    let reaction = send(
        &server,
        &token,
        "reaction",
        json!({"number": CUSTOMER, "messageId": in_dm, "reaction": "👍", "mention": [CUSTOMER]}),
    )
    .await;
    assert_eq!(
        reaction.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reaction.text
    );
    assert!(reaction.text.contains("mention"), "{}", reaction.text);
    assert_eq!(
        outbox(&server, &token).await.len(),
        sent_before,
        "nothing went out"
    );
    server.stop().await;
}
