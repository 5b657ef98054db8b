//! The bridge: WhatsApp ⇄ Chatwoot routing, exactly once as people see it.
//!
//! ```text
//! provider ─► BridgeSink ─► job row (inbound) ─► worker ─► Chatwoot REST
//! Chatwoot ─► webhook ─────► job row (outbound) ─► worker ─► provider
//! reconciler: reads recent agent messages whose webhook never came ─► job row
//! ```
//! Every job is stored before it is acknowledged; workers claim the oldest
//! job of each chat, so a chat's messages keep their order; idempotency keys
//! (the WhatsApp id inbound, the Chatwoot id outbound) and the message links
//! make retries and redeliveries harmless.

mod avatar;
mod bot;
mod identity;
pub mod import;
mod inbound;
mod outbound;
pub mod payload;
mod reconciler;
mod render;
mod sink;
pub mod webhook;
mod worker;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use zapgate_core::{
    Error, chatwoot::Integration, event_log::EventStore, store::Store, whatsapp::WhatsApp,
};

pub use self::{
    identity::{ChatIdentity, canonical_phone, phone_variants},
    sink::BridgeSink,
};
use crate::{
    client::{ChatwootClient, ChatwootError, ChatwootHttp},
    download::{self, Downloader},
};

/// Every delay and limit of the bridge, so tests can run fast.
#[derive(Debug, Clone, Copy)]
pub struct BridgeConfig {
    /// First retry delay; doubles per attempt up to `retry_max`, ±20 % jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Attempts before a job is parked as a dead letter.
    pub max_attempts: u32,
    /// How long a claimed job is owned before another worker may take it.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs.
    pub poll: Duration,
    /// Jobs claimed at once (at most one per chat).
    pub batch: u32,
    /// How often an agent reply waiting for WhatsApp to reconnect looks again.
    pub wait_poll: Duration,
    /// How long an agent reply may wait for WhatsApp before it is failed.
    pub outbound_expiry: Duration,
    /// Retry delay while Chatwoot refuses the credentials (until a new `set`).
    pub refused_retry: Duration,
    /// Deadline of each Chatwoot call a job makes: a Chatwoot that does not
    /// answer costs its own jobs a retry, not everyone's slots for the
    /// activation deadline.
    pub call_timeout: Duration,
    /// Jobs of one integration running at once (of `batch`): a Chatwoot that
    /// hangs holds at most these.
    pub per_integration: u32,
    /// Queued agent messages of one integration past which its webhook
    /// refuses more (429): a flood of webhooks cannot grow the queue
    /// without bound, and what was refused the reconciler finds later.
    pub max_queued: u32,
    /// How often the reconciler looks for agent messages whose webhook never
    /// came; zero turns it off.
    pub reconcile_interval: Duration,
    /// How old an agent message must be before the reconciler sends it (the
    /// webhook normally comes first).
    pub reconcile_grace: Duration,
    /// Largest attachment downloaded from Chatwoot.
    pub media_limit: usize,
    /// On shutdown, how long running jobs may take to finish before they are
    /// cut off and released.
    pub drain: Duration,
    /// Messages a history import posts into one conversation per minute:
    /// under Chatwoot's 200, leaving room for live traffic.
    pub import_per_minute: u32,
    /// How often outages are checked against `botOfflineMinutes`.
    pub offline_check: Duration,
    /// How long a fresh import waits for the history it asked the phone for.
    pub history_fetch: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_attempts: 10,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            batch: 32,
            wait_poll: Duration::from_secs(30),
            outbound_expiry: Duration::from_secs(24 * 3600),
            refused_retry: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
            per_integration: 8,
            max_queued: 1000,
            reconcile_interval: Duration::from_secs(60),
            reconcile_grace: Duration::from_secs(15),
            media_limit: 64 * 1024 * 1024,
            drain: Duration::from_secs(4),
            import_per_minute: 120,
            offline_check: Duration::from_secs(30),
            history_fetch: Duration::from_secs(60),
        }
    }
}

pub struct Bridge {
    store: Arc<dyn Store>,
    http: ChatwootHttp,
    downloader: Downloader,
    /// Set once at start: the provider needs the bridge's sink before it exists.
    whatsapp: OnceLock<Arc<dyn WhatsApp>>,
    config: BridgeConfig,
    /// Wakes the worker when a job was stored.
    wake: Notify,
    /// Set once by [`Bridge::shutdown`].
    stop: watch::Sender<bool>,
    idle: Idle,
    /// The worker and the reconciler, awaited by shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The message store history imports read, set once at start.
    history: OnceLock<Arc<dyn EventStore>>,
    /// The cancel flag of each import this process runs, by instance.
    imports: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Chats whose avatar job this process queued lately.
    avatars: avatar::AvatarGate,
    /// The bot contacts' conversations and last posts, per integration.
    bots: bot::BotMemory,
}

/// How [`Bridge::until_idle`] meets the worker: waits ask with a number, and
/// the worker publishes the newest number an idle claim answered.
#[derive(Default)]
struct Idle {
    asked: AtomicU64,
    seen: watch::Sender<u64>,
}

impl Bridge {
    pub fn new(store: Arc<dyn Store>, http: ChatwootHttp, config: BridgeConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            downloader: Downloader::new(http.clone(), config.media_limit),
            http,
            whatsapp: OnceLock::new(),
            config,
            wake: Notify::new(),
            stop: watch::Sender::new(false),
            idle: Idle::default(),
            tasks: Mutex::new(Vec::new()),
            history: OnceLock::new(),
            imports: Mutex::new(HashMap::new()),
            avatars: avatar::AvatarGate::default(),
            bots: bot::BotMemory::default(),
        })
    }

    /// Connects the bridge to the WhatsApp provider (once, at start).
    pub fn attach_whatsapp(&self, whatsapp: Arc<dyn WhatsApp>) {
        if self.whatsapp.set(whatsapp).is_err() {
            tracing::warn!("the bridge's WhatsApp provider was already attached");
        }
    }

    fn whatsapp(&self) -> Result<&Arc<dyn WhatsApp>, Failure> {
        self.whatsapp.get().ok_or_else(|| Failure::Wait {
            reason: "the WhatsApp provider is not attached yet".to_owned(),
            after: Duration::from_secs(1),
        })
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// Starts the worker and the reconciler; they run until [`Bridge::shutdown`]
    /// (a job cut off by a crash is taken again once its lease expires).
    pub fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push(tokio::spawn(worker::run(self.clone())));
        tasks.push(tokio::spawn(self.clone().watch_imports()));
        tasks.push(tokio::spawn(self.clone().watch_outages()));
        if !self.config.reconcile_interval.is_zero() {
            tasks.push(tokio::spawn(reconciler::run(self.clone())));
        }
    }

    /// Stops taking work and waits for the worker and the reconciler: running
    /// jobs finish within `drain` or are released (see the worker).
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "bridge task failed at shutdown");
            }
        }
    }

    fn nudge(&self) {
        self.wake.notify_one();
    }

    fn client(&self, integration: &Integration) -> ChatwootClient {
        self.http
            .account(
                &integration.base_url,
                integration.account_id,
                integration.api_token.clone(),
            )
            .with_timeout(self.config.call_timeout)
    }
}

/// Why a job did not finish, and what to do about it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Try again later (counts an attempt); not before `after` when given.
    Transient {
        error: String,
        after: Option<Duration>,
    },
    /// Chatwoot refuses us (token revoked, inbox deleted): the integration
    /// is in error until a new `set`, with `error` as its `last_error`; the
    /// job waits without counting attempts.
    Refused { error: String },
    /// Waiting for something else (WhatsApp to reconnect); no attempt counted.
    Wait { reason: String, after: Duration },
    /// The other side said no for good (number not on WhatsApp, ...): report
    /// it and finish.
    Rejected { error: String },
    /// The job's integration no longer exists: a dead letter, with why.
    Orphaned,
}

impl From<ChatwootError> for Failure {
    fn from(err: ChatwootError) -> Self {
        let error = err.to_string();
        match &err {
            ChatwootError::Status {
                status: 401 | 403, ..
            } => Self::Refused {
                error: format!(
                    "Chatwoot refuses the API token - fix it with POST /api/chatwoot/set. Detail: {}",
                    err.detail()
                ),
            },
            ChatwootError::Status {
                retry_after: Some(secs),
                ..
            } => Self::Transient {
                error,
                after: Some(Duration::from_secs(*secs)),
            },
            // Chatwoot's flood brake: 200 messages a minute per conversation.
            ChatwootError::Status {
                status: 422, body, ..
            } if body.contains("Too many messages") => Self::Transient {
                error,
                after: Some(Duration::from_secs(60)),
            },
            e if e.is_transient() => Self::Transient { error, after: None },
            _ => Self::Rejected { error },
        }
    }
}

impl Failure {
    /// The inbox is gone from Chatwoot: nothing can be posted until a new `set`.
    pub(crate) fn inbox_gone(integration: &Integration) -> Self {
        Self::Refused {
            error: format!(
                "Chatwoot inbox {} no longer exists - call POST /api/chatwoot/set to create a new one",
                integration.inbox_id
            ),
        }
    }
}

impl From<download::Failure> for Failure {
    fn from(err: download::Failure) -> Self {
        match err {
            download::Failure::Transient { error } => Self::Transient { error, after: None },
            download::Failure::Rejected { error } => Self::Rejected { error },
        }
    }
}

/// What a tenant sees (`last_error`, the failed message in Chatwoot) when a
/// job failed on our side: the cause (SQL, decryption) is for the log only.
pub const INTERNAL_FAILURE: &str =
    "zapgate could not process this delivery (an internal error; the server log has the cause)";

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        // Our own failures (database, decryption) are worth retrying.
        let error = match &err {
            Error::Internal { .. } => {
                tracing::warn!(error = %err, "bridge job failed on an internal error");
                INTERNAL_FAILURE.to_owned()
            }
            public => public.public_message().to_owned(),
        };
        Self::Transient { error, after: None }
    }
}
