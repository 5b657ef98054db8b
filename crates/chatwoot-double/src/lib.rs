//! A Chatwoot test double for zapgate's integration tests and benchmarks.
//!
//! An in-process axum server (127.0.0.1, random port) that answers the
//! Chatwoot account API the way a real Chatwoot (v4.x) does — same paths,
//! payload shapes, status codes, error bodies and quirks (see
//! `/work/shared/research/chatwoot-bridge.md` §1) — and POSTs API-inbox
//! webhooks (`message_created`, `message_updated`,
//! `conversation_status_changed`, `conversation_typing_on/off`) to the inbox
//! `webhook_url`. Seeding,
//! inspection, agent actions and fault switches are plain Rust methods on
//! [`ChatwootDouble`]; no HTTP is needed to control it.
//!
//! Inspection methods return JSON snapshots (`serde_json::Value`) rendered
//! exactly as the API would render them, so tests can compare against what
//! a client sees.

mod auth;
mod errors;
mod faults;
mod ops;
mod routes;
mod state;
mod views;
mod webhooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};

pub use faults::RecordedRequest;
pub use state::Role;
pub use webhooks::{Delivery, sign as sign_webhook};

use state::{Account, State, User, random_token};

/// Switches that change how the double behaves.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub signing: bool,
    pub delay: Duration,
    pub fail_next: Option<(usize, u16)>,
    pub webhook_timeout: Duration,
    /// How long each webhook waits in its queue before it is sent.
    pub webhook_lag: Duration,
    pub message_rate_limit: usize,
    /// Accounts whose API requests are never answered.
    pub stalled: Vec<i64>,
}

/// State shared by the server tasks, webhook workers and the control API.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub config: Mutex<Config>,
    pub base_url: String,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub deliveries: Mutex<Vec<Delivery>>,
    pub queues: Mutex<HashMap<i64, mpsc::UnboundedSender<webhooks::Job>>>,
    /// Webhooks enqueued but not yet attempted.
    pub pending: AtomicUsize,
    pub delivered: Notify,
    pub http: reqwest::Client,
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn config(&self) -> Config {
        self.config.lock().expect("config lock").clone()
    }
}

/// The running double. Dropping it stops the server.
pub struct ChatwootDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ChatwootDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ChatwootDouble {
    /// Binds 127.0.0.1:0 and starts serving. Must run inside a tokio runtime.
    pub async fn start() -> ChatwootDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let down = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            config: Mutex::new(Config {
                signing: true,
                delay: Duration::ZERO,
                fail_next: None,
                webhook_timeout: Duration::from_secs(5),
                webhook_lag: Duration::ZERO,
                message_rate_limit: 200,
                stalled: Vec::new(),
            }),
            base_url: format!("http://{addr}"),
            requests: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            queues: Mutex::new(HashMap::new()),
            pending: AtomicUsize::new(0),
            delivered: Notify::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("reqwest client"),
            runtime: tokio::runtime::Handle::current(),
        });
        let app = routes::router(shared.clone())
            .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024));
        let listener = faults::FaultyListener {
            inner: listener,
            down: down.clone(),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ChatwootDouble {
            shared,
            addr,
            down,
            server,
        }
    }

    /// `http://127.0.0.1:<port>` — the Chatwoot URL to give the client.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("state lock")
    }

    // ---------------------------------------------------------------- seeding

    /// Creates an account (ids 1, 2, ...); inbox limit unlimited.
    pub fn add_account(&self, name: &str) -> i64 {
        let mut st = self.st();
        let id = st.next_id("accounts");
        st.accounts.insert(
            id,
            Account {
                id,
                name: name.to_string(),
                inbox_limit: None,
                next_display_id: 0,
            },
        );
        id
    }

    /// Creates a user with `role` in `accounts`; returns (user id, access token).
    pub fn add_user(&self, name: &str, email: &str, role: Role, accounts: &[i64]) -> (i64, String) {
        let mut st = self.st();
        let id = st.next_id("users");
        let token = random_token(24);
        st.users.insert(
            id,
            User {
                id,
                name: name.to_string(),
                email: email.to_string(),
                role,
                accounts: accounts.to_vec(),
                token: token.clone(),
            },
        );
        (id, token)
    }

    // ---------------------------------------------------------- agent actions

    fn conv_pk(st: &State, account_id: i64, conversation_id: i64) -> i64 {
        st.conversation_pk(account_id, conversation_id)
            .unwrap_or_else(|| panic!("no conversation {conversation_id} in account {account_id}"))
    }

    /// An agent typing in the UI: an outgoing message (or private note) by
    /// `user_id`, `source_id` null, optional attachments `(filename, mime,
    /// bytes)` and reply target; fires `message_created`. Returns the message
    /// as the API renders it. Panics on unknown ids; a validation failure
    /// (e.g. flood limit) is returned as `{"error": ...}`.
    #[allow(clippy::too_many_arguments)]
    pub fn agent_reply(
        &self,
        account_id: i64,
        conversation_id: i64,
        user_id: i64,
        content: &str,
        attachments: Vec<(String, String, Vec<u8>)>,
        private: bool,
        in_reply_to: Option<i64>,
    ) -> Value {
        let mut st = self.st();
        let pk = Self::conv_pk(&st, account_id, conversation_id);
        let mut attrs = Map::new();
        if let Some(id) = in_reply_to {
            attrs.insert("in_reply_to".into(), json!(id));
        }
        let nm = ops::NewMessage {
            content: Some(content.to_string()),
            message_type: 1,
            private,
            source_id: None,
            content_type: "text".into(),
            content_attributes: attrs,
            user_id: Some(user_id),
            files: attachments
                .into_iter()
                .map(|(f, m, b)| (f, m, axum::body::Bytes::from(b)))
                .collect(),
        };
        match ops::create_message(&self.shared, &mut st, pk, nm) {
            Ok(mid) => views::message(&st, &self.shared.base_url, &st.messages[&mid]),
            Err(e) => e.1,
        }
    }

    fn assert_message(st: &State, account_id: i64, conversation_id: i64, message_id: i64) {
        let pk = Self::conv_pk(st, account_id, conversation_id);
        assert!(
            st.messages
                .get(&message_id)
                .is_some_and(|m| m.conversation_pk == pk),
            "no message {message_id} in conversation {conversation_id}"
        );
    }

    /// An agent deleting a message in the UI (fires `message_updated`).
    pub fn agent_delete(&self, account_id: i64, conversation_id: i64, message_id: i64) {
        let mut st = self.st();
        Self::assert_message(&st, account_id, conversation_id, message_id);
        ops::delete_message(&self.shared, &mut st, message_id);
    }

    /// A message Chatwoot itself sends the contact (`message_type`
    /// template, no sender): a CSAT survey (`input_csat`), a greeting, a
    /// bot's `input_select` / `cards` / `form` / `article`. Fires
    /// `message_created`; returns the message as the API renders it.
    pub fn template_message(
        &self,
        account_id: i64,
        conversation_id: i64,
        content_type: &str,
        content: &str,
        content_attributes: Value,
    ) -> Value {
        let mut st = self.st();
        let pk = Self::conv_pk(&st, account_id, conversation_id);
        let nm = ops::NewMessage {
            content: Some(content.to_string()),
            message_type: 3,
            private: false,
            source_id: None,
            content_type: content_type.into(),
            content_attributes: content_attributes.as_object().cloned().unwrap_or_default(),
            user_id: None,
            files: Vec::new(),
        };
        match ops::create_message(&self.shared, &mut st, pk, nm) {
            Ok(mid) => views::message(&st, &self.shared.base_url, &st.messages[&mid]),
            Err(e) => e.1,
        }
    }

    /// CSAT as `CsatSurveyService` posts it when a conversation is resolved.
    pub fn csat_survey(&self, account_id: i64, conversation_id: i64) -> Value {
        self.template_message(
            account_id,
            conversation_id,
            "input_csat",
            "Please rate the conversation",
            json!({}),
        )
    }

    /// An agent pressing Retry on a failed message (`POST .../retry`).
    pub fn agent_retry(&self, account_id: i64, conversation_id: i64, message_id: i64) {
        let mut st = self.st();
        Self::assert_message(&st, account_id, conversation_id, message_id);
        ops::retry_message(&self.shared, &mut st, message_id);
    }

    /// An agent typing in the reply box (`on`) or leaving it; `private`
    /// while writing a note. Fires `conversation_typing_on/off` as
    /// `WebhookListener#handle_typing_status` builds it.
    pub fn agent_typing(
        &self,
        account_id: i64,
        conversation_id: i64,
        user_id: i64,
        on: bool,
        private: bool,
    ) {
        let st = self.st();
        let pk = Self::conv_pk(&st, account_id, conversation_id);
        let conversation = &st.conversations[&pk];
        let event = if on {
            "conversation_typing_on"
        } else {
            "conversation_typing_off"
        };
        let body = json!({
            "event": event,
            "user": views::user_push(&st, user_id),
            "conversation": views::conversation_push(&st, &self.shared.base_url, conversation),
            "is_private": private,
        });
        webhooks::emit(&self.shared, &st, conversation.inbox_id, body, None);
    }

    /// An agent changing the status (`open|resolved|pending|snoozed`); fires
    /// `conversation_status_changed` when it changes. Returns whether it did.
    pub fn set_conversation_status(
        &self,
        account_id: i64,
        conversation_id: i64,
        user_id: i64,
        status: &str,
    ) -> bool {
        let mut st = self.st();
        let pk = Self::conv_pk(&st, account_id, conversation_id);
        ops::change_status(&self.shared, &mut st, pk, status, None, Some(user_id))
    }

    // ----------------------------------------------------------------- faults

    /// While true, every connection fails at the TCP level (new ones are
    /// dropped on accept, open keep-alive ones error on their next I/O).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Delays every API response by `delay` (zero = off).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.config.lock().expect("config lock").delay = delay;
    }

    /// The next `n` API requests answer `status` (500 → Rails JSON body,
    /// 429 → rack-attack "Retry later" + `Retry-After: 60`, 502–504 → nginx
    /// HTML page, others `{"status":..,"error":..}`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared.config.lock().expect("config lock").fail_next = (n > 0).then_some((n, status));
    }

    /// While true, API requests for `account_id` are never answered (the
    /// connection stays open, as with a Chatwoot stuck behind a proxy);
    /// other accounts are served as usual.
    pub fn set_account_stalled(&self, account_id: i64, stalled: bool) {
        let mut config = self.shared.config.lock().expect("config lock");
        config.stalled.retain(|id| *id != account_id);
        if stalled {
            config.stalled.push(account_id);
        }
    }

    /// Per-account inbox limit (None = unlimited); reaching it → 402.
    pub fn set_inbox_limit(&self, account_id: i64, limit: Option<usize>) {
        if let Some(a) = self.st().accounts.get_mut(&account_id) {
            a.inbox_limit = limit;
        }
    }

    /// Behave as Chatwoot >= 4.13 (inbox `secret` shown, webhooks signed). Default true.
    pub fn set_signing(&self, on: bool) {
        self.shared.config.lock().expect("config lock").signing = on;
    }

    /// Webhook POST timeout (default 5 s, Chatwoot's `WEBHOOK_TIMEOUT`).
    pub fn set_webhook_timeout(&self, timeout: Duration) {
        self.shared
            .config
            .lock()
            .expect("config lock")
            .webhook_timeout = timeout;
    }

    /// Holds each webhook in its queue for `lag` before it is sent (zero =
    /// off): Chatwoot sends webhooks from Sidekiq jobs, which under load
    /// leave seconds after the change that fired them.
    pub fn set_webhook_lag(&self, lag: Duration) {
        self.shared.config.lock().expect("config lock").webhook_lag = lag;
    }

    /// Messages allowed per conversation per minute (default 200,
    /// `CONVERSATION_MESSAGE_PER_MINUTE_LIMIT`).
    pub fn set_message_rate_limit(&self, limit: usize) {
        self.shared
            .config
            .lock()
            .expect("config lock")
            .message_rate_limit = limit;
    }

    // ------------------------------------------------------------- inspection

    /// Every account-API request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().expect("requests lock").clear();
    }

    /// Number of recorded requests with `method` whose path starts with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .requests
            .lock()
            .expect("requests lock")
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Inboxes of an account, rendered as an administrator sees them.
    pub fn inboxes(&self, account_id: i64) -> Vec<Value> {
        let signing = self.shared.config().signing;
        let st = self.st();
        st.inboxes
            .values()
            .filter(|i| i.account_id == account_id)
            .map(|i| views::inbox(i, true, signing))
            .collect()
    }

    /// All contacts of an account (including unresolved ones), with contact_inboxes.
    pub fn contacts(&self, account_id: i64) -> Vec<Value> {
        let st = self.st();
        st.contacts
            .values()
            .filter(|c| c.account_id == account_id)
            .map(|c| views::contact(&st, c))
            .collect()
    }

    /// All conversations of an account (API rendering), by display id.
    pub fn conversations(&self, account_id: i64) -> Vec<Value> {
        let st = self.st();
        st.conversations
            .values()
            .filter(|c| c.account_id == account_id)
            .map(|c| views::conversation(&st, &self.shared.base_url, c, true))
            .collect()
    }

    /// All messages of a conversation (API rendering, integer `message_type`),
    /// ascending id, including activity messages. Empty if unknown.
    pub fn messages(&self, account_id: i64, conversation_id: i64) -> Vec<Value> {
        let st = self.st();
        let Some(pk) = st.conversation_pk(account_id, conversation_id) else {
            return Vec::new();
        };
        st.conversation_messages(pk)
            .map(|m| views::message(&st, &self.shared.base_url, m))
            .collect()
    }

    /// When each message with a `source_id` was stored in the account, in
    /// unix seconds (microsecond precision, the clock of this machine):
    /// what a latency test compares with when it sent the message.
    pub fn message_times(&self, account_id: i64) -> HashMap<String, f64> {
        self.st()
            .messages
            .values()
            .filter(|m| m.account_id == account_id)
            .filter_map(|m| Some((m.source_id.clone()?, m.created_at)))
            .collect()
    }

    /// Webhook POSTs attempted so far, in completion order.
    pub fn webhook_deliveries(&self) -> Vec<Delivery> {
        self.shared
            .deliveries
            .lock()
            .expect("deliveries lock")
            .clone()
    }

    /// Waits until at least `n` deliveries were attempted (or `timeout`
    /// passes) and returns them all.
    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.delivered.notified();
            let d = self.webhook_deliveries();
            if d.len() >= n || tokio::time::Instant::now() >= deadline {
                return d;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until every enqueued webhook has been attempted (or `timeout`).
    pub async fn webhooks_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.delivered.notified();
            if self.shared.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
