//! Wiring: configuration in, a running server out. `main` calls it for
//! `serve`; the integration tests call it to run a real server in-process.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    extract::ConnectInfo,
    http::{Request, StatusCode},
};
use base64::Engine;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
    task::JoinHandle,
};
use tower::{Layer, ServiceExt};
use tower_http::timeout::TimeoutLayer;
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
use zapgate_whatsapp::{SandboxProvider, media::MediaDownloads, web::WebProvider};

use crate::config::{Config, KeySource, Provider, ServerLimits};

/// Opens the database the configuration names, with the secret box.
/// Migrations are not run here: `serve` and `migrate` do that.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let (key, new_key_file) = load_key(&config.key)?;
    let secrets = SecretBox::new(key, config.retired_keys.clone());
    let store = SqlStore::connect(&config.database_url, secrets)
        .await
        .with_context(|| format!("opening {}", redact_url(&config.database_url)))?;
    if let Some(path) = new_key_file {
        // A new key would make every stored secret unreadable, and the next
        // start would find that key and carry on with them lost for good.
        if store.holds_secrets().await? {
            store.close().await;
            anyhow::bail!(
                "the key file {} is missing, but the database {} holds secrets sealed with a key: \
                 refusing to generate a new one. Restore the key file from your backup (or set \
                 ZAPGATE_ENCRYPTION_KEY to the key, base64) and start again",
                path.display(),
                redact_url(&config.database_url)
            );
        }
        write_private_file(path, &base64::engine::general_purpose::STANDARD.encode(key))?;
        tracing::warn!(
            path = %path.display(),
            "no ZAPGATE_ENCRYPTION_KEY given: generated a new key into this file; back it up, secrets cannot be read without it"
        );
    }
    Ok(store)
}

/// The key the configuration gives, or the embedded default's key file; a
/// missing file gets a new key, with the path to write it to once the
/// database is known to hold no secret.
fn load_key(source: &KeySource) -> anyhow::Result<([u8; 32], Option<&Path>)> {
    match source {
        KeySource::Given(key) => Ok((*key, None)),
        KeySource::File(path) => {
            if path.exists() {
                let raw = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let key = crate::config::decode_key("ZAPGATE_ENCRYPTION_KEY", &raw)
                    .with_context(|| format!("key file {}", path.display()))?;
                return Ok((key, None));
            }
            Ok((zapgate_core::token::random_bytes(), Some(path)))
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
    /// The Chatwoot bridge, when the module is on.
    pub bridge: Option<Arc<Bridge>>,
    /// Set (or dropped) to stop.
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, drains the bridge,
    /// and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.task.await?
    }
}

/// Migrates, builds every part, binds and starts serving in the background.
/// Port 0 takes a free port; a public URL that follows the address gets it.
pub async fn start(mut config: Config) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    if config.public_url.port() == Some(0) {
        let _ = config.public_url.set_port(Some(addr.port()));
    }
    let (stop, stopped) = watch::channel(false);
    let Built {
        app,
        web,
        bridge,
        deliveries,
    } = build(&config).await?;
    let draining = bridge.clone();
    let limits = config.server;
    let task = tokio::spawn(async move {
        let mut http_stopped = stopped.clone();
        let served = serve(listener, app, limits, async move {
            let _ = http_stopped.wait_for(|stop| *stop).await;
        });
        // The bridge and the webhook deliveries stop taking work when the
        // server stops accepting.
        let mut stopped = stopped;
        let bridge_stopped = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            let bridge = async {
                if let Some(bridge) = draining {
                    bridge.shutdown().await;
                }
            };
            tokio::join!(bridge, deliveries.shutdown(DELIVERY_DRAIN));
        };
        let (served, ()) = tokio::join!(served, bridge_stopped);
        // Sessions stop after the last request and delivery, keeping their
        // keys, and give their leases up so another process can take over.
        if let Some(web) = web {
            web.shutdown().await;
        }
        served
    });
    tracing::info!(%addr, "zapgate listening");
    Ok(Running {
        addr,
        bridge,
        stop,
        task,
    })
}

/// What `start` runs: the router, the web provider when it runs, the
/// bridge when the module is on and the webhook deliveries (all must be
/// shut down).
struct Built {
    app: axum::Router,
    web: Option<Arc<WebProvider>>,
    bridge: Option<Arc<Bridge>>,
    deliveries: Arc<Deliveries>,
}

/// How long running webhook deliveries may finish at shutdown (inside the
/// 10 s grace of `serve`).
const DELIVERY_DRAIN: Duration = Duration::from_secs(4);

async fn build(config: &Config) -> anyhow::Result<Built> {
    let store = open_store(config).await?;
    store.migrate().await.context("running migrations")?;
    let adopted = store
        .adopt_instance_webhooks()
        .await
        .context("adopting instance webhook blocks")?;
    if adopted > 0 {
        tracing::info!(
            adopted,
            "instance webhook blocks now deliver as default webhooks"
        );
    }
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
    let chatwoot_http = ChatwootHttp::new(
        url_policy,
        config.chatwoot_timeouts.activate,
        config.honor_proxy_env,
    )
    .context("building the Chatwoot HTTP client")?;
    if config.honor_proxy_env {
        tracing::warn!(
            "ZAPGATE_HONOR_PROXY_ENV: customer URLs go through the proxy, which must refuse private destinations itself"
        );
    }
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
            let downloads = MediaDownloads::new(config.body_limits.media, config.media_downloads);
            let sandbox =
                Arc::new(SandboxProvider::with_salt(sink, salt).with_downloads(downloads));
            (sandbox.clone() as Arc<dyn WhatsApp>, Some(sandbox), None)
        }
    };
    if let Some(bridge) = &bridge {
        bridge.attach_whatsapp(whatsapp.clone());
        bridge.attach_history(Arc::new(sql_store.clone()));
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
        webhook_client(url_policy, config.honor_proxy_env)?,
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
    crate::allocator::release_freed_memory();

    let events = EventsService::new(event_store, recorder, deliveries.clone(), hub);
    if let Some(web) = &web {
        // A Chatwoot import's history from the phone goes to the message store.
        web.attach_history(Arc::new(events.clone()));
    }
    let state = AppState::new(AppParts {
        accounts: AccountService::new(store.clone(), bus),
        events,
        url_policy,
        chatwoot,
        bridge: bridge.clone(),
        downloader: Downloader::new(chatwoot_http, config.body_limits.media),
        store,
        instances,
        sandbox,
        limiter: Arc::new(limiter),
        admin_token: config.admin_token.as_deref().map(TokenHash::of),
        metrics: zapgate_http::install_recorder(),
        body_limits: config.body_limits,
        list_answers: Default::default(),
    });
    Ok(Built {
        app: zapgate_http::router(state),
        web,
        bridge,
        deliveries,
    })
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
        config.honor_proxy_env,
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
/// address guard and no redirect followed (a 3xx is a failed attempt). Like
/// the Chatwoot client, it ignores proxy variables unless the operator opts
/// in (a proxy connects for us, past the guard).
fn webhook_client(policy: AddressPolicy, honor_proxy_env: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .dns_resolver(policy.resolver())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zapgate/", env!("CARGO_PKG_VERSION")));
    if !honor_proxy_env {
        builder = builder.no_proxy();
    }
    builder.build().context("building the webhook HTTP client")
}

/// Serves HTTP/1 (with upgrades) until `shutdown`, then lets open requests
/// finish. Each connection must send its headers within `header_timeout`
/// (idle keep-alive connections close after it too) and gets every answer
/// within `request_timeout`; past `max_connections` the next one waits in
/// the listen backlog until a connection ends. (`axum::serve` sets no
/// header-read timeout and no cap.)
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout)
        .layer(app);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Every connection holds a slot until it ends, so getting all of them
    // back is also how shutdown knows the last one finished.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.context("connection slots closed")?,
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        // What `ConnectInfo<SocketAddr>` reads (rate limits by client IP).
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            req
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stopping.changed() => {
                    // Finishes the request in flight, closes if idle.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(());
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _drained = slots.acquire_many(all).await;
    tracing::info!("zapgate stopped");
    Ok(())
}
