//! The history import row: 10,000 messages (100 chats of 100) loaded with
//! the sandbox's history fixture, imported by `POST /api/chatwoot/import`,
//! timed from the 202 to `import.state == done`. Also the most messages any
//! one conversation took within a minute (Chatwoot refuses the 201st).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chatwoot_double::{ChatwootDouble, Role};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    Opts,
    report::Row,
    server::{self, Backend, Database, Zapgate, call, client},
};

/// Chatwoot's per-conversation flood brake.
const CHATWOOT_PER_MINUTE: usize = 200;
/// Messages per fixture call (the route's bound).
const BATCH: usize = 1000;

pub async fn run(opts: &Opts, backend: Backend) -> anyhow::Result<Vec<Row>> {
    eprintln!(" - import");
    let total = if opts.quick { 2_000 } else { 10_000 };
    let chats = 100;
    let double = ChatwootDouble::start().await;
    let account = double.add_account("Bench");
    let (_, token) = double.add_user("Agent", "agent@bench.test", Role::Administrator, &[account]);
    let db = Database::fresh(backend, opts.pg_admin.as_deref().unwrap_or("")).await?;
    let z = Zapgate::start(&opts.bin, &db, server::free_port(), &[]).await?;
    let outcome = measure(&z, &double, account, &token, total, chats).await;
    z.stop().await;
    db.drop_db().await;
    let (elapsed, busiest) = outcome?;
    let b = backend.name();
    Ok(vec![
        Row::new(
            format!("Import: {total} history messages into Chatwoot, msg/s"),
            b,
        )
        .zap(format!(
            "{:.0} ({:.1} s)",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        )),
        Row::new("Import: most messages into one conversation in a minute", b)
            .zap(busiest.to_string())
            .target(
                format!("< {CHATWOOT_PER_MINUTE}"),
                busiest < CHATWOOT_PER_MINUTE,
            ),
    ])
}

async fn measure(
    z: &Zapgate,
    double: &ChatwootDouble,
    account: i64,
    token: &str,
    total: usize,
    chats: usize,
) -> anyhow::Result<(Duration, usize)> {
    let (_, instances) = server::setup_instances(z, 1, &double.base_url(), account, token).await?;
    let inst = &instances[0];
    let c = client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let history: Vec<Value> = (0..total)
        .map(|i| {
            json!({
                "id": format!("HIST{i:06}"),
                "from": format!("55119{:08}", i % chats),
                "text": format!("history message {i}"),
                "fromMe": i % 3 == 0,
                "timestamp": now - 86_400 + i as i64,
            })
        })
        .collect();
    for batch in history.chunks(BATCH) {
        call(
            &c,
            Method::POST,
            &format!("{}/api/sandbox/{}/history", z.base, inst.name),
            &inst.token,
            Some(json!({ "messages": batch })),
        )
        .await?;
    }
    let started = Instant::now();
    call(
        &c,
        Method::POST,
        &format!("{}/api/chatwoot/import/{}", z.base, inst.name),
        &inst.token,
        Some(json!({"days": 2})),
    )
    .await?;
    loop {
        let info = call(
            &c,
            Method::GET,
            &format!("{}/api/chatwoot/list/{}", z.base, inst.name),
            &inst.token,
            None,
        )
        .await?;
        match info["import"]["state"].as_str() {
            Some("done") => break,
            Some("running") => {}
            other => bail!("import ended {other:?}: {}", info["import"]),
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("import not done after 600 s: {}", info["import"]);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let posted = double
        .message_times(account)
        .keys()
        .filter(|k| k.starts_with("WAID:HIST"))
        .count();
    anyhow::ensure!(posted == total, "{posted} of {total} messages in Chatwoot");
    Ok((
        elapsed,
        busiest_minute(double, account).context("no conversation")?,
    ))
}

/// The most messages one conversation took within any 60 s.
fn busiest_minute(double: &ChatwootDouble, account: i64) -> Option<usize> {
    let mut by_conversation: HashMap<i64, Vec<f64>> = HashMap::new();
    for conversation in double.conversations(account) {
        let id = conversation["id"].as_i64()?;
        let times = by_conversation.entry(id).or_default();
        for m in double.messages(account, id) {
            if let Some(t) = m["created_at"].as_f64() {
                times.push(t);
            }
        }
    }
    by_conversation
        .values_mut()
        .map(|times| {
            times.sort_by(f64::total_cmp);
            let mut best = 0;
            let mut start = 0;
            for end in 0..times.len() {
                while times[end] - times[start] >= 60.0 {
                    start += 1;
                }
                best = best.max(end - start + 1);
            }
            best
        })
        .max()
}
