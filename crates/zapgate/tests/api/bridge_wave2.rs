//! The Chatwoot second wave, continued: replies mark the customer's
//! messages read (`markReadOnReply`) and contacts get their WhatsApp
//! picture (`contactAvatars`); the bot contact (`botContact`).

use serde_json::{Value, json};
use zapgate_core::time::now_ms;

use crate::{
    bridge::{CUSTOMER, Fixture, chat_messages, loop_until_outbox},
    bridge_faults::integration_info,
    bridge_outbound::{agent_says, customer_writes, sandbox},
    bridge_wave::set_again,
    groups::data_url,
};

/// One list of the sandbox phone's chats view (`reads`, `historyRequests`...).
pub(crate) async fn chats_view(f: &Fixture, list: &str) -> Vec<Value> {
    let reply = f
        .server
        .get(
            &format!("/api/sandbox/{}/chats", f.instance),
            Some(&f.token),
        )
        .await;
    reply.body[list].as_array().cloned().unwrap_or_default()
}

/// The read receipts the sandbox phone sent, oldest first.
async fn reads(f: &Fixture) -> Vec<Value> {
    chats_view(f, "reads").await
}

#[tokio::test]
async fn an_agent_reply_marks_the_customers_messages_read_unless_turned_off() {
    let f = Fixture::start(json!({})).await;
    assert_eq!(
        integration_info(&f).await["options"]["markReadOnReply"],
        json!(true)
    );
    let chat = customer_writes(&f).await;
    let second = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "alguém?"}))
        .await;
    f.until("the second message in Chatwoot", || {
        (chat_messages(&f.messages(chat.conversation_id)).len() == 2).then_some(())
    })
    .await;
    f.quiesce().await;
    assert!(reads(&f).await.is_empty(), "nothing read before a reply");

    // The reply reads both messages, in one receipt, before it is sent.
    agent_says(&f, chat.conversation_id, "Estou aqui");
    loop_until_outbox(&f, 1).await;
    let read = reads(&f).await;
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0]["chat"], json!(format!("{CUSTOMER}@s.whatsapp.net")));
    assert_eq!(read[0]["messageIds"], json!([chat.wa_id, second]));

    // A second reply with nothing new from the customer sends no receipt.
    agent_says(&f, chat.conversation_id, "Pode falar");
    loop_until_outbox(&f, 2).await;
    assert_eq!(reads(&f).await.len(), 1);

    // Turned off: the reply goes, the customer's message stays unread.
    let set = set_again(&f, json!({"markReadOnReply": false})).await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    assert_eq!(
        integration_info(&f).await["options"]["markReadOnReply"],
        json!(false)
    );
    set_again(&f, json!({"markReadOnReply": "no"}))
        .await
        .assert_error(400, "invalid body: markReadOnReply must be a boolean");
    let third = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "obrigada"}))
        .await;
    let conversation = f
        .until("the third message in Chatwoot", || {
            f.conversations().into_iter().find_map(|c| {
                let id = c["id"].as_i64().unwrap();
                f.messages(id)
                    .iter()
                    .any(|m| m["source_id"] == json!(format!("WAID:{third}")))
                    .then_some(id)
            })
        })
        .await;
    f.quiesce().await;
    agent_says(&f, conversation, "De nada");
    loop_until_outbox(&f, 3).await;
    assert_eq!(reads(&f).await.len(), 1, "{:?}", reads(&f).await);
}

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 9,
];
const OTHER: &str = "5511955554444";

/// `number`'s own sandbox phone, with a profile picture; returns its URL.
async fn phone_with_picture(f: &Fixture, name: &str, number: &str) -> String {
    let (_, account) = f.server.create_account(name, 5).await;
    let token = f.server.create_instance(&account, name).await;
    f.server.pair(&token, name, number).await;
    let updated = f
        .server
        .post(
            &format!("/api/profile/account/{name}"),
            Some(&token),
            json!({"picture": data_url(JPEG)}),
        )
        .await;
    assert_eq!(updated.status.as_u16(), 200, "{}", updated.text);
    let own = f
        .server
        .get(&format!("/api/profile/getAccount/{name}"), Some(&token))
        .await;
    own.body["profile"]["pictureUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no picture: {}", own.text))
        .to_owned()
}

fn contact_of(f: &Fixture, number: &str) -> Option<Value> {
    f.double
        .contacts(f.account_id)
        .into_iter()
        .find(|c| c["phone_number"] == json!(format!("+{number}")))
}

/// The double's `PUT .../contacts/{id}` requests so far.
fn contact_updates(f: &Fixture) -> usize {
    f.double
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/contacts/"))
        .count()
}

#[tokio::test]
async fn a_new_contact_gets_its_whatsapp_picture_off_the_message_path() {
    let f = Fixture::start(json!({})).await;
    assert_eq!(
        integration_info(&f).await["options"]["contactAvatars"],
        json!(true)
    );
    let picture = phone_with_picture(&f, "cliente", CUSTOMER).await;
    f.double.clear_requests();

    let chat = customer_writes(&f).await;
    f.until("the contact's avatar", || {
        contact_of(&f, CUSTOMER).filter(|c| c["thumbnail"] == json!(picture))
    })
    .await;
    f.quiesce().await;
    assert_eq!(contact_updates(&f), 1, "one avatar_url update");
    assert_eq!(
        chat_messages(&f.messages(chat.conversation_id))[0]["sender"]["thumbnail"],
        json!(picture),
        "messages show the contact with its picture"
    );

    // A later message costs its one Chatwoot call and nothing else: the
    // picture is not looked at again the same day.
    f.double.clear_requests();
    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "e aí?"}))
        .await;
    f.until("the second message", || {
        (chat_messages(&f.messages(chat.conversation_id)).len() == 2).then_some(())
    })
    .await;
    f.quiesce().await;
    let requests: Vec<String> = f
        .double
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("POST "), "{requests:?}");

    // Turned off: a new contact keeps Chatwoot's default avatar.
    let set = set_again(&f, json!({"contactAvatars": false})).await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    assert_eq!(
        integration_info(&f).await["options"]["contactAvatars"],
        json!(false)
    );
    set_again(&f, json!({"contactAvatars": 1}))
        .await
        .assert_error(400, "invalid body: contactAvatars must be a boolean");
    phone_with_picture(&f, "outro", OTHER).await;
    f.double.clear_requests();
    f.inbound(json!({"from": OTHER, "pushName": "João", "text": "oi"}))
        .await;
    f.until("the other customer's contact", || contact_of(&f, OTHER))
        .await;
    f.quiesce().await;
    assert_eq!(contact_of(&f, OTHER).unwrap()["thumbnail"], json!(""));
    assert_eq!(contact_updates(&f), 0);
}

/// The bot's messages (incoming, from the bot contact) in `conversation`.
fn bot_lines(f: &Fixture, conversation: i64) -> Vec<Value> {
    f.messages(conversation)
        .into_iter()
        .filter(|m| m["message_type"] == json!(0))
        .collect()
}

/// Waits for a bot line containing `text` beyond the first `seen` lines.
async fn bot_says(f: &Fixture, conversation: i64, seen: usize, text: &str) -> Value {
    f.until(&format!("the bot saying {text:?}"), || {
        bot_lines(f, conversation)
            .into_iter()
            .skip(seen)
            .find(|m| m["content"].as_str().is_some_and(|c| c.contains(text)))
    })
    .await
}

/// The bot contact's conversation, once it has one.
async fn bot_conversation(f: &Fixture, name: &str) -> i64 {
    f.until("the bot's conversation", || {
        f.conversations()
            .into_iter()
            .find(|c| c["meta"]["sender"]["name"] == json!(name))
    })
    .await["id"]
        .as_i64()
        .unwrap()
}

fn qr_codes(f: &Fixture, conversation: i64) -> Vec<i64> {
    bot_lines(f, conversation)
        .into_iter()
        .filter(|m| m["attachments"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_bot_contact_shows_the_connection_and_takes_commands_never_reaching_whatsapp() {
    let f = Fixture::start(json!({"botContact": true, "botName": "Central"})).await;
    let options = integration_info(&f).await["options"].clone();
    assert_eq!(options["botContact"], json!(true));
    assert_eq!(options["botName"], json!("Central"));
    set_again(&f, json!({"botContact": true, "botName": ""}))
        .await
        .assert_error(
            400,
            "invalid body: botName must be a non-empty string of at most 100 characters",
        );
    // Nothing to say yet: no bot contact.
    f.quiesce().await;
    assert!(f.double.contacts(f.account_id).is_empty());

    // The phone drops and comes back: the bot's conversation tells.
    sandbox(&f, "disconnect", json!({})).await;
    let conversation = bot_conversation(&f, "Central").await;
    bot_says(&f, conversation, 0, "disconnected").await;
    sandbox(&f, "reconnect", json!({})).await;
    bot_says(&f, conversation, 1, "connected as +5511999990000").await;

    let mut seen = bot_lines(&f, conversation).len();
    for (command, answer) in [
        ("/status", "connected as +5511999990000"),
        ("/help", "/connect <number>"),
        ("/connect", "already connected"),
        ("/disconnect", "/logout"),
        ("/nope", "Unknown command /nope"),
        ("/logout", "Logged out"),
    ] {
        agent_says(&f, conversation, command);
        bot_says(&f, conversation, seen, answer).await;
        seen = bot_lines(&f, conversation).len();
    }
    // Not a command: left alone.
    agent_says(&f, conversation, "bom dia, equipe");

    // Pairing: a QR code as an image, replaced by the next one (the
    // instance's connect route), and a pairing code when asked.
    agent_says(&f, conversation, "/connect");
    let first = f
        .until("a QR code", || qr_codes(&f, conversation).first().copied())
        .await;
    let reply = f
        .server
        .get(
            &format!("/api/instance/connect/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    f.until("the QR code replaced", || {
        let codes = qr_codes(&f, conversation);
        (codes.len() == 1 && codes[0] != first).then_some(())
    })
    .await;
    let seen = bot_lines(&f, conversation).len();
    agent_says(&f, conversation, "/connect +55 11 99999-0000");
    bot_says(&f, conversation, seen, "Pairing code").await;

    // Nothing of that conversation went to WhatsApp.
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
    assert!(
        chat_messages(&f.messages(conversation))
            .iter()
            .all(|m| m["status"] != json!("failed")),
        "{:?}",
        f.messages(conversation)
    );
}

/// The first page of an Ogg/Opus stream (the `OpusHead` packet), then audio.
fn ogg_opus() -> Vec<u8> {
    let mut data = b"OggS\0\x02".to_vec();
    data.extend([0u8; 20]); // granule, serial, sequence, checksum
    data.extend([1u8, 19]); // one segment of 19 bytes
    data.extend(b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0");
    data.extend(b"OggS opus audio pages ".repeat(30));
    data
}

#[tokio::test]
async fn audio_recorded_in_chatwoot_arrives_as_a_voice_note_when_it_is_ogg_opus() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let voice = ogg_opus();
    let webm = b"\x1aE\xdf\xa3 webm opus recording ".repeat(30);
    // Whatever type the browser gave it, Ogg/Opus bytes go as a voice note;
    // WebM (no pure-Rust remuxer yet) goes as an audio file.
    for (name, mimetype, bytes) in [
        ("audio.ogg", "application/ogg", voice.clone()),
        ("audio.webm", "audio/webm", webm.clone()),
    ] {
        f.double.agent_reply(
            f.account_id,
            chat.conversation_id,
            f.agent_id,
            "",
            vec![(name.into(), mimetype.into(), bytes)],
            false,
            None,
        );
    }
    let sent = loop_until_outbox(&f, 2).await;
    assert_eq!(sent[0]["media"]["kind"], json!("audio"), "{}", sent[0]);
    assert_eq!(
        sent[0]["media"]["mimetype"],
        json!("audio/ogg; codecs=opus")
    );
    assert_eq!(sent[0]["media"]["size"], json!(voice.len()));
    assert_eq!(sent[1]["media"]["kind"], json!("audio"), "{}", sent[1]);
    assert_eq!(sent[1]["media"]["mimetype"], json!("audio/webm"));
}

const MINUTE: i64 = 60_000;

fn offline_posts(f: &Fixture, conversation: i64) -> usize {
    bot_lines(f, conversation)
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("offline for more than"))
        })
        .count()
}

#[tokio::test]
async fn the_bot_tells_once_per_outage_when_the_instance_stays_offline() {
    let f = Fixture::start(json!({"botContact": true})).await;
    assert_eq!(
        integration_info(&f).await["options"]["botOfflineMinutes"],
        json!(5)
    );
    for wrong in [json!(1441), json!(-5), json!("5")] {
        set_again(&f, json!({"botContact": true, "botOfflineMinutes": wrong}))
            .await
            .assert_error(
                400,
                "invalid body: botOfflineMinutes must be an integer from 0 (off) to 1440",
            );
    }
    // The check runs every 30 s; the test runs it at the times it wants.
    let bridge = f.server.bridge();
    let check = |at: i64| {
        let bridge = bridge.clone();
        async move { bridge.post_offline_notices(at).await.unwrap() }
    };
    assert_eq!(
        check(now_ms() + 60 * MINUTE).await,
        0,
        "connected: no outage"
    );

    let before = now_ms();
    sandbox(&f, "disconnect", json!({})).await;
    let after = now_ms();
    let conversation = bot_conversation(&f, f.instance).await;
    bot_says(&f, conversation, 0, "disconnected").await;
    // Five minutes are not more than five.
    assert_eq!(check(before + 5 * MINUTE).await, 0);
    f.quiesce().await;
    assert_eq!(offline_posts(&f, conversation), 0);
    // Past them: one post, however often (or by however many processes) it
    // is checked again during the outage.
    assert_eq!(check(after + 5 * MINUTE + 1).await, 1);
    bot_says(&f, conversation, 1, "offline for more than 5 minutes").await;
    assert_eq!(check(after + 6 * MINUTE).await, 0);
    assert_eq!(check(after + 24 * 60 * MINUTE).await, 0);
    f.quiesce().await;
    assert_eq!(offline_posts(&f, conversation), 1);

    // Back: the outage is over. The next one is told again, after its own
    // five minutes.
    sandbox(&f, "reconnect", json!({})).await;
    bot_says(&f, conversation, 2, "connected as").await;
    assert_eq!(check(now_ms() + 60 * MINUTE).await, 0);
    let before = now_ms();
    sandbox(&f, "disconnect", json!({})).await;
    assert_eq!(check(before + 5 * MINUTE).await, 0);
    assert_eq!(check(now_ms() + 5 * MINUTE + 1).await, 1);
    f.until("the second outage told", || {
        (offline_posts(&f, conversation) == 2).then_some(())
    })
    .await;

    // 0 turns it off.
    let set = set_again(&f, json!({"botContact": true, "botOfflineMinutes": 0})).await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);
    assert_eq!(
        integration_info(&f).await["options"]["botOfflineMinutes"],
        json!(0)
    );
    sandbox(&f, "reconnect", json!({})).await;
    sandbox(&f, "disconnect", json!({})).await;
    assert_eq!(check(now_ms() + 24 * 60 * MINUTE).await, 0);
    f.quiesce().await;
    assert_eq!(offline_posts(&f, conversation), 2);
}
