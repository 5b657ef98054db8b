//! What one hostile client can hold of the server: a slow client holds one
//! connection for a bounded time, connections are capped, and the webhook
//! reads no body before the path secret matched. (That the secret never
//! reaches a log line is `tests/logs.rs`.)

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    bridge::Fixture,
    harness::{Env, TestServer},
};

fn host(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads one response (head and `content-length` body) from a kept-alive
/// connection; `None` when the server closed it first.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&data).into_owned());
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: zapgate\r\n\r\n";

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_while_others_are_served() {
    let server =
        TestServer::start_with(Env::default().with("ZAPGATE_HEADER_TIMEOUT_SECS", "1")).await;
    let slow = TcpStream::connect(host(&server)).await.unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let started = Instant::now();
    writer
        .write_all(b"GET /health HTTP/1.1\r\nhost: zapgate\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms, the head never finished.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });

    // Meanwhile everybody else is served.
    for _ in 0..3 {
        assert_eq!(server.get("/health", None).await.status.as_u16(), 200);
    }

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the trickling connection is still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 200 "),
        "the unfinished request was answered"
    );
    trickle.abort();
    assert_eq!(server.get("/health", None).await.status.as_u16(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_wait_while_the_open_ones_keep_working() {
    let server = TestServer::start_with(Env::default().with("ZAPGATE_MAX_CONNECTIONS", "2")).await;
    let mut first = TcpStream::connect(host(&server)).await.unwrap();
    let mut second = TcpStream::connect(host(&server)).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(HEALTH).await.unwrap();
        let response = read_response(stream).await.expect("served");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    // The kernel completes the handshake, but zapgate does not take it.
    let mut third = TcpStream::connect(host(&server)).await.unwrap();
    third.write_all(HEALTH).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    // The open ones still work.
    first.write_all(HEALTH).await.unwrap();
    let again = read_response(&mut first).await.expect("served again");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");

    // One closes: the waiting connection is taken and answered.
    drop(first);
    let late = tokio::time::timeout(Duration::from_secs(10), read_response(&mut third))
        .await
        .expect("the waiting connection was never served")
        .expect("answered");
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
}

#[tokio::test]
async fn stopping_closes_idle_connections_instead_of_waiting_for_them() {
    let server = TestServer::start().await;
    let mut idle = TcpStream::connect(host(&server)).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut idle).await.is_some());
    let _silent = TcpStream::connect(host(&server)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("stop waited for idle connections");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection is still open");
}

/// The integration's webhook path and its secret.
fn webhook_path(f: &Fixture) -> (String, String) {
    let url = f.double.inboxes(f.account_id)[0]["webhook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let secret = path.rsplit('/').next().unwrap().to_owned();
    (path, secret)
}

#[tokio::test]
async fn a_wrong_webhook_secret_is_refused_before_the_body_is_read() {
    let f = Fixture::start(json!({})).await;
    let (path, secret) = webhook_path(&f);
    let wrong = format!("{}wrong", path.trim_end_matches(&secret));
    let mut stream = TcpStream::connect(host(&f.server)).await.unwrap();
    // Announces a large body (under the limit), sends a few bytes, stalls.
    let head = format!(
        "POST {wrong} HTTP/1.1\r\nhost: zapgate\r\ncontent-type: application/json\r\n\
         content-length: 1000000\r\n\r\n{{\"event\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
        .await
        .expect("no answer while the body is still coming: it waited for the body")
        .expect("answered");
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains("Invalid webhook credentials"),
        "{response}"
    );
}
