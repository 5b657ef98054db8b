//! The measurements: bridge (inbound, outbound, webhook acknowledgement),
//! API, memory and restart.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

use crate::{
    Opts, baseline,
    load::{self, BoxFut, Samples, ms_between},
    report::Row,
    seed,
    server::{self, ApiInstance, Backend, Database, Zapgate},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zapgate,
    Baseline,
}

/// One system under test wired to a fresh Chatwoot double.
struct Fixture {
    double: ChatwootDouble,
    account: i64,
    agent: i64,
    zap: Option<(Zapgate, Database, Vec<ApiInstance>, String)>,
    base: Option<baseline::Running>,
    n: usize,
    customers: usize,
    client: reqwest::Client,
}

impl Fixture {
    async fn start(opts: &Opts, backend: Backend, kind: Kind) -> anyhow::Result<Self> {
        let double = ChatwootDouble::start().await;
        // The per-conversation flood limit would cap any load test.
        double.set_message_rate_limit(usize::MAX / 2);
        let account = double.add_account("Bench");
        let (agent, token) =
            double.add_user("Agent", "agent@bench.test", Role::Administrator, &[account]);
        let mut zap = None;
        let mut base = None;
        match kind {
            Kind::Zapgate => {
                let db = Database::fresh(backend, opts.pg_admin.as_deref().unwrap_or("")).await?;
                let z = Zapgate::start(&opts.bin, &db, server::free_port(), &[]).await?;
                let (acct, insts) = server::setup_instances(
                    &z,
                    opts.instances,
                    &double.base_url(),
                    account,
                    &token,
                )
                .await?;
                zap = Some((z, db, insts, acct));
            }
            Kind::Baseline => {
                let b = baseline::start(
                    format!("{}/api/v1/accounts/{account}", double.base_url()),
                    token,
                )
                .await?;
                b.create_inboxes(opts.instances).await?;
                base = Some(b);
            }
        }
        Ok(Self {
            double,
            account,
            agent,
            zap,
            base,
            n: opts.instances,
            customers: opts.customers,
            client: server::client(),
        })
    }

    async fn stop(self) {
        if let Some((z, db, _, _)) = self.zap {
            z.stop().await;
            db.drop_db().await;
        }
    }

    fn chats(&self) -> usize {
        self.n * self.customers
    }

    /// Chat `c` → (instance, customer number).
    fn chat(&self, c: usize) -> (usize, String) {
        let inst = c % self.n;
        let cust = c / self.n;
        (inst, format!("55219{inst:04}{cust:04}"))
    }

    /// The phone delivers a message; resolves to the WhatsApp id.
    fn inject(&self, c: usize, text: String) -> BoxFut<Result<String, String>> {
        let (inst, from) = self.chat(c);
        let body = json!({"from": from, "pushName": "Cliente", "text": text});
        let req = match (&self.zap, &self.base) {
            (Some((z, _, insts, _)), _) => self
                .client
                .post(format!(
                    "{}/api/sandbox/{}/inbound",
                    z.base, insts[inst].name
                ))
                .header("token", &insts[inst].token),
            (_, Some(b)) => self.client.post(format!("{}/inbound/{inst}", b.base)),
            _ => unreachable!("a fixture runs one system"),
        }
        .json(&body);
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
    }

    fn message_posts(&self) -> usize {
        self.double
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .count()
    }

    async fn wait_posts(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.message_posts() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// One message from every customer (their first): Chatwoot calls per
    /// first contact.
    async fn first_contact(&self) -> anyhow::Result<f64> {
        self.double.clear_requests();
        let total = self.chats();
        let this: &Self = self;
        let make = {
            let futs: Vec<_> = (0..total)
                .map(|c| std::sync::Mutex::new(Some(this.inject(c, format!("hello {c}")))))
                .collect();
            let futs = Arc::new(futs);
            Arc::new(move |i: usize| -> BoxFut<Result<String, String>> {
                futs[i].lock().unwrap().take().expect("each once")
            })
        };
        let run = load::open_loop(5000.0, total, 16, Duration::from_secs(120), make).await;
        let failed = run.shots.iter().filter(|s| s.outcome.is_err()).count();
        anyhow::ensure!(
            failed == 0,
            "first contact: {failed} injections failed: {:?}",
            run.shots.iter().find(|s| s.outcome.is_err())
        );
        anyhow::ensure!(
            self.wait_posts(total, Duration::from_secs(120)).await,
            "first contact: only {} of {total} messages reached Chatwoot",
            self.message_posts()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(self.double.requests().len() as f64 / total as f64)
    }

    /// Arrival latency of every injected message found in the double:
    /// per conversation, the k-th message POST is the k-th incoming message.
    fn arrivals(&self, sent: &HashMap<String, SystemTime>) -> (Samples, SystemTime) {
        let mut posts: HashMap<String, Vec<SystemTime>> = HashMap::new();
        for r in self.double.requests() {
            if r.method == "POST" && r.path.ends_with("/messages") {
                posts.entry(r.path.clone()).or_default().push(r.at);
            }
        }
        let mut lat = Vec::new();
        let mut last = SystemTime::UNIX_EPOCH;
        for conv in self.double.conversations(self.account) {
            let Some(id) = conv["id"].as_i64() else {
                continue;
            };
            let path = format!(
                "/api/v1/accounts/{}/conversations/{id}/messages",
                self.account
            );
            let Some(times) = posts.get(&path) else {
                continue;
            };
            let msgs: Vec<Value> = self
                .double
                .messages(self.account, id)
                .into_iter()
                .filter(|m| m["message_type"] == json!(0))
                .collect();
            let k = times.len().min(msgs.len());
            for j in 0..k {
                let m = &msgs[msgs.len() - k + j];
                let at = times[times.len() - k + j];
                let wa = m["source_id"]
                    .as_str()
                    .and_then(|s| s.strip_prefix("WAID:"))
                    .unwrap_or("");
                if let Some(start) = sent.get(wa) {
                    lat.push(ms_between(*start, at));
                    last = last.max(at);
                }
            }
        }
        (Samples::new(lat), last)
    }

    fn conversations(&self) -> Vec<i64> {
        self.double
            .conversations(self.account)
            .iter()
            .filter_map(|c| c["id"].as_i64())
            .collect()
    }

    /// Outbound deliveries so far: Chatwoot message id → when it reached
    /// the (sandbox or in-memory) outbox, in ms since the epoch.
    async fn outbox(&self) -> anyhow::Result<HashMap<i64, f64>> {
        if let Some(b) = &self.base {
            return Ok(b
                .state
                .outbox
                .lock()
                .unwrap()
                .iter()
                .map(|(id, at)| (*id, ms_between(SystemTime::UNIX_EPOCH, *at)))
                .collect());
        }
        let (_, db, _, _) = self.zap.as_ref().expect("zapgate fixture");
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&db.url)
            .await?;
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT CAST(chatwoot_message_id AS BIGINT), CAST(created_at AS BIGINT) FROM message_links WHERE direction = 'outbound'",
        )
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        Ok(rows.into_iter().map(|(id, at)| (id, at as f64)).collect())
    }
}

/// What one load step measured.
struct Step {
    rate: f64,
    sent: usize,
    errors: usize,
    delivered: usize,
    latency: Samples,
    calls_per_msg: f64,
    achieved: f64,
    sustained: bool,
    first_contact: f64,
    ack: Option<(f64, Samples)>,
}

async fn inbound_step(f: &Fixture, rate: f64, dur: Duration) -> anyhow::Result<Step> {
    let first_contact = f.first_contact().await?;
    f.double.clear_requests();
    let total = (rate * dur.as_secs_f64()).round() as usize;
    let chats = f.chats();
    let futs: Vec<_> = (0..total)
        .map(|i| std::sync::Mutex::new(Some(f.inject(i % chats, format!("m{i}")))))
        .collect();
    let futs = Arc::new(futs);
    let make = Arc::new(move |i: usize| -> BoxFut<Result<String, String>> {
        futs[i].lock().unwrap().take().expect("each once")
    });
    let run = load::open_loop(rate, total, load::MAX_IN_FLIGHT, dur * 3, make).await;
    let sent: HashMap<String, SystemTime> = run
        .shots
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok().map(|id| (id.clone(), s.started)))
        .collect();
    let errors = run.shots.len() - sent.len() + (total - run.shots.len());
    f.wait_posts(sent.len(), Duration::from_secs(20) + dur)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = f.double.requests().len() as f64 / sent.len().max(1) as f64;
    let (latency, last) = f.arrivals(&sent);
    let first = run.shots.iter().map(|s| s.started).min().unwrap_or(last);
    let achieved = latency.len() as f64 / (ms_between(first, last) / 1000.0).max(1e-3);
    let delivered = latency.len();
    let sustained = errors == 0
        && delivered == sent.len()
        && run.lag < Duration::from_millis(250)
        && latency.pct(99.0) < 1000.0;
    Ok(Step {
        rate,
        sent: sent.len(),
        errors,
        delivered,
        latency,
        calls_per_msg: calls,
        achieved,
        sustained,
        first_contact,
        ack: None,
    })
}

async fn outbound_step(f: &Fixture, rate: f64, dur: Duration, ack: bool) -> anyhow::Result<Step> {
    let first_contact = f.first_contact().await?;
    let convs = f.conversations();
    anyhow::ensure!(!convs.is_empty(), "no conversations to reply in");
    f.double.clear_requests();
    let total = (rate * dur.as_secs_f64()).round() as usize;
    let start = tokio::time::Instant::now();
    let mut sent: HashMap<i64, f64> = HashMap::with_capacity(total);
    let mut errors = 0;
    let mut lag = Duration::ZERO;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        lag = tokio::time::Instant::now().saturating_duration_since(due);
        if start.elapsed() > dur * 3 {
            break;
        }
        let at = ms_between(SystemTime::UNIX_EPOCH, SystemTime::now());
        let reply = f.double.agent_reply(
            f.account,
            convs[i % convs.len()],
            f.agent,
            &format!("r{i}"),
            Vec::new(),
            false,
            None,
        );
        match reply["id"].as_i64() {
            Some(id) => {
                sent.insert(id, at);
            }
            None => errors += 1,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20) + dur;
    let mut out = f.outbox().await?;
    while Instant::now() < deadline
        && sent.keys().filter(|k| out.contains_key(*k)).count() < sent.len()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        out = f.outbox().await?;
    }
    let mut lat = Vec::new();
    let mut first = f64::MAX;
    let mut last: f64 = 0.0;
    for (id, at) in &sent {
        if let Some(done) = out.get(id) {
            lat.push((done - at).max(0.0));
            first = first.min(*at);
            last = last.max(*done);
        }
    }
    let latency = Samples::new(lat);
    let delivered = latency.len();
    let achieved = delivered as f64 / ((last - first) / 1000.0).max(1e-3);
    let calls = f.double.requests().len() as f64 / sent.len().max(1) as f64;
    let sustained = errors == 0
        && delivered == sent.len()
        && lag < Duration::from_millis(250)
        && latency.pct(99.0) < 1000.0;
    let ack = if ack {
        Some(ack_run(f, rate, dur).await?)
    } else {
        None
    };
    Ok(Step {
        rate,
        sent: sent.len(),
        errors,
        delivered,
        latency,
        calls_per_msg: calls,
        achieved,
        sustained,
        first_contact,
        ack,
    })
}

/// Chatwoot's webhook POSTs, replayed at `rate` with new message ids from
/// real deliveries of this fixture (signed as Chatwoot signs them): the
/// time to our 200.
async fn ack_run(f: &Fixture, rate: f64, dur: Duration) -> anyhow::Result<(f64, Samples)> {
    let secrets: HashMap<String, String> = f
        .double
        .inboxes(f.account)
        .iter()
        .filter_map(|i| {
            Some((
                i["webhook_url"].as_str()?.to_owned(),
                i["secret"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect();
    let mut templates: HashMap<String, Value> = HashMap::new();
    for d in f.double.webhook_deliveries() {
        if d.event == "message_created" && d.body["message_type"] == "outgoing" {
            templates.entry(d.url.clone()).or_insert(d.body.clone());
        }
    }
    let templates: Vec<(String, String, Value)> = templates
        .into_iter()
        .map(|(url, body)| {
            let secret = secrets.get(&url).cloned().unwrap_or_default();
            (url, secret, body)
        })
        .collect();
    anyhow::ensure!(!templates.is_empty(), "no agent webhook seen to replay");
    let templates = Arc::new(templates);
    let client = f.client.clone();
    let total = (rate * dur.as_secs_f64()).round() as usize;
    let make = Arc::new(move |i: usize| -> BoxFut<Result<String, String>> {
        let (url, secret, tpl) = &templates[i % templates.len()];
        let mut body = tpl.clone();
        body["id"] = json!(50_000_000 + i as i64);
        body["content"] = json!(format!("ack {i}"));
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut req = client.post(url).header("content-type", "application/json");
        if !secret.is_empty() {
            let ts = chrono::Utc::now().timestamp();
            req = req.header("x-chatwoot-timestamp", ts.to_string()).header(
                "x-chatwoot-signature",
                chatwoot_double::sign_webhook(secret, ts, &bytes),
            );
        }
        let req = req.body(bytes);
        Box::pin(async move {
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            if status.is_success() {
                Ok(String::new())
            } else {
                let text = resp.text().await.unwrap_or_default();
                Err(format!("{status}: {text}"))
            }
        })
    });
    let run = load::open_loop(rate, total, load::MAX_IN_FLIGHT, dur * 3, make).await;
    let ok: Vec<f64> = run
        .shots
        .iter()
        .filter(|s| s.outcome.is_ok())
        .map(|s| s.elapsed_ms)
        .collect();
    if let Some(bad) = run.shots.iter().find(|s| s.outcome.is_err()) {
        eprintln!("   ack: a webhook was refused: {:?}", bad.outcome);
    }
    Ok((ok.len() as f64 / total.max(1) as f64, Samples::new(ok)))
}

struct Ladder {
    steps: Vec<Step>,
}

impl Ladder {
    fn at(&self, rate: f64) -> Option<&Step> {
        self.steps.iter().find(|s| s.rate == rate)
    }
    fn max_sustained(&self) -> f64 {
        self.steps
            .iter()
            .filter(|s| s.sustained)
            .map(|s| s.rate)
            .fold(0.0, f64::max)
    }
    fn best_achieved(&self) -> f64 {
        self.steps.iter().map(|s| s.achieved).fold(0.0, f64::max)
    }
}

async fn ladder(
    opts: &Opts,
    backend: Backend,
    kind: Kind,
    dir: Direction,
) -> anyhow::Result<Ladder> {
    let mut steps = Vec::new();
    let rates: Vec<f64> = [100.0, 500.0]
        .into_iter()
        .chain(opts.ladder.iter().copied())
        .collect();
    for rate in rates {
        let f = Fixture::start(opts, backend, kind).await?;
        let step = match dir {
            Direction::Inbound => inbound_step(&f, rate, opts.step).await,
            Direction::Outbound => outbound_step(&f, rate, opts.step, rate == 500.0).await,
        };
        f.stop().await;
        let step = step?;
        eprintln!(
            "   {:?} {:?} {:>5} msg/s: sent {} delivered {} errors {} achieved {:.0}/s p50 {:.1} p99 {:.1} p999 {:.1} ms calls/msg {:.2} first {:.2} {}",
            kind,
            dir,
            rate,
            step.sent,
            step.delivered,
            step.errors,
            step.achieved,
            step.latency.pct(50.0),
            step.latency.pct(99.0),
            step.latency.pct(99.9),
            step.calls_per_msg,
            step.first_contact,
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
    Ok(Ladder { steps })
}

fn lat(s: Option<&Step>) -> String {
    match s {
        Some(s) if s.latency.len() > 0 => format!(
            "{:.1} / {:.1} / {:.1}",
            s.latency.pct(50.0),
            s.latency.pct(99.0),
            s.latency.pct(99.9)
        ),
        _ => "n/a".into(),
    }
}

pub async fn bridge(opts: &Opts, backend: Backend, dir: Direction) -> anyhow::Result<Vec<Row>> {
    eprintln!(" - bridge {dir:?}");
    let zap = ladder(opts, backend, Kind::Zapgate, dir).await?;
    let base = ladder(opts, backend, Kind::Baseline, dir).await?;
    let b = backend.name();
    let d = match dir {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
    };
    let mut rows = Vec::new();
    let (zmax, bmax) = (zap.max_sustained(), base.max_sustained());
    let ratio = zmax / bmax;
    let mut row = Row::new(
        format!("{d}: max sustained msg/s (all delivered, p99 < 1 s)"),
        b,
    )
    .zap(format!("{zmax:.0}"))
    .base(format!("{bmax:.0}"))
    .ratio(ratio);
    // Issue 18's targets: durability costs almost nothing, both directions.
    row = row.target(">= 0.9x baseline", ratio >= 0.9);
    rows.push(row);
    rows.push(
        Row::new(format!("{d}: best delivered msg/s in any step"), b)
            .zap(format!("{:.0}", zap.best_achieved()))
            .base(format!("{:.0}", base.best_achieved()))
            .ratio(zap.best_achieved() / base.best_achieved()),
    );
    for rate in [100.0, 500.0] {
        let (z, bs) = (zap.at(rate), base.at(rate));
        let mut row = Row::new(
            format!("{d}: latency p50 / p99 / p999 ms at {rate:.0} msg/s"),
            b,
        )
        .zap(lat(z))
        .base(lat(bs));
        if let (Some(z), Some(bs)) = (z, bs) {
            row = row.ratio(z.latency.pct(99.0) / bs.latency.pct(99.0));
            if rate == 500.0 && dir == Direction::Inbound {
                row = row.target(
                    "p99 < 10 ms, p999 < 20 ms",
                    z.latency.pct(99.0) < 10.0 && z.latency.pct(99.9) < 20.0,
                );
            }
        }
        rows.push(row);
    }
    if let (Some(z), Some(bs)) = (zap.at(500.0), base.at(500.0)) {
        let mut row = Row::new(format!("{d}: Chatwoot calls per steady message"), b)
            .zap(format!("{:.2}", z.calls_per_msg))
            .base(format!("{:.2}", bs.calls_per_msg));
        if dir == Direction::Inbound {
            row = row.target("1.0", z.calls_per_msg <= 1.0 + 1e-9);
        }
        rows.push(row);
        if dir == Direction::Inbound {
            rows.push(
                Row::new(format!("{d}: Chatwoot calls per first contact"), b)
                    .zap(format!("{:.2}", z.first_contact))
                    .base(format!("{:.2}", bs.first_contact))
                    .target("<= 3", z.first_contact <= 3.0 + 1e-9),
            );
        }
        if let (Some((zok, za)), Some((bok, ba))) = (&z.ack, &bs.ack) {
            rows.push(
                Row::new(
                    "Webhook acknowledged (Chatwoot POST to our 200), p50 / p99 ms at 500 webhooks/s",
                    b,
                )
                .zap(format!(
                    "{:.2} / {:.2} ({:.0}% 2xx)",
                    za.pct(50.0),
                    za.pct(99.0),
                    zok * 100.0
                ))
                .base(format!(
                    "{:.2} / {:.2} ({:.0}% 2xx)",
                    ba.pct(50.0),
                    ba.pct(99.0),
                    bok * 100.0
                ))
                .ratio(za.pct(99.0) / ba.pct(99.0))
                .target("p99 < 5 ms", za.pct(99.0) < 5.0 && *zok >= 0.999),
            );
        }
    }
    Ok(rows)
}

/// Rounds of [`alternated`]: the machine's speed drifts by tens of percent
/// within a minute here, which a zapgate run then a bare run read as a
/// difference between them.
const ALTERNATED_ROUNDS: u32 = 4;

/// GET `zapgate` (with `token`) and `bare` in alternated rounds, each run
/// first in every other round, for `api_duration` each in all.
async fn alternated(
    opts: &Opts,
    zapgate: &str,
    token: &str,
    bare: &str,
) -> (load::ClosedLoop, load::ClosedLoop) {
    let round = opts.api_duration / ALTERNATED_ROUNDS;
    let (mut z, mut b) = (Vec::new(), Vec::new());
    for n in 0..ALTERNATED_ROUNDS {
        if n % 2 == 0 {
            z.push(hammer(opts, zapgate.to_owned(), Some(token.to_owned()), round).await);
            b.push(hammer(opts, bare.to_owned(), None, round).await);
        } else {
            b.push(hammer(opts, bare.to_owned(), None, round).await);
            z.push(hammer(opts, zapgate.to_owned(), Some(token.to_owned()), round).await);
        }
    }
    (load::ClosedLoop::merged(z), load::ClosedLoop::merged(b))
}

/// GET a URL under `clients` concurrent clients for `duration`.
async fn hammer(
    opts: &Opts,
    url: String,
    token: Option<String>,
    duration: Duration,
) -> load::ClosedLoop {
    let client = server::client();
    let make = Arc::new(move || -> BoxFut<bool> {
        let mut req = client.get(&url);
        if let Some(t) = &token {
            req = req.header("token", t);
        }
        Box::pin(async move {
            match req.send().await {
                Ok(r) => {
                    let ok = r.status().is_success();
                    ok && r.bytes().await.is_ok()
                }
                Err(_) => false,
            }
        })
    });
    load::closed_loop(opts.api_clients, duration, make).await
}

/// POST `message/text` sends to `url` under `clients` concurrent clients,
/// each with a fresh `Idempotency-Key` when `keyed` (what a retrying client
/// sends), so every request is a new send.
async fn hammer_sends(opts: &Opts, url: String, token: String, keyed: bool) -> load::ClosedLoop {
    let client = server::client();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let make = Arc::new(move || -> BoxFut<bool> {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut req = client
            .post(&url)
            .header("token", &token)
            .json(&json!({"number": format!("55219{:08}", n % 1000), "message": "bench"}));
        if keyed {
            req = req.header("Idempotency-Key", format!("bench-{n}"));
        }
        Box::pin(async move {
            match req.send().await {
                Ok(r) => {
                    let ok = r.status().is_success();
                    ok && r.bytes().await.is_ok()
                }
                Err(_) => false,
            }
        })
    });
    load::closed_loop(opts.api_clients, opts.api_duration, make).await
}

pub async fn api(opts: &Opts, backend: Backend) -> anyhow::Result<Vec<Row>> {
    eprintln!(" - API");
    let f = Fixture::start(opts, backend, Kind::Zapgate).await?;
    let result = api_inner(opts, backend, &f).await;
    f.stop().await;
    result
}

async fn api_inner(opts: &Opts, backend: Backend, f: &Fixture) -> anyhow::Result<Vec<Row>> {
    let (z, _, insts, account_token) = f.zap.as_ref().context("zapgate fixture")?;
    let bare = baseline::start("http://127.0.0.1:9/none".into(), String::new()).await?;
    let c = server::client();
    let targets = [
        (
            "GET /api/instance/list",
            format!("{}/api/instance/list", z.base),
            account_token.clone(),
            "instance-list",
        ),
        (
            "GET /api/chatwoot/list/:instance (live state cached)",
            format!("{}/api/chatwoot/list/{}", z.base, insts[0].name),
            insts[0].token.clone(),
            "chatwoot-list",
        ),
    ];
    let mut rows = Vec::new();
    for (label, url, token, key) in targets {
        // Warm up (fills the live-state cache) and capture the bytes.
        let bytes = c
            .get(&url)
            .header("token", &token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        bare.set_bare(key, bytes.clone());
        let (zr, br) = alternated(opts, &url, &token, &format!("{}/bare/{key}", bare.base)).await;
        eprintln!(
            "   {label}: zapgate {} requests, {:.0} req/s p99 {:.2} ms ({} errors), bare {:.0} req/s p99 {:.2} ms, {} bytes",
            zr.requests,
            zr.per_sec,
            zr.latency.pct(99.0),
            zr.errors,
            br.per_sec,
            br.latency.pct(99.0),
            bytes.len()
        );
        let ratio = zr.per_sec / br.per_sec;
        rows.push(
            Row::new(
                format!(
                    "API {label}: req/s, p99 ms ({} clients, {} instances)",
                    opts.api_clients, opts.instances
                ),
                backend.name(),
            )
            .zap(format!(
                "{:.0}, {:.2}{}",
                zr.per_sec,
                zr.latency.pct(99.0),
                if zr.errors > 0 {
                    format!(" ({} errors)", zr.errors)
                } else {
                    String::new()
                }
            ))
            .base(format!("{:.0}, {:.2}", br.per_sec, br.latency.pct(99.0)))
            .ratio(ratio)
            .target(">= 0.8x bare route", ratio >= 0.8 && zr.errors == 0),
        );
    }
    // Sends per second through message/text, against the same bare route
    // (a canned answer): without and with Idempotency-Key (one key row more
    // per send, written before and after the send).
    bare.set_bare(
        "sent",
        br#"{"success":true,"status":"sent"}"#.to_vec().into(),
    );
    let br = hammer(
        opts,
        format!("{}/bare/sent", bare.base),
        None,
        opts.api_duration,
    )
    .await;
    for keyed in [false, true] {
        let url = format!("{}/api/message/text/{}", z.base, insts[0].name);
        let zr = hammer_sends(opts, url, insts[0].token.clone(), keyed).await;
        let label = if keyed {
            "POST /api/message/text/:instance with Idempotency-Key"
        } else {
            "POST /api/message/text/:instance"
        };
        eprintln!(
            "   {label}: zapgate {} sends, {:.0} sends/s p99 {:.2} ms ({} errors), bare {:.0} req/s",
            zr.requests,
            zr.per_sec,
            zr.latency.pct(99.0),
            zr.errors,
            br.per_sec,
        );
        let ratio = zr.per_sec / br.per_sec;
        rows.push(
            Row::new(
                format!(
                    "API {label}: sends/s, p99 ms ({} clients, sandbox)",
                    opts.api_clients
                ),
                backend.name(),
            )
            .zap(format!(
                "{:.0}, {:.2}{}",
                zr.per_sec,
                zr.latency.pct(99.0),
                if zr.errors > 0 {
                    format!(" ({} errors)", zr.errors)
                } else {
                    String::new()
                }
            ))
            .base(format!("{:.0}, {:.2}", br.per_sec, br.latency.pct(99.0)))
            .ratio(ratio)
            .target("no errors", zr.errors == 0),
        );
    }
    Ok(rows)
}

/// Idle RSS with 0, 1,000 and `big` seeded instances (paired, integration
/// active), start-to-ready times, and the list of `big` instances.
pub async fn memory(opts: &Opts) -> anyhow::Result<Vec<Row>> {
    eprintln!(" - memory and restart (SQLite)");
    let double = ChatwootDouble::start().await;
    let account = double.add_account("Bench");
    let (_, token) = double.add_user("Agent", "agent@bench.test", Role::Administrator, &[account]);
    let db = Database::fresh(Backend::Sqlite, "").await?;
    let port = server::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut seeded = seed::open(&db.url, (opts.big + 10) as u32).await?;
    let mut rss = Vec::new();
    let mut ready = Vec::new();
    let mut list = None;
    for count in [0, 1_000, opts.big] {
        let t = Instant::now();
        seed::grow(&mut seeded, count, &public, &double.base_url(), &token, 4).await?;
        if count > 0 {
            eprintln!(
                "   seeded {count} instances in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let z = Zapgate::start(&opts.bin, &db, port, &[]).await?;
        tokio::time::sleep(opts.idle).await;
        let r = z.rss()?;
        eprintln!(
            "   {count} instances: ready in {:.0} ms, idle RSS {:.1} MiB",
            z.ready_in.as_secs_f64() * 1000.0,
            r as f64 / 1048576.0
        );
        rss.push((count, r));
        ready.push((count, z.ready_in));
        if count == opts.big {
            let c = server::client();
            let url = format!("{}/api/instance/list", z.base);
            let mut times = Vec::new();
            let mut n = 0;
            for _ in 0..7 {
                // Past the store's 1 s read cache: every call reads the database.
                tokio::time::sleep(Duration::from_millis(1_100)).await;
                // Timed to the body's last byte, as a client sees the
                // answer; parsing it here is the bench's own work.
                let t = Instant::now();
                let bytes = c
                    .get(&url)
                    .header("token", seeded.account_token.expose())
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                let body: Value = serde_json::from_slice(&bytes)?;
                n = body["instances"].as_array().map(Vec::len).unwrap_or(0);
            }
            list = Some((n, Samples::new(times)));
        }
        z.stop().await;
    }
    seeded.store.close().await;
    db.drop_db().await;
    let b = "SQLite";
    let mut rows = Vec::new();
    let rss0 = rss[0].1 as f64;
    for (count, r) in &rss {
        rows.push(
            Row::new(
                format!("Idle RSS with {count} instances (paired, integration active)"),
                b,
            )
            .zap(format!("{:.1} MiB", *r as f64 / 1048576.0)),
        );
    }
    for (count, r) in rss.iter().skip(1) {
        let per = (*r as f64 - rss0) / *count as f64;
        rows.push(
            Row::new(
                format!("Bytes per idle instance with integration ({count} vs 0)"),
                b,
            )
            .zap(format!("{:.1} KB", per / 1000.0))
            .target("<= 50 KB", per <= 50_000.0),
        );
    }
    for (count, t) in &ready {
        let mut row = Row::new(format!("Start to ready with {count} paired instances"), b)
            .zap(format!("{:.0} ms", t.as_secs_f64() * 1000.0));
        if *count == 1_000 {
            row = row.target("< 10 s", t.as_secs_f64() < 10.0);
        }
        rows.push(row);
    }
    if let Some((n, times)) = list {
        rows.push(
            Row::new(
                format!(
                    "GET /api/instance/list of {n} instances, uncached: median / max ms (7 calls)"
                ),
                b,
            )
            .zap(format!("{:.0} / {:.0}", times.pct(50.0), times.pct(100.0)))
            .target("median < 100 ms", times.pct(50.0) < 100.0),
        );
    }
    Ok(rows)
}
