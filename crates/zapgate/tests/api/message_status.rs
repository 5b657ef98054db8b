//! `message/status` (issue 15): status posts (stories) go to
//! `status@broadcast`, encrypted to the address book's contacts, as text on
//! a background or as media; bad fields are named, and an account without
//! contacts is refused as WhatsApp refuses it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    harness::TestServer,
    sends::{keyed, last_sent, outbox, paired, send},
};

const MARIA: &str = "5511977776666";
const JOAO: &str = "5521988887777";
/// A 1 x 1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// `loja` with Maria and João in its address book.
async fn with_contacts(server: &TestServer) -> String {
    let token = paired(server).await;
    add_contacts(server, &token).await;
    token
}

async fn add_contacts(server: &TestServer, token: &str) {
    let added = server
        .post(
            "/api/sandbox/loja/directory",
            Some(token),
            json!({"contacts": [{"number": MARIA}, {"number": JOAO, "name": "João"}]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
}

/// Posts `body`; checks the answer; the outbox entry.
async fn posted(server: &TestServer, token: &str, body: Value) -> Value {
    let reply = send(server, token, "status", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], json!("sent"));
    assert_eq!(reply.body["data"]["messageType"], json!("status"));
    assert_eq!(reply.body["data"]["chat"], json!("status@broadcast"));
    let id = reply.body["data"]["messageId"].as_str().unwrap();
    last_sent(server, token, id).await
}

#[tokio::test]
async fn status_messages_reach_the_contacts_as_text_or_media() {
    let server = TestServer::start().await;
    let token = with_contacts(&server).await;
    let audience = json!([
        format!("{MARIA}@s.whatsapp.net"),
        format!("{JOAO}@s.whatsapp.net")
    ]);

    let reply = send(
        &server,
        &token,
        "status",
        json!({"type": "text", "message": "Promoção só hoje!", "backgroundColor": "#FF8800",
               "font": "fb_script", "source": "campanha"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["data"]["source"], json!("campanha"));
    let id = reply.body["data"]["messageId"].as_str().unwrap();
    let sent = last_sent(&server, &token, id).await;
    assert_eq!(sent["kind"], json!("status"));
    assert_eq!(sent["to"], json!("status@broadcast"));
    assert_eq!(sent["text"], json!("Promoção só hoje!"));
    assert_eq!(sent["backgroundColor"], json!("#FF8800FF"));
    assert_eq!(sent["font"], json!("FB_SCRIPT"));
    assert_eq!(sent["audience"], audience);

    // Defaults: WhatsApp's green, the system font; an alpha is kept.
    let sent = posted(&server, &token, json!({"type": "text", "message": "oi"})).await;
    assert_eq!(sent["backgroundColor"], json!("#1E6E4FFF"));
    assert_eq!(sent["font"], json!("SYSTEM"));
    let sent = posted(
        &server,
        &token,
        json!({"type": "text", "message": "oi", "backgroundColor": "#11223344"}),
    )
    .await;
    assert_eq!(sent["backgroundColor"], json!("#11223344"));

    // An image with its caption; an audio (WhatsApp's has no caption).
    let sent = posted(
        &server,
        &token,
        json!({"type": "image", "message": "Nova coleção",
               "mediaUrl": format!("data:image/png;base64,{PNG}"), "mimeType": "image/png"}),
    )
    .await;
    assert_eq!(sent["text"], json!("Nova coleção"));
    assert_eq!(sent["media"]["kind"], json!("image"));
    assert_eq!(sent["media"]["mimetype"], json!("image/png"));
    assert_eq!(sent["media"]["size"], json!(70));
    assert_eq!(sent["audience"], audience);
    assert_eq!(sent["backgroundColor"], Value::Null);
    let sent = posted(
        &server,
        &token,
        json!({"type": "audio", "message": "ouça", "mediaUrl": format!("data:audio/ogg;base64,{PNG}")}),
    )
    .await;
    assert_eq!(sent["media"]["kind"], json!("audio"));
    assert_eq!(sent["media"]["mimetype"], json!("audio/ogg"));
    assert_eq!(sent["text"], Value::Null);

    // Kept in the message store, in the status chat.
    let stored = server
        .get(
            &format!("/api/chat/getMessage/loja?messageId={id}"),
            Some(&token),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.body["data"]["content"], json!("Promoção só hoje!"));

    // Idempotent like every send.
    let body = json!({"type": "text", "message": "uma vez"});
    let first = keyed(
        &server,
        &token,
        "/api/message/status/loja",
        "story-1",
        &body,
    )
    .await;
    let again = keyed(
        &server,
        &token,
        "/api/message/status/loja",
        "story-1",
        &body,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(again.body, first.body);
    let count = outbox(&server, &token).await.len();
    assert_eq!(count, 6);

    // Another account's instance is not found.
    let (_, other) = server.create_account("other", 5).await;
    send(&server, &other, "status", body)
        .await
        .assert_error(404, "Instance not found");
    server.stop().await;
}

#[tokio::test]
async fn status_messages_name_the_bad_field() {
    let server = TestServer::start().await;
    let token = paired(&server).await;
    // No contacts: nobody to post to, as WhatsApp answers.
    send(
        &server,
        &token,
        "status",
        json!({"type": "text", "message": "oi"}),
    )
    .await
    .assert_error(
        400,
        "WhatsApp refused the message: cannot send status with no recipients",
    );
    add_contacts(&server, &token).await;
    let png = format!("data:image/png;base64,{PNG}");
    for (body, error) in [
        (json!({"message": "oi"}), "invalid body: type is required"),
        (
            json!({"type": "sticker", "message": "oi"}),
            "invalid body: type must be text, image, video or audio",
        ),
        (json!({"type": "text"}), "invalid body: message is required"),
        (
            json!({"type": "text", "message": "  "}),
            "invalid body: message is required",
        ),
        (
            json!({"type": "image", "message": "oi"}),
            "invalid body: mediaUrl is required for an image, video or audio status",
        ),
        (
            json!({"type": "image", "message": "oi", "mediaUrl": "http://example.com/a.png"}),
            "invalid body: mediaUrl must be an https URL",
        ),
        (
            json!({"type": "text", "message": "oi", "mediaUrl": png}),
            "invalid body: mediaUrl is only for an image, video or audio status",
        ),
        (
            json!({"type": "text", "message": "oi", "backgroundColor": "red"}),
            "invalid body: backgroundColor must be #RRGGBB or #RRGGBBAA",
        ),
        (
            json!({"type": "text", "message": "oi", "backgroundColor": "#12345"}),
            "invalid body: backgroundColor must be #RRGGBB or #RRGGBBAA",
        ),
        (
            json!({"type": "text", "message": "oi", "font": "comic sans"}),
            "invalid body: font must be one of SYSTEM, SYSTEM_TEXT, FB_SCRIPT, SYSTEM_BOLD, MORNINGBREEZE_REGULAR, CALISTOGA_REGULAR, EXO2_EXTRABOLD, COURIERPRIME_BOLD",
        ),
        (
            json!({"type": "image", "message": "oi", "mediaUrl": png, "font": "SYSTEM"}),
            "invalid body: font is only for a text status",
        ),
        (
            json!({"type": "video", "message": "oi", "mediaUrl": png, "backgroundColor": "#000000"}),
            "invalid body: backgroundColor is only for a text status",
        ),
    ] {
        send(&server, &token, "status", body.clone())
            .await
            .assert_error(400, error);
    }
    // A status has no recipient: `number` is refused by name.
    let reply = send(
        &server,
        &token,
        "status",
        json!({"type": "text", "message": "oi", "number": MARIA}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert!(
        reply
            .error()
            .starts_with("invalid body: number: unknown field `number`"),
        "{}",
        reply.text
    );
    assert!(outbox(&server, &token).await.is_empty());
    server.stop().await;
}
