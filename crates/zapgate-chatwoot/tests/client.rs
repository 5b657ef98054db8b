//! The typed Chatwoot client against the in-process Chatwoot double: every
//! method's effect is checked in the double's own snapshots, and every error
//! class (HTTP status, transport, timeout, address guard) is provoked for real.

use std::time::{Duration, Instant};

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};
use zapgate_chatwoot::client::{
    Attachment, ChatwootClient, ChatwootError, ChatwootHttp, DETAIL_LIMIT, MAX_RETRY_AFTER_SECS,
    Message, NewContact, NewMessage,
};
use zapgate_chatwoot::guard::{AddressPolicy, PrivateAddress};
use zapgate_core::token::Token;

const OPEN: AddressPolicy = AddressPolicy {
    allow_private: true,
};
const STRICT: AddressPolicy = AddressPolicy {
    allow_private: false,
};

struct Env {
    cw: ChatwootDouble,
    account: i64,
    admin_id: i64,
    admin_token: String,
    client: ChatwootClient,
}

fn http(policy: AddressPolicy, timeout: Duration) -> ChatwootHttp {
    ChatwootHttp::new(policy, timeout, false).expect("http client")
}

async fn env() -> Env {
    let cw = ChatwootDouble::start().await;
    let account = cw.add_account("Acme");
    let (admin_id, admin_token) =
        cw.add_user("Ana", "ana@acme.test", Role::Administrator, &[account]);
    let client = http(OPEN, Duration::from_secs(10)).account(
        &format!("{}/", cw.base_url()),
        account,
        Token::new(admin_token.clone()),
    );
    Env {
        cw,
        account,
        admin_id,
        admin_token,
        client,
    }
}

impl Env {
    /// An inbox without webhook (no deliveries to wait for).
    async fn inbox(&self, name: &str) -> i64 {
        self.client.create_inbox(name, "").await.unwrap().id
    }

    async fn contact(&self, inbox_id: i64, phone: &str) -> (i64, String) {
        let (contact, source_id) = self
            .client
            .create_contact(&NewContact {
                inbox_id,
                name: Some(format!("Contact {phone}")),
                phone_number: Some(phone.to_owned()),
                identifier: Some(jid(phone)),
                source_id: Some(jid(phone)),
            })
            .await
            .unwrap();
        (contact.id, source_id.unwrap())
    }

    /// inbox, contact, open conversation (display id).
    async fn thread(&self, phone: &str) -> (i64, i64, i64) {
        let inbox = self.inbox("WhatsApp").await;
        let (contact, source_id) = self.contact(inbox, phone).await;
        let conv = self
            .client
            .create_conversation(inbox, contact, &source_id, "open")
            .await
            .unwrap();
        (inbox, contact, conv.id)
    }

    fn contact_snapshot(&self, id: i64) -> Option<Value> {
        self.cw
            .contacts(self.account)
            .into_iter()
            .find(|c| c["id"] == id)
    }

    fn conversation_snapshot(&self, id: i64) -> Value {
        self.cw
            .conversations(self.account)
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("conversation {id} not in the double"))
    }

    fn message_snapshot(&self, conv: i64, id: i64) -> Value {
        self.cw
            .messages(self.account, conv)
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("message {id} not in the double"))
    }

    async fn incoming(&self, conv: i64, content: &str, waid: &str) -> Message {
        self.client
            .create_message(
                conv,
                NewMessage {
                    content: Some(content.to_owned()),
                    message_type: "incoming",
                    source_id: Some(format!("WAID:{waid}")),
                    ..NewMessage::default()
                },
            )
            .await
            .unwrap()
    }
}

fn jid(phone: &str) -> String {
    format!("{}@s.whatsapp.net", phone.trim_start_matches('+'))
}

fn status_of(err: &ChatwootError) -> u16 {
    err.status()
        .unwrap_or_else(|| panic!("expected an HTTP status, got {err:?}"))
}

#[tokio::test]
async fn inbox_create_get_webhook_update_and_rename() {
    let e = env().await;
    let created = e
        .client
        .create_inbox("WhatsApp +55", "https://bridge.example.com/hook/a")
        .await
        .unwrap();
    assert_eq!(created.name, "WhatsApp +55");
    assert_eq!(
        created.webhook_url.as_deref(),
        Some("https://bridge.example.com/hook/a")
    );
    assert!(
        created
            .inbox_identifier
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    );
    // Administrator on a v4.13+ double: the signing secret is shown.
    assert!(created.secret.as_deref().is_some_and(|s| !s.is_empty()));

    let stored = e.cw.inboxes(e.account);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], created.id);
    assert_eq!(stored[0]["channel_type"], "Channel::Api");
    assert_eq!(
        stored[0]["webhook_url"],
        "https://bridge.example.com/hook/a"
    );

    let got = e.client.get_inbox(created.id).await.unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(got.name, created.name);
    assert_eq!(got.inbox_identifier, created.inbox_identifier);
    assert_eq!(got.secret, created.secret);

    let updated = e
        .client
        .set_inbox_webhook(created.id, "https://bridge.example.com/hook/b")
        .await
        .unwrap();
    assert_eq!(
        updated.webhook_url.as_deref(),
        Some("https://bridge.example.com/hook/b")
    );
    assert_eq!(
        e.cw.inboxes(e.account)[0]["webhook_url"],
        "https://bridge.example.com/hook/b"
    );
    // The name is untouched by a webhook change.
    assert_eq!(e.cw.inboxes(e.account)[0]["name"], "WhatsApp +55");

    let cleared = e.client.set_inbox_webhook(created.id, "").await.unwrap();
    assert_eq!(cleared.webhook_url.as_deref(), Some(""));
    assert_eq!(e.cw.inboxes(e.account)[0]["webhook_url"], "");

    let renamed = e.client.rename_inbox(created.id, "Sales").await.unwrap();
    assert_eq!(renamed.name, "Sales");
    let stored = &e.cw.inboxes(e.account)[0];
    assert_eq!(stored["name"], "Sales");
    // Renaming leaves the (cleared) webhook alone.
    assert_eq!(stored["webhook_url"], "");

    // With the webhook cleared, traffic in the inbox calls nobody.
    let (contact, source_id) = e.contact(created.id, "+5511999990000").await;
    let conv = e
        .client
        .create_conversation(created.id, contact, &source_id, "open")
        .await
        .unwrap();
    e.incoming(conv.id, "hi", "A1").await;
    assert!(e.cw.webhooks_idle(Duration::from_secs(5)).await);
    assert!(e.cw.webhook_deliveries().is_empty());

    // A blank name is Chatwoot's model validation.
    let err = e.client.rename_inbox(created.id, " ").await.unwrap_err();
    assert_eq!(status_of(&err), 422);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Name can't be blank")
    );
    assert_eq!(err.invalid_attributes(), ["name"]);
    assert_eq!(e.cw.inboxes(e.account)[0]["name"], "Sales");
}

#[tokio::test]
async fn inbox_management_needs_an_administrator() {
    let e = env().await;
    let (_, agent_token) =
        e.cw.add_user("Bob", "bob@acme.test", Role::Agent, &[e.account]);
    let agent = http(OPEN, Duration::from_secs(10)).account(
        &e.cw.base_url(),
        e.account,
        Token::new(agent_token),
    );
    let err = agent.create_inbox("WhatsApp", "").await.unwrap_err();
    assert_eq!(status_of(&err), 401);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("You are not authorized to do this action")
    );
    assert!(!err.is_transient());
    assert!(e.cw.inboxes(e.account).is_empty());
}

#[tokio::test]
async fn contact_create_returns_contact_and_source_id() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    let (contact, source_id) = e
        .client
        .create_contact(&NewContact {
            inbox_id: inbox,
            name: Some("João".into()),
            phone_number: Some("+5511999990000".into()),
            identifier: Some("5511999990000@s.whatsapp.net".into()),
            source_id: Some("5511999990000@s.whatsapp.net".into()),
        })
        .await
        .unwrap();
    assert_eq!(contact.name.as_deref(), Some("João"));
    assert_eq!(contact.phone_number.as_deref(), Some("+5511999990000"));
    assert_eq!(
        contact.identifier.as_deref(),
        Some("5511999990000@s.whatsapp.net")
    );
    assert_eq!(source_id.as_deref(), Some("5511999990000@s.whatsapp.net"));

    let stored = e.contact_snapshot(contact.id).expect("contact stored");
    assert_eq!(stored["phone_number"], "+5511999990000");
    assert_eq!(stored["identifier"], "5511999990000@s.whatsapp.net");
    let cis = stored["contact_inboxes"].as_array().unwrap();
    assert_eq!(cis.len(), 1);
    assert_eq!(cis[0]["source_id"], "5511999990000@s.whatsapp.net");
    assert_eq!(cis[0]["inbox"]["id"], inbox);

    // Without a source_id Chatwoot picks one (a UUID for API inboxes); the
    // client hands back whatever was stored.
    let (other, generated) = e
        .client
        .create_contact(&NewContact {
            inbox_id: inbox,
            identifier: Some("lid:42".into()),
            ..NewContact::default()
        })
        .await
        .unwrap();
    let generated = generated.expect("a generated source_id");
    assert_eq!(generated.len(), 36, "{generated}");
    assert_eq!(
        e.contact_snapshot(other.id).unwrap()["contact_inboxes"][0]["source_id"],
        generated.as_str()
    );
}

#[tokio::test]
async fn contact_validation_errors_are_422_with_chatwoot_text() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    e.contact(inbox, "+5511999990000").await;
    let before = e.cw.contacts(e.account).len();

    let err = e
        .client
        .create_contact(&NewContact {
            inbox_id: inbox,
            name: Some("Twin".into()),
            phone_number: Some("+5511999990000".into()),
            ..NewContact::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatwootError::Status { status: 422, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Phone number has already been taken")
    );
    assert_eq!(err.invalid_attributes(), ["phone_number"]);
    assert!(!err.is_transient());

    let err = e
        .client
        .create_contact(&NewContact {
            inbox_id: inbox,
            phone_number: Some("5511999990001".into()),
            ..NewContact::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Phone number should be in e164 format")
    );
    assert_eq!(err.invalid_attributes(), ["phone_number"]);

    // Duplicate identifier too.
    let err = e
        .client
        .create_contact(&NewContact {
            inbox_id: inbox,
            identifier: Some(jid("+5511999990000")),
            ..NewContact::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
    assert_eq!(err.invalid_attributes(), ["identifier"]);

    // Nothing was created by the failures.
    assert_eq!(e.cw.contacts(e.account).len(), before);
}

#[tokio::test]
async fn filter_contacts_finds_every_value() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    let phones = ["+5511900000001", "+5511900000002", "+5511900000003"];
    let mut ids = Vec::new();
    for phone in phones {
        ids.push(e.contact(inbox, phone).await.0);
    }
    let ids_of = |found: &[zapgate_chatwoot::client::Contact]| {
        let mut v: Vec<i64> = found.iter().map(|c| c.id).collect();
        v.sort_unstable();
        v
    };

    // Several identifiers: each one is found (one clause per value, OR-joined;
    // Chatwoot would read only the first value of a single clause).
    let found = e
        .client
        .filter_contacts("identifier", &[jid(phones[0]), jid(phones[2])])
        .await
        .unwrap();
    assert_eq!(ids_of(&found), [ids[0], ids[2]]);
    let third = found.iter().find(|c| c.id == ids[2]).unwrap();
    assert_eq!(third.phone_number.as_deref(), Some(phones[2]));
    assert_eq!(third.identifier.as_deref(), Some(jid(phones[2]).as_str()));

    // Several phone numbers, one of them unknown.
    let values: Vec<String> = phones
        .iter()
        .map(|p| (*p).to_owned())
        .chain(["+5511900000009".to_owned()])
        .collect();
    let found = e
        .client
        .filter_contacts("phone_number", &values)
        .await
        .unwrap();
    assert_eq!(ids_of(&found), ids);

    // The values are the last clause, also when it is the only one.
    let found = e
        .client
        .filter_contacts("phone_number", &[phones[1].to_owned()])
        .await
        .unwrap();
    assert_eq!(ids_of(&found), [ids[1]]);

    // Unknown values: nothing; no values: nothing, without asking.
    assert!(
        e.client
            .filter_contacts("identifier", &["nobody@s.whatsapp.net".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    e.cw.clear_requests();
    assert!(
        e.client
            .filter_contacts("identifier", &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(e.cw.requests().is_empty());

    // An attribute Chatwoot does not know is its 422 `{"error"}`.
    let err = e
        .client
        .filter_contacts("shoe_size", &["42".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Invalid attribute key - [shoe_size]")
    );
    assert!(err.invalid_attributes().is_empty());
}

#[tokio::test]
async fn update_contact_changes_the_stored_contact() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    let (id, _) = e.contact(inbox, "+5511900000001").await;
    let (other, _) = e.contact(inbox, "+5511900000002").await;

    let updated = e
        .client
        .update_contact(
            id,
            json!({"name": "Maria", "custom_attributes": {"wa_lid": "123@lid"}}),
        )
        .await
        .unwrap();
    assert_eq!(updated.id, id);
    assert_eq!(updated.name.as_deref(), Some("Maria"));
    assert_eq!(updated.phone_number.as_deref(), Some("+5511900000001"));
    let stored = e.contact_snapshot(id).unwrap();
    assert_eq!(stored["name"], "Maria");
    assert_eq!(stored["custom_attributes"]["wa_lid"], "123@lid");

    // custom_attributes are merged, not replaced.
    e.client
        .update_contact(id, json!({"custom_attributes": {"wa_pn": "5511900000001"}}))
        .await
        .unwrap();
    let stored = e.contact_snapshot(id).unwrap();
    assert_eq!(
        stored["custom_attributes"],
        json!({"wa_lid": "123@lid", "wa_pn": "5511900000001"})
    );

    // Taking another contact's phone is refused and changes nothing.
    let err = e
        .client
        .update_contact(other, json!({"phone_number": "+5511900000001"}))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
    assert_eq!(err.invalid_attributes(), ["phone_number"]);
    assert_eq!(
        e.contact_snapshot(other).unwrap()["phone_number"],
        "+5511900000002"
    );

    let err = e
        .client
        .update_contact(99_999, json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404);
}

#[tokio::test]
async fn merge_contacts_deletes_the_mergee_and_moves_its_conversations() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    let (base, _) = e.contact(inbox, "+5511900000001").await;
    let (mergee, mergee_source) = e.contact(inbox, "+5511900000002").await;
    let conv = e
        .client
        .create_conversation(inbox, mergee, &mergee_source, "open")
        .await
        .unwrap();

    e.client.merge_contacts(base, mergee).await.unwrap();

    assert!(e.contact_snapshot(mergee).is_none(), "mergee still exists");
    let stored = e.contact_snapshot(base).expect("base kept");
    // The base wins where it has a value.
    assert_eq!(stored["phone_number"], "+5511900000001");
    let moved = e.conversation_snapshot(conv.id);
    assert_eq!(moved["meta"]["sender"]["id"], base);
    let convs = e.client.contact_conversations(base).await.unwrap();
    assert_eq!(convs.iter().map(|c| c.id).collect::<Vec<_>>(), [conv.id]);

    // Merging a deleted contact: 404.
    let err = e.client.merge_contacts(base, mergee).await.unwrap_err();
    assert_eq!(status_of(&err), 404);
    let err = e.client.merge_contacts(base, base).await.unwrap_err();
    assert_eq!(status_of(&err), 422);
}

#[tokio::test]
async fn contact_inbox_conversations_list_and_status() {
    let e = env().await;
    let inbox_a = e.inbox("WhatsApp A").await;
    let inbox_b = e.inbox("WhatsApp B").await;
    let (contact, source_a) = e.contact(inbox_a, "+5511900000001").await;

    let source_b = e
        .client
        .create_contact_inbox(contact, inbox_b, "b:5511900000001")
        .await
        .unwrap();
    assert_eq!(source_b, "b:5511900000001");
    let cis = e.contact_snapshot(contact).unwrap()["contact_inboxes"].clone();
    let mut pairs: Vec<(i64, String)> = cis
        .as_array()
        .unwrap()
        .iter()
        .map(|ci| {
            (
                ci["inbox"]["id"].as_i64().unwrap(),
                ci["source_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [(inbox_a, source_a.clone()), (inbox_b, source_b.clone())]
    );
    // Same (contact, inbox, source_id) again: idempotent.
    assert_eq!(
        e.client
            .create_contact_inbox(contact, inbox_b, "b:5511900000001")
            .await
            .unwrap(),
        source_b
    );
    // The source_id is unique per inbox.
    let (someone, _) = e.contact(inbox_a, "+5511900000002").await;
    let err = e
        .client
        .create_contact_inbox(someone, inbox_b, "b:5511900000001")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);

    // A pending conversation in B, an open one in A.
    let pending = e
        .client
        .create_conversation(inbox_b, contact, &source_b, "pending")
        .await
        .unwrap();
    assert_eq!(pending.status, "pending");
    assert_eq!(pending.inbox_id, inbox_b);
    let stored = e.conversation_snapshot(pending.id);
    assert_eq!(stored["status"], "pending");
    assert_eq!(stored["contact_inbox"]["source_id"], source_b.as_str());
    assert_eq!(stored["meta"]["sender"]["id"], contact);
    let open = e
        .client
        .create_conversation(inbox_a, contact, &source_a, "open")
        .await
        .unwrap();
    assert_eq!(open.status, "open");
    assert_ne!(open.id, pending.id);

    let mut all: Vec<(i64, i64)> = e
        .client
        .contact_conversations(contact)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.id, c.inbox_id))
        .collect();
    all.sort_unstable();
    assert_eq!(all, [(pending.id, inbox_b), (open.id, inbox_a)]);
    assert!(
        e.client
            .contact_conversations(someone)
            .await
            .unwrap()
            .is_empty()
    );

    let ids = |list: Vec<zapgate_chatwoot::client::Conversation>| {
        list.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let list = |inbox, status| e.client.list_conversations(inbox, status, 1);
    assert_eq!(ids(list(inbox_b, "pending").await.unwrap()), [pending.id]);
    assert!(list(inbox_b, "open").await.unwrap().is_empty());
    assert!(list(inbox_a, "pending").await.unwrap().is_empty());
    assert_eq!(ids(list(inbox_a, "open").await.unwrap()), [open.id]);
    assert_eq!(ids(list(inbox_b, "all").await.unwrap()), [pending.id]);

    // toggle_status moves it, visibly in the double and in the lists.
    e.client.toggle_status(pending.id, "open").await.unwrap();
    assert_eq!(e.conversation_snapshot(pending.id)["status"], "open");
    assert_eq!(ids(list(inbox_b, "open").await.unwrap()), [pending.id]);
    assert!(list(inbox_b, "pending").await.unwrap().is_empty());
    e.client.toggle_status(open.id, "resolved").await.unwrap();
    assert_eq!(e.conversation_snapshot(open.id)["status"], "resolved");
    assert_eq!(ids(list(inbox_a, "resolved").await.unwrap()), [open.id]);
    // Same status again is accepted and changes nothing.
    e.client.toggle_status(open.id, "resolved").await.unwrap();
    assert_eq!(e.conversation_snapshot(open.id)["status"], "resolved");

    let err = e.client.toggle_status(99_999, "open").await.unwrap_err();
    assert_eq!(status_of(&err), 404);
}

#[tokio::test]
async fn create_message_json_incoming_with_reply_target() {
    let e = env().await;
    let (_, contact, conv) = e.thread("+5511900000001").await;

    let first = e.incoming(conv, "Oi", "3EB0AAA").await;
    assert_eq!(first.message_type, 0);
    assert_eq!(first.content.as_deref(), Some("Oi"));
    assert_eq!(first.source_id.as_deref(), Some("WAID:3EB0AAA"));
    assert!(!first.private);
    assert_eq!(first.status.as_deref(), Some("sent"));

    let reply = e
        .client
        .create_message(
            conv,
            NewMessage {
                content: Some("Respondendo".into()),
                message_type: "incoming",
                source_id: Some("WAID:3EB0BBB".into()),
                content_attributes: Some(json!({"in_reply_to_external_id": "WAID:3EB0AAA"})),
                ..NewMessage::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.content_attributes["in_reply_to"], first.id);
    assert_eq!(
        reply.content_attributes["in_reply_to_external_id"],
        "WAID:3EB0AAA"
    );

    let stored = e.message_snapshot(conv, reply.id);
    assert_eq!(stored["message_type"], 0);
    assert_eq!(stored["source_id"], "WAID:3EB0BBB");
    assert_eq!(stored["content"], "Respondendo");
    assert_eq!(stored["content_attributes"]["in_reply_to"], first.id);
    // Incoming: the sender is the conversation's contact.
    assert_eq!(stored["sender"]["id"], contact);
    assert_eq!(stored["sender"]["type"], "contact");

    // An outgoing private note by the token owner.
    let note = e
        .client
        .create_message(
            conv,
            NewMessage {
                content: Some("nota".into()),
                message_type: "outgoing",
                private: true,
                ..NewMessage::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(note.message_type, 1);
    assert!(note.private);
    assert_eq!(note.source_id, None);
    let stored = e.message_snapshot(conv, note.id);
    assert_eq!(stored["private"], true);
    assert_eq!(stored["sender"]["id"], e.admin_id);
    assert_eq!(stored["sender"]["type"], "user");

    let err = e
        .client
        .create_message(
            99_999,
            NewMessage {
                content: Some("x".into()),
                message_type: "incoming",
                ..NewMessage::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404);
}

#[tokio::test]
async fn create_message_multipart_stores_both_attachments() {
    let e = env().await;
    let (_, _, conv) = e.thread("+5511900000001").await;
    let target = e.incoming(conv, "original", "ORIG").await;

    let png: Vec<u8> = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8, 1, 2, 255, 254]].concat();
    let pdf: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let message = e
        .client
        .create_message(
            conv,
            NewMessage {
                content: Some("duas coisas".into()),
                message_type: "incoming",
                source_id: Some("WAID:MEDIA1".into()),
                content_attributes: Some(json!({"in_reply_to_external_id": "WAID:ORIG"})),
                attachments: vec![
                    Attachment {
                        file_name: "photo.png".into(),
                        mimetype: "image/png".into(),
                        data: png.clone(),
                    },
                    Attachment {
                        file_name: "doc.pdf".into(),
                        mimetype: "application/pdf".into(),
                        data: pdf.clone(),
                    },
                ],
                ..NewMessage::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(message.message_type, 0);
    assert_eq!(message.content.as_deref(), Some("duas coisas"));
    assert_eq!(message.source_id.as_deref(), Some("WAID:MEDIA1"));
    assert!(!message.private);
    // content_attributes travel as a JSON string in multipart and still resolve.
    assert_eq!(message.content_attributes["in_reply_to"], target.id);

    let stored = e.message_snapshot(conv, message.id);
    let atts = stored["attachments"]
        .as_array()
        .expect("attachments stored");
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0]["file_type"], "image");
    assert_eq!(atts[0]["file_size"], png.len());
    assert_eq!(atts[1]["file_type"], "file");
    assert_eq!(atts[1]["file_size"], pdf.len());

    let plain = reqwest::Client::new();
    for (att, (name, mime, bytes)) in atts.iter().zip([
        ("photo.png", "image/png", &png),
        ("doc.pdf", "application/pdf", &pdf),
    ]) {
        let data_url = att["data_url"].as_str().unwrap();
        assert!(data_url.ends_with(&format!("/{name}")), "{data_url}");
        let response = plain.get(data_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], mime);
        assert_eq!(&response.bytes().await.unwrap()[..], &bytes[..]);
    }
}

#[tokio::test]
async fn messages_after_returns_later_messages_in_order() {
    let e = env().await;
    let (_, _, conv) = e.thread("+5511900000001").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(e.incoming(conv, &format!("m{i}"), &format!("W{i}")).await);
    }

    let later = e.client.messages_after(conv, sent[1].id).await.unwrap();
    assert_eq!(
        later.iter().map(|m| m.id).collect::<Vec<_>>(),
        sent[2..].iter().map(|m| m.id).collect::<Vec<_>>()
    );
    assert_eq!(
        later
            .iter()
            .map(|m| m.content.clone().unwrap())
            .collect::<Vec<_>>(),
        ["m2", "m3", "m4"]
    );
    assert!(later.iter().all(|m| m.message_type == 0));
    assert_eq!(later[0].source_id.as_deref(), Some("WAID:W2"));

    // From 0: everything; after the last: nothing.
    assert_eq!(e.client.messages_after(conv, 0).await.unwrap().len(), 5);
    assert!(
        e.client
            .messages_after(conv, sent[4].id)
            .await
            .unwrap()
            .is_empty()
    );

    // An agent's status change adds an activity message (type 2) in order.
    e.client.toggle_status(conv, "resolved").await.unwrap();
    let later = e.client.messages_after(conv, sent[4].id).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].message_type, 2);
    assert!(later[0].id > sent[4].id);
}

#[tokio::test]
async fn update_message_status_is_visible_in_the_double() {
    let e = env().await;
    let (_, _, conv) = e.thread("+5511900000001").await;
    let agent =
        e.cw.agent_reply(e.account, conv, e.admin_id, "Olá!", vec![], false, None);
    let agent_id = agent["id"].as_i64().unwrap();
    let outgoing = e
        .client
        .create_message(
            conv,
            NewMessage {
                content: Some("from the phone".into()),
                message_type: "outgoing",
                source_id: Some("WAID:FROMME".into()),
                ..NewMessage::default()
            },
        )
        .await
        .unwrap();

    e.client
        .update_message_status(conv, agent_id, "delivered", None)
        .await
        .unwrap();
    let stored = e.message_snapshot(conv, agent_id);
    assert_eq!(stored["status"], "delivered");
    assert!(stored["content_attributes"].get("external_error").is_none());

    e.client
        .update_message_status(
            conv,
            outgoing.id,
            "failed",
            Some("number is not on WhatsApp"),
        )
        .await
        .unwrap();
    let stored = e.message_snapshot(conv, outgoing.id);
    assert_eq!(stored["status"], "failed");
    assert_eq!(
        stored["content_attributes"]["external_error"],
        "number is not on WhatsApp"
    );
    // The other message is untouched.
    assert_eq!(e.message_snapshot(conv, agent_id)["status"], "delivered");

    // Read, then a late "delivered": Chatwoot ignores the downgrade (200).
    e.client
        .update_message_status(conv, agent_id, "read", None)
        .await
        .unwrap();
    e.client
        .update_message_status(conv, agent_id, "delivered", None)
        .await
        .unwrap();
    assert_eq!(e.message_snapshot(conv, agent_id)["status"], "read");

    let err = e
        .client
        .update_message_status(conv, 99_999, "read", None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404);
    let err = e
        .client
        .update_message_status(conv, agent_id, "seen", None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
}

#[tokio::test]
async fn http_errors_are_classified() {
    let e = env().await;
    let http = http(OPEN, Duration::from_secs(10));

    // Unknown token.
    let stranger = http.account(&e.cw.base_url(), e.account, Token::new("not-a-token"));
    let err = stranger.get_inbox(1).await.unwrap_err();
    assert!(
        matches!(err, ChatwootError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Invalid Access Token")
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("HTTP 401"), "{err}");

    // A valid token for another account.
    let other = e.cw.add_account("Other");
    let outsider = http.account(&e.cw.base_url(), other, Token::new(e.admin_token.clone()));
    let err = outsider.create_inbox("x", "").await.unwrap_err();
    assert_eq!(status_of(&err), 401);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("You are not authorized to access this account")
    );
    assert!(e.cw.inboxes(other).is_empty());

    // 404: a resource that is gone is not worth retrying.
    let err = e.client.get_inbox(99_999).await.unwrap_err();
    assert_eq!(status_of(&err), 404);
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Resource could not be found")
    );
    assert!(!err.is_transient());

    // 500 from Rails: transient, and the next call goes through.
    e.cw.fail_next(1, 500);
    let err = e.client.create_inbox("WhatsApp", "").await.unwrap_err();
    assert_eq!(status_of(&err), 500);
    assert!(err.is_transient());
    assert_eq!(
        err.chatwoot_message().as_deref(),
        Some("Internal Server Error")
    );
    assert!(e.cw.inboxes(e.account).is_empty());
    let inbox = e.client.create_inbox("WhatsApp", "").await.unwrap();

    // 429 from rack-attack: plain text, transient.
    e.cw.fail_next(1, 429);
    let err = e.client.get_inbox(inbox.id).await.unwrap_err();
    assert_eq!(status_of(&err), 429);
    assert!(err.is_transient());
    assert_eq!(err.chatwoot_message(), None);
    assert_eq!(err.detail(), "Retry later\n");

    // 502 from the proxy: an HTML page, transient.
    e.cw.fail_next(1, 502);
    let err = e.client.get_inbox(inbox.id).await.unwrap_err();
    assert_eq!(status_of(&err), 502);
    assert!(err.is_transient());
    assert_eq!(err.chatwoot_message(), None);
    assert!(err.detail().contains("502 Bad Gateway"));

    assert_eq!(e.client.get_inbox(inbox.id).await.unwrap().id, inbox.id);
}

#[tokio::test]
async fn down_is_unreachable_and_transient() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    e.cw.set_down(true);
    let err = e.client.get_inbox(inbox).await.unwrap_err();
    assert!(matches!(err, ChatwootError::Unreachable(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.status(), None);
    // A fresh client (no pooled connection) sees the same.
    let fresh = http(OPEN, Duration::from_secs(10)).account(
        &e.cw.base_url(),
        e.account,
        Token::new(e.admin_token.clone()),
    );
    let err = fresh.get_inbox(inbox).await.unwrap_err();
    assert!(matches!(err, ChatwootError::Unreachable(_)), "{err:?}");

    e.cw.set_down(false);
    assert_eq!(e.client.get_inbox(inbox).await.unwrap().id, inbox);
}

#[tokio::test]
async fn slow_chatwoot_is_a_timeout() {
    let e = env().await;
    let inbox = e.inbox("WhatsApp").await;
    let impatient = http(OPEN, Duration::from_millis(300)).account(
        &e.cw.base_url(),
        e.account,
        Token::new(e.admin_token.clone()),
    );
    e.cw.set_delay(Duration::from_secs(2));
    let started = Instant::now();
    let err = impatient.get_inbox(inbox).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, ChatwootError::Timeout);
    assert!(err.is_transient());
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(err.detail(), "timed out");

    e.cw.set_delay(Duration::ZERO);
    assert_eq!(impatient.get_inbox(inbox).await.unwrap().id, inbox);
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request() {
    let e = env().await;
    let strict = http(STRICT, Duration::from_secs(5));
    let port = e.cw.addr().port();
    let token = || Token::new(e.admin_token.clone());

    let literal = strict.account(&format!("http://127.0.0.1:{port}"), e.account, token());
    let err = literal.create_inbox("WhatsApp", "").await.unwrap_err();
    assert_eq!(
        err,
        ChatwootError::Private(PrivateAddress("127.0.0.1".parse().unwrap()))
    );
    assert!(!err.is_transient());
    assert_eq!(err.status(), None);
    assert_eq!(err.detail(), "127.0.0.1 is a private address");

    let v6 = strict.account(&format!("http://[::1]:{port}"), e.account, token());
    let err = v6.get_inbox(1).await.unwrap_err();
    assert!(
        matches!(err, ChatwootError::Private(PrivateAddress(ip)) if ip.is_loopback()),
        "{err:?}"
    );

    // A name is checked after resolution.
    let named = strict.account(&format!("http://localhost:{port}"), e.account, token());
    let err = named.create_inbox("WhatsApp", "").await.unwrap_err();
    assert!(
        matches!(err, ChatwootError::Private(PrivateAddress(ip)) if ip.is_loopback()),
        "{err:?}"
    );
    assert!(!err.is_transient());

    assert!(e.cw.requests().is_empty(), "{:?}", e.cw.requests());
    assert!(e.cw.inboxes(e.account).is_empty());
}

#[tokio::test]
async fn detail_is_cut_at_the_limit() {
    let e = env().await;
    let long_key = "k".repeat(2 * DETAIL_LIMIT);
    let err = e
        .client
        .filter_contacts(&long_key, &["x".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 422);
    let ChatwootError::Status { body, .. } = &err else {
        unreachable!()
    };
    assert!(body.chars().count() > DETAIL_LIMIT);
    let detail = err.detail();
    assert_eq!(detail.chars().count(), DETAIL_LIMIT);
    assert!(body.starts_with(&detail));
    // The full Chatwoot message is still available to code.
    assert_eq!(
        err.chatwoot_message(),
        Some(format!("Invalid attribute key - [{long_key}]"))
    );
    // The display form carries the cut detail, not the whole body.
    assert!(!err.to_string().contains(&long_key));

    // Cut by characters, not bytes.
    let err = ChatwootError::Unexpected("é".repeat(DETAIL_LIMIT + 10));
    assert_eq!(err.detail(), "é".repeat(DETAIL_LIMIT));
}

#[tokio::test]
async fn retry_after_is_clamped_to_an_hour() {
    use std::io::{Read, Write};
    // A receiver asking to be left alone for ~3 years on every request.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 99999999\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let client =
        http(OPEN, Duration::from_secs(5)).account(&format!("http://{addr}"), 1, Token::new("t"));
    let err = client.get_inbox(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            ChatwootError::Status {
                status: 429,
                retry_after: Some(MAX_RETRY_AFTER_SECS),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(MAX_RETRY_AFTER_SECS, 3600);
}
