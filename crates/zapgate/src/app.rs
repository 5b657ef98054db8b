//! Wiring: configuration in, a running server out. `main` calls it for
//! `serve`; the integration tests call it to run a real server in-process.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context;
use base64::Engine;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use zapgate_chatwoot::{
    AddressPolicy, Bridge, BridgeSink, ChatwootHttp, ChatwootLifecycle, ChatwootService,
    download::Downloader,
};
use zapgate_core::{
    event_log::EventStore,
    events::{EventBus, Subscriber},
    service::{AccountService, InstanceService, SessionCloser, SessionRecorder},
    store::Store,
    token::TokenHash,
    whatsapp::{EventSink, WhatsApp},
};
use zapgate_events::{Deliveries, EventRecorder, EventsService, Hub};
use zapgate_http::{AppParts, AppState, RateLimiter};
use zapgate_store::{Backend, SecretBox, SqlStore, redact_url};
use zapgate_whatsapp::{SandboxProvider, web::WebProvider};

use crate::config::{Config, KeySource, Provider};

/// Opens the database the configuration names, with the secret box.
/// Migrations are not run here: `serve` and `migrate` do that.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let key = load_key(&config.key)?;
    let secrets = SecretBox::new(key, config.retired_keys.clone());
    SqlStore::connect(&config.database_url, secrets)
        .await
        .with_context(|| format!("opening {}", redact_url(&config.database_url)))
}

/// The key the configuration gives, or the embedded default's key file,
/// generated (mode 0600) on first start.
fn load_key(source: &KeySource) -> anyhow::Result<[u8; 32]> {
    match source {
        KeySource::Given(key) => Ok(*key),
        KeySource::File(path) => {
            if path.exists() {
                let raw = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                return crate::config::decode_key("ZAPGATE_ENCRYPTION_KEY", &raw)
                    .with_context(|| format!("key file {}", path.display()));
            }
            let key: [u8; 32] = zapgate_core::token::random_bytes();
            write_private_file(path, &base64::engine::general_purpose::STANDARD.encode(key))?;
            tracing::warn!(
                path = %path.display(),
                "no ZAPGATE_ENCRYPTION_KEY given: generated a new key into this file; back it up, secrets cannot be read without it"
            );
            Ok(key)
        }
    }
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// A server accepting requests until `shutdown` completes.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }
}

/// Migrates, builds every part, binds and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (app, web) = build(&config).await?;
    let task = tokio::spawn(async move {
        let served = serve(listener, app, async {
            let _ = stopped.await;
        })
        .await;
        // Sessions stop after the last request, keeping their keys, and give
        // their leases up so another process can take over at once.
        if let Some(web) = web {
            web.shutdown().await;
        }
        served
    });
    tracing::info!(%addr, "zapgate listening");
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}

/// The router, and the web provider when it runs (it must be shut down).
async fn build(config: &Config) -> anyhow::Result<(axum::Router, Option<Arc<WebProvider>>)> {
    let store = open_store(config).await?;
    store.migrate().await.context("running migrations")?;
    let backend = store.backend();
    let sql_store = store.clone();
    let store: Arc<dyn Store> = Arc::new(store);
    tracing::info!(
        database = %redact_url(&config.database_url),
        backend = backend.name(),
        provider = config.provider.name(),
        chatwoot_enabled = config.chatwoot_enabled,
        allow_private_urls = config.allow_private_urls,
        rate_limit = config.rate_limit.enabled,
        "starting"
    );
    if config.public_url_is_loopback() {
        tracing::warn!(
            public_url = %config.public_url,
            "ZAPGATE_PUBLIC_URL is a loopback address: only a Chatwoot on this host can reach it"
        );
    }

    let url_policy = AddressPolicy {
        allow_private: config.allow_private_urls,
    };
    let chatwoot_http = ChatwootHttp::new(url_policy, config.chatwoot_timeouts.activate)
        .context("building the Chatwoot HTTP client")?;
    // The bridge routes only while the module is on.
    let bridge = config
        .chatwoot_enabled
        .then(|| Bridge::new(store.clone(), chatwoot_http.clone(), config.bridge));
    // Providers hand their events to the bus; its subscribers are attached
    // below, once everything they need exists.
    let bus = Arc::new(EventBus::new());
    let sink: Arc<dyn EventSink> = bus.clone();
    let (whatsapp, sandbox, web) = match &config.provider {
        Provider::Web(settings) => {
            let web = Arc::new(WebProvider::new(sql_store.clone(), sink, settings.clone()));
            (web.clone() as Arc<dyn WhatsApp>, None, Some(web))
        }
        Provider::Sandbox => {
            // Salted with the boot time so message ids never repeat across
            // restarts (a repeat would look like a WhatsApp redelivery).
            let salt = zapgate_core::time::now_ms().to_string();
            let sandbox = Arc::new(SandboxProvider::with_salt(sink, salt));
            (sandbox.clone() as Arc<dyn WhatsApp>, Some(sandbox), None)
        }
    };
    if let Some(bridge) = &bridge {
        bridge.attach_whatsapp(whatsapp.clone());
        bridge.start();
    }

    let limiter = match backend {
        Backend::Postgres => RateLimiter::shared(config.rate_limit, store.clone()),
        Backend::Sqlite => RateLimiter::in_memory(config.rate_limit),
    };
    let chatwoot = chatwoot_service(config, &store, &chatwoot_http);
    if let Some(service) = &chatwoot {
        // Chatwoot may be slow or away: never hold the start-up for it.
        let refresher = service.clone();
        tokio::spawn(async move {
            match refresher.refresh_webhook_urls().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    updated = n,
                    "inbox webhook URLs now follow ZAPGATE_PUBLIC_URL"
                ),
                Err(err) => tracing::warn!(error = %err, "could not refresh inbox webhook URLs"),
            }
        });
    }

    let event_store: Arc<dyn EventStore> = Arc::new(sql_store.clone());
    let hub = Arc::new(Hub::new());
    let deliveries = Deliveries::new(
        store.clone(),
        event_store.clone(),
        webhook_client(url_policy)?,
        config.deliveries,
        config.public_url.as_str().trim_end_matches('/').to_owned(),
    );
    let recorder = Arc::new(EventRecorder::new(
        store.clone(),
        event_store.clone(),
        hub.clone(),
        deliveries.clone(),
    ));
    // The order every event is heard in: the session state first, then the
    // Chatwoot module (an instance's deactivation before its session ends),
    // the event log and its deliveries, and last the session's end.
    let mut subscribers: Vec<Arc<dyn Subscriber>> =
        vec![Arc::new(SessionRecorder::new(store.clone()))];
    if let Some(service) = &chatwoot {
        subscribers.push(Arc::new(ChatwootLifecycle::new(service.clone())));
    }
    if let Some(bridge) = &bridge {
        subscribers.push(Arc::new(BridgeSink::new(store.clone(), bridge.clone())));
    }
    subscribers.push(recorder.clone());
    subscribers.push(Arc::new(SessionCloser::new(whatsapp.clone())));
    bus.attach(subscribers);
    deliveries.start();

    let instances =
        InstanceService::new(store.clone(), whatsapp, bus.clone(), config.connect_timeout);
    let resumed = instances.resume_paired().await?;
    tracing::info!(resumed, "sessions resumed");

    let state = AppState::new(AppParts {
        accounts: AccountService::new(store.clone(), bus),
        events: EventsService::new(event_store, recorder, deliveries, hub),
        url_policy,
        chatwoot,
        bridge,
        downloader: Downloader::new(chatwoot_http, config.body_limits.media),
        store,
        instances,
        sandbox,
        limiter: Arc::new(limiter),
        admin_token: config.admin_token.as_deref().map(TokenHash::of),
        metrics: zapgate_http::install_recorder(),
        body_limits: config.body_limits,
    });
    Ok((zapgate_http::router(state), web))
}

/// The Chatwoot module's service, when the module is on.
fn chatwoot_service(
    config: &Config,
    store: &Arc<dyn Store>,
    http: &ChatwootHttp,
) -> Option<Arc<ChatwootService>> {
    config.chatwoot_enabled.then(|| {
        Arc::new(ChatwootService::new(
            store.clone(),
            http.clone(),
            config.public_url.as_str(),
            config.chatwoot_timeouts,
        ))
    })
}

/// Account deletion for the CLI: the same service and subscribers as over
/// HTTP, but for the sessions, which live in the `serve` process (it ends a
/// session whose lease went with the instance).
pub fn account_service(config: &Config, store: SqlStore) -> anyhow::Result<AccountService> {
    let store: Arc<dyn Store> = Arc::new(store);
    let http = ChatwootHttp::new(
        AddressPolicy {
            allow_private: config.allow_private_urls,
        },
        config.chatwoot_timeouts.activate,
    )
    .context("building the Chatwoot HTTP client")?;
    let bus = Arc::new(EventBus::new());
    let mut subscribers: Vec<Arc<dyn Subscriber>> = Vec::new();
    if let Some(service) = chatwoot_service(config, &store, &http) {
        subscribers.push(Arc::new(ChatwootLifecycle::new(service)));
    }
    bus.attach(subscribers);
    Ok(AccountService::new(store, bus))
}

/// The client webhook deliveries go out on: every connection checked by the
/// address guard, no redirect followed (a 3xx is a failed attempt), and no
/// proxy from the environment (a proxy would connect for us, past the guard).
fn webhook_client(policy: AddressPolicy) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(policy.resolver())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("zapgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook HTTP client")
}

async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")?;
    tracing::info!("zapgate stopped");
    Ok(())
}
