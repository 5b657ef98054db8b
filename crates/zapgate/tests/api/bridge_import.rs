//! History import into Chatwoot end to end: the sandbox's history fixture
//! fills the message store, `POST /api/chatwoot/import` (or the first
//! connection after activation) writes it into the double's inbox.

use std::time::Duration;

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

use crate::{
    bridge::{CUSTOMER, Fixture, PHONE, bridge_env},
    bridge_faults::integration_info,
    harness::{Env, TestServer},
};

const OTHER: &str = "5511955554444";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A history message of `from`'s chat, `age` seconds old.
fn old(id: &str, from: &str, text: &str, age: i64, from_me: bool) -> Value {
    json!({"id": id, "from": from, "text": text, "timestamp": now_secs() - age, "fromMe": from_me})
}

async fn load_history(f: &Fixture, messages: Vec<Value>) {
    let reply = f
        .server
        .post(
            &format!("/api/sandbox/{}/history", f.instance),
            Some(&f.token),
            json!({ "messages": messages }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
}

/// The history requests imports made of the sandbox phone.
async fn history_requests(f: &Fixture) -> Vec<Value> {
    crate::bridge_wave2::chats_view(f, "historyRequests").await
}

async fn import(f: &Fixture, body: Value) -> crate::harness::Reply {
    f.server
        .post(
            &format!("/api/chatwoot/import/{}", f.instance),
            Some(&f.token),
            body,
        )
        .await
}

/// Waits until the list shows the import in `state`; returns it.
async fn import_until(f: &Fixture, state: &str) -> Value {
    for _ in 0..750 {
        let info = integration_info(f).await;
        if info["import"]["state"] == json!(state) {
            return info["import"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the import never reached {state}: {}",
        integration_info(f).await
    );
}

/// Every non-activity message of the account with a source id, by id.
fn imported(f: &Fixture) -> Vec<Value> {
    f.conversations()
        .iter()
        .flat_map(|c| f.messages(c["id"].as_i64().unwrap()))
        .filter(|m| m["source_id"].is_string())
        .collect()
}

fn the_history() -> Vec<Value> {
    vec![
        old("H1", CUSTOMER, "primeira", 3 * 86_400, false),
        old(
            "H2",
            CUSTOMER,
            "resposta do telefone",
            3 * 86_400 - 60,
            true,
        ),
        old("H3", CUSTOMER, "terceira", 86_400, false),
        old("H4", OTHER, "outro cliente", 2 * 86_400 + 600, false),
        // Older than the window of 7 days: not imported.
        old("H5", CUSTOMER, "antiga demais", 10 * 86_400, false),
    ]
}

async fn an_import_writes_the_window_oldest_first_and_a_second_adds_nothing(f: Fixture) {
    load_history(&f, the_history()).await;
    // Nothing was posted live: history is not news.
    f.quiesce().await;
    assert!(imported(&f).is_empty());

    let reply = import(&f, json!({"days": 7})).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    assert_eq!(reply.body["import"]["state"], "running");
    let done = import_until(&f, "done").await;
    assert_eq!(done["chats"], 2);
    assert_eq!(done["messagesTotal"], 4);
    assert_eq!(done["messagesDone"], 4);

    let customer = f
        .conversations()
        .into_iter()
        .find(|c| c["meta"]["sender"]["phone_number"] == json!(format!("+{CUSTOMER}")))
        .expect("the customer's conversation");
    let messages: Vec<Value> = f
        .messages(customer["id"].as_i64().unwrap())
        .into_iter()
        .filter(|m| m["source_id"].is_string())
        .collect();
    let order: Vec<(&str, i64)> = messages
        .iter()
        .map(|m| {
            (
                m["source_id"].as_str().unwrap(),
                m["message_type"].as_i64().unwrap(),
            )
        })
        .collect();
    // Oldest first, the phone's own message outgoing (1), the customer's incoming (0).
    assert_eq!(order, [("WAID:H1", 0), ("WAID:H2", 1), ("WAID:H3", 0)]);
    // Chatwoot stamps its own created_at; WhatsApp's time rides along.
    assert!(
        messages[0]["content_attributes"]["external_created_at"]
            .as_i64()
            .is_some_and(|t| t <= now_secs() - 3 * 86_400 + 5)
    );
    assert_eq!(imported(&f).len(), 4);
    // The phone's own message was not sent back to WhatsApp.
    f.quiesce().await;
    assert!(f.outbox().await.is_empty());
    // Before reading, the import asked the provider for the window's
    // history, from each chat's oldest message held in it (the sandbox
    // records the request; its history is the fixture).
    let asked = history_requests(&f).await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    let since = asked[0]["since"].as_i64().unwrap();
    assert!((now_secs() - 7 * 86_400 - since).abs() < 60, "{since}");
    let mut anchors: Vec<(String, String, bool)> = asked[0]["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["chat"].as_str().unwrap().to_owned(),
                a["id"].as_str().unwrap().to_owned(),
                a["fromMe"].as_bool().unwrap(),
            )
        })
        .collect();
    anchors.sort();
    assert_eq!(
        anchors,
        [
            (format!("{OTHER}@s.whatsapp.net"), "H4".to_owned(), false),
            (format!("{CUSTOMER}@s.whatsapp.net"), "H1".to_owned(), false),
        ]
    );

    // Again: everything is already there.
    let before = f.double.count("POST", "/api/v1/accounts");
    let reply = import(&f, json!({"days": 7})).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    let again = import_until(&f, "done").await;
    assert_eq!(again["messagesDone"], 4);
    assert_eq!(imported(&f).len(), 4);
    assert_eq!(f.double.count("POST", "/api/v1/accounts"), before);
}

#[tokio::test]
async fn an_import_writes_the_window_oldest_first_and_a_second_adds_nothing_on_sqlite() {
    an_import_writes_the_window_oldest_first_and_a_second_adds_nothing(
        Fixture::start(json!({})).await,
    )
    .await;
}

#[tokio::test]
async fn an_import_writes_the_window_oldest_first_and_a_second_adds_nothing_on_postgresql() {
    let Some(f) = postgres_fixture(json!({})).await else {
        return;
    };
    an_import_writes_the_window_oldest_first_and_a_second_adds_nothing(f).await;
}

#[tokio::test]
async fn import_options_are_listed_validated_and_run_on_activation() {
    let f = Fixture::start(json!({})).await;
    load_history(&f, the_history()).await;
    let info = integration_info(&f).await;
    assert_eq!(info["options"]["importMessagesDays"], 0);
    assert_eq!(info["options"]["importContacts"], false);
    assert!(info.get("import").is_none(), "{info}");

    let set = |extra: Value| {
        let mut body = json!({
            "chatwootBaseUrl": info["chatwoot_base_url"],
            "chatwootAccountId": info["chatwoot_account_id"],
            "chatwootApiToken": info["chatwoot_api_token"],
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        body
    };
    let path = format!("/api/chatwoot/set/{}", f.instance);
    f.server
        .post(
            &path,
            Some(&f.token),
            set(json!({"importMessagesDays": 91})),
        )
        .await
        .assert_error(
            400,
            "invalid body: importMessagesDays must be an integer from 0 to 90",
        );
    f.server
        .post(&path, Some(&f.token), set(json!({"importContacts": 1})))
        .await
        .assert_error(400, "invalid body: importContacts must be a boolean");
    for (body, message) in [
        (
            json!({"days": 91}),
            "invalid body: days must be an integer from 0 to 90",
        ),
        (
            json!({"days": -1}),
            "invalid body: days must be an integer from 0 to 90",
        ),
        (
            json!({"contacts": "yes"}),
            "invalid body: contacts must be a boolean",
        ),
        (
            json!({"days": 3, "since": 1}),
            "invalid body: unknown field since (days, contacts)",
        ),
        (
            json!({}),
            "invalid body: nothing to import - give days (1-90) or contacts: true",
        ),
    ] {
        import(&f, body).await.assert_error(400, message);
    }
    f.server
        .delete(
            &format!("/api/chatwoot/import/{}", f.instance),
            Some(&f.token),
        )
        .await
        .assert_error(404, "no import running for this instance");

    // Activation with the option, the instance connected: the import runs.
    let reply = f
        .server
        .post(
            &path,
            Some(&f.token),
            set(json!({"importMessagesDays": 2, "importContacts": true})),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    let done = import_until(&f, "done").await;
    // Two days: only H3 (one day old); H4 is older.
    assert_eq!(done["messagesTotal"], 1, "{done}");
    let info = integration_info(&f).await;
    assert_eq!(info["options"]["importMessagesDays"], 2);
    assert_eq!(info["options"]["importContacts"], true);
    // importContacts: the other customer has a contact, without a conversation.
    let contacts = f.double.contacts(f.account_id);
    assert!(
        contacts
            .iter()
            .any(|c| c["phone_number"] == json!(format!("+{OTHER}"))),
        "{contacts:?}"
    );
    assert!(
        f.conversations()
            .iter()
            .all(|c| c["meta"]["sender"]["phone_number"] != json!(format!("+{OTHER}")))
    );
}

#[tokio::test]
async fn a_resolved_conversation_is_never_reopened_by_an_import() {
    let f = Fixture::start(json!({})).await;
    f.inbound(json!({"from": CUSTOMER, "text": "ao vivo"}))
        .await;
    let conversation = f
        .until("the live conversation", || {
            f.conversations().first().map(|c| c["id"].as_i64().unwrap())
        })
        .await;
    f.quiesce().await;
    assert!(
        f.double
            .set_conversation_status(f.account_id, conversation, f.agent_id, "resolved")
    );
    f.quiesce().await;
    load_history(&f, the_history()).await;
    let reply = import(&f, json!({"days": 7})).await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    let done = import_until(&f, "done").await;
    assert_eq!(done["messagesDone"], done["messagesTotal"]);
    let status = f
        .conversations()
        .into_iter()
        .find(|c| c["id"] == json!(conversation))
        .unwrap()["status"]
        .clone();
    assert_eq!(status, "resolved");
    // The other customer's history has its own new conversation.
    assert_eq!(
        imported(&f)
            .iter()
            .filter(|m| m["source_id"].as_str().unwrap().starts_with("WAID:H"))
            .count(),
        1
    );
}

/// A chat the double refuses past 3 messages a minute holds the import;
/// cancelled there, it stops and says so; a new import finishes the rest.
#[tokio::test]
async fn an_import_can_be_cancelled_and_started_again() {
    let f = Fixture::start(json!({})).await;
    let history: Vec<Value> = (0..6)
        .map(|i| {
            old(
                &format!("C{i}"),
                CUSTOMER,
                &format!("m{i}"),
                3600 - i,
                false,
            )
        })
        .collect();
    load_history(&f, history).await;
    f.double.set_message_rate_limit(3);
    assert_eq!(import(&f, json!({"days": 1})).await.status.as_u16(), 202);
    f.until("three messages in", || {
        (imported(&f).len() == 3).then_some(())
    })
    .await;
    import(&f, json!({"days": 1}))
        .await
        .assert_error(409, "an import is already running for this instance");
    let reply = f
        .server
        .delete(
            &format!("/api/chatwoot/import/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["import"]["state"], "cancelled");
    assert_eq!(integration_info(&f).await["import"]["state"], "cancelled");

    f.double.set_message_rate_limit(200);
    assert_eq!(import(&f, json!({"days": 1})).await.status.as_u16(), 202);
    import_until(&f, "done").await;
    let ids: Vec<String> = imported(&f)
        .iter()
        .map(|m| m["source_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "WAID:C0", "WAID:C1", "WAID:C2", "WAID:C3", "WAID:C4", "WAID:C5"
        ]
    );
}

/// A server stopped mid-import: the next one on the same database takes it
/// over once the lease ends, after the last chat finished, and posts
/// nothing twice.
#[tokio::test]
async fn an_import_resumes_after_a_restart() {
    let double = ChatwootDouble::start().await;
    let account_id = double.add_account("Acme");
    let (agent_id, cw_token) =
        double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let dir = tempfile::tempdir().unwrap();
    let env = || {
        let mut vars = bridge_env();
        vars.0
            .extend(Env::default().with("ZAPGATE_BRIDGE_LEASE_SECS", "1").0);
        vars
    };
    let server = TestServer::start_in(dir.path(), env()).await;
    let (_, account_token) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account_token, "suporte").await;
    server.pair(&token, "suporte", PHONE).await;
    let reply = server
        .post(
            "/api/chatwoot/set/suporte",
            Some(&token),
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": account_id,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    let f = Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance: "suporte",
    };
    // OTHER's chat sorts first and fits; CUSTOMER's is held after 3.
    let mut history: Vec<Value> = (0..2)
        .map(|i| old(&format!("A{i}"), OTHER, "a", 3600 - i, false))
        .collect();
    history.extend((0..5).map(|i| old(&format!("B{i}"), CUSTOMER, "b", 3600 - i, false)));
    load_history(&f, history).await;
    f.double.set_message_rate_limit(3);
    assert_eq!(import(&f, json!({"days": 1})).await.status.as_u16(), 202);
    f.until("five messages in", || {
        (imported(&f).len() == 5).then_some(())
    })
    .await;

    let Fixture {
        server,
        double,
        token,
        ..
    } = f;
    server.stop().await;
    double.set_message_rate_limit(200);
    let server = TestServer::start_in(dir.path(), env()).await;
    let f = Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance: "suporte",
    };
    let done = import_until(&f, "done").await;
    assert_eq!(done["messagesDone"], 7);
    let mut ids: Vec<String> = imported(&f)
        .iter()
        .map(|m| m["source_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "WAID:A0", "WAID:A1", "WAID:B0", "WAID:B1", "WAID:B2", "WAID:B3", "WAID:B4"
        ]
    );
}

#[tokio::test]
async fn the_history_fixture_refuses_messages_without_their_time() {
    let f = Fixture::start(json!({})).await;
    f.server
        .post(
            &format!("/api/sandbox/{}/history", f.instance),
            Some(&f.token),
            json!({"messages": [{"from": CUSTOMER, "text": "sem hora"}]}),
        )
        .await
        .assert_error(
            400,
            "Invalid messages[0].timestamp: history messages need their time",
        );
}

/// [`Fixture::start`] on a PostgreSQL server; `None` when PostgreSQL is
/// unreachable and not required.
async fn postgres_fixture(flags: Value) -> Option<Fixture> {
    let double = ChatwootDouble::start().await;
    let account_id = double.add_account("Acme");
    let (agent_id, cw_token) =
        double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let server = TestServer::start_postgres(bridge_env()).await?;
    let (_, account_token) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account_token, "suporte").await;
    server.pair(&token, "suporte", PHONE).await;
    let mut body = json!({
        "chatwootBaseUrl": double.base_url(),
        "chatwootAccountId": account_id,
        "chatwootApiToken": cw_token,
    });
    for (k, v) in flags.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let reply = server
        .post("/api/chatwoot/set/suporte", Some(&token), body)
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    Some(Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance: "suporte",
    })
}
