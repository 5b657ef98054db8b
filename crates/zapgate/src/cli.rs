//! The command line: `serve`, `migrate`, `account`, `secrets`.

use clap::{Args, Parser, Subcommand};

use crate::config::VARIABLES;

/// `0.1.0 (commit 1a2b3c4)`: the commit comes from `build.rs`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GIT_COMMIT"),
    ")"
);

const SEE_LONG_HELP: &str = "Environment variables: see --help.";

#[derive(Debug, Parser)]
#[command(
    name = "zapgate",
    version = VERSION,
    about = "Self-hosted WhatsApp HTTP API server with a native two-way Chatwoot integration",
    long_about = None,
    after_help = SEE_LONG_HELP,
    after_long_help = variables_help(),
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first), configured by the
    /// environment variables below.
    #[command(after_help = SEE_LONG_HELP, after_long_help = variables_help())]
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts (the tenants that own instances).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Manage the bridge's delivery queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Put deliveries that failed every retry (dead letters) back in the queue.
    Replay {
        /// Only this integration's (`int_...`, as GET /api/chatwoot/list shows it).
        #[arg(long)]
        integration: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its TokenAccount, once: it cannot be recovered.
    Create(CreateAccount),
    /// List accounts (never their tokens).
    List {
        /// Print JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an account with all its instances and integrations.
    Delete {
        /// The account id (`acc_...`), as `account list` shows it.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateAccount {
    /// A name for people: who the account is for.
    #[arg(long)]
    pub name: String,
    /// How many instances (WhatsApp numbers) the account may own.
    #[arg(long, default_value_t = 10)]
    pub max_instances: u32,
    /// Requests per minute for this account's tokens (default: the server's).
    #[arg(long)]
    pub rate_limit_per_minute: Option<u32>,
    /// Print `{"id","name","maxInstances","token"}` as JSON on stdout, nothing else.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every secret under ZAPGATE_ENCRYPTION_KEY. Put the previous
    /// key in ZAPGATE_ENCRYPTION_KEYS_OLD first; remove it once this is done.
    Rekey,
}

/// Every variable the configuration reads, from its own table.
fn variables_help() -> String {
    let mut help = String::from(
        "Environment (a .env file in the working folder is read first; empty counts as unset):\n",
    );
    for v in VARIABLES {
        help.push_str(&format!(
            "  {}\n      {}\n      [default: {}]\n",
            v.name,
            v.meaning,
            v.default_text()
        ));
    }
    help
}
