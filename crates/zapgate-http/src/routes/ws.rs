//! `GET /ws/:instance`: the instance's events as JSON text frames, in the
//! same envelope as webhooks. With `?after=<sequence>` the stored events
//! after it are replayed from the log first, then the stream goes live with
//! nothing missed and nothing twice. A client that stops reading is dropped
//! once it falls too far behind, so it never grows our memory.

use std::{collections::HashSet, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{
        Path, State,
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
};
use serde::Deserialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use zapgate_core::{
    event_log::{StoredEvent, WebsocketSettings, subscribed},
    instance::Instance,
};
use zapgate_events::EventsService;

use crate::{AppState, auth::WsCaller, error::ApiResult, extract::QueryParams};

/// A ping this often keeps proxies from closing an idle connection.
const PING_EVERY: Duration = Duration::from_secs(25);
/// A frame the client does not take within this is a client gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Events replayed per log read.
const REPLAY_PAGE: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws/{instance}", get(connect))
}

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Replay stored events after this sequence before going live.
    after: Option<i64>,
}

async fn connect(
    State(state): State<AppState>,
    WsCaller(principal): WsCaller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let instance = state.instances.visible(&principal, &name).await?;
    let (settings, live) = state.events.open_websocket(&instance).await?;
    let token = state.store.instance_token(&instance.id).await?;
    let client = Client {
        events: state.events.clone(),
        instance,
        token: token.expose().to_owned(),
        settings,
    };
    Ok(upgrade.on_upgrade(move |socket| client.run(socket, live, query.after)))
}

struct Client {
    events: EventsService,
    instance: Instance,
    token: String,
    settings: WebsocketSettings,
}

impl Client {
    async fn run(
        self,
        mut socket: WebSocket,
        mut live: Receiver<Arc<StoredEvent>>,
        after: Option<i64>,
    ) {
        // Sequences replayed from the log; their live copies are skipped.
        let mut replayed = HashSet::new();
        if let Some(mut after) = after {
            loop {
                let page = match self.events.log(&self.instance, after, REPLAY_PAGE).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(instance_id = %self.instance.id, error = %err, "websocket replay failed");
                        return;
                    }
                };
                let Some(last) = page.last().map(|e| e.sequence) else {
                    break;
                };
                for event in &page {
                    replayed.insert(event.sequence);
                    if !self.send(&mut socket, event).await {
                        return;
                    }
                }
                after = last;
            }
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) => {
                        if replayed.remove(&event.sequence) {
                            continue;
                        }
                        if !self.send(&mut socket, &event).await {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(instance_id = %self.instance.id, missed, "websocket client too slow: dropped");
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    // Pings are answered by the library; text from the client means nothing.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if !timely(socket.send(Message::Ping(Default::default()))).await {
                        return;
                    }
                }
            }
        }
    }

    /// Sends the event if the client's setting wants it; `false` when the
    /// client is gone or too slow.
    async fn send(&self, socket: &mut WebSocket, event: &StoredEvent) -> bool {
        if !subscribed(&self.settings.events, event.name) {
            return true;
        }
        let frame = self.events.envelope(
            event,
            self.settings.media_base64,
            &self.instance,
            &self.token,
        );
        timely(socket.send(Message::Text(Utf8Bytes::from(frame)))).await
    }
}

async fn timely(send: impl Future<Output = Result<(), axum::Error>>) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, send).await, Ok(Ok(())))
}
