//! The `zapgate` binary: parses the command line, loads the configuration
//! and runs the chosen command.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use zapgate::{
    app,
    cli::{AccountCommand, Cli, Command, JobsCommand, SecretsCommand},
    config::Config,
    logging,
};
use zapgate_core::{
    account::NewAccount, service::AccountService, store::Store, time::rfc3339, token::Token,
};

/// How long `serve` waits for in-flight requests on shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing .env is normal; a broken one is not.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: reading .env: {err}");
        return ExitCode::FAILURE;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: configuration: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let running = app::start(config).await?;
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            match tokio::time::timeout(SHUTDOWN_GRACE, running.stop()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        "in-flight requests still running after the grace period; exiting"
                    );
                    Ok(())
                }
            }
        }
        Command::Migrate => {
            let store = app::open_store(&config).await?;
            store.migrate().await.context("running migrations")?;
            eprintln!("migrations applied ({})", store.backend().name());
            Ok(())
        }
        Command::Account(command) => {
            let store = app::open_store(&config).await?;
            store.migrate().await.context("running migrations")?;
            let accounts = app::account_service(&config, store.clone())?;
            account(command, &store, &accounts).await
        }
        Command::Jobs(JobsCommand::Replay { integration }) => {
            let store = app::open_store(&config).await?;
            store.migrate().await.context("running migrations")?;
            let now = zapgate_core::time::now_ms();
            let replayed = store.replay_dead_jobs(integration.as_deref(), now).await?;
            println!("{replayed} jobs replayed");
            Ok(())
        }
        Command::Secrets(SecretsCommand::Rekey) => {
            let store = app::open_store(&config).await?;
            store.migrate().await.context("running migrations")?;
            let rewritten = store.rekey_secrets().await?;
            eprintln!("re-encrypted {rewritten} secrets under the current key");
            Ok(())
        }
    }
}

async fn account(
    command: AccountCommand,
    store: &dyn Store,
    accounts: &AccountService,
) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create(args) => {
            let new =
                NewAccount::parse(&args.name, args.max_instances, args.rate_limit_per_minute)?;
            let token = Token::generate_account();
            let account = store.create_account(&new, &token).await?;
            if args.json {
                let out = serde_json::json!({
                    "id": account.id,
                    "name": account.name,
                    "maxInstances": account.max_instances,
                    "token": token.expose(),
                });
                println!("{out}");
            } else {
                println!("Account created: {} ({})", account.name, account.id);
                println!("Max instances:   {}", account.max_instances);
                println!("TokenAccount:    {}", token.expose());
                println!("Store this token now: it is shown once and cannot be recovered.");
            }
        }
        AccountCommand::List { json } => {
            let accounts = store.list_accounts().await?;
            if json {
                let out: Vec<_> = accounts
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "id": a.id, "name": a.name, "maxInstances": a.max_instances,
                            "rateLimitPerMinute": a.rate_limit_per_minute,
                            "createdAt": rfc3339(a.created_at_ms),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(out));
            } else {
                println!(
                    "{:<28} {:<24} {:>13}  created",
                    "id", "name", "max instances"
                );
                for a in accounts {
                    println!(
                        "{:<28} {:<24} {:>13}  {}",
                        a.id,
                        a.name,
                        a.max_instances,
                        rfc3339(a.created_at_ms)
                    );
                }
            }
        }
        AccountCommand::Delete { id } => {
            if !accounts.delete(&id).await? {
                anyhow::bail!("no account with id {id}");
            }
            println!("Account {id} deleted");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; Ctrl-C only");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
