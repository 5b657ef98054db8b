//! The test harness: `TestServer::start()` runs zapgate in-process on
//! 127.0.0.1:0 against a fresh SQLite file; `TestServer::start_postgres()`
//! against a fresh PostgreSQL database (see `postgres_url`).

#![allow(dead_code)] // each test module uses a different part

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use base64::Engine;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use zapgate::{
    app::{self, Running},
    config::Config,
};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The PostgreSQL the suite uses; `ZAPGATE_TEST_POSTGRES_URL` overrides.
pub fn postgres_url() -> String {
    std::env::var("ZAPGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether PostgreSQL tests must run (CI) rather than skip when unreachable.
pub fn postgres_required() -> bool {
    std::env::var("ZAPGATE_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

pub fn test_key_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

/// A server, its data folder, and a client.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    running: Option<Running>,
    /// Dropped with the server: removes the PostgreSQL database.
    _database: Option<TempDatabase>,
}

/// Variables on top of the test defaults.
#[derive(Default, Clone)]
pub struct Env(pub HashMap<String, String>);

impl Env {
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.to_owned(), value.to_owned());
        self
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Env::default()).await
    }

    pub async fn start_with(env: Env) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", data_dir.path().join("zapgate.db").display());
        Self::launch(env, data_dir, database_url, None).await
    }

    /// A server on the SQLite file `zapgate.db` in `dir`, which the caller
    /// owns and may hand to a later server: a restart on the same data.
    pub async fn start_in(dir: &Path, env: Env) -> Self {
        let database_url = format!("sqlite://{}", dir.join("zapgate.db").display());
        let unused = tempfile::tempdir().expect("temp dir");
        Self::launch(env, unused, database_url, None).await
    }

    /// A server on `database_url`, which the caller owns and may hand to a
    /// later server (a restart on the same data, on either backend).
    pub async fn start_on(database_url: &str, env: Env) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::launch(env, data_dir, database_url.to_owned(), None).await
    }

    /// `None` when PostgreSQL is unreachable and not required.
    pub async fn start_postgres(env: Env) -> Option<Self> {
        let database = TempDatabase::create().await?;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let url = database.url.clone();
        Some(Self::launch(env, data_dir, url, Some(database)).await)
    }

    async fn launch(
        env: Env,
        data_dir: tempfile::TempDir,
        database_url: String,
        database: Option<TempDatabase>,
    ) -> Self {
        let mut vars = Env::default()
            // Port 0: the server binds a free port and its public URL (which
            // follows the address) names the port it got.
            .with("ZAPGATE_ADDR", "127.0.0.1:0")
            .with("ZAPGATE_DATABASE_URL", &database_url)
            .with("ZAPGATE_ENCRYPTION_KEY", &test_key_base64())
            .with("ZAPGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .with("ZAPGATE_WHATSAPP_PROVIDER", "sandbox")
            .with("ZAPGATE_CONNECT_TIMEOUT_SECS", "5")
            .0;
        vars.extend(env.0);
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        let running = app::start(config).await.expect("server starts");
        Self {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            data_dir,
            database_url,
            running: Some(running),
            _database: database,
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }

    /// Stops the server and hands its data folder over (its SQLite file
    /// stays), for a restart on the same data with [`TestServer::start_in`].
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
        let unused = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data_dir, unused)
    }

    /// Bridge jobs still queued or running (dead letters not counted).
    pub async fn unfinished_jobs(&self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM bridge_jobs WHERE status IN ('queued', 'running')";
        if self.database_url.starts_with("sqlite://") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            let n = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            let n = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }

    /// The running server's Chatwoot bridge.
    pub fn bridge(&self) -> std::sync::Arc<zapgate_chatwoot::Bridge> {
        self.running
            .as_ref()
            .and_then(|r| r.bridge.clone())
            .expect("a running server with the Chatwoot module on")
    }

    /// Returns once the bridge has run every due job (a claim made after
    /// this call found nothing while nothing ran): what a test asserts next
    /// did not happen for want of waiting. At most 10 s.
    pub async fn bridge_idle(&self) {
        let bridge = self.bridge();
        tokio::time::timeout(Duration::from_secs(10), bridge.until_idle())
            .await
            .expect("the bridge went idle within 10 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `token` goes in the `token` header; `body` as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.header("token", token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    /// A new account through the admin API; returns (id, TokenAccount).
    pub async fn create_account(&self, name: &str, max_instances: u32) -> (String, String) {
        let reply = self
            .post(
                "/admin/accounts",
                Some(ADMIN_TOKEN),
                json!({"name": name, "maxInstances": max_instances}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (
            reply.body["account"]["id"].as_str().unwrap().to_owned(),
            reply.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A new instance; returns its TokenInstance.
    pub async fn create_instance(&self, account_token: &str, name: &str) -> String {
        let reply = self
            .post(
                "/api/instance/new",
                Some(account_token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["instance"]["token"].as_str().unwrap().to_owned()
    }

    /// Connects the instance and pairs the sandbox phone `number`.
    pub async fn pair(&self, token: &str, name: &str, number: &str) {
        let reply = self
            .get(&format!("/api/instance/connect/{name}"), Some(token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let reply = self
            .post(
                &format!("/api/sandbox/{name}/pair"),
                Some(token),
                json!({"number": number}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    /// The SQLite file this server uses (`start_in` puts it in the caller's folder).
    pub fn sqlite_file(&self) -> PathBuf {
        match self.database_url.strip_prefix("sqlite://") {
            Some(file) => PathBuf::from(file),
            None => self.data_dir.path().join("zapgate.db"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that panicked left its server running; end its task.
        if let Some(running) = self.running.take() {
            drop(running);
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// `error.message` of an error envelope (and checks the envelope's shape).
    pub fn error(&self) -> &str {
        assert_eq!(
            self.body["success"],
            json!(false),
            "not an error envelope: {}",
            self.text
        );
        let keys: Vec<_> = self.body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys.len(),
            2,
            "error envelope has extra keys: {}",
            self.text
        );
        self.body["error"]["message"]
            .as_str()
            .expect("error.message")
    }

    /// Asserts status and error message together.
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.error(), message);
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A uniquely named PostgreSQL database, dropped afterwards.
pub struct TempDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempDatabase {
    /// `None` (with a loud note) when PostgreSQL is unreachable and not
    /// required; a panic when it is required.
    pub async fn create() -> Option<Self> {
        use sqlx::{Connection, PgConnection};
        let admin_url = postgres_url();
        let mut conn = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(err) if !postgres_required() => {
                eprintln!("SKIPPED: PostgreSQL not reachable at {admin_url}: {err}");
                return None;
            }
            Err(err) => panic!("PostgreSQL required but not reachable at {admin_url}: {err}"),
        };
        let name = format!("zg_api_{}", zapgate_core::token::random_hex(8));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Some(Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a short-lived one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::{Connection, PgConnection};
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The address a `zapgate serve` child logged it listens on (with
/// `ZAPGATE_LOG_FORMAT=json` and `zapgate::app` at info), once it has:
/// children bind port 0, so no port is picked for them and released first.
pub fn listening_addr(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let entry: Value = serde_json::from_str(line).ok()?;
        let fields = entry.get("fields")?;
        if fields["message"] != json!("zapgate listening") {
            return None;
        }
        fields["addr"].as_str().map(str::to_owned)
    })
}

/// A port nobody listens on right now (for a URL that must refuse).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A webhook receiver: records every delivery, answers with the status the
/// test sets (200 by default).
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>,
    /// The status to answer with; 0 means 200.
    answer: Arc<Mutex<u16>>,
    /// How long to wait before answering.
    pub delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    pub async fn start() -> (Self, String) {
        let receiver = Self::default();
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    pub fn answer(&self, status: u16) {
        *self.answer.lock().unwrap() = status;
    }

    pub fn bodies(&self) -> Vec<(String, HeaderMap, Value)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(path, headers, body)| {
                (
                    path.clone(),
                    headers.clone(),
                    serde_json::from_slice(body).unwrap(),
                )
            })
            .collect()
    }

    /// Waits until `count` deliveries matching `event` arrived.
    pub async fn wait_for(&self, event: &str, count: usize) -> Vec<(String, HeaderMap, Value)> {
        for _ in 0..600 {
            let matching: Vec<_> = self
                .bodies()
                .into_iter()
                .filter(|(_, _, body)| body["event"] == event)
                .collect();
            if matching.len() >= count {
                return matching;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {count} {event} deliveries: {:?}", self.bodies());
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delay = *receiver.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    receiver
        .seen
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), headers, body));
    match *receiver.answer.lock().unwrap() {
        0 => StatusCode::OK,
        status => StatusCode::from_u16(status).unwrap(),
    }
}

/// One file a [`PageServer`] serves.
#[derive(Clone)]
pub struct Page {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub status: u16,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Page {
    pub fn new(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type,
            body: body.into(),
            status: 200,
            delay: Duration::ZERO,
        }
    }
}

/// A web server on loopback serving fixed pages by path (404 for any
/// other), counting the requests each path got: what a `mediaUrl` or a
/// previewed link points at.
#[derive(Clone, Default)]
pub struct PageServer {
    pages: Arc<Mutex<HashMap<String, Page>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl PageServer {
    /// The server and its base URL (`http://127.0.0.1:<port>`).
    pub async fn start(pages: impl IntoIterator<Item = (&'static str, Page)>) -> (Self, String) {
        let server = Self::default();
        server.pages.lock().unwrap().extend(
            pages
                .into_iter()
                .map(|(path, page)| (path.to_owned(), page)),
        );
        let app = Router::new()
            .fallback(serve_page)
            .with_state(server.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn serve_page(
    State(server): State<PageServer>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    *server
        .hits
        .lock()
        .unwrap()
        .entry(uri.path().to_owned())
        .or_default() += 1;
    let page = server.pages.lock().unwrap().get(uri.path()).cloned();
    let Some(page) = page else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(page.delay).await;
    (
        StatusCode::from_u16(page.status).unwrap(),
        [(axum::http::header::CONTENT_TYPE, page.content_type)],
        page.body,
    )
        .into_response()
}
