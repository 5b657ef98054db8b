//! The real `zapgate` binary as a child process, its database (a fresh
//! SQLite folder or a fresh PostgreSQL database), and the API calls that
//! set up instances against the Chatwoot double.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
pub const KEY: [u8; 32] = [7u8; 32];

pub fn key_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(KEY)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh, empty database; dropped (PostgreSQL) or deleted (SQLite) at the end.
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Database {
    pub async fn fresh(backend: Backend, pg_admin: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("zapgate-bench").tempdir()?;
        match backend {
            Backend::Sqlite => Ok(Self {
                url: format!("sqlite://{}", dir.path().join("zapgate.db").display()),
                dir,
                pg: None,
            }),
            Backend::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(pg_admin)
                    .await
                    .with_context(|| format!("connecting to {pg_admin}"))?;
                let name = format!("zg_bench_{}", zapgate_core::token::random_hex(6));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                let base = pg_admin
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(pg_admin);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    dir,
                    pg: Some((pg_admin.to_owned(), name)),
                })
            }
        }
    }

    pub async fn drop_db(self) {
        if let Some((admin, name)) = &self.pg {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `zapgate serve`.
pub struct Zapgate {
    child: Child,
    pub base: String,
    pub pid: u32,
    /// From spawn to the first 200 on /health.
    pub ready_in: Duration,
    log: PathBuf,
}

impl Zapgate {
    pub async fn start(
        bin: &Path,
        db: &Database,
        port: u16,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = db.dir.path().join(format!("zapgate-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .current_dir(db.dir.path())
            .env("ZAPGATE_ADDR", format!("127.0.0.1:{port}"))
            .env("ZAPGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("ZAPGATE_DATABASE_URL", &db.url)
            .env("ZAPGATE_ENCRYPTION_KEY", key_base64())
            .env("ZAPGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("ZAPGATE_WHATSAPP_PROVIDER", "sandbox")
            .env("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
            .env("ZAPGATE_RATE_LIMIT", "off")
            .env("ZAPGATE_RECONCILE_INTERVAL_SECS", "0")
            // The load generator keeps up to `load::MAX_IN_FLIGHT` requests
            // open, each on a connection of its own once the server slows:
            // sized for it, as README's hardening section tells a deployment
            // with that many clients. Under the default cap (1,024) the
            // kernel drops the handshakes past the cap and the listen
            // backlog, and a step measured the clients' 1, 3, 7 s retries.
            .env(
                "ZAPGATE_MAX_CONNECTIONS",
                (2 * crate::load::MAX_IN_FLIGHT).to_string(),
            )
            .env("ZAPGATE_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let base = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let ready_in = loop {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "zapgate exited ({status}) before it was ready:\n{}",
                    tail(&log)
                );
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("zapgate not ready after 120 s:\n{}", tail(&log));
            }
            if let Ok(r) = probe.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                break started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        Ok(Self {
            child,
            base,
            pid,
            ready_in,
            log,
        })
    }

    /// VmRSS of the process, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss_of(self.pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    #[allow(dead_code)]
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kb * 1024)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// An HTTP client for the API (bench side).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .build()
        .expect("reqwest client")
}

pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = client.request(method.clone(), url).header("token", token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{method} {url}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An instance set up through the API: paired (integration active in the
/// bridge runs, a webhook or the WebSocket enabled in the events runs).
#[derive(Debug, Clone)]
pub struct ApiInstance {
    pub name: String,
    pub token: String,
}

/// Creates an account and `n` instances and pairs each sandbox phone.
pub async fn create_paired(z: &Zapgate, n: usize) -> anyhow::Result<(String, Vec<ApiInstance>)> {
    use reqwest::Method;
    let c = client();
    let account = call(
        &c,
        Method::POST,
        &format!("{}/admin/accounts", z.base),
        ADMIN_TOKEN,
        Some(json!({"name": "bench", "maxInstances": n + 10})),
    )
    .await?;
    let account_token = account["token"]
        .as_str()
        .context("account token")?
        .to_owned();
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("bench{i}");
        let created = call(
            &c,
            Method::POST,
            &format!("{}/api/instance/new", z.base),
            &account_token,
            Some(json!({"name": name})),
        )
        .await?;
        let token = created["instance"]["token"]
            .as_str()
            .context("instance token")?
            .to_owned();
        call(
            &c,
            Method::GET,
            &format!("{}/api/instance/connect/{name}", z.base),
            &token,
            None,
        )
        .await?;
        call(
            &c,
            Method::POST,
            &format!("{}/api/sandbox/{name}/pair", z.base),
            &token,
            Some(json!({"number": format!("551199{:07}", i)})),
        )
        .await?;
        out.push(ApiInstance { name, token });
    }
    Ok((account_token, out))
}

/// Creates an account and `n` paired instances and activates each one's
/// integration against the double.
pub async fn setup_instances(
    z: &Zapgate,
    n: usize,
    chatwoot_base: &str,
    chatwoot_account: i64,
    chatwoot_token: &str,
) -> anyhow::Result<(String, Vec<ApiInstance>)> {
    let c = client();
    let (account_token, instances) = create_paired(z, n).await?;
    for inst in &instances {
        call(
            &c,
            reqwest::Method::POST,
            &format!("{}/api/chatwoot/set/{}", z.base, inst.name),
            &inst.token,
            Some(json!({
                "chatwootBaseUrl": chatwoot_base,
                "chatwootAccountId": chatwoot_account,
                "chatwootApiToken": chatwoot_token,
                "inboxName": format!("WhatsApp {}", inst.name),
            })),
        )
        .await?;
    }
    Ok((account_token, instances))
}
