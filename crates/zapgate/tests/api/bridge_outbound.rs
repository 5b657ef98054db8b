//! The bridge from Chatwoot to WhatsApp, end to end: an agent acts in the
//! Chatwoot double, Chatwoot calls zapgate's webhook, and the sandbox phone's
//! outbox shows what reached WhatsApp.

use std::time::Duration;

use chatwoot_double::{Role, sign_webhook};
use serde_json::{Value, json};
use zapgate_core::{time::now_secs, token::TokenHash};

use crate::{
    bridge::{CUSTOMER, Fixture, PHONE, chat_messages, loop_until_outbox},
    harness::{Env, Reply},
};

/// The customer's chat, as the bridge addresses it on WhatsApp.
fn customer_jid() -> String {
    format!("{CUSTOMER}@s.whatsapp.net")
}

/// A conversation the bridge linked: the customer wrote first.
pub(crate) struct Linked {
    pub conversation_id: i64,
    /// WhatsApp id of the customer's message.
    pub wa_id: String,
    /// Chatwoot id of the customer's message.
    pub chatwoot_id: i64,
}

pub(crate) async fn customer_writes(f: &Fixture) -> Linked {
    let wa_id = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "Oi, preciso de ajuda"}))
        .await;
    let conversation = f
        .until("the conversation", || f.conversations().into_iter().next())
        .await;
    let conversation_id = conversation["id"].as_i64().unwrap();
    let posted = f
        .until("the customer's message in Chatwoot", || {
            chat_messages(&f.messages(conversation_id))
                .into_iter()
                .next()
        })
        .await;
    assert_eq!(posted["source_id"], json!(format!("WAID:{wa_id}")));
    Linked {
        conversation_id,
        wa_id,
        chatwoot_id: posted["id"].as_i64().unwrap(),
    }
}

/// Ana answers in the conversation; returns the Chatwoot message id.
pub(crate) fn agent_says(f: &Fixture, conversation_id: i64, text: &str) -> i64 {
    let message = f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        text,
        Vec::new(),
        false,
        None,
    );
    message["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("agent reply refused: {message}"))
}

pub(crate) fn message(f: &Fixture, conversation_id: i64, id: i64) -> Value {
    f.messages(conversation_id)
        .into_iter()
        .find(|m| m["id"] == json!(id))
        .unwrap_or_else(|| panic!("no message {id} in conversation {conversation_id}"))
}

/// Waits until the Chatwoot message has `status`, for up to 10 s.
pub(crate) async fn until_status(
    f: &Fixture,
    conversation_id: i64,
    id: i64,
    status: &str,
) -> Value {
    f.until(&format!("message {id} to become {status}"), || {
        let m = message(f, conversation_id, id);
        (m["status"] == json!(status)).then_some(m)
    })
    .await
}

pub(crate) async fn sandbox(f: &Fixture, action: &str, body: Value) -> Reply {
    let reply = f
        .server
        .post(
            &format!("/api/sandbox/{}/{action}", f.instance),
            Some(&f.token),
            body,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{action}: {}", reply.text);
    reply
}

/// The inbox zapgate created in the double.
fn inbox(f: &Fixture) -> Value {
    let inboxes = f.double.inboxes(f.account_id);
    assert_eq!(inboxes.len(), 1, "{inboxes:?}");
    inboxes[0].clone()
}

/// The `message_created` webhook the double delivered for Chatwoot message `id`.
async fn delivery_of(f: &Fixture, id: i64) -> chatwoot_double::Delivery {
    for _ in 0..500 {
        let found = f
            .double
            .webhook_deliveries()
            .into_iter()
            .find(|d| d.event == "message_created" && d.body["id"] == json!(id));
        if let Some(delivery) = found {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no message_created delivery for {id}: {:?}",
        f.double.webhook_deliveries()
    );
}

/// POSTs `body` to a webhook URL, signed with `signature` = (timestamp, header).
async fn post_webhook(
    f: &Fixture,
    url: &str,
    body: &[u8],
    signature: Option<(i64, String)>,
) -> (u16, String) {
    let mut request = f
        .server
        .client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some((timestamp, signature)) = signature {
        request = request
            .header("X-Chatwoot-Timestamp", timestamp.to_string())
            .header("X-Chatwoot-Signature", signature);
    }
    let response = request.send().await.expect("webhook POST");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Signed now with the inbox's secret, as Chatwoot 4.13+ does.
fn signed_now(secret: &str, body: &[u8]) -> Option<(i64, String)> {
    let ts = now_secs();
    Some((ts, sign_webhook(secret, ts, body)))
}

/// Lowercase hex SHA-256 of ASCII bytes (the attachments here are ASCII).
fn sha256_hex(bytes: &[u8]) -> String {
    TokenHash::of(std::str::from_utf8(bytes).expect("ASCII test file")).0
}

fn texts(outbox: &[Value]) -> Vec<Value> {
    outbox.iter().map(|m| m["text"].clone()).collect()
}

#[tokio::test]
async fn an_agent_reply_is_sent_once_signed_with_the_agents_name_when_asked() {
    let f = Fixture::start(json!({"signMessages": true})).await;
    let chat = customer_writes(&f).await;
    agent_says(&f, chat.conversation_id, "Claro, qual o pedido?");
    let sent = loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    let sent_after = f.outbox().await;
    assert_eq!(sent_after.len(), 1, "{sent_after:?}");
    assert_eq!(sent[0]["kind"], json!("text"));
    assert_eq!(sent[0]["to"], json!(customer_jid()));
    assert_eq!(sent[0]["text"], json!("*Ana*:\nClaro, qual o pedido?"));
}

#[tokio::test]
async fn an_agent_reply_is_sent_as_plain_text_by_default() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    agent_says(&f, chat.conversation_id, "Claro, qual o pedido?");
    loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    let sent = f.outbox().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["kind"], json!("text"));
    assert_eq!(sent[0]["to"], json!(customer_jid()));
    assert_eq!(sent[0]["text"], json!("Claro, qual o pedido?"));
    assert!(sent[0].get("quotedId").is_none(), "{:?}", sent[0]);
}

#[tokio::test]
async fn a_private_note_never_reaches_whatsapp() {
    let f = Fixture::start(json!({"signMessages": true})).await;
    let chat = customer_writes(&f).await;
    let note = f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "cliente VIP, cuidado",
        Vec::new(),
        true,
        None,
    );
    let delivered = delivery_of(&f, note["id"].as_i64().unwrap()).await;
    assert_eq!(delivered.body["private"], json!(true));
    assert_eq!(delivered.status_code, Some(200), "{:?}", delivered.error);
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);

    // A public reply afterwards still goes out: the note did not block the chat.
    agent_says(&f, chat.conversation_id, "Olá!");
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(texts(&sent), vec![json!("*Ana*:\nOlá!")]);
}

#[tokio::test]
async fn messages_the_bridge_created_in_chatwoot_are_not_echoed_to_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    // The owner answers from the phone: it shows in Chatwoot as outgoing,
    // which is exactly what an agent's reply looks like, except its source.
    let from_phone = f
        .inbound(json!({"from": CUSTOMER, "fromMe": true, "text": "respondi pelo celular"}))
        .await;
    let outgoing = f
        .until("the phone's message in Chatwoot", || {
            chat_messages(&f.messages(chat.conversation_id))
                .into_iter()
                .find(|m| m["source_id"] == json!(format!("WAID:{from_phone}")))
        })
        .await;
    assert_eq!(outgoing["message_type"], json!(1));

    let incoming = delivery_of(&f, chat.chatwoot_id).await;
    let mirrored = delivery_of(&f, outgoing["id"].as_i64().unwrap()).await;
    for (delivery, kind) in [(&incoming, "incoming"), (&mirrored, "outgoing")] {
        assert_eq!(delivery.body["message_type"], json!(kind));
        assert!(delivery.signed);
        assert!(
            delivery
                .status_code
                .is_some_and(|s| (200..300).contains(&s)),
            "{kind}: {:?} {:?}",
            delivery.status_code,
            delivery.error
        );
        assert!(delivery.error.is_none(), "{:?}", delivery.error);
    }
    assert_eq!(
        incoming.body["source_id"],
        json!(format!("WAID:{}", chat.wa_id))
    );
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
    // Neither message was marked failed by the webhook.
    for m in chat_messages(&f.messages(chat.conversation_id)) {
        assert_ne!(m["status"], json!("failed"), "{m}");
    }
}

#[tokio::test]
async fn an_agent_attachment_goes_out_with_its_bytes_type_and_caption() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let photo = b"fake-jpeg-bytes: a photo of the receipt ".repeat(40);
    f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "Segue o recibo",
        vec![("recibo.jpg".into(), "image/jpeg".into(), photo.clone())],
        false,
        None,
    );
    let sent = loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 1);
    let entry = &sent[0];
    assert_eq!(entry["kind"], json!("media"), "{entry}");
    assert_eq!(entry["to"], json!(customer_jid()));
    assert_eq!(entry["text"], json!("Segue o recibo"));
    assert_eq!(entry["media"]["kind"], json!("image"));
    assert_eq!(entry["media"]["mimetype"], json!("image/jpeg"));
    assert_eq!(entry["media"]["fileName"], json!("recibo.jpg"));
    assert_eq!(entry["media"]["size"], json!(photo.len()));
    assert_eq!(entry["media"]["sha256"], json!(sha256_hex(&photo)));
}

#[tokio::test]
async fn an_agent_reply_with_two_files_sends_both_with_the_caption_on_the_first() {
    let f = Fixture::start(json!({"signMessages": true})).await;
    let chat = customer_writes(&f).await;
    let image = b"PNG-ish image content ".repeat(25);
    let pdf = b"%PDF-1.4 a tiny invoice\n".repeat(60);
    f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "Foto e nota",
        vec![
            ("foto.png".into(), "image/png".into(), image.clone()),
            ("nota.pdf".into(), "application/pdf".into(), pdf.clone()),
        ],
        false,
        None,
    );
    let sent = loop_until_outbox(&f, 2).await;
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 2, "{:?}", f.outbox().await);
    assert_eq!(sent[0]["kind"], json!("media"));
    assert_eq!(sent[0]["text"], json!("*Ana*:\nFoto e nota"));
    assert_eq!(sent[0]["media"]["kind"], json!("image"));
    assert_eq!(sent[0]["media"]["mimetype"], json!("image/png"));
    assert_eq!(sent[0]["media"]["size"], json!(image.len()));
    assert_eq!(sent[0]["media"]["sha256"], json!(sha256_hex(&image)));
    assert_eq!(sent[1]["kind"], json!("media"));
    assert!(
        sent[1].get("text").is_none(),
        "caption only once: {}",
        sent[1]
    );
    assert_eq!(sent[1]["media"]["kind"], json!("document"));
    assert_eq!(sent[1]["media"]["mimetype"], json!("application/pdf"));
    assert_eq!(sent[1]["media"]["fileName"], json!("nota.pdf"));
    assert_eq!(sent[1]["media"]["size"], json!(pdf.len()));
    assert_eq!(sent[1]["media"]["sha256"], json!(sha256_hex(&pdf)));
    for entry in &sent {
        assert_eq!(entry["to"], json!(customer_jid()));
    }
    assert_ne!(sent[0]["id"], sent[1]["id"]);
}

#[tokio::test]
async fn a_reply_whose_second_file_fails_once_sends_each_file_exactly_once() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    // The first send goes through, the second fails once, then all succeed.
    sandbox(
        &f,
        "faults",
        json!({"send": "error", "after": 1, "times": 1}),
    )
    .await;
    let files: Vec<(String, String, Vec<u8>)> = ["um", "dois", "tres"]
        .iter()
        .map(|name| {
            let body = format!("%PDF-1.4 {name}\n").repeat(20).into_bytes();
            (format!("{name}.pdf"), "application/pdf".to_owned(), body)
        })
        .collect();
    let reply = f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "Seus documentos",
        files.clone(),
        false,
        None,
    )["id"]
        .as_i64()
        .unwrap();
    loop_until_outbox(&f, 3).await;
    f.quiesce().await;
    let sent = f.outbox().await;
    let names: Vec<_> = sent
        .iter()
        .map(|m| {
            m["media"]["fileName"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["um.pdf", "dois.pdf", "tres.pdf"], "{sent:?}");
    assert_eq!(sent[0]["text"], json!("Seus documentos"));
    for (entry, (_, _, body)) in sent.iter().zip(&files) {
        assert_eq!(entry["media"]["sha256"], json!(sha256_hex(body)));
    }
    assert_ne!(
        message(&f, chat.conversation_id, reply)["status"],
        json!("failed")
    );
}

#[tokio::test]
async fn an_agent_reply_to_a_customer_message_quotes_it_on_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "Sobre isso aqui:",
        Vec::new(),
        false,
        Some(chat.chatwoot_id),
    );
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(sent[0]["text"], json!("Sobre isso aqui:"));
    assert_eq!(sent[0]["quotedId"], json!(chat.wa_id));
}

#[tokio::test]
async fn an_agent_deleting_a_sent_reply_revokes_it_on_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let reply = agent_says(&f, chat.conversation_id, "mensagem errada");
    let sent = loop_until_outbox(&f, 1).await;
    let reply_wa_id = sent[0]["id"].as_str().unwrap().to_owned();

    f.double
        .agent_delete(f.account_id, chat.conversation_id, reply);
    let outbox = loop_until_outbox(&f, 2).await;
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 2, "{:?}", f.outbox().await);
    assert_eq!(outbox[1]["kind"], json!("revoke"), "{}", outbox[1]);
    assert_eq!(outbox[1]["to"], json!(customer_jid()));
    assert_eq!(outbox[1]["targetId"], json!(reply_wa_id));
}

#[tokio::test]
async fn whatsapp_receipts_become_the_chatwoot_message_status() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let reply = agent_says(&f, chat.conversation_id, "Pedido enviado");
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(
        message(&f, chat.conversation_id, reply)["status"],
        json!("sent")
    );
    let wa_id = sent[0]["id"].clone();

    sandbox(&f, "receipt", json!({"id": wa_id, "status": "delivered"})).await;
    until_status(&f, chat.conversation_id, reply, "delivered").await;
    sandbox(&f, "receipt", json!({"id": wa_id, "status": "read"})).await;
    let read = until_status(&f, chat.conversation_id, reply, "read").await;
    assert!(read["content_attributes"].get("external_error").is_none());
    // The status updates did not make anything go out again.
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 1);
}

#[tokio::test]
async fn a_reply_to_a_number_not_on_whatsapp_is_marked_failed_in_chatwoot() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "faults", json!({"send": "not_on_whatsapp"})).await;
    let reply = agent_says(&f, chat.conversation_id, "Alô?");
    let failed = until_status(&f, chat.conversation_id, reply, "failed").await;
    let error = failed["content_attributes"]["external_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.to_lowercase().contains("not on whatsapp"),
        "external_error: {failed}"
    );
    // Final: not retried once the number would work.
    sandbox(&f, "faults", json!({"send": "ok"})).await;
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn a_transient_whatsapp_error_is_retried_and_the_reply_sent_exactly_once() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "1000"),
    )
    .await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "faults", json!({"send": "error"})).await;
    let reply = agent_says(&f, chat.conversation_id, "Tentando de novo");

    // The job is attempted again and again while WhatsApp fails.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", f.server.sqlite_file().display()))
        .await
        .unwrap();
    let mut attempts = 0i64;
    for _ in 0..200 {
        attempts = sqlx::query_scalar(
            "SELECT COALESCE(MAX(attempts), 0) FROM bridge_jobs WHERE direction = 'outbound'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if attempts >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(attempts >= 3, "only {attempts} attempts");
    assert!(f.outbox().await.is_empty());
    assert_ne!(
        message(&f, chat.conversation_id, reply)["status"],
        json!("failed")
    );

    sandbox(&f, "faults", json!({"send": "ok"})).await;
    let sent = loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    let after = f.outbox().await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(sent[0]["text"], json!("Tentando de novo"));
    assert_ne!(
        message(&f, chat.conversation_id, reply)["status"],
        json!("failed")
    );
}

#[tokio::test]
async fn a_reply_that_keeps_failing_is_marked_failed_once_the_attempts_run_out() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "3"),
    )
    .await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "faults", json!({"send": "error"})).await;
    let reply = agent_says(&f, chat.conversation_id, "Vai falhar");
    let failed = until_status(&f, chat.conversation_id, reply, "failed").await;
    assert!(
        failed["content_attributes"]["external_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    sandbox(&f, "faults", json!({"send": "ok"})).await;
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn an_internal_error_reaches_chatwoot_and_the_list_as_a_public_text_only() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "1"),
    )
    .await;
    let chat = customer_writes(&f).await;
    // Break the store under the worker: the next agent reply's job meets an
    // SQL error (`no such table`) on our side.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", f.server.sqlite_file().display()))
        .await
        .unwrap();
    for _ in 0..500 {
        let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM message_links")
            .fetch_one(&pool)
            .await
            .unwrap();
        if links > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("ALTER TABLE message_links RENAME TO message_links_away")
        .execute(&pool)
        .await
        .unwrap();
    let reply = agent_says(&f, chat.conversation_id, "Vai quebrar");

    let failed = until_status(&f, chat.conversation_id, reply, "failed").await;
    let shown = failed["content_attributes"]["external_error"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        shown,
        zapgate_chatwoot::bridge::INTERNAL_FAILURE,
        "{failed}"
    );

    let list = f
        .server
        .get("/api/chatwoot/list/suporte", Some(&f.token))
        .await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    assert!(
        list.text
            .contains(zapgate_chatwoot::bridge::INTERNAL_FAILURE),
        "{}",
        list.text
    );
    for internal in ["message_links", "no such table", "SQL", "sqlx"] {
        assert!(!list.text.contains(internal), "{internal}: {}", list.text);
        assert!(!shown.contains(internal), "{internal}: {shown}");
    }
}

#[tokio::test]
async fn a_reply_waits_while_the_phone_is_offline_and_goes_out_once_on_reconnect() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "disconnect", json!({})).await;
    let reply = agent_says(&f, chat.conversation_id, "Responde quando puder");
    let delivered = delivery_of(&f, reply).await;
    assert_eq!(delivered.status_code, Some(200), "{:?}", delivered.error);
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
    assert_ne!(
        message(&f, chat.conversation_id, reply)["status"],
        json!("failed")
    );
    let info = f
        .server
        .get(
            &format!("/api/chatwoot/list/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(info.status.as_u16(), 200, "{}", info.text);
    assert_eq!(info.body["status"], json!("paused"), "{}", info.text);

    sandbox(&f, "reconnect", json!({})).await;
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(sent[0]["text"], json!("Responde quando puder"));
    assert_eq!(sent[0]["to"], json!(customer_jid()));
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 1, "{:?}", f.outbox().await);
}

#[tokio::test]
async fn a_reply_that_waits_past_the_expiry_is_failed_and_never_sent() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_OUTBOUND_EXPIRY_SECS", "1"),
    )
    .await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "disconnect", json!({})).await;
    let reply = agent_says(&f, chat.conversation_id, "Velha demais");
    let failed = until_status(&f, chat.conversation_id, reply, "failed").await;
    let error = failed["content_attributes"]["external_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("WhatsApp was not connected"),
        "external_error: {failed}"
    );

    sandbox(&f, "reconnect", json!({})).await;
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn the_same_webhook_delivered_again_sends_the_reply_only_once() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let reply = agent_says(&f, chat.conversation_id, "Só uma vez");
    let delivery = delivery_of(&f, reply).await;
    loop_until_outbox(&f, 1).await;
    let url = inbox(&f)["webhook_url"].as_str().unwrap().to_owned();
    assert_eq!(delivery.url, url);
    let secret = inbox(&f)["secret"].as_str().unwrap().to_owned();
    let body = serde_json::to_vec(&delivery.body).unwrap();
    for _ in 0..5 {
        let (status, text) = post_webhook(&f, &url, &body, signed_now(&secret, &body)).await;
        assert_eq!(status, 200, "{text}");
    }
    f.quiesce().await;
    let sent = f.outbox().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["text"], json!("Só uma vez"));
}

#[tokio::test]
async fn the_same_webhook_delivered_again_while_waiting_sends_the_reply_only_once() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "disconnect", json!({})).await;
    let reply = agent_says(&f, chat.conversation_id, "Uma só");
    let delivery = delivery_of(&f, reply).await;
    let url = inbox(&f)["webhook_url"].as_str().unwrap().to_owned();
    let secret = inbox(&f)["secret"].as_str().unwrap().to_owned();
    let body = serde_json::to_vec(&delivery.body).unwrap();
    for _ in 0..5 {
        let (status, text) = post_webhook(&f, &url, &body, signed_now(&secret, &body)).await;
        assert_eq!(status, 200, "{text}");
    }
    sandbox(&f, "reconnect", json!({})).await;
    loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    let sent = f.outbox().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[tokio::test]
async fn the_webhook_checks_the_secret_the_integration_and_the_signature() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let reply = agent_says(&f, chat.conversation_id, "Primeira");
    let template = delivery_of(&f, reply).await.body;
    loop_until_outbox(&f, 1).await;
    let url = inbox(&f)["webhook_url"].as_str().unwrap().to_owned();
    let secret = inbox(&f)["secret"].as_str().unwrap().to_owned();
    let (prefix, path_secret) = url.rsplit_once('/').unwrap();
    let (root, integration) = prefix.rsplit_once('/').unwrap();
    assert!(integration.starts_with("int_"), "{url}");

    // A webhook for another agent message, as Chatwoot would send it.
    let forged = |id: i64, text: &str| {
        let mut body = template.clone();
        body["id"] = json!(id);
        body["content"] = json!(text);
        serde_json::to_vec(&body).unwrap()
    };

    let body = forged(reply + 1001, "segredo errado");
    let wrong_secret = format!("{prefix}/{}x", path_secret);
    let (status, text) = post_webhook(&f, &wrong_secret, &body, signed_now(&secret, &body)).await;
    assert_eq!(status, 401, "{text}");

    let body = forged(reply + 1002, "integração desconhecida");
    let unknown = format!("{root}/int_doesnotexist/{path_secret}");
    let (status, text) = post_webhook(&f, &unknown, &body, signed_now(&secret, &body)).await;
    assert_eq!(status, 401, "{text}");

    let signed = forged(reply + 1003, "original");
    let signature = signed_now(&secret, &signed);
    let tampered = forged(reply + 1003, "adulterado");
    let (status, text) = post_webhook(&f, &url, &tampered, signature).await;
    assert_eq!(status, 401, "{text}");

    let body = forged(reply + 1004, "de uma hora atrás");
    let stale = now_secs() - 3600;
    let (status, text) = post_webhook(
        &f,
        &url,
        &body,
        Some((stale, sign_webhook(&secret, stale, &body))),
    )
    .await;
    assert_eq!(status, 401, "{text}");

    let body = forged(reply + 1005, "assinada");
    let (status, text) = post_webhook(&f, &url, &body, signed_now(&secret, &body)).await;
    assert_eq!(status, 200, "{text}");

    let sent = loop_until_outbox(&f, 2).await;
    f.quiesce().await;
    let sent_after = f.outbox().await;
    assert_eq!(sent_after.len(), 2, "{sent_after:?}");
    assert_eq!(texts(&sent), vec![json!("Primeira"), json!("assinada")]);
}

/// An agent reply queued while the phone is offline, Chatwoot's webhooks
/// then lagging (they leave from a queue): (conversation, reply). Were a
/// failure mark's own `message_updated` to reach a row already gone, our
/// 401 would mark the message failed again, as "401 Unauthorized".
async fn reply_queued_offline(f: &Fixture) -> (i64, i64) {
    let chat = customer_writes(f).await;
    sandbox(f, "disconnect", json!({})).await;
    let reply = agent_says(f, chat.conversation_id, "Na fila");
    let delivered = delivery_of(f, reply).await;
    assert_eq!(delivered.status_code, Some(200), "{:?}", delivered.error);
    f.quiesce().await;
    f.double.set_webhook_lag(Duration::from_millis(300));
    (chat.conversation_id, reply)
}

/// The reply is failed in the old inbox with `why`, that inbox calls us no
/// more, and the reply never reaches the phone once it is back.
async fn failed_with_and_never_sent(f: &Fixture, (conversation, reply): (i64, i64), why: &str) {
    f.quiesce().await;
    f.double.set_webhook_lag(Duration::ZERO);
    let failed = until_status(f, conversation, reply, "failed").await;
    let reason = failed["content_attributes"]["external_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains(why), "external_error: {failed}");
    assert_eq!(inbox(f)["webhook_url"], json!(""));

    sandbox(f, "reconnect", json!({})).await;
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn deactivating_fails_the_queued_replies_in_chatwoot_and_never_sends_them() {
    let f = Fixture::start(json!({})).await;
    let queued = reply_queued_offline(&f).await;
    let removed = f
        .server
        .delete(
            &format!("/api/chatwoot/delete/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(removed.status.as_u16(), 200, "{}", removed.text);
    failed_with_and_never_sent(&f, queued, "deactivated").await;
}

#[tokio::test]
async fn moving_to_another_inbox_fails_the_queued_replies_in_the_old_one_with_why() {
    let f = Fixture::start(json!({})).await;
    let queued = reply_queued_offline(&f).await;
    // Another Chatwoot account: a new inbox, and the old row replaced.
    let other = f.double.add_account("Acme 2");
    let (_, admin) = f
        .double
        .add_user("Bia", "bia@acme.test", Role::Administrator, &[other]);
    let moved = f
        .server
        .post(
            &format!("/api/chatwoot/set/{}", f.instance),
            Some(&f.token),
            json!({"chatwootBaseUrl": f.double.base_url(), "chatwootAccountId": other,
                   "chatwootApiToken": admin}),
        )
        .await;
    assert_eq!(moved.status.as_u16(), 201, "{}", moved.text);
    failed_with_and_never_sent(&f, queued, "moved to another inbox").await;
}

#[tokio::test]
async fn a_reply_in_a_conversation_the_bridge_never_linked_goes_to_the_contacts_number() {
    let f = Fixture::start(json!({})).await;
    // The bridge knows one customer; the agent starts a chat with another.
    customer_writes(&f).await;
    let other = "5511977776666";
    let (_, admin) =
        f.double
            .add_user("Bia", "bia@acme.test", Role::Administrator, &[f.account_id]);
    let inbox_id = inbox(&f)["id"].as_i64().unwrap();
    let api = format!("{}/api/v1/accounts/{}", f.double.base_url(), f.account_id);
    let client = reqwest::Client::new();
    let contact: Value = client
        .post(format!("{api}/contacts"))
        .header("api_access_token", &admin)
        .json(&json!({
            "name": "João",
            "identifier": format!("{other}@s.whatsapp.net"),
            "inbox_id": inbox_id,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contact_id = contact["payload"]["contact"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{contact}"));
    let conversation: Value = client
        .post(format!("{api}/conversations"))
        .header("api_access_token", &admin)
        .json(&json!({"contact_id": contact_id, "inbox_id": inbox_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation_id = conversation["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{conversation}"));

    agent_says(&f, conversation_id, "Olá João, tudo bem?");
    let sent = loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 1);
    assert_eq!(sent[0]["to"], json!(format!("{other}@s.whatsapp.net")));
    assert_eq!(sent[0]["text"], json!("Olá João, tudo bem?"));
    // Not the paired phone, not the linked customer.
    assert_ne!(sent[0]["to"], json!(format!("{PHONE}@s.whatsapp.net")));
}

#[tokio::test]
async fn deleting_a_reply_with_two_files_revokes_both_parts() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let reply = f.double.agent_reply(
        f.account_id,
        chat.conversation_id,
        f.agent_id,
        "dois anexos",
        vec![
            ("a.txt".into(), "text/plain".into(), b"primeiro".to_vec()),
            ("b.txt".into(), "text/plain".into(), b"segundo".to_vec()),
        ],
        false,
        None,
    );
    let sent = loop_until_outbox(&f, 2).await;
    f.double.agent_delete(
        f.account_id,
        chat.conversation_id,
        reply["id"].as_i64().unwrap(),
    );
    let outbox = loop_until_outbox(&f, 4).await;
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 4, "{:?}", f.outbox().await);
    let mut revoked: Vec<Value> = outbox[2..]
        .iter()
        .inspect(|e| assert_eq!(e["kind"], json!("revoke"), "{e}"))
        .map(|e| e["targetId"].clone())
        .collect();
    revoked.sort_by_key(ToString::to_string);
    let mut parts: Vec<Value> = sent[..2].iter().map(|e| e["id"].clone()).collect();
    parts.sort_by_key(ToString::to_string);
    assert_eq!(revoked, parts);
}

#[tokio::test]
async fn a_reply_deleted_while_waiting_for_the_phone_is_never_left_visible() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    sandbox(&f, "disconnect", json!({})).await;
    let reply = agent_says(&f, chat.conversation_id, "melhor não");
    delivery_of(&f, reply).await;
    f.double
        .agent_delete(f.account_id, chat.conversation_id, reply);
    f.quiesce().await;
    sandbox(&f, "reconnect", json!({})).await;
    f.quiesce().await;
    let outbox = f.outbox().await;
    // Either never sent, or sent and revoked: the customer never keeps it.
    for entry in outbox.iter().filter(|e| e["kind"] != json!("revoke")) {
        assert!(
            outbox
                .iter()
                .any(|r| r["kind"] == json!("revoke") && r["targetId"] == entry["id"]),
            "sent and not revoked: {outbox:?}"
        );
    }
}
