//! `POST /api/message/media` under load: a global bound on the sends in
//! flight, and the media of the bridge's jobs kept out of the job rows
//! (`bridge_job_blobs`, on both backends).

use std::time::{Duration, Instant};

use base64::Engine;
use chatwoot_double::{ChatwootDouble, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    bridge::{CUSTOMER, PHONE, bridge_env},
    harness::{Env, TestServer},
};

/// A paired instance `loja` of a new account; returns its token.
async fn paired(server: &TestServer) -> String {
    let (_, account) = server.create_account("acme", 5).await;
    let token = server.create_instance(&account, "loja").await;
    server.pair(&token, "loja", PHONE).await;
    token
}

fn media(bytes: &[u8], delay: u32) -> Value {
    json!({
        "number": CUSTOMER,
        "mediaType": "document",
        "mimeType": "application/pdf",
        "fileName": "pedido.pdf",
        "mediaBase64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "delay": delay,
    })
}

/// One number from the server's database.
async fn scalar(server: &TestServer, sql: &str) -> i64 {
    if server.database_url.starts_with("sqlite://") {
        let pool = sqlx::SqlitePool::connect(&server.database_url)
            .await
            .unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&server.database_url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// Waits (up to 10 s) until `sql` counts `n`.
async fn until_count(server: &TestServer, sql: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = scalar(server, sql).await;
        if got == n {
            return;
        }
        assert!(Instant::now() < deadline, "{sql} counts {got}, not {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With `ZAPGATE_MEDIA_SENDS=1`, a media send while another is in flight is
/// answered 429 with `Retry-After` (other sends are not held back), and the
/// next one after it finished goes.
#[tokio::test]
async fn media_sends_past_the_bound_are_refused_with_retry_after() {
    let server = TestServer::start_with(
        Env::default()
            .with("ZAPGATE_MEDIA_SENDS", "1")
            .with("ZAPGATE_RATE_LIMIT", "off"),
    )
    .await;
    let token = paired(&server).await;
    let url = server.url("/api/message/media/loja");
    // The first send holds its slot for its 2 s "typing...".
    let slow = {
        let (client, url, token) = (server.client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&media(b"first", 2))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outbox = server.get("/api/sandbox/loja/outbox", Some(&token)).await;
        if !outbox.body["chatPresence"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the first send never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let refused = server
        .post("/api/message/media/loja", Some(&token), media(b"second", 0))
        .await;
    refused.assert_error(429, "Too many media sends in progress. Try again shortly.");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Sticker bodies are as large as media ones: the same bound.
    let sticker = server
        .post(
            "/api/message/sticker/loja",
            Some(&token),
            json!({"number": CUSTOMER, "imageUrl": "data:image/webp;base64,UklGRg=="}),
        )
        .await;
    sticker.assert_error(429, "Too many media sends in progress. Try again shortly.");
    let text = server
        .post(
            "/api/message/text/loja",
            Some(&token),
            json!({"number": CUSTOMER, "message": "oi"}),
        )
        .await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text);

    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    let after = server
        .post("/api/message/media/loja", Some(&token), media(b"third", 0))
        .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    server.stop().await;
}

const BLOBS: &str = "SELECT COUNT(*) FROM bridge_job_blobs";
const DEAD: &str = "SELECT COUNT(*) FROM bridge_jobs WHERE status = 'dead'";

/// A server whose instance `loja` is bridged to the double; returns its
/// token and the Chatwoot account.
async fn bridged(server: &TestServer, double: &ChatwootDouble) -> (String, i64) {
    let account_id = double.add_account("Acme");
    let (_, cw_token) = double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let token = paired(server).await;
    let reply = server
        .post(
            "/api/chatwoot/set/loja",
            Some(&token),
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": account_id,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    (token, account_id)
}

/// The bridge's messages in Chatwoot that carry `text`, with their
/// attachment counts.
fn posted(double: &ChatwootDouble, account_id: i64, text: &str) -> Vec<(String, usize)> {
    double
        .conversations(account_id)
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .flat_map(|id| double.messages(account_id, id))
        .filter_map(|m| {
            let content = m["content"].as_str()?;
            content.contains(text).then(|| {
                let files = m["attachments"].as_array().map_or(0, Vec::len);
                (content.to_owned(), files)
            })
        })
        .collect()
}

async fn until_posted(
    double: &ChatwootDouble,
    account_id: i64,
    text: &str,
) -> Vec<(String, usize)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = posted(double, account_id, text);
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "{text:?} never reached Chatwoot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The echo of a media send waits in the bridge's queue with its bytes in
/// `bridge_job_blobs`, not in the job's JSON; once posted to Chatwoot (with
/// the file) the blob is gone with the job.
async fn media_blob_lives_as_long_as_its_job(server: Option<TestServer>) {
    let Some(server) = server else {
        return;
    };
    let double = ChatwootDouble::start().await;
    let (token, account_id) = bridged(&server, &double).await;
    double.set_account_stalled(account_id, true);
    let file: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut body = media(&file, 0);
    body["message"] = json!("segue o pedido");
    let reply = server
        .post("/api/message/media/loja", Some(&token), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // Stored before the send answered.
    assert_eq!(scalar(&server, BLOBS).await, 1);
    assert_eq!(
        scalar(
            &server,
            "SELECT CAST(SUM(LENGTH(data)) AS BIGINT) FROM bridge_job_blobs"
        )
        .await,
        file.len() as i64
    );
    let row = scalar(
        &server,
        "SELECT CAST(MAX(LENGTH(payload)) AS BIGINT) FROM bridge_jobs",
    )
    .await;
    assert!(row < 2_000, "the job row is {row} bytes");

    double.set_account_stalled(account_id, false);
    let found = until_posted(&double, account_id, "segue o pedido").await;
    assert_eq!(found, [("segue o pedido".to_owned(), 1)]);
    server.bridge_idle().await;
    assert_eq!(server.unfinished_jobs().await, 0);
    assert_eq!(scalar(&server, BLOBS).await, 0);
    server.stop().await;
}

/// A stalled Chatwoot call gives up after a second, then is retried.
fn stalling_env() -> Env {
    bridge_env().with("ZAPGATE_BRIDGE_CALL_TIMEOUT_SECS", "1")
}

#[tokio::test]
async fn media_blob_lives_as_long_as_its_job_sqlite() {
    media_blob_lives_as_long_as_its_job(Some(TestServer::start_with(stalling_env()).await)).await;
}

#[tokio::test]
async fn media_blob_lives_as_long_as_its_job_postgres() {
    media_blob_lives_as_long_as_its_job(TestServer::start_postgres(stalling_env()).await).await;
}

/// A job parked as a dead letter keeps its row but not its media; replayed,
/// the message is posted with a note that its media is gone.
async fn media_blob_goes_when_its_job_is_parked(server: Option<TestServer>) {
    let Some(server) = server else {
        return;
    };
    let double = ChatwootDouble::start().await;
    let (token, account_id) = bridged(&server, &double).await;
    double.fail_next(1_000, 500);
    let mut body = media(b"%PDF-1.4 pedido", 0);
    body["message"] = json!("pedido perdido");
    let reply = server
        .post("/api/message/media/loja", Some(&token), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    until_count(&server, DEAD, 1).await;
    assert_eq!(scalar(&server, BLOBS).await, 0);

    double.fail_next(0, 500);
    let replay = server
        .post("/api/chatwoot/replay/loja", Some(&token), json!({}))
        .await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    let found = until_posted(&double, account_id, "pedido perdido").await;
    assert_eq!(
        found,
        [(
            "pedido perdido\n\n📎 The media of this message is no longer available".to_owned(),
            0
        )]
    );
    server.stop().await;
}

fn parking_env() -> Env {
    bridge_env().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "1")
}

#[tokio::test]
async fn media_blob_goes_when_its_job_is_parked_sqlite() {
    media_blob_goes_when_its_job_is_parked(Some(TestServer::start_with(parking_env()).await)).await;
}

#[tokio::test]
async fn media_blob_goes_when_its_job_is_parked_postgres() {
    media_blob_goes_when_its_job_is_parked(TestServer::start_postgres(parking_env()).await).await;
}
