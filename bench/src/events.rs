//! The events module: webhook delivery (throughput against the
//! no-durability event forwarder, latency from the inbound to the receiver)
//! and WebSocket fan-out to many clients of one instance.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Opts, baseline,
    load::{self, BoxFut, Samples, ms_between},
    phases::Kind,
    report::Row,
    server::{self, ApiInstance, Backend, Database, Zapgate},
};

/// WebSocket clients on one instance (issue 12's figure).
const WS_CLIENTS: usize = 100;
/// Events per second while the WebSocket clients listen.
const WS_RATE: f64 = 200.0;

/// When each `message.exchange` reached the receiver, by message id (the
/// first copy: delivery is at least once).
type Arrivals = Arc<Mutex<HashMap<String, SystemTime>>>;

/// The webhook receiver: an axum server in the bench process that answers
/// 200 to every POST and records message events.
struct Receiver {
    base: String,
    arrivals: Arrivals,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let arrivals: Arrivals = Arc::default();
        let app = Router::new()
            .route("/hook/{instance}", post(hook))
            .with_state(arrivals.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base,
            arrivals,
            task,
        })
    }

    /// How many of `ids` arrived.
    fn count(&self, ids: &HashMap<String, SystemTime>) -> usize {
        let arrivals = self.arrivals.lock().unwrap();
        ids.keys().filter(|id| arrivals.contains_key(*id)).count()
    }

    async fn wait_for(&self, ids: &HashMap<String, SystemTime>, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.count(ids) >= ids.len() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

async fn hook(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
    let at = SystemTime::now();
    if let Ok(event) = serde_json::from_slice::<Value>(&body)
        && event["event"] == "message.exchange"
        && let Some(id) = event["data"]["id"].as_str()
    {
        arrivals.lock().unwrap().entry(id.to_owned()).or_insert(at);
    }
    StatusCode::OK
}

/// Who listens to the zapgate instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consumer {
    /// A webhook per instance, to the receiver.
    Webhook,
    /// The WebSocket setting enabled (no webhook).
    WebSocket,
}

/// One system under test: zapgate (fresh database, paired instances) or the
/// event forwarder, both in front of a fresh receiver.
struct Fixture {
    receiver: Receiver,
    zap: Option<(Zapgate, Database, Vec<ApiInstance>)>,
    base: Option<baseline::Running>,
    /// Per instance: the inbound URL and the token it takes.
    targets: Arc<Vec<(String, Option<String>)>>,
    client: reqwest::Client,
}

impl Fixture {
    async fn start(
        opts: &Opts,
        backend: Backend,
        kind: Kind,
        instances: usize,
        consumer: Consumer,
    ) -> anyhow::Result<Self> {
        let receiver = Receiver::start().await?;
        let client = server::client();
        let mut zap = None;
        let mut base = None;
        let targets = match kind {
            Kind::Zapgate => {
                let db = Database::fresh(backend, opts.pg_admin.as_deref().unwrap_or("")).await?;
                let z = Zapgate::start(&opts.bin, &db, server::free_port(), &[]).await?;
                let (_, insts) = server::create_paired(&z, instances).await?;
                for (i, inst) in insts.iter().enumerate() {
                    let (route, body) = match consumer {
                        Consumer::Webhook => (
                            "webhook",
                            json!({
                                "enabled": true,
                                "url": format!("{}/hook/{i}", receiver.base),
                                "events": ["message.exchange"],
                            }),
                        ),
                        Consumer::WebSocket => (
                            "websocket",
                            json!({"enabled": true, "events": ["message.exchange"]}),
                        ),
                    };
                    server::call(
                        &client,
                        reqwest::Method::POST,
                        &format!("{}/api/events/{route}/{}", z.base, inst.name),
                        &inst.token,
                        Some(body),
                    )
                    .await?;
                }
                let targets = insts
                    .iter()
                    .map(|inst| {
                        (
                            format!("{}/api/sandbox/{}/inbound", z.base, inst.name),
                            Some(inst.token.clone()),
                        )
                    })
                    .collect();
                zap = Some((z, db, insts));
                targets
            }
            Kind::Baseline => {
                let b = baseline::start("http://127.0.0.1:9/none".into(), String::new()).await?;
                b.set_receiver(&receiver.base);
                let targets = (0..instances)
                    .map(|i| (format!("{}/event/{i}", b.base), None))
                    .collect();
                base = Some(b);
                targets
            }
        };
        Ok(Self {
            receiver,
            zap,
            base,
            targets: Arc::new(targets),
            client,
        })
    }

    async fn stop(self) {
        drop(self.base);
        if let Some((z, db, _)) = self.zap {
            z.stop().await;
            db.drop_db().await;
        }
    }

    /// Sends `total` inbound messages at `rate`, spread over the instances
    /// and `customers` chats each; returns the WhatsApp id of each accepted
    /// one with when its request started, the failures, and the run.
    async fn inject(
        &self,
        rate: f64,
        total: usize,
        customers: usize,
        limit: Duration,
    ) -> (HashMap<String, SystemTime>, usize, load::OpenLoop) {
        let client = self.client.clone();
        let targets = self.targets.clone();
        let make = Arc::new(move |i: usize| -> BoxFut<Result<String, String>> {
            let n = targets.len();
            let inst = i % n;
            let cust = (i / n) % customers.max(1);
            let (url, token) = &targets[inst];
            let mut req = client.post(url).json(&json!({
                "from": format!("55219{inst:04}{cust:04}"),
                "pushName": "Cliente",
                "text": format!("e{i}"),
            }));
            if let Some(token) = token {
                req = req.header("token", token);
            }
            Box::pin(async move {
                let resp = req.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let text = resp.text().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("{status}: {text}"));
                }
                let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                v["id"].as_str().map(str::to_owned).ok_or(text)
            })
        });
        let run = load::open_loop(rate, total, load::MAX_IN_FLIGHT, limit, make).await;
        let sent: HashMap<String, SystemTime> = run
            .shots
            .iter()
            .filter_map(|s| s.outcome.as_ref().ok().map(|id| (id.clone(), s.started)))
            .collect();
        let errors = total - sent.len();
        if let Some(bad) = run.shots.iter().find(|s| s.outcome.is_err()) {
            eprintln!("   an inbound failed: {:?}", bad.outcome);
        }
        (sent, errors, run)
    }
}

/// What one webhook load step measured.
struct Step {
    rate: f64,
    sent: usize,
    errors: usize,
    latency: Samples,
    achieved: f64,
    sustained: bool,
}

async fn webhook_step(opts: &Opts, f: &Fixture, rate: f64) -> anyhow::Result<Step> {
    // One event per instance first: connections and caches warm, for both systems.
    let (warm, errors, _) = f
        .inject(100.0, f.targets.len(), 1, Duration::from_secs(10))
        .await;
    anyhow::ensure!(errors == 0, "warm-up: {errors} inbound messages failed");
    anyhow::ensure!(
        f.receiver.wait_for(&warm, Duration::from_secs(20)).await,
        "warm-up: only {} of {} events reached the receiver",
        f.receiver.count(&warm),
        warm.len()
    );
    f.receiver.arrivals.lock().unwrap().clear();

    let dur = opts.step;
    let total = (rate * dur.as_secs_f64()).round() as usize;
    let (sent, errors, run) = f.inject(rate, total, opts.customers, dur * 3).await;
    f.receiver
        .wait_for(&sent, Duration::from_secs(20) + dur)
        .await;
    let arrivals = f.receiver.arrivals.lock().unwrap().clone();
    let mut lat = Vec::with_capacity(sent.len());
    let mut last = SystemTime::UNIX_EPOCH;
    for (id, started) in &sent {
        if let Some(at) = arrivals.get(id) {
            lat.push(ms_between(*started, *at));
            last = last.max(*at);
        }
    }
    let latency = Samples::new(lat);
    let first = sent.values().min().copied().unwrap_or(last);
    let achieved = latency.len() as f64 / (ms_between(first, last) / 1000.0).max(1e-3);
    let sustained = errors == 0
        && latency.len() == sent.len()
        && run.lag < Duration::from_millis(250)
        && latency.pct(99.0) < 1000.0;
    Ok(Step {
        rate,
        sent: sent.len(),
        errors,
        latency,
        achieved,
        sustained,
    })
}

/// Rates 100 and 500 events/s, then the ladder until a step is not sustained.
async fn ladder(opts: &Opts, backend: Backend, kind: Kind) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let rates: Vec<f64> = [100.0, 500.0]
        .into_iter()
        .chain(opts.ladder.iter().copied())
        .collect();
    for rate in rates {
        let f = Fixture::start(opts, backend, kind, opts.instances, Consumer::Webhook).await?;
        let step = webhook_step(opts, &f, rate).await;
        f.stop().await;
        let step = step?;
        eprintln!(
            "   {kind:?} webhook {:>5} events/s: sent {} delivered {} errors {} achieved {:.0}/s p50 {:.1} p99 {:.1} p999 {:.1} ms {}",
            step.rate,
            step.sent,
            step.latency.len(),
            step.errors,
            step.achieved,
            step.latency.pct(50.0),
            step.latency.pct(99.0),
            step.latency.pct(99.9),
            if step.sustained {
                "sustained"
            } else {
                "NOT sustained"
            }
        );
        let stop = rate > 500.0 && !step.sustained;
        steps.push(step);
        if stop {
            break;
        }
    }
    Ok(steps)
}

fn max_sustained(steps: &[Step]) -> f64 {
    steps
        .iter()
        .filter(|s| s.sustained)
        .map(|s| s.rate)
        .fold(0.0, f64::max)
}

fn best_achieved(steps: &[Step]) -> f64 {
    steps.iter().map(|s| s.achieved).fold(0.0, f64::max)
}

fn at(steps: &[Step], rate: f64) -> Option<&Step> {
    steps.iter().find(|s| s.rate == rate)
}

fn lat(step: Option<&Step>) -> String {
    match step {
        Some(s) if s.latency.len() > 0 => format!(
            "{:.1} / {:.1} / {:.1}",
            s.latency.pct(50.0),
            s.latency.pct(99.0),
            s.latency.pct(99.9)
        ),
        _ => "n/a".into(),
    }
}

/// What the WebSocket clients saw.
struct FanOut {
    sent: usize,
    /// Frames of the sent events received, over all clients.
    frames: usize,
    frames_per_sec: f64,
    /// Clients that received every sent event.
    complete: usize,
    /// Per event received by every client: injection start to its arrival
    /// at the last client.
    slowest: Samples,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads message events until `done` turns true, the socket closes or `limit`
/// passes, counting each in `frames`; returns each message id with its arrival.
async fn listen(
    mut socket: Socket,
    frames: Arc<AtomicUsize>,
    mut done: tokio::sync::watch::Receiver<bool>,
    limit: Duration,
) -> Vec<(String, SystemTime)> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let at = SystemTime::now();
                    if let Ok(event) = serde_json::from_str::<Value>(&text)
                        && let Some(id) = event["data"]["id"].as_str()
                    {
                        seen.push((id.to_owned(), at));
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = done.changed() => break,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let _ = socket.close(None).await;
    seen
}

async fn fan_out(opts: &Opts, backend: Backend) -> anyhow::Result<FanOut> {
    let f = Fixture::start(opts, backend, Kind::Zapgate, 1, Consumer::WebSocket).await?;
    let result = fan_out_inner(opts, &f).await;
    f.stop().await;
    result
}

async fn fan_out_inner(opts: &Opts, f: &Fixture) -> anyhow::Result<FanOut> {
    let (z, _, insts) = f.zap.as_ref().context("zapgate fixture")?;
    let url = format!(
        "{}/ws/{}?token={}",
        z.base.replacen("http", "ws", 1),
        insts[0].name,
        insts[0].token
    );
    let limit = opts.step * 3 + Duration::from_secs(30);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let received = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(WS_CLIENTS);
    for _ in 0..WS_CLIENTS {
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("a WebSocket client could not connect")?;
        clients.push(tokio::spawn(listen(
            socket,
            received.clone(),
            done_rx.clone(),
            limit,
        )));
    }
    let total = (WS_RATE * opts.step.as_secs_f64()).round() as usize;
    let (sent, errors, _) = f
        .inject(WS_RATE, total, opts.customers, opts.step * 3)
        .await;
    anyhow::ensure!(errors == 0, "fan-out: {errors} inbound messages failed");
    // Only these events happen, so every client is done at `sent` frames;
    // a client that was dropped never gets there, hence the bound.
    let deadline = Instant::now() + Duration::from_secs(10) + opts.step;
    while Instant::now() < deadline && received.load(Ordering::Relaxed) < WS_CLIENTS * sent.len() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = done_tx.send(true);
    let mut last_arrival: HashMap<String, SystemTime> = HashMap::new();
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut frames = 0;
    let mut complete = 0;
    let mut last = SystemTime::UNIX_EPOCH;
    for client in clients {
        let seen = client.await.unwrap_or_default();
        let mut mine = 0;
        for (id, at) in seen {
            if !sent.contains_key(&id) {
                continue;
            }
            mine += 1;
            last = last.max(at);
            *got.entry(id.clone()).or_default() += 1;
            let slowest = last_arrival.entry(id).or_insert(at);
            *slowest = (*slowest).max(at);
        }
        frames += mine;
        if mine >= sent.len() {
            complete += 1;
        }
    }
    let slowest: Vec<f64> = sent
        .iter()
        .filter(|(id, _)| got.get(*id).copied().unwrap_or(0) >= WS_CLIENTS)
        .filter_map(|(id, started)| Some(ms_between(*started, *last_arrival.get(id)?)))
        .collect();
    let first = sent.values().min().copied().unwrap_or(last);
    Ok(FanOut {
        sent: sent.len(),
        frames,
        frames_per_sec: frames as f64 / (ms_between(first, last) / 1000.0).max(1e-3),
        complete,
        slowest: Samples::new(slowest),
    })
}

pub async fn run(opts: &Opts, backend: Backend) -> anyhow::Result<Vec<Row>> {
    eprintln!(" - events");
    let zap = ladder(opts, backend, Kind::Zapgate).await?;
    let base = ladder(opts, backend, Kind::Baseline).await?;
    let ws = fan_out(opts, backend).await?;
    eprintln!(
        "   WebSocket {WS_CLIENTS} clients at {WS_RATE} events/s: sent {} frames {} ({:.0}/s), complete clients {}, slowest p50 {:.1} p99 {:.1} ms",
        ws.sent,
        ws.frames,
        ws.frames_per_sec,
        ws.complete,
        ws.slowest.pct(50.0),
        ws.slowest.pct(99.0)
    );
    let b = backend.name();
    let mut rows = Vec::new();
    let (zmax, bmax) = (max_sustained(&zap), max_sustained(&base));
    let ratio = zmax / bmax;
    rows.push(
        Row::new(
            "Events: webhook delivery, max sustained events/s (all delivered, p99 < 1 s)",
            b,
        )
        .zap(format!("{zmax:.0}"))
        .base(format!("{bmax:.0}"))
        .ratio(ratio)
        .target(">= 0.9x baseline", ratio >= 0.9),
    );
    rows.push(
        Row::new(
            "Events: webhook delivery, best delivered events/s in any step",
            b,
        )
        .zap(format!("{:.0}", best_achieved(&zap)))
        .base(format!("{:.0}", best_achieved(&base)))
        .ratio(best_achieved(&zap) / best_achieved(&base)),
    );
    for rate in [100.0, 500.0] {
        let (z, bs) = (at(&zap, rate), at(&base, rate));
        let mut row = Row::new(
            format!("Events: inbound to webhook latency p50 / p99 / p999 ms at {rate:.0} events/s"),
            b,
        )
        .zap(lat(z))
        .base(lat(bs));
        if let (Some(z), Some(bs)) = (z, bs) {
            row = row.ratio(z.latency.pct(99.0) / bs.latency.pct(99.0));
            if rate == 500.0 {
                row = row.target(
                    "p99 < 20 ms",
                    z.latency.pct(99.0) < 20.0 && z.latency.len() == z.sent,
                );
            }
        }
        rows.push(row);
    }
    rows.push(
        Row::new(
            format!(
                "Events: WebSocket fan-out to {WS_CLIENTS} clients at {WS_RATE:.0} events/s: frames/s delivered (clients with every frame)"
            ),
            b,
        )
        .zap(format!(
            "{:.0} ({}/{WS_CLIENTS})",
            ws.frames_per_sec, ws.complete
        ))
        .target(
            "every client gets every event",
            ws.complete == WS_CLIENTS && ws.sent > 0,
        ),
    );
    rows.push(
        Row::new(
            format!(
                "Events: WebSocket inbound to the slowest of {WS_CLIENTS} clients, p50 / p99 ms at {WS_RATE:.0} events/s"
            ),
            b,
        )
        .zap(format!(
            "{:.1} / {:.1}",
            ws.slowest.pct(50.0),
            ws.slowest.pct(99.0)
        )),
    );
    Ok(rows)
}
