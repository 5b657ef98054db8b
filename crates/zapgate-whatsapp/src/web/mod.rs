//! The WhatsApp Web multi-device provider, on the `whatsapp-rust` crate: a
//! linked device per instance, with its keys in zapgate's own store (sealed
//! by the secret box), never in a local file.
//!
//! Several processes may share one PostgreSQL. Each session runs in exactly
//! one of them, the holder of its lease in the database. A keeper task
//! renews this process's leases, stops a session whose lease was taken over,
//! ends sessions that were logged out or deleted through another process,
//! and adopts paired sessions whose owner stopped renewing (it died).
//!
//! A session starts with the instance's stored settings. A change made
//! here applies at once; one made through another process reaches the
//! session at the keeper's next round.

mod calls;
mod chat_state;
mod groups;
mod history;
mod inbound;
mod kinds;
mod labels;
mod message_ops;
mod outbound;
mod polls;
mod send;
mod session;
mod transport;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use zapgate_core::{
    Error, Result,
    instance::{ConnectionState, InstanceSettings, SessionStatus},
    store::Store,
    time::{now_ms, now_secs},
    whatsapp::{
        Event, EventSink, HistoryFetched, HistoryRequest, HistorySink, LoginCode, LoginMethod,
        Outgoing, SentMessage, WhatsApp, WhatsAppEvent,
    },
};
use zapgate_store::SqlStore;

use session::{Ended, Session};

use crate::media::MediaDownloads;

/// A client version WhatsApp Web accepted when this was pinned. The crate
/// would otherwise fetch the current one from web.whatsapp.com at start;
/// pinning keeps start-up offline-safe, and `ZAPGATE_WA_VERSION` moves it
/// when WhatsApp starts answering "client outdated".
pub const DEFAULT_VERSION: (u32, u32, u32) = (2, 3000, 1_026_131_876);

pub const SESSION_OWNED_ELSEWHERE: &str =
    "This WhatsApp session runs in another zapgate process; retry once that process stops";

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The WhatsApp Web socket; `None` is WhatsApp's own.
    pub socket_url: Option<String>,
    pub version: (u32, u32, u32),
    /// Inbound media above this is delivered without the file.
    pub media_limit: usize,
    /// Inbound media downloads at once, across every session.
    pub media_downloads: usize,
    /// How long a lease outlives its last renewal; renewed every third of it.
    pub lease_ttl: Duration,
}

/// The `web` provider. Cheap to share behind an `Arc`.
pub struct WebProvider {
    inner: Arc<Inner>,
}

struct Inner {
    store: SqlStore,
    sink: Arc<dyn EventSink>,
    config: WebConfig,
    /// Every session's inbound media downloads.
    downloads: MediaDownloads,
    /// This process's name on its leases.
    owner: String,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Lifecycle changes (connect, logout, adopt, end) take turns, so two
    /// never race on one instance; none holds it while waiting on WhatsApp.
    lifecycle: tokio::sync::Mutex<()>,
    /// Set by shutdown: no session starts here any more.
    closed: AtomicBool,
    /// Where history fetched for an import goes (the message store).
    history: OnceLock<Arc<dyn HistorySink>>,
}

impl WebProvider {
    /// The provider, with its lease keeper running until the provider is
    /// dropped.
    pub fn new(store: SqlStore, sink: Arc<dyn EventSink>, config: WebConfig) -> Self {
        let owner = hex::encode(zapgate_core::token::random_bytes::<12>());
        let inner = Arc::new(Inner {
            store,
            sink,
            downloads: MediaDownloads::new(config.media_limit, config.media_downloads),
            config,
            owner,
            sessions: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            history: OnceLock::new(),
        });
        tokio::spawn(keep_leases(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// Where history fetched for a Chatwoot import goes (once, at start).
    pub fn attach_history(&self, sink: Arc<dyn HistorySink>) {
        if self.inner.history.set(sink).is_err() {
            tracing::warn!("the web provider's history sink was already attached");
        }
    }

    /// Stops every session, keeping its keys, and gives the leases up so
    /// another process can take over at once (graceful shutdown).
    pub async fn shutdown(&self) {
        let _turn = self.inner.lifecycle.lock().await;
        self.inner.closed.store(true, Ordering::SeqCst);
        let sessions: Vec<(String, Arc<Session>)> = self.inner.sessions().drain().collect();
        // All at once: each may take its grace period on a silent network.
        let stops = sessions.iter().map(|(instance_id, session)| async move {
            session.stop().await;
            self.inner.release(instance_id).await;
        });
        whatsapp_rust::futures::future::join_all(stops).await;
    }
}

impl Inner {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn session(&self, instance_id: &str) -> Option<Arc<Session>> {
        self.sessions().get(instance_id).cloned()
    }

    fn lease_deadline(&self) -> i64 {
        now_ms() + i64::try_from(self.config.lease_ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    async fn acquire(&self, instance_id: &str) -> Result<bool> {
        self.store
            .acquire_wa_lease(instance_id, &self.owner, now_ms(), self.lease_deadline())
            .await
    }

    async fn release(&self, instance_id: &str) {
        if let Err(err) = self.store.release_wa_lease(instance_id, &self.owner).await {
            tracing::warn!(instance_id, error = %err, "could not release the session lease");
        }
    }

    /// Starts a session under this process's lease and registers it. It is
    /// `connecting` until WhatsApp confirms it; `number_jid` is the number a
    /// linked session had.
    async fn start(
        self: &Arc<Self>,
        instance_id: &str,
        number_jid: Option<String>,
        login: Option<&LoginMethod>,
    ) -> Result<Arc<Session>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("zapgate is shutting down".to_owned()));
        }
        if !self.acquire(instance_id).await? {
            return Err(Error::conflict(SESSION_OWNED_ELSEWHERE));
        }
        let weak = Arc::downgrade(self);
        let id = instance_id.to_owned();
        // Filled once the session exists, so `ended` can tell it from a
        // newer session of the same instance.
        let this: Arc<std::sync::OnceLock<Weak<Session>>> = Arc::default();
        let ended_session = this.clone();
        let on_ended = Arc::new(move |ended: Ended| {
            if let (Some(inner), Some(session)) = (weak.upgrade(), ended_session.get().cloned()) {
                let id = id.clone();
                // Off the session's own event task, which `stop` waits for.
                tokio::spawn(async move { inner.ended(&id, &session, ended).await });
            }
        });
        let session = Session::start(
            self,
            instance_id,
            SessionStatus {
                state: ConnectionState::Connecting,
                number_jid,
            },
            login,
            on_ended,
        )
        .await;
        match session {
            Ok(session) => {
                let _ = this.set(Arc::downgrade(&session));
                self.sessions()
                    .insert(instance_id.to_owned(), session.clone());
                Ok(session)
            }
            Err(err) => {
                self.release(instance_id).await;
                Err(err)
            }
        }
    }

    /// Removes and stops the session, keeping its keys.
    async fn stop(&self, instance_id: &str) {
        let session = self.sessions().remove(instance_id);
        if let Some(session) = session {
            session.stop().await;
        }
        self.release(instance_id).await;
    }

    /// Persists a state change made here rather than by a running session.
    async fn record(&self, instance_id: &str, status: SessionStatus) -> Result<()> {
        self.sink
            .deliver(WhatsAppEvent {
                instance_id: instance_id.to_owned(),
                event: Event::Session(status),
            })
            .await
    }

    /// Ends the session wherever it runs: records the logout, unlinks the
    /// phone when the session runs here, wipes the keys, and ends the lease
    /// (a holder elsewhere sees that at its next renewal and unlinks there).
    async fn logout(&self, instance_id: &str) -> Result<()> {
        let logged_out = SessionStatus {
            state: ConnectionState::LoggedOut,
            number_jid: None,
        };
        self.record(instance_id, logged_out).await?;
        let session = self.sessions().remove(instance_id);
        if let Some(session) = session {
            session.logout().await;
        }
        self.store.wipe_wa_session(instance_id).await?;
        self.store.end_wa_lease(instance_id).await
    }

    /// A session ended by itself (see [`Ended`]). Nothing to do when it is
    /// no longer the instance's session (stopped, or replaced meanwhile).
    async fn ended(&self, instance_id: &str, session: &Weak<Session>, ended: Ended) {
        let _turn = self.lifecycle.lock().await;
        let current = self.session(instance_id);
        if !current.is_some_and(|c| std::ptr::eq(Arc::as_ptr(&c), session.as_ptr())) {
            return;
        }
        let result = match ended {
            Ended::LoggedOut => self.logout(instance_id).await,
            Ended::Stopped => {
                self.stop(instance_id).await;
                Ok(())
            }
        };
        if let Err(err) = result {
            tracing::warn!(instance_id, error = %err, "could not clean up an ended session");
        }
    }

    /// One round of the lease keeper.
    async fn keep(self: &Arc<Self>) -> Result<()> {
        let held = self
            .store
            .renew_wa_leases(&self.owner, self.lease_deadline())
            .await?;
        let _turn = self.lifecycle.lock().await;
        let running: Vec<String> = self.sessions().keys().cloned().collect();
        // Settings changed through another process.
        for instance_id in running.iter().filter(|id| held.contains(id)) {
            if let (Some(session), Some(instance)) = (
                self.session(instance_id),
                self.store.find_instance_by_id(instance_id).await?,
            ) {
                session.apply_settings(&instance.settings).await;
            }
        }
        for instance_id in running.iter().filter(|id| !held.contains(id)) {
            let logged_out = self
                .store
                .find_instance_by_id(instance_id)
                .await?
                .is_none_or(|i| i.session.state == ConnectionState::LoggedOut);
            if logged_out {
                tracing::info!(instance_id, "session logged out through another process");
                self.logout(instance_id).await?;
            } else {
                tracing::warn!(
                    instance_id,
                    "session lease taken over by another process; stopping here"
                );
                let session = self.sessions().remove(instance_id);
                if let Some(session) = session {
                    session.stop().await;
                }
            }
        }
        for instance_id in self.store.orphaned_wa_sessions(now_ms()).await? {
            if self.session(&instance_id).is_some() {
                continue;
            }
            let Some(instance) = self.store.find_instance_by_id(&instance_id).await? else {
                continue;
            };
            match self
                .start(&instance_id, instance.session.number_jid, None)
                .await
            {
                Ok(_) => tracing::info!(instance_id, "adopted a session whose process stopped"),
                // Another process was quicker.
                Err(Error::Conflict(m)) if m == SESSION_OWNED_ELSEWHERE => {}
                Err(err) => {
                    tracing::warn!(instance_id, error = %err, "could not adopt a paired session")
                }
            }
        }
        Ok(())
    }
}

async fn keep_leases(inner: Weak<Inner>) {
    let Some(period) = inner.upgrade().map(|i| i.config.lease_ttl / 3) else {
        return;
    };
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade().filter(|i| !i.closed.load(Ordering::SeqCst)) else {
            return;
        };
        if let Err(err) = inner.keep().await {
            tracing::warn!(error = %err, "session lease round failed");
        }
    }
}

#[async_trait]
impl WhatsApp for WebProvider {
    fn name(&self) -> &'static str {
        "web"
    }

    async fn connect(&self, instance_id: &str, method: LoginMethod) -> Result<LoginCode> {
        let session = {
            let _turn = self.inner.lifecycle.lock().await;
            let number_jid = match self.inner.session(instance_id) {
                Some(running) if running.is_connected() => return Ok(LoginCode::AlreadyConnected),
                // A session still waiting for a scan, or offline: start over
                // with the method asked for now.
                Some(running) => {
                    self.inner.stop(instance_id).await;
                    running.status().number_jid
                }
                None => self
                    .inner
                    .store
                    .find_instance_by_id(instance_id)
                    .await?
                    .and_then(|i| i.session.number_jid),
            };
            self.inner
                .start(instance_id, number_jid, Some(&method))
                .await?
        };
        match session.first_login().await {
            Ok(code) => Ok(code),
            Err(reason) => {
                // A linked session keeps retrying in the background; one
                // that has nothing to wait for stops.
                if session.status().number_jid.is_none() {
                    let _turn = self.inner.lifecycle.lock().await;
                    self.inner.stop(instance_id).await;
                    let idle = SessionStatus {
                        state: ConnectionState::Disconnected,
                        number_jid: None,
                    };
                    self.inner.record(instance_id, idle).await?;
                }
                Err(Error::Unavailable(format!(
                    "Could not connect to WhatsApp: {reason}"
                )))
            }
        }
    }

    async fn resume(&self, instance_id: &str, status: &SessionStatus) -> Result<()> {
        let _turn = self.inner.lifecycle.lock().await;
        if self.inner.session(instance_id).is_some() {
            return Ok(());
        }
        self.inner
            .start(instance_id, status.number_jid.clone(), None)
            .await
            .map(drop)
    }

    /// A session not running here reads the settings from the store when it
    /// starts, so only a running one needs them.
    async fn apply_settings(&self, instance_id: &str, settings: &InstanceSettings) {
        if let Some(session) = self.inner.session(instance_id) {
            session.apply_settings(settings).await;
        }
    }

    fn status(&self, instance_id: &str) -> Option<SessionStatus> {
        self.inner.session(instance_id).map(|s| s.status())
    }

    fn session_owner(&self) -> Option<&str> {
        Some(&self.inner.owner)
    }

    async fn send(
        &self,
        instance_id: &str,
        message: Outgoing,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        let session = self
            .inner
            .session(instance_id)
            .filter(|s| s.is_connected())
            .ok_or(Error::NotConnected)?;
        let (id, media) = send::send(&session, message, id).await?;
        Ok(SentMessage {
            id,
            timestamp: now_secs(),
            media,
        })
    }

    async fn chat_presence(
        &self,
        instance_id: &str,
        chat: &zapgate_core::jid::Jid,
        presence: zapgate_core::whatsapp::ChatPresence,
    ) -> Result<()> {
        let session = self
            .inner
            .session(instance_id)
            .filter(|s| s.is_connected())
            .ok_or(Error::NotConnected)?;
        send::chat_presence(&session, chat, presence).await
    }

    /// Only where the session runs: elsewhere (another process holds it)
    /// the import goes on with what the message store holds.
    async fn fetch_history(
        &self,
        instance_id: &str,
        request: &HistoryRequest,
    ) -> Result<HistoryFetched> {
        let sink = self.inner.history.get().cloned().ok_or_else(|| {
            Error::Unavailable("the message store is not attached to the provider".to_owned())
        })?;
        let session = self
            .inner
            .session(instance_id)
            .filter(|s| s.is_connected())
            .ok_or(Error::NotConnected)?;
        session.fetch_history(request, sink).await
    }

    async fn logout(&self, instance_id: &str) -> Result<()> {
        let _turn = self.inner.lifecycle.lock().await;
        self.inner.logout(instance_id).await
    }

    /// Removing an instance unlinks its phone and wipes its keys: a logout.
    async fn remove(&self, instance_id: &str) -> Result<()> {
        self.logout(instance_id).await
    }
}
