//! Inbound WhatsApp media is bounded: a file declared over the media limit
//! is never downloaded and the message says why, a download stops at the
//! limit whatever the file turns out to be, and only so many run at once.
//! The sandbox fetches `media.url` through the same bounds the web provider
//! puts on WhatsApp's media servers; a local file server plays those.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::Path, extract::State, routing::get};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{
    bridge::{CUSTOMER, Fixture, chat_messages},
    harness::Env,
};

/// The media limit of these tests.
const LIMIT: u64 = 64 * 1024;
const CHUNK: usize = 16 * 1024;

/// What the file server saw.
struct Seen {
    hits: AtomicUsize,
    /// Bytes handed to the connection.
    served: AtomicU64,
    /// Responses still streaming, and the most at once.
    open: AtomicUsize,
    most_open: AtomicUsize,
    /// `/held/*` waits for a permit before answering.
    release: Semaphore,
}

/// Counts a response as open until its body is done or dropped.
struct Open(Arc<Seen>);

impl Open {
    fn new(seen: Arc<Seen>) -> Self {
        let now = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
        seen.most_open.fetch_max(now, Ordering::SeqCst);
        Self(seen)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `size` bytes (`None`: without end), in chunks, counted as served.
fn body(open: Open, size: Option<u64>) -> Body {
    let chunks = stream::unfold((open, 0u64), move |(open, sent)| async move {
        let left = size.map_or(CHUNK as u64, |s| s.saturating_sub(sent));
        if left == 0 {
            return None;
        }
        let n = left.min(CHUNK as u64);
        open.0.served.fetch_add(n, Ordering::SeqCst);
        let chunk = axum::body::Bytes::from(vec![7u8; n as usize]);
        Some((Ok::<_, std::io::Error>(chunk), (open, sent + n)))
    });
    Body::from_stream(chunks)
}

async fn file(State(seen): State<Arc<Seen>>, Path(size): Path<u64>) -> Body {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    body(Open::new(seen), Some(size))
}

async fn held(State(seen): State<Arc<Seen>>, Path(size): Path<u64>) -> Body {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let open = Open::new(seen.clone());
    seen.release.acquire().await.unwrap().forget();
    body(open, Some(size))
}

async fn endless(State(seen): State<Arc<Seen>>) -> Body {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    body(Open::new(seen), None)
}

async fn file_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen {
        hits: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        open: AtomicUsize::new(0),
        most_open: AtomicUsize::new(0),
        release: Semaphore::new(0),
    });
    let app = Router::new()
        .route("/file/{size}", get(file))
        .route("/held/{size}", get(held))
        .route("/endless", get(endless))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn fixture(downloads: &str) -> Fixture {
    Fixture::start_with(
        json!({}),
        Env::default()
            .with("ZAPGATE_MAX_MEDIA_BODY_BYTES", &LIMIT.to_string())
            .with("ZAPGATE_MEDIA_DOWNLOADS", downloads),
    )
    .await
}

fn document(url: String, declared: Option<u64>) -> Value {
    let mut media = json!({
        "type": "document",
        "mimetype": "application/pdf",
        "fileName": "arquivo.pdf",
        "url": url,
    });
    if let Some(length) = declared {
        media["fileLength"] = json!(length);
    }
    media
}

/// The Chatwoot message of the WhatsApp message `id`, once it is there.
async fn posted(f: &Fixture, id: &str) -> Value {
    let source = json!(format!("WAID:{id}"));
    f.until("the message in Chatwoot", || {
        f.conversations().iter().find_map(|c| {
            let messages = f.messages(c["id"].as_i64().unwrap());
            chat_messages(&messages)
                .into_iter()
                .find(|m| m["source_id"] == source)
        })
    })
    .await
}

#[tokio::test]
async fn a_file_declared_over_the_media_limit_is_never_downloaded_and_the_message_says_why() {
    let f = fixture("4").await;
    let (files, seen) = file_server().await;

    let id = f
        .inbound(json!({
            "from": CUSTOMER,
            "text": "segue o contrato",
            "media": document(format!("{files}/file/1000"), Some(2 * 1024 * 1024 * 1024)),
        }))
        .await;
    let message = posted(&f, &id).await;
    let content = message["content"].as_str().unwrap();
    assert!(
        content
            .contains("document (not downloaded: its 2.0 GiB are over the 64.0 KiB media limit)"),
        "{content}"
    );
    assert!(content.contains("segue o contrato"), "{content}");
    assert_eq!(message["attachments"].as_array().map_or(0, Vec::len), 0);
    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "the file was requested"
    );

    // A file within the limit is downloaded and attached.
    let id = f
        .inbound(json!({
            "from": CUSTOMER,
            "media": document(format!("{files}/file/1000"), Some(1000)),
        }))
        .await;
    let message = posted(&f, &id).await;
    assert_eq!(
        message["attachments"].as_array().map_or(0, Vec::len),
        1,
        "{message}"
    );
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_download_stops_at_the_media_limit_whatever_was_declared() {
    let f = fixture("4").await;
    let (files, seen) = file_server().await;

    // Declared small, without end in fact.
    let id = f
        .inbound(json!({
            "from": CUSTOMER,
            "media": document(format!("{files}/endless"), Some(1000)),
        }))
        .await;
    let message = posted(&f, &id).await;
    let content = message["content"].as_str().unwrap();
    assert!(
        content.contains("document (not downloaded: larger than the 64.0 KiB media limit)"),
        "{content}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.open.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "the endless download never stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What the connection's buffers took beyond the limit, at most.
    let served = seen.served.load(Ordering::SeqCst);
    assert!(served < LIMIT + 16 * 1024 * 1024, "{served} bytes served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_media_downloads_at_once_are_bounded() {
    let f = Arc::new(fixture("2").await);
    let (files, seen) = file_server().await;

    let mut sends = tokio::task::JoinSet::new();
    for n in 0..5 {
        let (f, url) = (f.clone(), format!("{files}/held/1000"));
        sends.spawn(async move {
            let from = format!("55119888877{n:02}");
            f.inbound(json!({"from": from, "media": document(url, None)}))
                .await
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.open.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the downloads never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Room for more to start, were they not bounded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.release.add_permits(5);
    let mut ids = Vec::new();
    while let Some(id) = sends.join_next().await {
        ids.push(id.unwrap());
    }
    for id in &ids {
        let message = posted(&f, id).await;
        assert_eq!(
            message["attachments"].as_array().map_or(0, Vec::len),
            1,
            "{message}"
        );
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 5);
    assert_eq!(seen.most_open.load(Ordering::SeqCst), 2);
}
