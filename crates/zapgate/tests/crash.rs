//! zapgate killed (SIGKILL) while bridge deliveries are in flight, then
//! started again on the same data: nothing lost, nothing duplicated. Runs
//! the real binary against the Chatwoot double in this process.

#[path = "api/harness.rs"]
mod harness;

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789";
const PHONE: &str = "5511999990000";
const CUSTOMERS: [&str; 3] = ["5511988880001", "5511988880002", "5511988880003"];

/// A `zapgate serve` child on a fixed port and data folder.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    /// On the SQLite file `zapgate.db` in `dir`.
    async fn start(dir: &Path, port: u16, run: u32) -> Self {
        let database = format!("sqlite://{}", dir.join("zapgate.db").display());
        Self::start_on(dir, &database, port, run).await
    }

    /// On `database`; `dir` holds the logs.
    async fn start_on(dir: &Path, database: &str, port: u16, run: u32) -> Self {
        Self::start_with(dir, database, port, run, &[]).await
    }

    /// As [`Serve::start_on`], with `overrides` set after the defaults.
    async fn start_with(
        dir: &Path,
        database: &str,
        port: u16,
        run: u32,
        overrides: &[(&str, &str)],
    ) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let base = format!("http://{addr}");
        let key = harness::test_key_base64();
        let env = [
            ("ZAPGATE_ADDR", addr.as_str()),
            ("ZAPGATE_PUBLIC_URL", base.as_str()),
            ("ZAPGATE_DATABASE_URL", database),
            ("ZAPGATE_ENCRYPTION_KEY", key.as_str()),
            ("ZAPGATE_ADMIN_TOKEN", ADMIN_TOKEN),
            ("ZAPGATE_WHATSAPP_PROVIDER", "sandbox"),
            ("ZAPGATE_ALLOW_PRIVATE_URLS", "true"),
            ("ZAPGATE_BRIDGE_LEASE_SECS", "2"),
            ("ZAPGATE_BRIDGE_RETRY_BASE_MS", "50"),
            ("ZAPGATE_BRIDGE_RETRY_MAX_MS", "400"),
            ("ZAPGATE_BRIDGE_POLL_MS", "20"),
            ("ZAPGATE_BRIDGE_WAIT_POLL_MS", "200"),
            ("ZAPGATE_RECONCILE_INTERVAL_SECS", "1"),
            ("ZAPGATE_RECONCILE_GRACE_SECS", "0"),
            ("ZAPGATE_WEBHOOK_TIMEOUT_SECS", "2"),
            ("ZAPGATE_WEBHOOK_RETRY_BASE_MS", "50"),
            ("ZAPGATE_WEBHOOK_RETRY_MAX_MS", "400"),
            ("ZAPGATE_WEBHOOK_POLL_MS", "20"),
            // The test polls the outbox far more often than 100 times a minute.
            ("ZAPGATE_RATE_LIMIT", "off"),
            ("RUST_LOG", "info"),
        ];
        let log_file = dir.join(format!("serve-{run}.log"));
        let log = std::fs::File::create(&log_file).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_zapgate"));
        command
            .current_dir(dir)
            .env_clear()
            .envs(env)
            .envs(overrides.iter().copied())
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut serve = Self {
            child: command.spawn().expect("zapgate serve starts"),
            base,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = client.get(format!("{}/health", serve.base)).send().await
                && resp.status().as_u16() == 200
            {
                return serve;
            }
            let log = || std::fs::read_to_string(&log_file).unwrap_or_default();
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("zapgate serve exited with {status}:\n{}", log());
            }
            assert!(Instant::now() < deadline, "not healthy in 30 s:\n{}", log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An account with one instance, `suporte`, paired with the sandbox
    /// phone; its TokenInstance.
    async fn paired_instance(&self) -> String {
        let account = self
            .post(
                "/admin/accounts",
                ADMIN_TOKEN,
                json!({"name": "acme", "maxInstances": 5}),
            )
            .await;
        let account_token = account["token"].as_str().unwrap().to_owned();
        let instance = self
            .post(
                "/api/instance/new",
                &account_token,
                json!({"name": "suporte"}),
            )
            .await;
        let token = instance["instance"]["token"].as_str().unwrap().to_owned();
        self.get("/api/instance/connect/suporte", &token).await;
        self.post(
            "/api/sandbox/suporte/pair",
            &token,
            json!({"number": PHONE}),
        )
        .await;
        token
    }

    /// SIGKILL: no shutdown code runs.
    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        call(&self.base, reqwest::Method::POST, path, token, Some(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        call(&self.base, reqwest::Method::GET, path, token, None).await
    }

    /// The sandbox outbox: (id, text) of every message sent to WhatsApp.
    async fn outbox(&self, token: &str) -> Vec<(String, String)> {
        self.get("/api/sandbox/suporte/outbox", token).await["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().to_owned(),
                    m["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// A request to `base` that must succeed; its JSON answer.
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    body
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// 15 agent replies, turn by turn in `conversations`: (Chatwoot id, text).
fn agent_replies(
    double: &ChatwootDouble,
    account_id: i64,
    agent_id: i64,
    conversations: &[i64],
) -> Vec<(i64, String)> {
    (0..15)
        .map(|i| {
            let text = format!("resposta {i}");
            let message = double.agent_reply(
                account_id,
                conversations[i % conversations.len()],
                agent_id,
                &text,
                Vec::new(),
                false,
                None,
            );
            (message["id"].as_i64().unwrap(), text)
        })
        .collect()
}

/// How many times each `WAID:` source id is in the account.
fn posted(double: &ChatwootDouble, account_id: i64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for conversation in double.conversations(account_id) {
        let id = conversation["id"].as_i64().unwrap();
        for message in double.messages(account_id, id) {
            if let Some(source) = message["source_id"].as_str() {
                *counts.entry(source.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn delivered(counts: &BTreeMap<String, usize>, ids: &[String]) -> usize {
    ids.iter()
        .filter(|id| counts.contains_key(&format!("WAID:{id}")))
        .count()
}

#[tokio::test]
async fn zapgate_killed_mid_delivery_loses_and_duplicates_nothing_after_a_restart() {
    let double = ChatwootDouble::start().await;
    let account_id = double.add_account("Acme");
    let (agent_id, cw_token) =
        double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();

    let mut serve = Serve::start(dir.path(), port, 1).await;
    let token = serve.paired_instance().await;
    serve
        .post(
            "/api/chatwoot/set/suporte",
            &token,
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": account_id,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;

    // ---- WhatsApp → Chatwoot: 30 messages, killed part-way through.
    double.set_delay(Duration::from_millis(300));
    let mut ids = Vec::new();
    for i in 0..30 {
        let reply = serve
            .post(
                "/api/sandbox/suporte/inbound",
                &token,
                json!({"from": CUSTOMERS[i % 3], "pushName": "Cliente", "text": format!("mensagem {i}")}),
            )
            .await;
        ids.push(reply["id"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&posted(&double, account_id), &ids) < 4 {
        assert!(Instant::now() < deadline, "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Halfway through the double's 300 ms: posts are in flight.
    tokio::time::sleep(Duration::from_millis(150)).await;
    serve.kill_hard();
    let before_restart = delivered(&posted(&double, account_id), &ids);
    assert!(
        before_restart < ids.len(),
        "everything was delivered before the kill; the test proves nothing"
    );

    let serve = Serve::start(dir.path(), port, 2).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&posted(&double, account_id), &ids) < ids.len() {
        assert!(
            Instant::now() < deadline,
            "messages lost after the restart: {:?}",
            posted(&double, account_id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = posted(&double, account_id);
    for id in &ids {
        assert_eq!(
            counts.get(&format!("WAID:{id}")),
            Some(&1),
            "{id} not in Chatwoot exactly once ({before_restart} delivered before the kill): {counts:?}"
        );
    }
    eprintln!("inbound: {before_restart}/30 in Chatwoot at the SIGKILL, all 30 once after restart");

    // ---- Chatwoot → WhatsApp: 15 agent replies, killed while their
    // webhooks and jobs are in flight; the reconciler finds the ones whose
    // webhook hit a dead zapgate.
    double.set_delay(Duration::ZERO);
    let mut serve = serve;
    let conversations: Vec<i64> = double
        .conversations(account_id)
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(conversations.len(), 3);
    let replies = agent_replies(&double, account_id, agent_id, &conversations);
    let deadline = Instant::now() + Duration::from_secs(10);
    let before_kill = loop {
        let outbox = serve.outbox(&token).await;
        if outbox.len() >= 2 {
            break outbox;
        }
        assert!(Instant::now() < deadline, "no reply was sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    serve.kill_hard();

    // The sandbox phone's outbox lives in memory: after the restart it
    // shows only what the new process sent.
    let serve = Serve::start(dir.path(), port, 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // A reply the killed process sent between the snapshot and the kill is
    // in no outbox we can read; its link, stored only once WhatsApp took the
    // message, says it went. Links are read first: one the new process
    // stored is then already in its outbox.
    let (after, unseen) = loop {
        let linked = outbound_links(dir.path()).await;
        let after = serve.outbox(&token).await;
        let sent: Vec<&String> = before_kill.iter().chain(&after).map(|(_, t)| t).collect();
        let unseen: Vec<&String> = replies
            .iter()
            .filter(|(id, text)| !sent.contains(&text) && linked.contains(id))
            .map(|(_, text)| text)
            .collect();
        if replies
            .iter()
            .all(|(_, text)| sent.contains(&text) || unseen.contains(&text))
        {
            break (after, unseen.len());
        }
        assert!(
            Instant::now() < deadline,
            "replies lost: before the kill {before_kill:?}, after {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // More reconciler passes: nothing is sent again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = serve.outbox(&token).await;
    assert_eq!(again, after, "sent again by a later pass");
    let mut texts: Vec<&String> = after.iter().map(|(_, t)| t).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(
        texts.len(),
        after.len(),
        "a reply sent twice after the restart: {after:?}"
    );
    // What was sent before the kill but sent again afterwards (its link not
    // yet stored) carries the same WhatsApp id, which WhatsApp drops.
    for (id, text) in &before_kill {
        if let Some((again_id, _)) = after.iter().find(|(_, t)| t == text) {
            assert_eq!(again_id, id, "{text} resent under a new id");
        }
    }
    let resent = before_kill
        .iter()
        .filter(|(_, t)| after.iter().any(|(_, a)| a == t))
        .count();
    eprintln!(
        "outbound: {} sent before SIGKILL (snapshot), {unseen} between the snapshot and the kill, {} after restart, {resent} resent under the same id",
        before_kill.len(),
        after.len()
    );
}

/// The Chatwoot ids of the agent messages whose WhatsApp send was recorded.
async fn outbound_links(dir: &Path) -> Vec<i64> {
    let url = format!("sqlite://{}?mode=ro", dir.join("zapgate.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let ids = sqlx::query_scalar(
        "SELECT chatwoot_message_id FROM message_links WHERE direction = 'outbound'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    ids
}

#[tokio::test]
async fn zapgate_killed_mid_webhook_delivery_delivers_every_event_after_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("zapgate.db").display());
    killed_mid_webhook_delivery(dir.path(), &database).await;
}

#[tokio::test]
async fn zapgate_killed_mid_webhook_delivery_delivers_every_event_after_a_restart_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(database) = harness::TempDatabase::create().await {
        killed_mid_webhook_delivery(dir.path(), &database.url).await;
    }
}

async fn killed_mid_webhook_delivery(dir: &Path, database: &str) {
    let port = harness::free_port();
    let (receiver, url) = harness::Receiver::start().await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(200);

    let mut serve = Serve::start_on(dir, database, port, 1).await;
    let token = serve.paired_instance().await;
    serve
        .post(
            "/api/events/webhook/suporte",
            &token,
            json!({"enabled": true, "url": format!("{url}/hook"), "events": ["message.exchange"]}),
        )
        .await;

    let mut ids = Vec::new();
    for i in 0..40 {
        let reply = serve
            .post(
                "/api/sandbox/suporte/inbound",
                &token,
                json!({"from": CUSTOMERS[i % 3], "text": format!("mensagem {i}")}),
            )
            .await;
        ids.push(reply["id"].as_str().unwrap().to_owned());
    }
    // Killed while deliveries are on the wire (the receiver takes 200 ms).
    receiver.wait_for("message.exchange", 4).await;
    serve.kill_hard();
    let before_restart = receiver.bodies().len();
    assert!(
        before_restart < ids.len(),
        "everything was delivered before the kill; the test proves nothing"
    );

    let _serve = Serve::start_on(dir, database, port, 2).await;
    // Deliveries running at the kill are taken again once their lease
    // (timeout + 5 s) lapses.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, headers, body) in receiver.bodies() {
            seen.entry(body["data"]["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(headers["webhook-id"].to_str().unwrap().to_owned());
        }
        if ids.iter().all(|id| seen.contains_key(id)) {
            // At least once; a repeat is recognisable by its webhook-id.
            for (id, webhook_ids) in &seen {
                assert!(
                    webhook_ids.iter().all(|w| *w == webhook_ids[0]),
                    "{id} came with different webhook-ids: {webhook_ids:?}"
                );
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event arrived after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A keyed `message/text` send: (status, raw answer).
async fn keyed_text(serve: &Serve, token: &str, key: &str, text: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/message/text/suporte", serve.base))
        .header("token", token)
        .header("Idempotency-Key", key)
        .json(&json!({"number": CUSTOMERS[0], "message": text}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn an_idempotency_key_sends_nothing_new_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    let mut serve = Serve::start(dir.path(), port, 1).await;
    let token = serve.paired_instance().await;
    let (status, answered) = keyed_text(&serve, &token, "order-1", "Pedido 1 confirmado").await;
    assert_eq!(status, 200, "{answered}");
    let (status, unanswered) = keyed_text(&serve, &token, "order-2", "Pedido 2 confirmado").await;
    assert_eq!(status, 200, "{unanswered}");
    let sent = serve.outbox(&token).await;
    assert_eq!(sent.len(), 2);
    serve.kill_hard();

    // What a kill between sending and storing the answer leaves: the claim
    // of order-2 without its answer.
    let url = format!("sqlite://{}", dir.path().join("zapgate.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let cleared =
        sqlx::query("UPDATE idempotency_keys SET response = NULL WHERE idem_key = 'order-2'")
            .execute(&pool)
            .await
            .unwrap();
    assert_eq!(cleared.rows_affected(), 1);
    pool.close().await;

    let serve = Serve::start(dir.path(), port, 2).await;
    // The answered key: the first answer again, byte for byte, nothing sent.
    let (status, again) = keyed_text(&serve, &token, "order-1", "Pedido 1 confirmado").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answered);
    assert!(serve.outbox(&token).await.is_empty());

    // The unanswered key goes out again under the id it was first sent
    // with, which WhatsApp drops as the same message.
    let (status, resent) = keyed_text(&serve, &token, "order-2", "Pedido 2 confirmado").await;
    assert_eq!(status, 200, "{resent}");
    let first: Value = serde_json::from_str(&unanswered).unwrap();
    let second: Value = serde_json::from_str(&resent).unwrap();
    assert_eq!(second["data"]["messageId"], first["data"]["messageId"]);
    assert_eq!(sent[1].0, first["data"]["messageId"].as_str().unwrap());
    let (_, third) = keyed_text(&serve, &token, "order-2", "Pedido 2 confirmado").await;
    assert_eq!(third, resent);
    assert_eq!(serve.outbox(&token).await.len(), 1);

    // A different request under a used key is refused after the restart too.
    let (status, body) = keyed_text(&serve, &token, "order-1", "outro").await;
    assert_eq!(status, 409, "{body}");
}

/// A round-robin HTTP load balancer in front of several `zapgate serve`
/// processes, as an operator runs one: a backend that refuses the
/// connection (a dead process) is skipped, as a health-checked balancer
/// would; any other failure is a 502.
struct Balancer {
    base: String,
    backends: Arc<Mutex<Vec<String>>>,
}

impl Balancer {
    async fn start() -> Self {
        let backends: Arc<Mutex<Vec<String>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::new();
        let shared = backends.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let backends = shared.lock().unwrap().clone();
            let turn = next.fetch_add(1, Ordering::Relaxed);
            forward(client.clone(), backends, turn, request)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, backends }
    }

    fn route_to(&self, backends: &[&str]) {
        *self.backends.lock().unwrap() = backends.iter().map(|b| b.to_string()).collect();
    }
}

/// Sends `request` to the backend whose turn it is, or the next live one.
async fn forward(
    client: reqwest::Client,
    backends: Vec<String>,
    turn: usize,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    for i in 0..backends.len() {
        let backend = &backends[(turn + i) % backends.len()];
        let mut outgoing = client
            .request(parts.method.clone(), format!("{backend}{path}"))
            .body(body.clone());
        for (name, value) in parts.headers.iter().filter(|(n, _)| *n != "host") {
            outgoing = outgoing.header(name, value);
        }
        match outgoing.send().await {
            Ok(answer) => {
                let status = answer.status();
                let headers = answer.headers().clone();
                let bytes = answer.bytes().await.unwrap_or_default();
                let mut response = (status, bytes).into_response();
                *response.headers_mut() = headers;
                return response;
            }
            Err(err) if err.is_connect() => continue,
            Err(err) => {
                return (axum::http::StatusCode::BAD_GATEWAY, err.to_string()).into_response();
            }
        }
    }
    axum::http::StatusCode::BAD_GATEWAY.into_response()
}

/// The status of a GET to `base` with `token`.
async fn status_of(base: &str, path: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The Chatwoot ids of the agent messages sent to WhatsApp, in the order
/// their sends were recorded (one chat's replies go one at a time).
async fn outbound_links_in_order(database: &str) -> Vec<(i64, i64)> {
    let pool = sqlx::PgPool::connect(database).await.unwrap();
    let links = sqlx::query_as(
        "SELECT chatwoot_conversation_id, chatwoot_message_id FROM message_links \
         WHERE direction = 'outbound' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    links
}

/// Two `zapgate serve` processes on one PostgreSQL database behind a load
/// balancer (the scale-out deployment in the README): agent replies and
/// inbound messages spread over both, one process is killed with SIGKILL
/// while deliveries are in flight, and every message still arrives exactly
/// once, in order per chat; the rate limit is one budget for both.
#[tokio::test]
async fn two_processes_on_one_postgres_share_the_work_and_survive_a_sigkill() {
    let Some(database) = harness::TempDatabase::create().await else {
        return;
    };
    let double = ChatwootDouble::start().await;
    let account_id = double.add_account("Acme");
    let (agent_id, cw_token) =
        double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let balancer = Balancer::start().await;
    let overrides = [
        // Chatwoot's webhooks reach whichever process the balancer picks.
        ("ZAPGATE_PUBLIC_URL", balancer.base.as_str()),
        ("ZAPGATE_RATE_LIMIT", "on"),
        ("ZAPGATE_RATE_LIMIT_PER_MINUTE", "100000"),
    ];
    let (logs_a, logs_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = harness::free_port();
    let mut first = Serve::start_with(logs_a.path(), &database.url, port, 1, &overrides).await;
    let token = first.paired_instance().await;
    first
        .post(
            "/api/chatwoot/set/suporte",
            &token,
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": account_id,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
    // The second process resumes the paired session from the database.
    let port = harness::free_port();
    let second = Serve::start_with(logs_b.path(), &database.url, port, 1, &overrides).await;
    balancer.route_to(&[&first.base, &second.base]);

    // ---- One rate-limit budget: 10 a minute for this account, counted
    // by whichever process answers. Not started in a window's last
    // seconds, so all 12 requests count in one window.
    let limited = first
        .post(
            "/admin/accounts",
            ADMIN_TOKEN,
            json!({"name": "limited", "maxInstances": 1, "rateLimitPerMinute": 10}),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute > 55 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let mut statuses = Vec::new();
    for serve in [&first, &second].iter().cycle().take(12) {
        statuses.push(status_of(&serve.base, "/api/instance/list", &limited).await);
    }
    assert_eq!(statuses[..10], [200; 10], "{statuses:?}");
    assert_eq!(
        statuses[10..],
        [429; 2],
        "each process counted alone: {statuses:?}"
    );

    // ---- Inbound through the balancer: each message enters through one
    // process or the other; the first customer messages open the chats.
    let inbound = |i: usize| {
        let balancer = &balancer.base;
        let token = &token;
        async move {
            let reply = call(
                balancer,
                reqwest::Method::POST,
                "/api/sandbox/suporte/inbound",
                token,
                Some(json!({"from": CUSTOMERS[i % 3], "pushName": "Cliente", "text": format!("mensagem {i}")})),
            )
            .await;
            reply["id"].as_str().unwrap().to_owned()
        }
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(inbound(i).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while double.conversations(account_id).len() < 3 {
        assert!(Instant::now() < deadline, "the chats were not opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // ---- Agent replies: their webhooks reach both processes, their jobs
    // run on both; each reply is sent once, in order per chat.
    let conversations: Vec<i64> = double
        .conversations(account_id)
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let replies = agent_replies(&double, account_id, agent_id, &conversations);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (on_first, on_second) = loop {
        let on_first = first.outbox(&token).await;
        let on_second = second.outbox(&token).await;
        if on_first.len() + on_second.len() >= replies.len() {
            break (on_first, on_second);
        }
        assert!(
            Instant::now() < deadline,
            "replies lost: {on_first:?} {on_second:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut sent: Vec<&String> = on_first.iter().chain(&on_second).map(|(_, t)| t).collect();
    sent.sort();
    let mut expected: Vec<&String> = replies.iter().map(|(_, t)| t).collect();
    expected.sort();
    assert_eq!(sent, expected, "not every reply sent exactly once");
    let links = outbound_links_in_order(&database.url).await;
    for conversation in &conversations {
        let order: Vec<i64> = links
            .iter()
            .filter(|(c, _)| c == conversation)
            .map(|(_, m)| *m)
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "conversation {conversation} sent out of order: {order:?}"
        );
    }
    eprintln!(
        "replies: {} sent by the first process, {} by the second",
        on_first.len(),
        on_second.len()
    );

    // ---- More inbound through the balancer; the first process is killed
    // while Chatwoot posts are in flight, and inbound keeps coming through
    // the survivor.
    double.set_delay(Duration::from_millis(300));
    for i in 3..30 {
        ids.push(inbound(i).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&posted(&double, account_id), &ids) < 7 {
        assert!(Instant::now() < deadline, "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Halfway through the double's 300 ms: posts are in flight.
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.kill_hard();
    let before = delivered(&posted(&double, account_id), &ids);
    assert!(
        before < ids.len(),
        "everything was delivered before the kill; the test proves nothing"
    );
    for i in 30..39 {
        ids.push(inbound(i).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&posted(&double, account_id), &ids) < ids.len() {
        assert!(
            Instant::now() < deadline,
            "messages lost after the kill: {:?}",
            posted(&double, account_id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every job finished: nothing is left to post a second copy.
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bridge_jobs WHERE status IN ('queued', 'running')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} jobs never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.close().await;
    let counts = posted(&double, account_id);
    for id in &ids {
        assert_eq!(
            counts.get(&format!("WAID:{id}")),
            Some(&1),
            "{id} not in Chatwoot exactly once: {counts:?}"
        );
    }
    for conversation in &conversations {
        let order: Vec<usize> = double
            .messages(account_id, *conversation)
            .iter()
            .filter_map(|m| m["source_id"].as_str()?.strip_prefix("WAID:"))
            .map(|id| ids.iter().position(|i| i == id).unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "conversation {conversation} out of order: {order:?}"
        );
    }
    eprintln!(
        "inbound: {before}/30 in Chatwoot at the SIGKILL, all {} once and in order on the survivor",
        ids.len()
    );
}
