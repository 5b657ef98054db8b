//! zapgate's benchmark suite. Runs the release `zapgate` binary (found next
//! to this one in target/release) against the Chatwoot double and the
//! in-process baselines, prints the results table and writes it to
//! bench/RESULTS.md. `bench/run.sh [--quick]` is the one command.

mod baseline;
mod events;
mod import;
mod load;
mod phases;
mod report;
mod seed;
mod server;

use std::{path::PathBuf, time::Duration};

use anyhow::Context;

use crate::server::Backend;

#[derive(Debug, Clone)]
pub struct Opts {
    pub quick: bool,
    pub bin: PathBuf,
    pub out: PathBuf,
    pub pg_admin: Option<String>,
    /// Sandbox instances with an active integration in the bridge runs.
    pub instances: usize,
    /// Customers (chats) per instance.
    pub customers: usize,
    /// Length of each load step.
    pub step: Duration,
    /// Rates tried after 100 and 500 msg/s, until one is not sustained.
    pub ladder: Vec<f64>,
    pub api_clients: usize,
    pub api_duration: Duration,
    pub big: usize,
    pub idle: Duration,
    /// The phases to run (`--only`, for profiling one of them); all by default.
    pub only: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Inbound,
    Outbound,
    Api,
    Events,
    Import,
    Memory,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Inbound,
        Phase::Outbound,
        Phase::Api,
        Phase::Events,
        Phase::Import,
        Phase::Memory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Inbound => "inbound",
            Phase::Outbound => "outbound",
            Phase::Api => "api",
            Phase::Events => "events",
            Phase::Import => "import",
            Phase::Memory => "memory",
        }
    }

    fn parse(raw: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|phase| phase.name() == raw)
            .with_context(|| {
                format!("unknown phase {raw} (inbound, outbound, api, events, import, memory)")
            })
    }
}

fn parse_opts() -> anyhow::Result<Opts> {
    let mut quick = false;
    let mut out = PathBuf::from("bench/RESULTS.md");
    let mut pg_admin = Some(
        std::env::var("ZAPGATE_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    );
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => out = PathBuf::from(args.next().context("--out needs a path")?),
            "--no-postgres" => pg_admin = None,
            "--postgres" => pg_admin = Some(args.next().context("--postgres needs a URL")?),
            "--only" => {
                let phases = args.next().context("--only needs a phase list")?;
                for phase in phases.split(',') {
                    only.push(Phase::parse(phase)?);
                }
            }
            other => anyhow::bail!(
                "unknown argument {other} (--quick, --out FILE, --postgres URL, --no-postgres, \
                 --only inbound,outbound,api,events,import,memory)"
            ),
        }
    }
    if only.is_empty() {
        only = Phase::ALL.to_vec();
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("zapgate");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p zapgate)",
        bin.display()
    );
    Ok(if quick {
        Opts {
            quick,
            bin,
            out,
            pg_admin,
            instances: 5,
            customers: 20,
            step: Duration::from_secs(2),
            ladder: vec![1000.0, 2000.0, 4000.0],
            api_clients: 32,
            api_duration: Duration::from_secs(2),
            big: 2_000,
            idle: Duration::from_secs(2),
            only,
        }
    } else {
        Opts {
            quick,
            bin,
            out,
            pg_admin,
            instances: 10,
            customers: 40,
            step: Duration::from_secs(4),
            ladder: vec![1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0],
            api_clients: 32,
            api_duration: Duration::from_secs(5),
            big: 10_000,
            idle: Duration::from_secs(4),
            only,
        }
    })
}

fn main() -> anyhow::Result<()> {
    let opts = parse_opts()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(opts))
}

async fn run(opts: Opts) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut backends = vec![Backend::Sqlite];
    match &opts.pg_admin {
        Some(url) => match sqlx::PgPool::connect(url).await {
            Ok(pool) => {
                pool.close().await;
                backends.push(Backend::Postgres);
            }
            Err(err) => notes.push(format!("PostgreSQL skipped: {url} unreachable ({err})")),
        },
        None => notes.push("PostgreSQL skipped (no URL given)".to_owned()),
    }
    for backend in backends {
        eprintln!("== {} ==", backend.name());
        if opts.only.contains(&Phase::Inbound) {
            rows.extend(phases::bridge(&opts, backend, phases::Direction::Inbound).await?);
        }
        if opts.only.contains(&Phase::Outbound) {
            rows.extend(phases::bridge(&opts, backend, phases::Direction::Outbound).await?);
        }
        if opts.only.contains(&Phase::Api) {
            rows.extend(phases::api(&opts, backend).await?);
        }
        if opts.only.contains(&Phase::Events) {
            rows.extend(events::run(&opts, backend).await?);
        }
        if opts.only.contains(&Phase::Import) {
            rows.extend(import::run(&opts, backend).await?);
        }
    }
    if opts.only.contains(&Phase::Memory) {
        rows.extend(phases::memory(&opts).await?);
    }
    notes.push(format!("run took {:.0} s", started.elapsed().as_secs_f64()));
    let table = report::render(&opts, &rows, &notes);
    println!("{table}");
    std::fs::write(&opts.out, &table).with_context(|| format!("writing {}", opts.out.display()))?;
    eprintln!("wrote {}", opts.out.display());
    Ok(())
}
