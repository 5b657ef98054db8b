//! The `web` provider without WhatsApp: nothing here can reach WhatsApp, so
//! these tests point it at endpoints that refuse or never answer, and show
//! the clear error, the deadline, the state the API reports, clean logout,
//! delete and shutdown, and the session lease moving between processes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;
use zapgate_core::{
    account::NewAccount,
    events::EventBus,
    instance::{
        ConnectionState, InstanceName, InstanceSettings, NewInstance, SessionStatus, WebhookConfig,
    },
    service::SessionRecorder,
    store::Store,
    token::Token,
    whatsapp::WhatsApp,
};
use zapgate_store::{SecretBox, SqlStore};
use zapgate_whatsapp::web::{DEFAULT_VERSION, SESSION_OWNED_ELSEWHERE, WebConfig, WebProvider};

use crate::harness::{Env, TempDatabase, TestServer};

/// A loopback port nothing listens on: every dial is refused at once.
fn refused_socket_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("ws://127.0.0.1:{port}/ws/chat")
}

fn web_env(socket_url: &str, connect_timeout_secs: u64) -> Env {
    Env::default()
        .with("ZAPGATE_WHATSAPP_PROVIDER", "web")
        .with("ZAPGATE_WA_SOCKET_URL", socket_url)
        .with(
            "ZAPGATE_CONNECT_TIMEOUT_SECS",
            &connect_timeout_secs.to_string(),
        )
}

async fn instance_state(server: &TestServer, token: &str, name: &str) -> String {
    let list = server
        .get(
            &format!("/api/instance/list?instanceName={name}"),
            Some(token),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.body["instances"][0]["connection"]["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state in {}", list.body))
        .to_owned()
}

#[tokio::test]
async fn unreachable_whatsapp_fails_connect_at_once_with_the_reason_and_stops_cleanly() {
    // A deadline far above what the test allows, so only the refusal itself
    // can answer in time.
    let server = TestServer::start_with(web_env(&refused_socket_url(), 30)).await;
    let (_, account) = server.create_account("acme", 5).await;
    server.create_instance(&account, "shop").await;

    for path in [
        "/api/instance/connect/shop",
        "/api/instance/connect/shop?number=5511987654321",
    ] {
        let started = Instant::now();
        let reply = server.get(path, Some(&account)).await;
        let took = started.elapsed();
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Could not connect to WhatsApp: ")
                && !message.contains("no code within"),
            "{path}: {message}"
        );
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
        // Nothing was linked, so nothing keeps running.
        assert_eq!(
            instance_state(&server, &account, "shop").await,
            "disconnected"
        );
    }

    let send = server
        .post(
            "/api/message/text/shop",
            Some(&account),
            json!({"number": "5511987654321", "message": "hi"}),
        )
        .await;
    assert_eq!(
        send.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        send.body
    );

    // Opening the session made the device's keys, sealed in our store.
    let pool = sqlx::SqlitePool::connect(&server.database_url)
        .await
        .unwrap();
    let session_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM wa_session")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(session_rows().await > 0, "no device keys were stored");

    let logout = server
        .delete("/api/instance/logout/shop", Some(&account))
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert_eq!(session_rows().await, 0, "logout left session keys behind");
    assert_eq!(instance_state(&server, &account, "shop").await, "loggedout");
    let delete = server
        .delete("/api/instance/delete/shop", Some(&account))
        .await;
    assert_eq!(delete.status, StatusCode::OK, "{}", delete.body);

    tokio::time::timeout(Duration::from_secs(15), server.stop())
        .await
        .expect("shutdown within 15 s");
}

#[tokio::test]
async fn a_silent_endpoint_answers_at_the_connect_deadline_and_shutdown_does_not_hang() {
    // Accepts the TCP connection and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws/chat", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let server = TestServer::start_with(web_env(&url, 2)).await;
    let (_, account) = server.create_account("acme", 5).await;
    server.create_instance(&account, "shop").await;

    let started = Instant::now();
    let reply = server
        .get("/api/instance/connect/shop", Some(&account))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["error"]["message"],
        "Could not connect to WhatsApp: no code within 2s"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // Still trying, and the list says so.
    assert_eq!(
        instance_state(&server, &account, "shop").await,
        "connecting"
    );

    tokio::time::timeout(Duration::from_secs(15), server.stop())
        .await
        .expect("shutdown within 15 s despite the hanging dial");
    silent.abort();
}

/// A process's own pool on the shared database.
async fn open_store(url: &str) -> SqlStore {
    let key: [u8; 32] = [9; 32];
    let store = SqlStore::connect(url, SecretBox::new(key, vec![]))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// One "process": its own pool on the shared database and its own provider.
async fn process(url: &str, socket_url: &str) -> (SqlStore, WebProvider) {
    let store = open_store(url).await;
    let sink = Arc::new(EventBus::new());
    sink.attach(vec![Arc::new(SessionRecorder::new(Arc::new(
        store.clone(),
    )))]);
    let config = WebConfig {
        socket_url: Some(socket_url.to_owned()),
        version: DEFAULT_VERSION,
        media_limit: 1 << 20,
        media_downloads: 2,
        lease_ttl: Duration::from_secs(3),
    };
    let provider = WebProvider::new(store.clone(), sink, config);
    (store, provider)
}

/// A linked instance, as a previous run would have left it.
async fn linked_instance(store: &SqlStore) -> String {
    let account = store
        .create_account(
            &NewAccount::parse("acme", 5, None).unwrap(),
            &Token::generate_account(),
        )
        .await
        .unwrap();
    let instance = store
        .create_instance(
            &account,
            &NewInstance {
                name: InstanceName::parse("shop").unwrap(),
                token: Token::generate_instance(),
                settings: InstanceSettings::default(),
                webhook: WebhookConfig::default(),
                webhook_authorization: None,
            },
        )
        .await
        .unwrap();
    let linked = SessionStatus {
        state: ConnectionState::Connected,
        number_jid: Some("5511987654321@s.whatsapp.net".to_owned()),
    };
    store
        .set_session_status(&instance.id, &linked)
        .await
        .unwrap();
    instance.id
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lease_moves_between_processes(url: &str) {
    let socket_url = refused_socket_url();
    let (store_a, a) = process(url, &socket_url).await;
    let (store_b, b) = process(url, &socket_url).await;
    let id = linked_instance(&store_a).await;
    let linked = store_a
        .find_instance_by_id(&id)
        .await
        .unwrap()
        .unwrap()
        .session;

    // A runs the session: offline, so `connecting`, with its number kept.
    a.resume(&id, &linked).await.unwrap();
    let status = a.status(&id).expect("A runs the session");
    assert_eq!(status.state, ConnectionState::Connecting);
    assert_eq!(status.number_jid, linked.number_jid);
    // B may not run it too, neither by resuming nor by its keeper.
    let refused = b.resume(&id, &linked).await.unwrap_err();
    assert_eq!(refused.public_message(), SESSION_OWNED_ELSEWHERE);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(b.status(&id).is_none(), "B took a session A still holds");

    // A stops (its leases go with it): B's keeper adopts the session.
    a.shutdown().await;
    assert!(a.status(&id).is_none());
    eventually("B adopts the session", || b.status(&id).is_some()).await;

    // A logout through A ends the session where it runs, in B.
    a.logout(&id).await.unwrap();
    eventually("B ends the logged-out session", || b.status(&id).is_none()).await;
    let after = store_b.find_instance_by_id(&id).await.unwrap().unwrap();
    assert_eq!(after.session.state, ConnectionState::LoggedOut);
    b.shutdown().await;
}

#[tokio::test]
async fn the_session_lease_moves_between_processes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("zapgate.db").display());
    lease_moves_between_processes(&url).await;
}

#[tokio::test]
async fn the_session_lease_moves_between_processes_on_postgres() {
    let Some(database) = TempDatabase::create().await else {
        return;
    };
    lease_moves_between_processes(&database.url).await;
}

/// The lease statements alone (no provider, whose keeper would compete).
async fn one_owner_per_lease(url: &str) {
    let first = open_store(url).await;
    let second = open_store(url).await;
    let id = linked_instance(&first).await;
    let now = 1_000_000;
    let until = now + 30_000;

    // Ten processes asking at once: exactly one wins.
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..10 {
        let store = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let id = id.clone();
        attempts.spawn(async move {
            store
                .acquire_wa_lease(&id, &format!("owner-{n}"), now, until)
                .await
                .unwrap()
        });
    }
    let won = attempts.join_all().await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");

    // Nobody else takes a live lease; anyone takes an expired one.
    assert!(
        !second
            .acquire_wa_lease(&id, "late", until - 1, until + 30_000)
            .await
            .unwrap()
    );
    assert!(
        second
            .acquire_wa_lease(&id, "late", until + 1, until + 30_000)
            .await
            .unwrap()
    );
    assert_eq!(
        second
            .renew_wa_leases("late", until + 60_000)
            .await
            .unwrap(),
        vec![id.clone()]
    );
    assert!(
        first
            .renew_wa_leases("owner-0", until + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    // Live, so not an orphan; released, it is one (it is linked).
    assert!(
        first
            .orphaned_wa_sessions(until + 2)
            .await
            .unwrap()
            .is_empty()
    );
    second.release_wa_lease(&id, "late").await.unwrap();
    assert_eq!(
        first.orphaned_wa_sessions(until + 2).await.unwrap(),
        vec![id]
    );
}

#[tokio::test]
async fn one_process_wins_a_lease_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("zapgate.db").display());
    one_owner_per_lease(&url).await;
}

#[tokio::test]
async fn one_process_wins_a_lease_on_postgres() {
    let Some(database) = TempDatabase::create().await else {
        return;
    };
    one_owner_per_lease(&database.url).await;
}
