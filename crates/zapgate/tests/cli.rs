//! The `zapgate` binary itself: subcommands, configuration errors, the
//! embedded default's files, signals, and key rotation. Every test runs the
//! real executable in a fresh working folder with a cleared environment.

#[path = "api/harness.rs"]
mod harness;

use std::{
    collections::BTreeSet,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};
use zapgate::{
    app,
    config::{Config, VARIABLES},
};
use zapgate_core::store::Store;

const ADMIN_TOKEN: &str = "cli-test-admin-token-0123456789";

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The binary in `dir`, with only `env` set.
fn zapgate(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zapgate"));
    command
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    zapgate(dir, env).args(args).output().expect("zapgate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// `account create --json`'s single line, parsed.
fn create_account(dir: &Path, env: &[(&str, &str)], name: &str) -> Value {
    let output = run(
        dir,
        env,
        &[
            "account",
            "create",
            "--name",
            name,
            "--max-instances",
            "10",
            "--json",
        ],
    );
    assert_success(&output);
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "stdout is not one line: {out:?}");
    assert!(out.ends_with('\n'));
    serde_json::from_str(out.trim_end()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn list_accounts(dir: &Path, env: &[(&str, &str)]) -> (String, Vec<Value>) {
    let output = run(dir, env, &["account", "list", "--json"]);
    assert_success(&output);
    let out = stdout(&output);
    let parsed: Value =
        serde_json::from_str(out.trim_end()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out, parsed.as_array().expect("a JSON array").clone())
}

#[test]
fn help_mentions_every_subcommand_and_every_variable_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["serve", "--help"]] {
        let output = run(dir.path(), &[], args);
        assert_success(&output);
        let help = stdout(&output);
        if args.len() == 1 {
            for subcommand in ["serve", "migrate", "account", "secrets", "jobs"] {
                assert!(
                    help.lines().any(|l| l.trim_start().starts_with(subcommand)),
                    "{subcommand} missing from:\n{help}"
                );
            }
        }
        // The name, then its meaning and default on the lines below it.
        for v in VARIABLES {
            let entry = format!(
                "\n  {}\n      {}\n      [default: {}]\n",
                v.name,
                v.meaning,
                v.default_text()
            );
            assert!(
                help.contains(&entry),
                "{args:?}: {entry} missing from:\n{help}"
            );
        }
    }
    // Help needs no configuration and writes nothing.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &[], &["--version"]);
    assert_success(&output);
    // The same question build.rs asked; "unknown" outside a git checkout.
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        stdout(&output),
        format!("zapgate {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn account_create_json_prints_exactly_one_line_with_id_name_max_instances_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let account = create_account(dir.path(), &[], "acme");
    let keys: BTreeSet<&str> = account
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "maxInstances", "name", "token"])
    );
    assert_eq!(account["name"], json!("acme"));
    assert_eq!(account["maxInstances"], json!(10));
    assert!(
        account["id"].as_str().unwrap().starts_with("acc_"),
        "{account}"
    );
    assert!(
        account["token"].as_str().unwrap().starts_with("zga_"),
        "{account}"
    );
}

#[test]
fn account_list_shows_the_account_without_its_token_and_delete_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let account = create_account(dir.path(), &[], "acme");
    let id = account["id"].as_str().unwrap();
    let token = account["token"].as_str().unwrap();

    let (raw, accounts) = list_accounts(dir.path(), &[]);
    assert_eq!(accounts.len(), 1, "{raw}");
    assert_eq!(accounts[0]["id"], json!(id));
    assert_eq!(accounts[0]["name"], json!("acme"));
    assert_eq!(accounts[0]["maxInstances"], json!(10));
    assert!(accounts[0].get("token").is_none(), "{raw}");
    assert!(!raw.contains(token), "the token leaks into the list: {raw}");

    let output = run(dir.path(), &[], &["account", "delete", id]);
    assert_success(&output);
    assert_eq!(stdout(&output), format!("Account {id} deleted\n"));
    let (raw, accounts) = list_accounts(dir.path(), &[]);
    assert!(accounts.is_empty(), "{raw}");

    let again = run(dir.path(), &[], &["account", "delete", id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(&format!("no account with id {id}")),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_bad_variable_exits_non_zero_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("ZAPGATE_ADDR", "nope"),
        ("ZAPGATE_RATE_LIMIT", "sometimes"),
        ("ZAPGATE_DATABASE_URL", "mysql://db/zapgate"),
        ("ZAPGATE_ADMIN_TOKEN", "too-short"),
    ] {
        let output = run(dir.path(), &[(variable, value)], &["migrate"]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains(&format!("error: configuration: {variable}: ")),
            "{message}"
        );
        assert!(stdout(&output).is_empty());
    }
    assert!(
        !dir.path().join("data").exists(),
        "a failed start created files"
    );
}

#[test]
fn serve_refuses_a_short_admin_token_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: were the token accepted, the server would run, not collide.
    let env = [
        ("ZAPGATE_ADDR", "127.0.0.1:0"),
        ("ZAPGATE_ADMIN_TOKEN", "admin"),
    ];
    let mut child = zapgate(dir.path(), &env)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zapgate runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started with a 5-character admin token");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: configuration: ZAPGATE_ADMIN_TOKEN: 5 characters; at least 16 are required (e.g. `openssl rand -hex 24`)\n"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a refused start created files"
    );
}

#[test]
fn postgres_without_an_encryption_key_is_an_error_naming_the_key_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[(
            "ZAPGATE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )],
        &["migrate"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("ZAPGATE_ENCRYPTION_KEY"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_first_run_on_the_embedded_default_creates_a_private_key_file_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &[], &["migrate"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("migrations applied (sqlite)"),
        "{}",
        stderr(&output)
    );

    let key_file = dir.path().join("data/secret.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .unwrap();
    assert_eq!(decoded.len(), 32);
    assert!(dir.path().join("data/zapgate.db").is_file());

    // Later runs keep the key; migrating again is harmless.
    assert_success(&run(dir.path(), &[], &["migrate"]));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}

#[tokio::test]
async fn migrate_and_accounts_work_on_postgres() {
    let Some(database) = harness::TempDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = key(9);
    let env = [
        ("ZAPGATE_DATABASE_URL", database.url.as_str()),
        ("ZAPGATE_ENCRYPTION_KEY", key.as_str()),
    ];
    for _ in 0..2 {
        let output = run(dir.path(), &env, &["migrate"]);
        assert_success(&output);
        assert!(
            stderr(&output).contains("migrations applied (postgres)"),
            "{}",
            stderr(&output)
        );
    }
    let account = create_account(dir.path(), &env, "acme");
    let (raw, accounts) = list_accounts(dir.path(), &env);
    assert_eq!(accounts.len(), 1, "{raw}");
    assert_eq!(accounts[0]["id"], account["id"]);
    assert!(
        !dir.path().join("data").exists(),
        "PostgreSQL needs no data folder"
    );
}

/// A `zapgate serve` child, killed if still running when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut all = vec![
            ("ZAPGATE_ADDR", addr.as_str()),
            ("ZAPGATE_ADMIN_TOKEN", ADMIN_TOKEN),
        ];
        all.extend_from_slice(env);
        let log = std::fs::File::create(dir.join(format!("serve-{port}.log"))).unwrap();
        let child = zapgate(dir, &all)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("zapgate serve starts");
        let mut serve = Self {
            child,
            base: format!("http://{addr}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = client.get(format!("{}/health", serve.base)).send().await
                && resp.status().as_u16() == 200
            {
                return serve;
            }
            let log = || {
                std::fs::read_to_string(dir.join(format!("serve-{port}.log"))).unwrap_or_default()
            };
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("zapgate serve exited with {status}:\n{}", log());
            }
            assert!(Instant::now() < deadline, "not healthy in 30 s:\n{}", log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status (within 10 s).
    async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "zapgate serve ignored SIGTERM for 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn serve_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(dir.path(), &[]).await;
    let started = Instant::now();
    let status = serve.terminate().await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn get(base: &str, path: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("token", token)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// The store as a server with only these keys would open it.
async fn open_store(dir: &Path, key: &str, old: Option<&str>) -> zapgate_store::SqlStore {
    let url = format!("sqlite://{}", dir.join("data/zapgate.db").display());
    let config = Config::from_lookup(|name| match name {
        "ZAPGATE_DATABASE_URL" => Some(url.clone()),
        "ZAPGATE_ENCRYPTION_KEY" => Some(key.to_owned()),
        "ZAPGATE_ENCRYPTION_KEYS_OLD" => old.map(str::to_owned),
        _ => None,
    })
    .unwrap();
    app::open_store(&config).await.unwrap()
}

#[tokio::test]
async fn secrets_rekey_moves_every_secret_to_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key_a, key_b) = (key(1), key(2));
    let instance_token = "rekey-instance-token-0123456789";
    let authorization = "Bearer rekey-webhook-secret";

    let mut serve = Serve::start(dir.path(), &[("ZAPGATE_ENCRYPTION_KEY", &key_a)]).await;
    let (status, created) = post(
        &serve.base,
        "/admin/accounts",
        ADMIN_TOKEN,
        json!({"name": "acme", "maxInstances": 5}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let account_token = created["token"].as_str().unwrap().to_owned();
    let (status, instance) = post(
        &serve.base,
        "/api/instance/new",
        &account_token,
        json!({
            "name": "suporte",
            "token": instance_token,
            "webhookEnabled": true,
            "webhookURL": "https://hooks.example.com/zapgate",
            "webhookAuthorization": authorization,
        }),
    )
    .await;
    assert_eq!(status, 201, "{instance}");
    let (status, list) = get(&serve.base, "/api/instance/list", instance_token).await;
    assert_eq!(status, 200, "{list}");
    let instance_id = list["instances"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(serve.terminate().await.code(), Some(0));

    // Before the rotation, key B alone cannot read the secrets.
    let b_only = open_store(dir.path(), &key_b, None).await;
    assert!(b_only.instance_token(&instance_id).await.is_err());
    b_only.close().await;

    let env = [
        ("ZAPGATE_ENCRYPTION_KEY", key_b.as_str()),
        ("ZAPGATE_ENCRYPTION_KEYS_OLD", key_a.as_str()),
    ];
    let output = run(dir.path(), &env, &["secrets", "rekey"]);
    assert_success(&output);
    // The instance token and its webhook Authorization, and the default
    // webhook's row in the events module: its Authorization and signing secret.
    assert!(
        stderr(&output).contains("re-encrypted 4 secrets under the current key"),
        "{}",
        stderr(&output)
    );
    // Everything is under B now: a second run has nothing to do.
    let output = run(dir.path(), &env, &["secrets", "rekey"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("re-encrypted 0 secrets under the current key"),
        "{}",
        stderr(&output)
    );

    // Key B alone now opens both secrets; key A alone no longer does.
    let b_only = open_store(dir.path(), &key_b, None).await;
    assert_eq!(
        b_only.instance_token(&instance_id).await.unwrap().expose(),
        instance_token
    );
    assert_eq!(
        b_only
            .webhook_authorization(&instance_id)
            .await
            .unwrap()
            .as_deref(),
        Some(authorization)
    );
    b_only.close().await;
    let a_only = open_store(dir.path(), &key_a, None).await;
    assert!(a_only.instance_token(&instance_id).await.is_err());
    assert!(a_only.webhook_authorization(&instance_id).await.is_err());
    a_only.close().await;

    // A server with only key B accepts both tokens.
    let mut serve = Serve::start(dir.path(), &[("ZAPGATE_ENCRYPTION_KEY", &key_b)]).await;
    let (status, list) = get(&serve.base, "/api/instance/list", instance_token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["instances"][0]["name"], json!("suporte"));
    assert_eq!(list["instances"][0]["webhook"]["enabled"], json!(true));
    let (status, list) = get(&serve.base, "/api/instance/list", &account_token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["message"], json!("1 Instance found"));
    assert_eq!(serve.terminate().await.code(), Some(0));
}

/// A proxy that only counts the connections it gets, and answers none.
fn counting_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{Arc, atomic::AtomicUsize};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(connection);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn chatwoot_calls_ignore_the_proxy_variables_unless_the_operator_opts_in() {
    use std::sync::atomic::Ordering;
    let double = chatwoot_double::ChatwootDouble::start().await;
    let cw_account = double.add_account("Acme");
    let (_, cw_token) = double.add_user(
        "Ana",
        "ana@acme.test",
        chatwoot_double::Role::Administrator,
        &[cw_account],
    );
    let (proxy, hits) = counting_proxy();
    for honor in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let honor_value = honor.to_string();
        let serve = Serve::start(
            dir.path(),
            &[
                ("ZAPGATE_WHATSAPP_PROVIDER", "sandbox"),
                ("ZAPGATE_ALLOW_PRIVATE_URLS", "true"),
                ("ZAPGATE_CHATWOOT_SET_TIMEOUT_SECS", "5"),
                ("HTTP_PROXY", &proxy),
                ("http_proxy", &proxy),
                ("HTTPS_PROXY", &proxy),
                ("ALL_PROXY", &proxy),
                ("ZAPGATE_HONOR_PROXY_ENV", &honor_value),
            ],
        )
        .await;
        let (status, account) = post(
            &serve.base,
            "/admin/accounts",
            ADMIN_TOKEN,
            json!({"name": "acme", "maxInstances": 1}),
        )
        .await;
        assert_eq!(status, 201, "{account}");
        let token = account["token"].as_str().unwrap();
        let (status, body) = post(
            &serve.base,
            "/api/instance/new",
            token,
            json!({"name": "suporte"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let before = hits.load(Ordering::SeqCst);
        let (status, body) = post(
            &serve.base,
            "/api/chatwoot/set/suporte",
            token,
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": cw_account,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
        let proxied = hits.load(Ordering::SeqCst) - before;
        if honor {
            assert!(proxied > 0, "opted in, but the proxy was not used: {body}");
            assert_ne!(status, 201, "{body}");
        } else {
            assert_eq!(proxied, 0, "the proxy variables were followed");
            assert_eq!(status, 201, "{body}");
        }
    }
}
