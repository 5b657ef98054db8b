//! The bridge end to end: a real zapgate, the Chatwoot double and the
//! sandbox phone.

use std::time::Duration;

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

use crate::harness::{Env, TestServer};

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
        let mut vars = Env::default()
            .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
            .with("ZAPGATE_BRIDGE_RETRY_BASE_MS", "50")
            .with("ZAPGATE_BRIDGE_RETRY_MAX_MS", "400")
            .with("ZAPGATE_BRIDGE_POLL_MS", "20")
            .with("ZAPGATE_BRIDGE_WAIT_POLL_MS", "200")
            .with("ZAPGATE_RECONCILE_INTERVAL_SECS", "0")
            // Tests poll the outbox more often than 100 times a minute.
            .with("ZAPGATE_RATE_LIMIT", "off");
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
