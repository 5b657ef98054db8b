//! The bridge end to end: a real zapgate, the Chatwoot double and the
//! sandbox phone.

use std::time::Duration;

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

use crate::harness::{Env, TestServer};

/// The fixture's variables: fast retries and polls, the reconciler off.
pub fn bridge_env() -> Env {
    Env::default()
        .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
        .with("ZAPGATE_BRIDGE_RETRY_BASE_MS", "50")
        .with("ZAPGATE_BRIDGE_RETRY_MAX_MS", "400")
        .with("ZAPGATE_BRIDGE_POLL_MS", "20")
        .with("ZAPGATE_BRIDGE_WAIT_POLL_MS", "200")
        .with("ZAPGATE_RECONCILE_INTERVAL_SECS", "0")
        // Tests poll the outbox more often than 100 times a minute.
        .with("ZAPGATE_RATE_LIMIT", "off")
}

/// A paired instance whose integration is active against the double.
pub struct Fixture {
    pub server: TestServer,
    pub double: ChatwootDouble,
    pub account_id: i64,
    pub agent_id: i64,
    pub token: String,
    pub instance: &'static str,
}

pub const PHONE: &str = "5511999990000";
pub const CUSTOMER: &str = "5511988887777";

impl Fixture {
    pub async fn start(flags: Value) -> Self {
        Self::start_with(flags, Env::default()).await
    }

    pub async fn start_with(flags: Value, env: Env) -> Self {
        let double = ChatwootDouble::start().await;
        let account_id = double.add_account("Acme");
        let (agent_id, cw_token) =
            double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
        let mut vars = bridge_env();
        vars.0.extend(env.0);
        let server = TestServer::start_with(vars).await;
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
        Self {
            server,
            double,
            account_id,
            agent_id,
            token,
            instance: "suporte",
        }
    }

    /// A customer writes on WhatsApp.
    pub async fn inbound(&self, body: Value) -> String {
        let reply = self
            .server
            .post(
                &format!("/api/sandbox/{}/inbound", self.instance),
                Some(&self.token),
                body,
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn outbox(&self) -> Vec<Value> {
        let reply = self
            .server
            .get(
                &format!("/api/sandbox/{}/outbox", self.instance),
                Some(&self.token),
            )
            .await;
        reply.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn conversations(&self) -> Vec<Value> {
        self.double.conversations(self.account_id)
    }

    pub fn messages(&self, conversation_id: i64) -> Vec<Value> {
        self.double.messages(self.account_id, conversation_id)
    }

    /// Waits until nothing is left to do: the webhooks the double is
    /// delivering have landed and the bridge has run every due job, twice
    /// over (a job's Chatwoot call may fire a webhook that stores another).
    /// A test asserts after this that something did not happen.
    pub async fn quiesce(&self) {
        for _ in 0..2 {
            assert!(
                self.double.webhooks_idle(Duration::from_secs(10)).await,
                "the double's webhooks never finished"
            );
            self.server.bridge_idle().await;
        }
    }

    /// Waits until `check` holds, for up to 10 s.
    pub async fn until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        for _ in 0..500 {
            if let Some(value) = check() {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

/// The non-activity messages of a conversation.
pub fn chat_messages(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["message_type"] != json!(2))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_customer_message_reaches_chatwoot_and_the_agent_reply_reaches_whatsapp() {
    let f = Fixture::start(json!({"signMessages": true})).await;
    let id = f
        .inbound(json!({"from": CUSTOMER, "pushName": "Maria", "text": "Olá!"}))
        .await;

    let conversation = f
        .until("the conversation", || f.conversations().into_iter().next())
        .await;
    let conversation_id = conversation["id"].as_i64().unwrap();
    let posted = f
        .until("the message", || {
            chat_messages(&f.messages(conversation_id))
                .into_iter()
                .next()
        })
        .await;
    assert_eq!(posted["content"], json!("Olá!"));
    assert_eq!(posted["message_type"], json!(0));
    assert_eq!(posted["source_id"], json!(format!("WAID:{id}")));
    let contacts = f.double.contacts(f.account_id);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], json!("Maria"));
    assert_eq!(contacts[0]["phone_number"], json!(format!("+{CUSTOMER}")));

    f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        "Como posso ajudar?",
        Vec::new(),
        false,
        None,
    );
    let sent = loop_until_outbox(&f, 1).await;
    assert_eq!(sent[0]["kind"], json!("text"));
    assert_eq!(sent[0]["to"], json!(format!("{CUSTOMER}@s.whatsapp.net")));
    assert_eq!(sent[0]["text"], json!("*Ana*:\nComo posso ajudar?"));
}

pub async fn loop_until_outbox(f: &Fixture, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let outbox = f.outbox().await;
        if outbox.len() >= n {
            return outbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outbox never had {n} messages: {:?}", f.outbox().await);
}

/// A job whose integration no longer exists (deactivated or replaced while
/// it was stored) is kept as a dead letter with why, never silently dropped.
#[tokio::test]
async fn a_job_whose_integration_is_gone_is_parked_with_a_reason() {
    let f = Fixture::start(json!({})).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", f.server.sqlite_file().display()))
        .await
        .unwrap();
    let instance_id: String = sqlx::query_scalar("SELECT id FROM instances WHERE name = 'suporte'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO bridge_jobs (integration_id, instance_id, direction, chat_key, dedupe_key, \
         payload, run_at, created_at, status, attempts, locked_until, last_error) \
         VALUES ('int_gone', $1, 'inbound', 'chat:x', 'in:int_gone:W1', '{}', 0, 0, 'queued', 0, NULL, '')",
    )
    .bind(&instance_id)
    .execute(&pool)
    .await
    .unwrap();
    f.server.bridge_idle().await;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT status, last_error FROM bridge_jobs WHERE dedupe_key = 'in:int_gone:W1'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    let (status, reason) = row.expect("the job is still there");
    assert_eq!(status, "dead");
    assert!(reason.contains("integration no longer exists"), "{reason}");
    pool.close().await;
}

/// An integration sealed under a key this server lacks: its own list
/// answers a public error; every other integration is listed and reconciled.
#[tokio::test]
async fn an_undecryptable_integration_stops_neither_the_reconciler_nor_other_lists() {
    use zapgate_core::{
        chatwoot::{ChatwootFlags, Integration, IntegrationStatus},
        store::Store,
        token::Token,
    };
    let f = Fixture::start(json!({})).await;
    let (_, account) = f.server.create_account("other", 5).await;
    let other_token = f.server.create_instance(&account, "vendas").await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", f.server.sqlite_file().display()))
        .await
        .unwrap();
    let instance_id: String = sqlx::query_scalar("SELECT id FROM instances WHERE name = 'vendas'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Saved by a server with another key.
    let foreign = zapgate_store::SqlStore::connect(
        &format!("sqlite://{}", f.server.sqlite_file().display()),
        zapgate_store::SecretBox::new([7u8; 32], Vec::new()),
    )
    .await
    .unwrap();
    foreign
        .save_integration(
            &Integration {
                id: "int_foreign".into(),
                instance_id,
                base_url: f.double.base_url(),
                account_id: f.account_id,
                api_token: Token::new("foreign-token"),
                inbox_id: 999,
                inbox_name: "vendas".into(),
                inbox_identifier: None,
                webhook_secret: Token::new("foreign-secret"),
                inbox_secret: None,
                webhook_url: "http://127.0.0.1:1/chatwoot/webhook/int_foreign/foreign-secret"
                    .into(),
                status: IntegrationStatus::Active,
                last_error: String::new(),
                flags: ChatwootFlags::default(),
                options: Default::default(),
                created_at_ms: 0,
            },
            None,
        )
        .await
        .unwrap();
    foreign.close().await;

    let broken = f
        .server
        .get("/api/chatwoot/list/vendas", Some(&other_token))
        .await;
    broken.assert_error(
        500,
        "The Chatwoot integration cannot be read with this server's encryption key; \
         the operator must restore the key it was saved with",
    );
    let fine = f
        .server
        .get(
            &format!("/api/chatwoot/list/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(fine.status.as_u16(), 200, "{}", fine.text);
    f.server
        .bridge()
        .reconcile_all()
        .await
        .expect("the reconciler passes over the unreadable integration");
}
