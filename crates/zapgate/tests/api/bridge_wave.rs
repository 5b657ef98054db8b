//! The Chatwoot second wave end to end: the `options` of `set` (ignored
//! chats, signature format), agent typing, CSAT and bot messages, deletions
//! for everyone, Chatwoot's Retry button, and group joins and leaves.

use chatwoot_double::Role;
use serde_json::{Value, json};

use crate::{
    bridge::{CUSTOMER, Fixture, chat_messages, loop_until_outbox},
    bridge_faults::integration_info,
    bridge_inbound::chat,
    bridge_outbound::{agent_says, customer_writes, message, sandbox, until_status},
    harness::Env,
};

const GROUP: &str = "120363000000000001@g.us";
const OTHER: &str = "5511955554444";

/// `set` again with the integration's own credentials and `extra`.
pub(crate) async fn set_again(f: &Fixture, extra: Value) -> crate::harness::Reply {
    let current = integration_info(f).await;
    let mut body = json!({
        "chatwootBaseUrl": current["chatwoot_base_url"],
        "chatwootAccountId": current["chatwoot_account_id"],
        "chatwootApiToken": current["chatwoot_api_token"],
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    f.server
        .post(
            &format!("/api/chatwoot/set/{}", f.instance),
            Some(&f.token),
            body,
        )
        .await
}

/// Every message of every conversation of the account.
fn all_messages(f: &Fixture) -> Vec<Value> {
    f.conversations()
        .iter()
        .flat_map(|c| f.messages(c["id"].as_i64().unwrap()))
        .collect()
}

/// The text sends in the outbox (not revokes or presences).
async fn texts(f: &Fixture) -> Vec<Value> {
    f.outbox()
        .await
        .into_iter()
        .filter(|m| m["kind"] == json!("text"))
        .collect()
}

#[tokio::test]
async fn options_are_stored_listed_beside_the_seed_fields_and_refused_by_name() {
    let f = Fixture::start(json!({
        "ignoreJids": ["+55 11 98888-7777", "@g.us"],
        "signDelimiter": " — ",
        "signFormat": "_{agent}_",
    }))
    .await;
    let info = integration_info(&f).await;
    assert_eq!(
        info["options"],
        json!({
            "ignoreJids": ["5511988887777@s.whatsapp.net", "@g.us"],
            "signDelimiter": " — ",
            "signFormat": "_{agent}_",
            "importMessagesDays": 0,
            "importContacts": false,
            "markReadOnReply": true,
            "contactAvatars": true,
            "botContact": false,
            "botName": null,
            "botOfflineMinutes": 5,
        })
    );
    let mut keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bridge_integration_id",
            "chatwoot_account_id",
            "chatwoot_api_token",
            "chatwoot_base_url",
            "chatwoot_inbox_id",
            "chatwoot_inbox_name",
            "created_at",
            "ignore_groups",
            "instance_name",
            "last_error",
            "options",
            "reopen_resolved",
            "sign_messages",
            "start_as_pending",
            "status",
        ]
    );

    for (field, value, message) in [
        (
            "ignoreJids",
            json!(["5511988887777", "@c.us"]),
            "invalid body: ignoreJids[1] must be a phone number, a JID or one of @g.us, @s.whatsapp.net, @lid",
        ),
        (
            "ignoreJids",
            json!({"jid": "x"}),
            "invalid body: ignoreJids must be an array of at most 500 phone numbers or JIDs",
        ),
        (
            "signDelimiter",
            json!("x".repeat(21)),
            "invalid body: signDelimiter must be a string of at most 20 characters",
        ),
        (
            "signFormat",
            json!("*Atendente*"),
            "invalid body: signFormat must be a string of at most 200 characters containing {agent}",
        ),
    ] {
        set_again(&f, json!({ field: value }))
            .await
            .assert_error(400, message);
    }
    // A refused body changed nothing; a `set` without options restores the defaults.
    assert_eq!(integration_info(&f).await["options"], info["options"]);
    let reset = set_again(&f, json!({})).await;
    assert_eq!(reset.status.as_u16(), 201, "{}", reset.text);
    assert_eq!(
        integration_info(&f).await["options"],
        json!({"ignoreJids": [], "signDelimiter": "\n", "signFormat": "*{agent}*:", "importMessagesDays": 0, "importContacts": false, "markReadOnReply": true, "contactAvatars": true, "botContact": false, "botName": null, "botOfflineMinutes": 5})
    );

    // Inline activation takes them as `chatwoot<Name>`.
    let (_, cw_token) =
        f.double
            .add_user("Bia", "bia@acme.test", Role::Administrator, &[f.account_id]);
    let (_, account_token) = f.server.create_account("inline", 5).await;
    let created = f
        .server
        .post(
            "/api/instance/new",
            Some(&account_token),
            json!({
                "name": "vendas",
                "chatwootEnabled": true,
                "chatwootBaseUrl": f.double.base_url(),
                "chatwootAccountId": f.account_id,
                "chatwootApiToken": cw_token,
                "chatwootIgnoreJids": ["@lid"],
                "chatwootSignDelimiter": "\\n\\n",
                "chatwootSignFormat": "{agent} says:",
                "chatwootImportMessagesDays": 30,
                "chatwootImportContacts": true,
                "chatwootMarkReadOnReply": false,
                "chatwootContactAvatars": false,
                "chatwootBotContact": true,
                "chatwootBotName": "Vendas",
                "chatwootBotOfflineMinutes": 15,
            }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(
        created.body["chatwoot"]["status"],
        json!("active"),
        "{}",
        created.text
    );
    let inline = f
        .server
        .get("/api/chatwoot/list/vendas", Some(&account_token))
        .await;
    assert_eq!(
        inline.body["options"],
        json!({"ignoreJids": ["@lid"], "signDelimiter": "\n\n", "signFormat": "{agent} says:", "importMessagesDays": 30, "importContacts": true, "markReadOnReply": false, "contactAvatars": false, "botContact": true, "botName": "Vendas", "botOfflineMinutes": 15})
    );
}

#[tokio::test]
async fn ignored_chats_are_never_bridged_in_either_direction() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let set = set_again(&f, json!({"ignoreJids": [CUSTOMER, "@g.us"]})).await;
    assert_eq!(set.status.as_u16(), 201, "{}", set.text);

    // WhatsApp → Chatwoot: the ignored number and every group stay out.
    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "ainda aí?"}))
        .await;
    f.inbound(json!({"from": OTHER, "pushName": "João", "text": "no grupo", "group": {"jid": GROUP, "subject": "Família"}}))
        .await;
    let other = f
        .inbound(json!({"from": OTHER, "pushName": "João", "text": "oi"}))
        .await;
    f.until("the other customer's message", || {
        all_messages(&f)
            .into_iter()
            .find(|m| m["source_id"] == json!(format!("WAID:{other}")))
    })
    .await;

    // Chatwoot → WhatsApp: a reply in the ignored chat is not sent, and the
    // agent sees why.
    let reply = agent_says(&f, chat.conversation_id, "Sim!");
    let failed = until_status(&f, chat.conversation_id, reply, "failed").await;
    let error = failed["content_attributes"]["external_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("ignoreJids"), "{failed}");
    f.quiesce().await;
    assert!(f.outbox().await.is_empty(), "{:?}", f.outbox().await);
    assert_eq!(f.conversations().len(), 2, "no group conversation");
    let customer_messages = chat_messages(&f.messages(chat.conversation_id));
    assert_eq!(customer_messages.len(), 2, "{customer_messages:?}");
}

#[tokio::test]
async fn signatures_follow_the_format_and_delimiter_in_groups_too() {
    let f = Fixture::start(json!({
        "signMessages": true,
        "signFormat": "~ {agent} ~",
        "signDelimiter": "\\n\\n",
    }))
    .await;
    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "alguém?", "group": {"jid": GROUP, "subject": "Família"}}))
        .await;
    let conversation = f
        .until("the group conversation", || {
            f.conversations().into_iter().next()
        })
        .await;
    agent_says(&f, conversation["id"].as_i64().unwrap(), "Estou aqui");
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(sent[0]["to"], json!(GROUP));
    assert_eq!(sent[0]["text"], json!("~ Ana ~\n\nEstou aqui"));
}

#[tokio::test]
async fn an_agent_typing_shows_as_typing_on_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    let presences = || async {
        let reply = f
            .server
            .get(
                &format!("/api/sandbox/{}/outbox", f.instance),
                Some(&f.token),
            )
            .await;
        reply.body["chatPresence"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let until_presences = |n: usize| async move {
        for _ in 0..500 {
            let shown = presences().await;
            if shown.len() >= n {
                return shown;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("never {n} presences: {:?}", presences().await);
    };
    let (account, conversation, agent) = (f.account_id, chat.conversation_id, f.agent_id);

    f.double
        .agent_typing(account, conversation, agent, true, false);
    let shown = until_presences(1).await;
    assert_eq!(
        shown[0]["chat"],
        json!(format!("{CUSTOMER}@s.whatsapp.net"))
    );
    assert_eq!(shown[0]["state"], json!("typing"));
    f.double
        .agent_typing(account, conversation, agent, false, false);
    let shown = until_presences(2).await;
    assert_eq!(shown[1]["state"], json!("paused"));

    // Writing a private note shows nothing.
    f.double
        .agent_typing(account, conversation, agent, true, true);
    f.quiesce().await;
    assert_eq!(presences().await.len(), 2);
    assert!(f.outbox().await.is_empty());
}

#[tokio::test]
async fn csat_surveys_and_bot_messages_reach_the_customer_as_readable_text() {
    let f = Fixture::start(json!({"signMessages": true})).await;
    let chat = customer_writes(&f).await;
    let uuid = f
        .conversations()
        .into_iter()
        .find(|c| c["id"] == json!(chat.conversation_id))
        .map(|c| c["uuid"].as_str().unwrap().to_owned())
        .unwrap();

    f.double.csat_survey(f.account_id, chat.conversation_id);
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(
        sent[0]["text"],
        json!(format!(
            "Please rate this conversation, {}/survey/responses/{uuid}",
            f.double.base_url()
        )),
        "unsigned: Chatwoot wrote it, not an agent"
    );

    f.double.template_message(
        f.account_id,
        chat.conversation_id,
        "input_select",
        "Com quem quer falar?",
        json!({"items": [{"title": "Vendas", "value": "sales"}, {"title": "Suporte", "value": "support"}]}),
    );
    let sent = loop_until_outbox(&f, 2).await;
    assert_eq!(
        sent[1]["text"],
        json!("Com quem quer falar?\n\n1. Vendas\n2. Suporte")
    );
    f.quiesce().await;
    assert_eq!(f.outbox().await.len(), 2);
}

#[tokio::test]
async fn a_message_deleted_for_everyone_is_shown_deleted_in_chatwoot() {
    let f = Fixture::start(json!({})).await;
    let chat = customer_writes(&f).await;
    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "revoke": {"targetId": chat.wa_id}}))
        .await;
    let deleted = f
        .until("the message shown deleted", || {
            let m = message(&f, chat.conversation_id, chat.chatwoot_id);
            (m["content_attributes"]["deleted"] == json!(true)).then_some(m)
        })
        .await;
    assert_eq!(deleted["content"], json!("This message was deleted"));

    // The owner deletes an agent's reply on the phone: shown deleted too,
    // and not revoked a second time by the bridge.
    let reply = agent_says(&f, chat.conversation_id, "Enviei errado");
    let sent = loop_until_outbox(&f, 1).await;
    f.inbound(json!({"from": CUSTOMER, "fromMe": true, "revoke": {"targetId": sent[0]["id"]}}))
        .await;
    f.until("the reply shown deleted", || {
        let m = message(&f, chat.conversation_id, reply);
        (m["content_attributes"]["deleted"] == json!(true)).then_some(m)
    })
    .await;
    f.quiesce().await;
    assert_eq!(
        chat_messages(&f.messages(chat.conversation_id)).len(),
        2,
        "no extra line"
    );
    let path = format!("/api/v1/accounts/{}/conversations/", f.account_id);
    assert_eq!(f.double.count("DELETE", &path), 2);
    assert_eq!(f.outbox().await.len(), 1, "{:?}", f.outbox().await);
}

#[tokio::test]
async fn retry_sends_a_failed_or_dead_lettered_reply_once_and_a_delivered_one_never() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "2"),
    )
    .await;
    let chat = customer_writes(&f).await;

    // A delivered reply: Retry does nothing.
    let delivered = agent_says(&f, chat.conversation_id, "Primeira");
    loop_until_outbox(&f, 1).await;
    f.quiesce().await;
    f.double
        .agent_retry(f.account_id, chat.conversation_id, delivered);
    f.quiesce().await;
    assert_eq!(texts(&f).await.len(), 1);

    // Dead-lettered after its attempts ran out, then retried: sent once.
    sandbox(&f, "faults", json!({"send": "error"})).await;
    let dead = agent_says(&f, chat.conversation_id, "Segunda");
    until_status(&f, chat.conversation_id, dead, "failed").await;
    // Rejected for good (not on WhatsApp), then retried: sent once.
    sandbox(&f, "faults", json!({"send": "not_on_whatsapp"})).await;
    let rejected = agent_says(&f, chat.conversation_id, "Terceira");
    until_status(&f, chat.conversation_id, rejected, "failed").await;
    f.quiesce().await;
    assert_eq!(texts(&f).await.len(), 1);

    sandbox(&f, "faults", json!({"send": "ok"})).await;
    for id in [dead, rejected] {
        f.double.agent_retry(f.account_id, chat.conversation_id, id);
        // Pressed twice: still once.
        f.double.agent_retry(f.account_id, chat.conversation_id, id);
    }
    loop_until_outbox(&f, 3).await;
    f.quiesce().await;
    let sent: Vec<Value> = texts(&f).await.iter().map(|m| m["text"].clone()).collect();
    assert_eq!(
        sent,
        [json!("Primeira"), json!("Segunda"), json!("Terceira")]
    );
    for id in [dead, rejected] {
        assert_ne!(
            message(&f, chat.conversation_id, id)["status"],
            json!("failed")
        );
    }
}

#[tokio::test]
async fn group_joins_and_leaves_show_as_private_notes_that_never_reach_whatsapp() {
    let f = Fixture::start(json!({})).await;
    let created = f
        .server
        .post(
            &format!("/api/group/create/{}", f.instance),
            Some(&f.token),
            json!({"name": "Equipe", "participants": [CUSTOMER]}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 200, "{}", created.text);
    let group = created.body["group"]["groupJid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The group has no conversation yet: its creation posts nothing.
    f.quiesce().await;
    assert!(f.conversations().is_empty());

    f.inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "bem-vindos", "group": {"jid": group, "subject": "Equipe"}}))
        .await;
    let conversation = f
        .until("the group conversation", || {
            f.conversations().into_iter().next()
        })
        .await;
    let conversation_id = conversation["id"].as_i64().unwrap();
    chat(&f, conversation_id, 1).await;

    for action in ["add", "remove"] {
        let reply = f
            .server
            .post(
                &format!("/api/group/participants/{}", f.instance),
                Some(&f.token),
                json!({"groupJid": group, "action": action, "participants": [OTHER]}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let notes = f
        .until("two notes", || {
            let notes: Vec<Value> = f
                .messages(conversation_id)
                .into_iter()
                .filter(|m| m["private"] == json!(true))
                .collect();
            (notes.len() >= 2).then_some(notes)
        })
        .await;
    assert_eq!(
        notes[0]["content"],
        json!(format!("➕ +{OTHER} joined the group"))
    );
    assert_eq!(
        notes[1]["content"],
        json!(format!("➖ +{OTHER} left the group"))
    );
    f.quiesce().await;
    assert_eq!(chat_messages(&f.messages(conversation_id)).len(), 3);
    assert!(texts(&f).await.is_empty(), "{:?}", f.outbox().await);
}
