//! Rate limits (API.md §1): per token, 100/min on every route, 20/min on
//! instance creation, per client IP without a valid token, configurable per
//! server and per account, and shared across processes on PostgreSQL.
//!
//! The limiter counts fixed 60 s windows aligned to the Unix minute. Every
//! burst below first waits for a fresh window when the current one is about
//! to end, so a burst never straddles two windows.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Env, Reply, TempDatabase, TestServer, test_key_base64};

const RATE_LIMITED: &str = "Rate limit exceeded. Try again later.";

fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps into the next Unix minute when fewer than `margin_secs` remain in
/// this one, so a burst that follows fits in one limiter window.
async fn fresh_window_for(margin_secs: f64) {
    let left = 60.0 - now_secs_f64() % 60.0;
    if left < margin_secs {
        tokio::time::sleep(Duration::from_secs_f64(left + 0.25)).await;
    }
}

async fn fresh_window() {
    fresh_window_for(10.0).await;
}

fn header_u64(reply: &Reply, name: &str) -> u64 {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("missing {name}: {:?}", reply.headers))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {:?}", reply.header(name)))
}

/// `x-ratelimit-limit` and `x-ratelimit-remaining` as given, and a reset
/// within the next minute.
fn assert_rate_headers(reply: &Reply, limit: u64, remaining: u64) {
    assert_eq!(
        header_u64(reply, "x-ratelimit-limit"),
        limit,
        "{}",
        reply.text
    );
    assert_eq!(
        header_u64(reply, "x-ratelimit-remaining"),
        remaining,
        "{}",
        reply.text
    );
    let reset = header_u64(reply, "x-ratelimit-reset") as f64;
    let now = now_secs_f64();
    assert!(
        reset > now && reset <= now + 60.0,
        "x-ratelimit-reset {reset} is not within the next minute of {now}"
    );
    assert_eq!(
        reset as u64 % 60,
        0,
        "the window is aligned to the Unix minute"
    );
}

fn assert_no_rate_headers(reply: &Reply) {
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(
            reply.header(name).is_none(),
            "{name} present: {:?}",
            reply.headers
        );
    }
}

/// Sends instance-list requests with `token` until `limit` are spent,
/// expecting each to pass with `remaining` counting down to 0. `already`
/// requests were sent in this window before.
async fn spend_from(server: &TestServer, token: &str, limit: u64, already: u64) {
    for i in already + 1..=limit {
        let reply = server.get("/api/instance/list", Some(token)).await;
        assert_eq!(reply.status.as_u16(), 200, "request {i}: {}", reply.text);
        assert_rate_headers(&reply, limit, limit - i);
    }
}

async fn spend(server: &TestServer, token: &str, limit: u64) {
    spend_from(server, token, limit, 0).await;
}

async fn the_101st_request_is_refused(server: &TestServer) {
    let (_, token) = server.create_account("acme", 10).await;
    fresh_window().await;
    spend(server, &token, 100).await;
    let over = server.get("/api/instance/list", Some(&token)).await;
    over.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&over, 100, 0);
    let again = server.get("/api/instance/list", Some(&token)).await;
    again.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&again, 100, 0);
}

#[tokio::test]
async fn the_101st_request_with_one_token_gets_429_with_the_rate_limit_headers() {
    let server = TestServer::start().await;
    the_101st_request_is_refused(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_101st_request_with_one_token_gets_429_on_postgres() {
    let Some(server) = TestServer::start_postgres(Env::default()).await else {
        return;
    };
    the_101st_request_is_refused(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn error_responses_carry_the_headers_and_count_against_the_bucket() {
    let server = TestServer::start().await;
    let (_, token) = server.create_account("acme", 10).await;
    fresh_window().await;
    let missing = server
        .get("/api/instance/list?instanceName=nope", Some(&token))
        .await;
    missing.assert_error(404, "Instance not found");
    assert_rate_headers(&missing, 100, 99);
    let ok = server.get("/api/instance/list", Some(&token)).await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text);
    assert_rate_headers(&ok, 100, 98);
    server.stop().await;
}

#[tokio::test]
async fn another_accounts_token_is_unaffected_by_an_exhausted_bucket() {
    let server = TestServer::start().await;
    let (_, spent) = server.create_account("acme", 10).await;
    let (_, other) = server.create_account("globex", 10).await;
    fresh_window().await;
    spend(&server, &spent, 100).await;
    server
        .get("/api/instance/list", Some(&spent))
        .await
        .assert_error(429, RATE_LIMITED);
    let reply = server.get("/api/instance/list", Some(&other)).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_rate_headers(&reply, 100, 99);
    server.stop().await;
}

#[tokio::test]
async fn two_tokens_of_one_account_count_in_separate_buckets() {
    let server = TestServer::start().await;
    let (_, account_token) = server.create_account("acme", 10).await;
    let instance_token = server.create_instance(&account_token, "suporte").await;
    fresh_window().await;
    spend(&server, &account_token, 100).await;
    server
        .get("/api/instance/list", Some(&account_token))
        .await
        .assert_error(429, RATE_LIMITED);

    let reply = server
        .get("/api/instance/list", Some(&instance_token))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["instances"][0]["name"], json!("suporte"));
    assert_rate_headers(&reply, 100, 99);

    // And the other way round: the instance token runs out on its own.
    spend_from(&server, &instance_token, 100, 1).await;
    let over = server
        .get("/api/instance/list", Some(&instance_token))
        .await;
    over.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&over, 100, 0);
    server.stop().await;
}

#[tokio::test]
async fn the_21st_instance_creation_in_a_minute_gets_429() {
    let server = TestServer::start().await;
    let (_, token) = server.create_account("acme", 50).await;
    fresh_window().await;
    for i in 1..=20u64 {
        let reply = server
            .post(
                "/api/instance/new",
                Some(&token),
                json!({"name": format!("inst-{i}")}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 201, "creation {i}: {}", reply.text);
        assert_rate_headers(&reply, 20, 20 - i);
    }
    let over = server
        .post(
            "/api/instance/new",
            Some(&token),
            json!({"name": "inst-21"}),
        )
        .await;
    over.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&over, 20, 0);

    // The refused creation did not happen, and other routes still answer:
    // creation has its own bucket.
    let list = server.get("/api/instance/list", Some(&token)).await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    assert_eq!(list.body["message"], json!("20 Instances found"));
    assert_rate_headers(&list, 100, 99);
    server.stop().await;
}

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_client_ip() {
    let server = TestServer::start().await;
    let (_, valid) = server.create_account("acme", 10).await;
    fresh_window().await;
    for i in 1..=100u64 {
        let reply = server
            .get("/api/instance/list", Some("zga_not-a-real-token"))
            .await;
        reply.assert_error(401, "Invalid token");
        assert_rate_headers(&reply, 100, 100 - i);
    }
    server
        .get("/api/instance/list", Some("zga_not-a-real-token"))
        .await
        .assert_error(429, RATE_LIMITED);
    // Another unknown token, or none at all, is the same client: same bucket.
    let other = server
        .get("/api/instance/list", Some("zga_another-bad-one"))
        .await;
    other.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&other, 100, 0);
    server
        .get("/api/instance/list", None)
        .await
        .assert_error(429, RATE_LIMITED);
    // A valid token from the same address has its own bucket.
    let ok = server.get("/api/instance/list", Some(&valid)).await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text);
    assert_rate_headers(&ok, 100, 99);
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_off_sends_no_headers_and_never_refuses() {
    let server = TestServer::start_with(Env::default().with("ZAPGATE_RATE_LIMIT", "off")).await;
    let (_, token) = server.create_account("acme", 50).await;
    for i in 1..=150 {
        let reply = server.get("/api/instance/list", Some(&token)).await;
        assert_eq!(reply.status.as_u16(), 200, "request {i}: {}", reply.text);
        assert_no_rate_headers(&reply);
    }
    for i in 1..=25 {
        let reply = server
            .post(
                "/api/instance/new",
                Some(&token),
                json!({"name": format!("inst-{i}")}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 201, "creation {i}: {}", reply.text);
        assert_no_rate_headers(&reply);
    }
    let unauthenticated = server.get("/api/instance/list", None).await;
    unauthenticated.assert_error(401, "Missing token in header");
    assert_no_rate_headers(&unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_per_minute_from_the_environment_is_respected() {
    let server =
        TestServer::start_with(Env::default().with("ZAPGATE_RATE_LIMIT_PER_MINUTE", "5")).await;
    let (_, token) = server.create_account("acme", 10).await;
    fresh_window().await;
    spend(&server, &token, 5).await;
    let over = server.get("/api/instance/list", Some(&token)).await;
    over.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&over, 5, 0);
    // Unauthenticated callers get the same per-minute limit.
    let anonymous = server.get("/api/instance/list", None).await;
    anonymous.assert_error(401, "Missing token in header");
    assert_rate_headers(&anonymous, 5, 4);
    server.stop().await;
}

#[tokio::test]
async fn an_accounts_rate_limit_override_applies_to_its_tokens_only() {
    let server = TestServer::start().await;
    let created = server
        .post(
            "/admin/accounts",
            Some(ADMIN_TOKEN),
            json!({"name": "slow", "maxInstances": 5, "rateLimitPerMinute": 3}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["account"]["rateLimitPerMinute"], json!(3));
    let slow = created.body["token"].as_str().unwrap().to_owned();
    let (_, normal) = server.create_account("normal", 5).await;

    // Creation keeps its own limit; this spends nothing of the 3.
    let instance_token = server.create_instance(&slow, "suporte").await;
    fresh_window().await;
    spend(&server, &slow, 3).await;
    let over = server.get("/api/instance/list", Some(&slow)).await;
    over.assert_error(429, RATE_LIMITED);
    assert_rate_headers(&over, 3, 0);

    // The account's instance token has the account's limit, in its own bucket.
    spend(&server, &instance_token, 3).await;
    server
        .get("/api/instance/list", Some(&instance_token))
        .await
        .assert_error(429, RATE_LIMITED);

    let reply = server.get("/api/instance/list", Some(&normal)).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_rate_headers(&reply, 100, 99);

    let listed = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(listed.status.as_u16(), 200, "{}", listed.text);
    let accounts = listed.body["accounts"].as_array().unwrap();
    let slow_item = accounts
        .iter()
        .find(|a| a["name"] == json!("slow"))
        .unwrap();
    assert_eq!(slow_item["rateLimitPerMinute"], json!(3));
    server.stop().await;
}

#[tokio::test]
async fn an_account_rate_limit_of_zero_is_refused() {
    let server = TestServer::start().await;
    server
        .post(
            "/admin/accounts",
            Some(ADMIN_TOKEN),
            json!({"name": "zero", "maxInstances": 5, "rateLimitPerMinute": 0}),
        )
        .await
        .assert_error(400, "Invalid rateLimitPerMinute: must be at least 1");
    server.stop().await;
}

/// A `zapgate serve` child process, killed when dropped.
struct ServeProcess {
    child: Child,
    base: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// On port 0; the address it got is read from its log.
async fn spawn_serve(database_url: &str, work_dir: &Path, log_name: &str) -> ServeProcess {
    let log = std::fs::File::create(work_dir.join(log_name)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zapgate"))
        .arg("serve")
        .current_dir(work_dir)
        .env_clear()
        .env("ZAPGATE_ADDR", "127.0.0.1:0")
        .env("ZAPGATE_DATABASE_URL", database_url)
        .env("ZAPGATE_ENCRYPTION_KEY", test_key_base64())
        .env("ZAPGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("ZAPGATE_WHATSAPP_PROVIDER", "sandbox")
        .env("ZAPGATE_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,zapgate::app=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("zapgate serve starts");
    let log = || std::fs::read_to_string(work_dir.join(log_name)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Some(addr) = crate::harness::listening_addr(&log()) {
            break addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zapgate serve exited with {status}:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "not listening within 30 s:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut process = ServeProcess {
        child,
        base: format!("http://{addr}"),
    };
    let client = reqwest::Client::new();
    loop {
        if let Ok(resp) = client.get(format!("{}/health", process.base)).send().await
            && resp.status().as_u16() == 200
        {
            return process;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("zapgate serve exited with {status}:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "not healthy within 30 s:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn list_on(client: &reqwest::Client, base: &str, token: &str) -> (u16, Option<String>) {
    let resp = client
        .get(format!("{base}/api/instance/list"))
        .header("token", token)
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let remaining = resp
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, remaining)
}

#[tokio::test]
async fn two_server_processes_on_one_postgres_share_each_bucket() {
    let Some(database) = TempDatabase::create().await else {
        return;
    };
    let work_dir = tempfile::tempdir().unwrap();
    // One after the other, so the second finds the schema in place.
    let first = spawn_serve(&database.url, work_dir.path(), "first.log").await;
    let second = spawn_serve(&database.url, work_dir.path(), "second.log").await;
    let client = reqwest::Client::new();

    let created = client
        .post(format!("{}/admin/accounts", first.base))
        .header("token", ADMIN_TOKEN)
        .json(&json!({"name": "acme", "maxInstances": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();

    fresh_window_for(20.0).await;
    let mut statuses = Vec::new();
    for i in 0..60 {
        for process in [&first, &second] {
            let (status, remaining) = list_on(&client, &process.base, &token).await;
            statuses.push(status);
            let n = statuses.len();
            if n <= 100 {
                assert_eq!(status, 200, "request {n} (round {i}) to {}", process.base);
                assert_eq!(remaining, Some((100 - n).to_string()), "request {n}");
            } else {
                assert_eq!(status, 429, "request {n} (round {i}) to {}", process.base);
                assert_eq!(remaining.as_deref(), Some("0"), "request {n}");
            }
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20);
    drop(first);
    drop(second);
    drop(database);
}
