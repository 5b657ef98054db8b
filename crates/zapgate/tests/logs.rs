//! The Chatwoot webhook's path secret never reaches a log line, at any
//! level. A test binary of its own: the capturing subscriber is the
//! process-wide default before anything logs (a scoped one, in the shared
//! suite, races other tests over tracing's per-callsite interest cache).

#[path = "api/harness.rs"]
mod harness;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::json;

use crate::harness::{Env, TestServer};

/// Collects every log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_webhook_secret_never_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let double = ChatwootDouble::start().await;
    let cw_account = double.add_account("Acme");
    let (_, cw_token) = double.add_user("Ana", "ana@acme.test", Role::Administrator, &[cw_account]);
    let server =
        TestServer::start_with(Env::default().with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")).await;
    let (_, account_token) = server.create_account("acme", 1).await;
    let token = server.create_instance(&account_token, "suporte").await;
    let reply = server
        .post(
            "/api/chatwoot/set/suporte",
            Some(&token),
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": cw_account,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);

    let url = double.inboxes(cw_account)[0]["webhook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let secret = path.rsplit('/').next().unwrap().to_owned();
    let body = json!({"event": "conversation_status_changed", "id": 1, "status": "open"});
    // The right secret, a longer path that matches no route, a wrong secret.
    for target in [
        path.clone(),
        format!("{path}/more"),
        format!("{}0{secret}", path.trim_end_matches(&secret)),
    ] {
        let status = server
            .client
            .post(server.url(&target))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status.is_client_error() || status.is_success(),
            "{target}: {status}"
        );
    }

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("/chatwoot/webhook/{integration}/{secret}"),
        "the request span names the route template ({} bytes of log)",
        logs.len()
    );
    assert!(
        !logs.contains(&secret),
        "the webhook secret is in the log:\n{}",
        logs.lines()
            .filter(|l| l.contains(&secret))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
