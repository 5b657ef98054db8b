//! WhatsApp → Chatwoot end to end: what a customer (or the owner's phone, or
//! the send API) does on WhatsApp, as the Chatwoot double records it.

use base64::Engine;
use chatwoot_double::Role;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::bridge::{CUSTOMER, Fixture, PHONE, chat_messages, loop_until_outbox};

const GROUP: &str = "120363000000000001@g.us";
const MEMBER: &str = "5511977776666";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn jid(number: &str) -> String {
    format!("{number}@s.whatsapp.net")
}

/// Lets the worker and the double's webhooks finish whatever is under way.
async fn settle(f: &Fixture) {
    f.quiesce().await;
}

fn contacts(f: &Fixture) -> Vec<Value> {
    f.double.contacts(f.account_id)
}

fn contact_with(f: &Fixture, identifier: &str) -> Option<Value> {
    contacts(f)
        .into_iter()
        .find(|c| c["identifier"] == json!(identifier))
}

fn id(value: &Value) -> i64 {
    value["id"].as_i64().expect("an id")
}

/// The conversations of a contact, by display id.
fn conversations_of(f: &Fixture, contact_id: i64) -> Vec<Value> {
    f.conversations()
        .into_iter()
        .filter(|c| c["meta"]["sender"]["id"] == json!(contact_id))
        .collect()
}

/// Waits for the only conversation of the account and returns its id.
async fn the_conversation(f: &Fixture) -> i64 {
    let conversation = f
        .until("a conversation", || f.conversations().into_iter().next())
        .await;
    id(&conversation)
}

/// Waits until the conversation has at least `n` chat messages; returns them.
pub(crate) async fn chat(f: &Fixture, conversation_id: i64, n: usize) -> Vec<Value> {
    f.until(
        &format!("{n} messages in conversation {conversation_id}"),
        || {
            let messages = chat_messages(&f.messages(conversation_id));
            (messages.len() >= n).then_some(messages)
        },
    )
    .await
}

/// Every chat message of the account, any conversation.
fn all_chat_messages(f: &Fixture) -> Vec<Value> {
    f.conversations()
        .iter()
        .flat_map(|c| chat_messages(&f.messages(id(c))))
        .collect()
}

/// The Chatwoot message posted for WhatsApp message `wa_id`.
async fn posted(f: &Fixture, wa_id: &str) -> Value {
    let source_id = json!(format!("WAID:{wa_id}"));
    f.until(&format!("the message {wa_id}"), || {
        all_chat_messages(f)
            .into_iter()
            .find(|m| m["source_id"] == source_id)
    })
    .await
}

fn text_from(number: &str, text: &str) -> Value {
    json!({"from": number, "pushName": "Maria", "text": text})
}

async fn fetch_attachment(attachment: &Value) -> Vec<u8> {
    let url = attachment["data_url"].as_str().expect("data_url");
    let response = reqwest::get(url).await.expect("attachment fetched");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.bytes().await.expect("attachment body").to_vec()
}

#[tokio::test]
async fn a_text_message_becomes_one_incoming_message_from_one_contact_in_one_open_conversation() {
    let f = Fixture::start(json!({})).await;
    let wa_id = f.inbound(text_from(CUSTOMER, "Bom dia")).await;

    let conversation_id = the_conversation(&f).await;
    let messages = chat(&f, conversation_id, 1).await;
    settle(&f).await;
    let messages_now = chat_messages(&f.messages(conversation_id));
    assert_eq!(messages_now.len(), 1, "{messages_now:?}");
    assert_eq!(messages[0]["content"], json!("Bom dia"));
    assert_eq!(messages[0]["source_id"], json!(format!("WAID:{wa_id}")));
    assert_eq!(messages[0]["message_type"], json!(0));
    assert_eq!(messages[0]["private"], json!(false));

    let all = contacts(&f);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["name"], json!("Maria"));
    assert_eq!(all[0]["phone_number"], json!(format!("+{CUSTOMER}")));
    assert_eq!(all[0]["identifier"], json!(jid(CUSTOMER)));

    let inboxes = f.double.inboxes(f.account_id);
    assert_eq!(inboxes.len(), 1);
    let conversations = f.conversations();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0]["inbox_id"], inboxes[0]["id"]);
    assert_eq!(conversations[0]["status"], json!("open"));
    assert_eq!(conversations[0]["meta"]["sender"]["id"], all[0]["id"]);
}

#[tokio::test]
async fn a_new_contact_costs_at_most_three_requests_and_each_later_message_exactly_one() {
    let f = Fixture::start(json!({})).await;
    settle(&f).await;
    f.double.clear_requests();

    f.inbound(text_from(CUSTOMER, "primeira")).await;
    let conversation_id = the_conversation(&f).await;
    chat(&f, conversation_id, 1).await;
    settle(&f).await;
    let first = f.double.requests();
    assert!(
        first.len() <= 3,
        "the first message cost {} requests: {:?}",
        first.len(),
        first
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );

    for n in 2..=4 {
        f.double.clear_requests();
        f.inbound(text_from(CUSTOMER, &format!("mensagem {n}")))
            .await;
        chat(&f, conversation_id, n).await;
        settle(&f).await;
        let requests = f.double.requests();
        assert_eq!(
            requests.len(),
            1,
            "message {n} cost: {:?}",
            requests
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            f.double.count(
                "POST",
                &format!(
                    "/api/v1/accounts/{}/conversations/{conversation_id}/messages",
                    f.account_id
                )
            ),
            1
        );
    }
}

#[tokio::test]
async fn a_redelivered_message_is_posted_once() {
    let f = Fixture::start(json!({})).await;
    let body = json!({"id": "3A0000REDELIVERED", "from": CUSTOMER, "pushName": "Maria", "text": "uma vez"});
    for _ in 0..3 {
        assert_eq!(f.inbound(body.clone()).await, "3A0000REDELIVERED");
    }
    let conversation_id = the_conversation(&f).await;
    chat(&f, conversation_id, 1).await;
    // A later message proves the redeliveries were handled, not just pending.
    f.inbound(text_from(CUSTOMER, "depois")).await;
    chat(&f, conversation_id, 2).await;
    settle(&f).await;

    let messages = chat_messages(&f.messages(conversation_id));
    let contents: Vec<_> = messages.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, vec![json!("uma vez"), json!("depois")]);
    assert_eq!(messages[0]["source_id"], json!("WAID:3A0000REDELIVERED"));
    assert_eq!(f.conversations().len(), 1);
}

#[tokio::test]
async fn twenty_messages_sent_quickly_in_one_chat_arrive_in_order() {
    let f = Fixture::start(json!({})).await;
    let sent: Vec<String> = (1..=20).map(|n| format!("mensagem {n:02}")).collect();
    for text in &sent {
        f.inbound(text_from(CUSTOMER, text)).await;
    }
    let conversation_id = the_conversation(&f).await;
    chat(&f, conversation_id, 20).await;
    settle(&f).await;

    let contents: Vec<String> = chat_messages(&f.messages(conversation_id))
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(contents, sent);
    assert_eq!(f.conversations().len(), 1);
}

#[tokio::test]
async fn ten_concurrent_first_messages_from_a_new_contact_make_one_contact_one_conversation_and_ten_messages()
 {
    let f = Fixture::start(json!({})).await;
    let mut tasks = JoinSet::new();
    for n in 0..10 {
        let client = f.server.client.clone();
        let url = f
            .server
            .url(&format!("/api/sandbox/{}/inbound", f.instance));
        let token = f.token.clone();
        tasks.spawn(async move {
            let response = client
                .post(url)
                .header("token", token)
                .json(&json!({"from": CUSTOMER, "pushName": "Maria", "text": format!("ao mesmo tempo {n}")}))
                .send()
                .await
                .expect("inbound sent");
            assert_eq!(response.status().as_u16(), 200);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("inbound task");
    }

    let conversation_id = the_conversation(&f).await;
    chat(&f, conversation_id, 10).await;
    settle(&f).await;

    assert_eq!(contacts(&f).len(), 1, "{:?}", contacts(&f));
    assert_eq!(f.conversations().len(), 1);
    let mut contents: Vec<String> = chat_messages(&f.messages(conversation_id))
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    contents.sort();
    let expected: Vec<String> = (0..10).map(|n| format!("ao mesmo tempo {n}")).collect();
    assert_eq!(contents, expected);
}

#[tokio::test]
async fn an_image_with_a_caption_arrives_as_one_message_with_the_caption_and_the_same_bytes() {
    let f = Fixture::start(json!({})).await;
    let bytes: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(3000))
        .collect();
    let wa_id = f
        .inbound(json!({
            "from": CUSTOMER, "pushName": "Maria", "text": "olha a foto",
            "media": {"type": "image", "mimetype": "image/png", "base64": b64(&bytes)},
        }))
        .await;

    let message = posted(&f, &wa_id).await;
    settle(&f).await;
    assert_eq!(all_chat_messages(&f).len(), 1);
    assert_eq!(message["content"], json!("olha a foto"));
    assert_eq!(message["message_type"], json!(0));
    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["file_type"], json!("image"));
    assert_eq!(fetch_attachment(&attachments[0]).await, bytes);
}

#[tokio::test]
async fn voice_notes_documents_and_stickers_arrive_as_attachments_with_their_bytes() {
    let f = Fixture::start(json!({})).await;
    let voice = b"OggS\0voice note bytes".to_vec();
    let pdf = b"%PDF-1.4 the contract".to_vec();
    let sticker = b"RIFF\0\0\0\0WEBPVP8 sticker".to_vec();
    let voice_id = f
        .inbound(json!({
            "from": CUSTOMER, "pushName": "Maria",
            "media": {"type": "audio", "mimetype": "audio/ogg; codecs=opus", "base64": b64(&voice)},
        }))
        .await;
    let pdf_id = f
        .inbound(json!({
            "from": CUSTOMER, "pushName": "Maria",
            "media": {"type": "document", "mimetype": "application/pdf", "fileName": "contrato.pdf", "base64": b64(&pdf)},
        }))
        .await;
    let sticker_id = f
        .inbound(json!({
            "from": CUSTOMER, "pushName": "Maria",
            "media": {"type": "sticker", "mimetype": "image/webp", "base64": b64(&sticker)},
        }))
        .await;

    let cases = [
        (voice_id, voice, "audio"),
        (pdf_id, pdf, "file"),
        (sticker_id, sticker, "image"),
    ];
    for (wa_id, bytes, file_type) in &cases {
        let message = posted(&f, wa_id).await;
        assert_eq!(message["message_type"], json!(0));
        let attachments = message["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), 1, "{message}");
        assert_eq!(attachments[0]["file_type"], json!(file_type), "{message}");
        assert_eq!(&fetch_attachment(&attachments[0]).await, bytes);
    }
    let pdf_message = posted(&f, &cases[1].0).await;
    let url = pdf_message["attachments"][0]["data_url"].as_str().unwrap();
    assert!(url.ends_with("/contrato.pdf"), "{url}");
    settle(&f).await;
    assert_eq!(all_chat_messages(&f).len(), 3);
    assert_eq!(f.conversations().len(), 1);
}

#[tokio::test]
async fn a_reply_is_threaded_under_the_quoted_message() {
    let f = Fixture::start(json!({})).await;
    let first = f.inbound(text_from(CUSTOMER, "qual o preço?")).await;
    let quoted = posted(&f, &first).await;
    let reply = f
        .inbound(
            json!({"from": CUSTOMER, "pushName": "Maria", "text": "e o frete?", "quotedId": first}),
        )
        .await;
    let message = posted(&f, &reply).await;
    assert_eq!(message["content"], json!("e o frete?"));
    assert_eq!(
        message["content_attributes"]["in_reply_to"],
        json!(id(&quoted))
    );
    assert_eq!(
        message["content_attributes"]["in_reply_to_external_id"],
        json!(format!("WAID:{first}"))
    );
}

#[tokio::test]
async fn group_messages_share_one_conversation_named_by_the_subject_and_name_their_sender() {
    let f = Fixture::start(json!({})).await;
    let group = json!({"jid": GROUP, "subject": "Família"});
    let from_maria = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "oi gente", "group": group}))
        .await;
    let from_joao = f
        .inbound(json!({"from": MEMBER, "pushName": "João", "text": "oi Maria", "group": group}))
        .await;

    let maria = posted(&f, &from_maria).await;
    let joao = posted(&f, &from_joao).await;
    settle(&f).await;
    assert_eq!(
        maria["content"],
        json!(format!("**Maria (+{CUSTOMER}):**\noi gente"))
    );
    assert_eq!(
        joao["content"],
        json!(format!("**João (+{MEMBER}):**\noi Maria"))
    );
    assert_eq!(maria["message_type"], json!(0));

    let all = contacts(&f);
    assert_eq!(all.len(), 1, "one contact for the group: {all:?}");
    assert_eq!(all[0]["name"], json!("Família"));
    assert_eq!(all[0]["identifier"], json!(GROUP));
    let conversations = f.conversations();
    assert_eq!(conversations.len(), 1);
    assert_eq!(maria["conversation_id"], conversations[0]["id"]);
    assert_eq!(joao["conversation_id"], conversations[0]["id"]);

    // A direct message from a member is a chat of its own.
    let direct = f.inbound(text_from(CUSTOMER, "só pra você")).await;
    let direct = posted(&f, &direct).await;
    assert_eq!(direct["content"], json!("só pra você"));
    assert_ne!(direct["conversation_id"], conversations[0]["id"]);
    assert_eq!(f.conversations().len(), 2);
}

#[tokio::test]
async fn with_ignore_groups_a_group_message_never_reaches_chatwoot() {
    let f = Fixture::start(json!({"ignoreGroups": true})).await;
    settle(&f).await;
    f.double.clear_requests();
    f.inbound(json!({
        "from": CUSTOMER, "pushName": "Maria", "text": "oi gente",
        "group": {"jid": GROUP, "subject": "Família"},
    }))
    .await;
    settle(&f).await;
    let requests = f.double.requests();
    assert!(
        requests.is_empty(),
        "{:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert!(f.conversations().is_empty());
    assert!(contacts(&f).is_empty());

    // Direct chats still flow.
    let direct = f.inbound(text_from(CUSTOMER, "oi")).await;
    posted(&f, &direct).await;
    assert_eq!(f.conversations().len(), 1);
}

#[tokio::test]
async fn status_broadcasts_are_ignored() {
    let f = Fixture::start(json!({})).await;
    settle(&f).await;
    f.double.clear_requests();
    f.inbound(json!({"from": "status@broadcast", "pushName": "Maria", "text": "meu status"}))
        .await;
    settle(&f).await;
    assert!(f.double.requests().is_empty());
    assert!(f.conversations().is_empty());

    let direct = f.inbound(text_from(CUSTOMER, "oi")).await;
    posted(&f, &direct).await;
    settle(&f).await;
    let all = contacts(&f);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["identifier"], json!(jid(CUSTOMER)));
    assert_eq!(all_chat_messages(&f).len(), 1);
}

#[tokio::test]
async fn a_message_the_owner_types_on_the_phone_is_outgoing_and_never_sent_back() {
    let f = Fixture::start(json!({})).await;
    let question = f.inbound(text_from(CUSTOMER, "vocês abrem hoje?")).await;
    let question = posted(&f, &question).await;
    let answer = f
        .inbound(
            json!({"from": CUSTOMER, "fromMe": true, "pushName": "Loja", "text": "abrimos às 9h"}),
        )
        .await;

    let answer = posted(&f, &answer).await;
    assert_eq!(answer["message_type"], json!(1));
    assert_eq!(answer["content"], json!("abrimos às 9h"));
    assert_eq!(answer["conversation_id"], question["conversation_id"]);
    settle(&f).await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
    assert_eq!(all_chat_messages(&f).len(), 2);
    let all = contacts(&f);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["name"], json!("Maria"));
    assert!(
        contact_with(&f, &jid(PHONE)).is_none(),
        "the owner became a contact"
    );

    // The owner writing first to someone new: the chat is the other
    // person's, never named after the owner.
    let first = f
        .inbound(json!({"from": MEMBER, "fromMe": true, "pushName": "Loja", "text": "seu pedido chegou"}))
        .await;
    let first = posted(&f, &first).await;
    assert_eq!(first["message_type"], json!(1));
    let member = contact_with(&f, &jid(MEMBER)).expect("the member contact");
    assert_eq!(member["phone_number"], json!(format!("+{MEMBER}")));
    assert_ne!(member["name"], json!("Loja"));
    assert_eq!(
        conversations_of(&f, id(&member))[0]["id"],
        first["conversation_id"]
    );
    settle(&f).await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn a_message_sent_through_the_api_shows_as_outgoing_and_goes_out_once() {
    let f = Fixture::start(json!({})).await;
    let reply = f
        .server
        .post(
            &format!("/api/message/text/{}", f.instance),
            Some(&f.token),
            json!({"number": CUSTOMER, "message": "Seu pedido saiu"}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let message_id = reply.body["messageId"]
        .as_str()
        .expect("messageId")
        .to_owned();

    let outbox = loop_until_outbox(&f, 1).await;
    assert_eq!(outbox[0]["id"], json!(message_id));
    assert_eq!(outbox[0]["to"], json!(jid(CUSTOMER)));
    assert_eq!(outbox[0]["text"], json!("Seu pedido saiu"));

    let mirrored = posted(&f, &message_id).await;
    assert_eq!(mirrored["message_type"], json!(1));
    assert_eq!(mirrored["content"], json!("Seu pedido saiu"));
    let customer = contact_with(&f, &jid(CUSTOMER)).expect("the customer contact");
    assert_eq!(customer["phone_number"], json!(format!("+{CUSTOMER}")));
    assert_eq!(
        conversations_of(&f, id(&customer))[0]["id"],
        mirrored["conversation_id"]
    );

    // Media too.
    let bytes = b"\xff\xd8\xff\xe0 a receipt photo".to_vec();
    let reply = f
        .server
        .post(
            &format!("/api/message/media/{}", f.instance),
            Some(&f.token),
            json!({"number": CUSTOMER, "mediaType": "image", "mediaBase64": b64(&bytes),
                   "mimeType": "image/jpeg", "message": "comprovante"}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let media_id = reply.body["messageId"]
        .as_str()
        .expect("messageId")
        .to_owned();
    let media = posted(&f, &media_id).await;
    assert_eq!(media["message_type"], json!(1));
    assert_eq!(media["content"], json!("comprovante"));
    assert_eq!(media["conversation_id"], mirrored["conversation_id"]);
    assert_eq!(fetch_attachment(&media["attachments"][0]).await, bytes);

    settle(&f).await;
    let outbox = f.outbox().await;
    assert_eq!(outbox.len(), 2, "sent twice? {outbox:?}");
    assert_eq!(all_chat_messages(&f).len(), 2);
    assert_eq!(contacts(&f).len(), 1);
}

#[tokio::test]
async fn a_hidden_number_contact_learns_its_phone_and_keeps_its_conversation() {
    let f = Fixture::start(json!({})).await;
    let hidden = f
        .inbound(json!({"lid": "123@lid", "pushName": "Maria", "text": "oi, sem número"}))
        .await;
    let hidden = posted(&f, &hidden).await;
    let contact = contact_with(&f, "123@lid").expect("a contact for the lid");
    assert_eq!(contact["phone_number"], Value::Null);
    assert_eq!(contact["name"], json!("Maria"));

    let known = f
        .inbound(json!({"from": CUSTOMER, "lid": "123@lid", "pushName": "Maria", "text": "agora com número"}))
        .await;
    let known = posted(&f, &known).await;
    settle(&f).await;
    assert_eq!(known["conversation_id"], hidden["conversation_id"]);
    assert_eq!(f.conversations().len(), 1);
    let all = contacts(&f);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["phone_number"], json!(format!("+{CUSTOMER}")));

    // And the phone form alone now finds the same chat.
    let later = f.inbound(text_from(CUSTOMER, "de novo")).await;
    let later = posted(&f, &later).await;
    assert_eq!(later["conversation_id"], hidden["conversation_id"]);
    assert_eq!(contacts(&f).len(), 1);
}

#[tokio::test]
async fn both_forms_of_a_brazilian_mobile_number_are_one_contact_and_one_conversation() {
    let f = Fixture::start(json!({})).await;
    let without_ninth = f.inbound(text_from("551188887777", "sem o nove")).await;
    let without_ninth = posted(&f, &without_ninth).await;
    let with_ninth = f.inbound(text_from("5511988887777", "com o nove")).await;
    let with_ninth = posted(&f, &with_ninth).await;
    settle(&f).await;
    assert_eq!(
        with_ninth["conversation_id"],
        without_ninth["conversation_id"]
    );
    assert_eq!(contacts(&f).len(), 1, "{:?}", contacts(&f));
    assert_eq!(f.conversations().len(), 1);
}

#[tokio::test]
async fn an_existing_chatwoot_contact_with_the_number_is_found_and_keeps_its_name() {
    let f = Fixture::start(json!({})).await;
    let (_, admin_token) = f.double.add_user(
        "Admin",
        "admin@acme.test",
        Role::Administrator,
        &[f.account_id],
    );
    let created = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/accounts/{}/contacts",
            f.double.base_url(),
            f.account_id
        ))
        .header("api_access_token", admin_token)
        .json(&json!({"name": "Maria Silva (cliente VIP)", "phone_number": format!("+{CUSTOMER}")}))
        .send()
        .await
        .expect("contact created");
    assert!(created.status().is_success(), "{}", created.status());
    let existing = contacts(&f);
    assert_eq!(existing.len(), 1);
    let existing_id = id(&existing[0]);

    let wa_id = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Mari", "text": "oi"}))
        .await;
    let message = posted(&f, &wa_id).await;
    settle(&f).await;
    let all = contacts(&f);
    assert_eq!(all.len(), 1, "a duplicate contact: {all:?}");
    assert_eq!(id(&all[0]), existing_id);
    assert_eq!(all[0]["name"], json!("Maria Silva (cliente VIP)"));
    let conversations = conversations_of(&f, existing_id);
    assert_eq!(conversations.len(), 1);
    assert_eq!(message["conversation_id"], conversations[0]["id"]);
}

#[tokio::test]
async fn a_push_name_does_not_rename_a_known_contact() {
    let f = Fixture::start(json!({})).await;
    let first = f.inbound(text_from(CUSTOMER, "oi")).await;
    posted(&f, &first).await;
    let second = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria 🌻 Nova", "text": "mudei meu nome"}))
        .await;
    posted(&f, &second).await;
    settle(&f).await;
    let all = contacts(&f);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["name"], json!("Maria"));
    assert!(
        contact_with(&f, &jid(PHONE)).is_none(),
        "the owner became a contact"
    );

    // The owner writing first to someone new: the chat is the other
    // person's, never named after the owner.
    let first = f
        .inbound(json!({"from": MEMBER, "fromMe": true, "pushName": "Loja", "text": "seu pedido chegou"}))
        .await;
    let first = posted(&f, &first).await;
    assert_eq!(first["message_type"], json!(1));
    let member = contact_with(&f, &jid(MEMBER)).expect("the member contact");
    assert_eq!(member["phone_number"], json!(format!("+{MEMBER}")));
    assert_ne!(member["name"], json!("Loja"));
    assert_eq!(
        conversations_of(&f, id(&member))[0]["id"],
        first["conversation_id"]
    );
    settle(&f).await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
}

#[tokio::test]
async fn with_start_as_pending_a_new_conversation_is_pending() {
    let f = Fixture::start(json!({"startAsPending": true})).await;
    let wa_id = f.inbound(text_from(CUSTOMER, "oi")).await;
    let message = posted(&f, &wa_id).await;
    let conversations = f.conversations();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0]["status"], json!("pending"));
    assert_eq!(message["conversation_id"], conversations[0]["id"]);

    // Still pending: later messages go to the same conversation.
    let again = f.inbound(text_from(CUSTOMER, "alguém?")).await;
    let again = posted(&f, &again).await;
    assert_eq!(again["conversation_id"], conversations[0]["id"]);
    assert_eq!(f.conversations().len(), 1);
}

/// Posts a first message, resolves its conversation in Chatwoot, posts a
/// second one; returns (first conversation id, the second message).
async fn message_after_resolving(f: &Fixture) -> (i64, Value) {
    let first = f.inbound(text_from(CUSTOMER, "primeiro atendimento")).await;
    let first = posted(f, &first).await;
    let conversation_id = first["conversation_id"].as_i64().unwrap();
    settle(f).await;
    assert!(f.double.set_conversation_status(
        f.account_id,
        conversation_id,
        f.agent_id,
        "resolved"
    ));
    settle(f).await;
    let second = f.inbound(text_from(CUSTOMER, "voltei")).await;
    let second = posted(f, &second).await;
    (conversation_id, second)
}

fn status_of(f: &Fixture, conversation_id: i64) -> Value {
    f.conversations()
        .into_iter()
        .find(|c| id(c) == conversation_id)
        .map(|c| c["status"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn by_default_a_message_after_a_resolved_conversation_starts_a_new_one() {
    let f = Fixture::start(json!({})).await;
    let (resolved, second) = message_after_resolving(&f).await;
    settle(&f).await;
    let new = second["conversation_id"].as_i64().unwrap();
    assert_ne!(new, resolved);
    assert_eq!(status_of(&f, resolved), json!("resolved"));
    assert_eq!(status_of(&f, new), json!("open"));
    assert_eq!(chat_messages(&f.messages(resolved)).len(), 1);
    assert_eq!(chat_messages(&f.messages(new)).len(), 1);
    assert_eq!(contacts(&f).len(), 1);

    // The new conversation is the chat's from now on.
    let third = f.inbound(text_from(CUSTOMER, "e mais uma")).await;
    assert_eq!(posted(&f, &third).await["conversation_id"], json!(new));
}

#[tokio::test]
async fn with_reopen_resolved_a_resolved_conversation_is_reopened_and_gets_the_message() {
    let f = Fixture::start(json!({"reopenResolved": true})).await;
    let (resolved, second) = message_after_resolving(&f).await;
    settle(&f).await;
    assert_eq!(second["conversation_id"], json!(resolved));
    assert_eq!(f.conversations().len(), 1);
    assert_eq!(status_of(&f, resolved), json!("open"));
    let contents: Vec<_> = chat_messages(&f.messages(resolved))
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        contents,
        vec![json!("primeiro atendimento"), json!("voltei")]
    );
}

#[tokio::test]
async fn locations_contact_cards_polls_and_calls_become_readable_text() {
    let f = Fixture::start(json!({})).await;
    let location = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria",
            "location": {"latitude": -23.5613, "longitude": -46.6565, "name": "Av. Paulista"}}))
        .await;
    let card = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria",
            "contact": {"name": "João Souza", "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:João Souza\nTEL;type=CELL:+55 11 91234-5678\nEND:VCARD"}}))
        .await;
    let poll = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria",
            "poll": {"question": "Qual sabor?", "options": ["Calabresa", "Margherita"]}}))
        .await;
    let call = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "call": {"video": true}}))
        .await;

    let text = |m: &Value| m["content"].as_str().unwrap_or_default().to_owned();
    let location = text(&posted(&f, &location).await);
    assert!(location.contains("Av. Paulista"), "{location}");
    assert!(location.contains("-23.5613,-46.6565"), "{location}");
    let card = text(&posted(&f, &card).await);
    assert!(card.contains("João Souza"), "{card}");
    assert!(card.contains("+55 11 91234-5678"), "{card}");
    let poll = text(&posted(&f, &poll).await);
    assert!(poll.contains("Qual sabor?"), "{poll}");
    assert!(
        poll.contains("Calabresa") && poll.contains("Margherita"),
        "{poll}"
    );
    let call = text(&posted(&f, &call).await);
    assert!(call.to_lowercase().contains("video call"), "{call}");

    settle(&f).await;
    let messages = all_chat_messages(&f);
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m["message_type"] == json!(0)));
}

#[tokio::test]
async fn reactions_and_edits_are_threaded_under_their_target_and_deletions_delete_it() {
    let f = Fixture::start(json!({})).await;
    let target = f.inbound(text_from(CUSTOMER, "chego às 10h")).await;
    let target_message = posted(&f, &target).await;
    let threaded = json!({
        "in_reply_to": id(&target_message),
        "in_reply_to_external_id": format!("WAID:{target}"),
    });

    let reaction = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "reaction": {"targetId": target, "emoji": "👍"}}))
        .await;
    let edit = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "edit": {"targetId": target, "text": "chego às 11h"}}))
        .await;

    let reaction = posted(&f, &reaction).await;
    assert!(
        reaction["content"]
            .as_str()
            .unwrap_or_default()
            .contains('👍'),
        "{reaction}"
    );
    let edit = posted(&f, &edit).await;
    assert!(
        edit["content"]
            .as_str()
            .unwrap_or_default()
            .contains("chego às 11h"),
        "{edit}"
    );
    for message in [&reaction, &edit] {
        for key in ["in_reply_to", "in_reply_to_external_id"] {
            assert_eq!(
                message["content_attributes"][key], threaded[key],
                "{message}"
            );
        }
        assert_eq!(
            message["conversation_id"],
            target_message["conversation_id"]
        );
    }
    settle(&f).await;
    // The original is left as it was by a reaction and an edit.
    assert_eq!(posted(&f, &target).await["content"], json!("chego às 10h"));

    // Deleted for everyone: Chatwoot shows the original deleted, no new line.
    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "revoke": {"targetId": target}}))
        .await;
    f.until("the original shown deleted", || {
        all_chat_messages(&f).into_iter().find(|m| {
            m["id"] == target_message["id"] && m["content_attributes"]["deleted"] == json!(true)
        })
    })
    .await;
    settle(&f).await;
    assert_eq!(all_chat_messages(&f).len(), 3);
}
