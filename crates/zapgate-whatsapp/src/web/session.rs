//! One instance's WhatsApp Web session: the crate's bot with our storage,
//! our transport watch and our event handling, and the state the API reads.
//!
//! Inbound messages go through the crate's durability hook: a message is
//! mapped, its media downloaded, and the event stored by the sink before the
//! hook returns, and only then does the crate acknowledge it to WhatsApp. A
//! crash in between makes WhatsApp deliver it again, and the sink knows the
//! id, so nothing is lost or doubled. Every other event goes through one
//! queue in arrival order, so a session change never overtakes an earlier one.
//!
//! The instance settings apply here: ignored chats never reach the sink
//! (they are still acknowledged), stored messages are marked read, call
//! offers are rejected, and the presence follows `keepOnlineStatus`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, watch};
use whatsapp_rust::{
    Client, InboundDurabilityHook, async_trait,
    bot::{Bot, BotHandle},
    download::DownloadWriter,
    pair_code::PairCodeOptions,
    transport::TokioWebSocketTransportFactory,
    types::{
        call::IncomingCall,
        events::{Event as WaEvent, EventHandler, InboundMessage as WaInbound, LazyHistorySync},
    },
};
use zapgate_core::{
    Error, Result,
    instance::{ConnectionState, InstanceSettings, SessionStatus},
    jid::Jid,
    store::Store,
    whatsapp::{
        CallEvent, CallStatus, Event, EventSink, HistoryFetched, HistoryRequest, HistorySink,
        InboundMessage, LoginCode, LoginMethod, Media, WhatsAppEvent,
    },
};
use zapgate_store::WaSessionStore;

use super::{
    Inner,
    calls::{self, Ringing},
    history, inbound, labels, outbound, polls, send,
    transport::ObservedTransportFactory,
};
use crate::{
    media::{CappedBuffer, MediaDownloads},
    qr,
};

/// How long a stopping session may take to flush its state.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where a `connect` call stands, as the session reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Waiting,
    /// The latest code; a new one replaces it.
    Code(LoginCode),
    /// The phone is linked and the session is up.
    Linked,
    /// No code is coming, with the reason for the caller.
    Failed(String),
}

/// What a running session tells its provider when it ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The phone unlinked us (or WhatsApp did): keys are void.
    LoggedOut,
    /// Nothing more will happen without a new `connect`.
    Stopped,
}

/// Called with how the session ended; the provider knows which one it is.
pub(super) type OnEnded = Arc<dyn Fn(Ended) + Send + Sync>;

/// State shared by the session and its event handlers.
struct Shared {
    instance_id: String,
    sink: Arc<dyn EventSink>,
    status: Mutex<SessionStatus>,
    login: watch::Sender<Login>,
    /// Group subjects already looked up, so a busy group costs one query.
    subjects: Mutex<HashMap<String, String>>,
    /// The process's inbound media downloads (bounded in size and number).
    downloads: MediaDownloads,
    settings: Mutex<InstanceSettings>,
    /// The phone's address book as synced (app-state `contact` mutations),
    /// by phone digits; kept for `chat/contacts`.
    address_book: Mutex<HashMap<String, zapgate_core::chat_state::Contact>>,
    on_ended: OnEnded,
    /// Set when zapgate stops or logs out the session itself: the crate's
    /// events from then on (disconnected, logged out) are echoes of that,
    /// not news to report.
    stopping: AtomicBool,
    /// The import waiting for history, while one is (history sync is on).
    history: Mutex<Option<history::Want>>,
    /// Woken by every history sync that arrives while one waits.
    history_seen: tokio::sync::Notify,
}

impl Shared {
    fn settings(&self) -> InstanceSettings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `f` on the waiting import's state; `None` when none waits.
    fn with_want<R>(&self, f: impl FnOnce(&mut history::Want) -> R) -> Option<R> {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map(f)
    }

    fn status(&self) -> SessionStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records and reports a state change; repeats are not reported.
    async fn set_status(&self, state: ConnectionState, number_jid: Option<String>) {
        let status = SessionStatus { state, number_jid };
        {
            let mut current = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            if *current == status {
                return;
            }
            *current = status.clone();
        }
        self.emit(Event::Session(status)).await;
    }

    async fn emit(&self, event: Event) {
        let event = WhatsAppEvent {
            instance_id: self.instance_id.clone(),
            event,
        };
        if let Err(err) = self.sink.deliver(event).await {
            tracing::warn!(instance_id = %self.instance_id, error = %err, "could not record a WhatsApp event");
        }
    }

    fn set_login(&self, login: Login) {
        self.login.send_replace(login);
    }

    /// Fails a waiting `connect` without touching a code already shown.
    fn fail_login(&self, reason: String) {
        self.login.send_if_modified(|login| match login {
            Login::Waiting => {
                *login = Login::Failed(reason);
                true
            }
            _ => false,
        });
    }
}

pub(super) struct Session {
    shared: Arc<Shared>,
    client: Arc<Client>,
    handle: tokio::sync::Mutex<Option<BotHandle>>,
}

impl Session {
    /// Builds and starts the bot with the instance's stored settings. With
    /// `login`, an unlinked session asks for that kind of code; a linked one
    /// simply connects.
    pub(super) async fn start(
        provider: &Inner,
        instance_id: &str,
        initial: SessionStatus,
        login: Option<&LoginMethod>,
        on_ended: OnEnded,
    ) -> Result<Arc<Self>> {
        let (store, config) = (&provider.store, &provider.config);
        let settings = store
            .find_instance_by_id(instance_id)
            .await?
            .map(|i| i.settings)
            .unwrap_or_default();
        let (login_tx, _) = watch::channel(Login::Waiting);
        let shared = Arc::new(Shared {
            instance_id: instance_id.to_owned(),
            sink: provider.sink.clone(),
            status: Mutex::new(initial.clone()),
            login: login_tx,
            subjects: Mutex::new(HashMap::new()),
            downloads: provider.downloads.clone(),
            settings: Mutex::new(settings),
            address_book: Mutex::new(HashMap::new()),
            on_ended,
            stopping: AtomicBool::new(false),
            history: Mutex::new(None),
            history_seen: tokio::sync::Notify::new(),
        });

        let mut socket = TokioWebSocketTransportFactory::new();
        if let Some(url) = &config.socket_url {
            socket = socket.with_url(url.clone());
        }
        let dial_watch = shared.clone();
        let transport = ObservedTransportFactory::new(
            Arc::new(socket),
            Arc::new(move |reason| dial_watch.fail_login(reason)),
        );
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut builder = Bot::builder()
            .with_backend(WaSessionStore::new(store.clone(), instance_id))
            .with_transport_factory(transport)
            .with_version(config.version)
            // Off unless a Chatwoot import asks for history (`fetch_history`
            // turns it on while it waits); `disableHistorySync: false`, a
            // full copy of the history for everyone, stays refused.
            .skip_history_sync()
            .with_inbound_durability_hook(DurableInbound {
                shared: shared.clone(),
            })
            .with_event_handler(QueuedEvents { queue: events_tx });
        if let Some(LoginMethod::PairingCode { phone }) = login {
            builder = builder.with_pair_code(PairCodeOptions {
                phone_number: phone.clone(),
                ..Default::default()
            });
        }
        let bot = builder
            .build()
            .await
            .map_err(|err| Error::internal_with("Could not open the WhatsApp session", err))?;
        let client = bot.client();
        shared.emit(Event::Session(initial)).await;
        // Weak: the task ends when the client (which holds the sending side
        // of the queue) is gone, instead of keeping it alive.
        tokio::spawn(handle_events(
            shared.clone(),
            Arc::downgrade(&client),
            events_rx,
        ));
        let handle = bot.spawn();
        tracing::info!(instance_id, "WhatsApp session started");
        Ok(Arc::new(Self {
            shared,
            client,
            handle: tokio::sync::Mutex::new(Some(handle)),
        }))
    }

    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    pub(super) fn status(&self) -> SessionStatus {
        self.shared.status()
    }

    pub(super) fn address_book(&self) -> HashMap<String, zapgate_core::chat_state::Contact> {
        self.shared
            .address_book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn is_connected(&self) -> bool {
        self.client.is_connected() && self.client.is_logged_in()
    }

    /// Takes new settings; a connected session shows its new presence now.
    pub(super) async fn apply_settings(&self, settings: &InstanceSettings) {
        let presence_changed = {
            let mut current = self
                .shared
                .settings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *current == *settings {
                return;
            }
            let changed = current.keep_online_status != settings.keep_online_status;
            *current = settings.clone();
            changed
        };
        if presence_changed && self.is_connected() {
            announce_presence(&self.shared, &self.client).await;
        }
    }

    /// Waits until the session has a code to show or is linked; the error
    /// is the reason no code is coming.
    pub(super) async fn first_login(&self) -> std::result::Result<LoginCode, String> {
        let mut login = self.shared.login.subscribe();
        let outcome = login
            .wait_for(|l| !matches!(l, Login::Waiting))
            .await
            .map(|l| l.clone());
        match outcome {
            Ok(Login::Code(code)) => Ok(code),
            Ok(Login::Linked) => Ok(LoginCode::AlreadyConnected),
            Ok(Login::Failed(reason)) => Err(reason),
            Ok(Login::Waiting) | Err(_) => Err("the session stopped".to_owned()),
        }
    }

    /// Stops the bot, keeping the keys (shutdown, lease lost, failed
    /// connect). The crate flushes its state first; a dial hanging on a
    /// silent network would hold that up forever, so it gets a bound.
    pub(super) async fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let Some(mut handle) = self.handle.lock().await.take() else {
            return;
        };
        self.client.disconnect().await;
        if tokio::time::timeout(STOP_GRACE, &mut handle).await.is_err() {
            tracing::warn!(instance_id = %self.shared.instance_id, "WhatsApp session did not stop in time; aborted");
            handle.abort();
        }
        tracing::info!(instance_id = %self.shared.instance_id, "WhatsApp session stopped");
    }

    /// Fetches the history a Chatwoot import needs (see [`history`]):
    /// asks for the messages before each anchor, round after round, and
    /// keeps the syncs that arrive until every request is answered, or the
    /// phone goes quiet when there was nothing to ask, or the deadline.
    pub(super) async fn fetch_history(
        &self,
        request: &HistoryRequest,
        sink: Arc<dyn HistorySink>,
    ) -> Result<HistoryFetched> {
        {
            let mut want = self
                .shared
                .history
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if want.is_some() {
                return Err(Error::conflict(
                    "a history fetch is already running for this instance",
                ));
            }
            *want = Some(history::Want::new(request.since_secs, sink));
        }
        self.client.set_skip_history_sync(false);
        let requests = self.ask_history(request).await;
        self.client.set_skip_history_sync(true);
        let want = self
            .shared
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(HistoryFetched {
            requests,
            answered: want.as_ref().map_or(0, |w| w.answered),
            stored: want.as_ref().map_or(0, |w| w.stored),
        })
    }

    /// The rounds of on-demand requests; returns how many were sent.
    async fn ask_history(&self, request: &HistoryRequest) -> usize {
        let deadline = tokio::time::Instant::now() + request.deadline;
        let mut anchors: Vec<_> = request
            .anchors
            .iter()
            .take(history::MAX_CHATS)
            .cloned()
            .collect();
        let mut requests = 0;
        let mut rounds = 0;
        while !anchors.is_empty()
            && rounds < history::MAX_ROUNDS
            && tokio::time::Instant::now() < deadline
        {
            rounds += 1;
            for anchor in &anchors {
                let Ok(chat) = outbound::wa_jid(&anchor.chat) else {
                    continue;
                };
                let sent = self
                    .client
                    .fetch_message_history(
                        &chat,
                        &anchor.id,
                        anchor.from_me,
                        anchor.timestamp.saturating_mul(1000),
                        history::PER_REQUEST,
                    )
                    .await;
                match sent {
                    Ok(request_id) => {
                        requests += 1;
                        let chat = anchor.chat.to_string();
                        self.shared.with_want(|w| w.asked(request_id, chat));
                    }
                    Err(err) => {
                        tracing::debug!(instance_id = %self.shared.instance_id, error = %err, "history request not sent")
                    }
                }
            }
            self.wait_history(deadline, |w| w.pending.is_empty()).await;
            anchors = self
                .shared
                .with_want(history::Want::next_round)
                .unwrap_or_default();
            anchors.truncate(history::MAX_CHATS);
        }
        if requests == 0 {
            // Nothing to ask: keep what the phone pushes (a freshly linked
            // phone's bootstrap) until it has been quiet for a while.
            let mut until = deadline.min(tokio::time::Instant::now() + history::PUSH_WAIT);
            loop {
                tokio::time::sleep_until(until).await;
                let last = self.shared.with_want(|w| w.last_sync).flatten();
                match last.map(|t| (t + history::PUSH_WAIT).min(deadline)) {
                    Some(later) if later > until => until = later,
                    _ => break,
                }
            }
        }
        requests
    }

    /// Until `done` holds of the waiting import, or `until`.
    async fn wait_history(
        &self,
        until: tokio::time::Instant,
        done: impl Fn(&history::Want) -> bool,
    ) {
        loop {
            // Made before the check: a sync in between still wakes it.
            let seen = self.shared.history_seen.notified();
            if self.shared.with_want(|w| done(w)).unwrap_or(true) {
                return;
            }
            if tokio::time::timeout_at(until, seen).await.is_err() {
                return;
            }
        }
    }

    /// Unlinks the companion device on WhatsApp's side (best effort while
    /// offline) and stops. The caller wipes the keys.
    pub(super) async fn logout(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.client.logout().await;
        self.stop().await;
    }
}

/// The subject of group `chat`, looked up once per session.
async fn group_subject(shared: &Shared, client: &Client, chat: &Jid) -> Option<String> {
    let key = chat.to_string();
    if let Some(subject) = shared
        .subjects
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Some(subject.clone());
    }
    let jid = key.parse().ok()?;
    match client.groups().get_metadata(&jid).await {
        Ok(info) => {
            let subject = info.subject;
            shared
                .subjects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, subject.clone());
            Some(subject)
        }
        Err(err) => {
            tracing::debug!(instance_id = %shared.instance_id, error = %err, "group subject lookup failed");
            None
        }
    }
}

/// Available with `keepOnlineStatus`, else unavailable: the crate announces
/// itself available on connect, which would keep the phone from notifying.
async fn announce_presence(shared: &Shared, client: &Client) {
    let presence = client.presence();
    let sent = if shared.settings().keep_online_status {
        presence.set_available().await
    } else {
        presence.set_unavailable().await
    };
    match sent {
        Ok(()) => {}
        // A freshly linked session learns its push name a moment later and
        // announces again then (SelfPushNameUpdated).
        Err(whatsapp_rust::PresenceError::PushNameEmpty) => {
            tracing::debug!(instance_id = %shared.instance_id, "presence waits for the push name")
        }
        Err(err) => {
            tracing::warn!(instance_id = %shared.instance_id, error = %err, "could not send the presence")
        }
    }
}

/// Reports a call; an offer is rejected when `autoRejectCalls` says so, and
/// the caller gets `callRejectMessage`.
async fn on_call(shared: &Shared, client: &Client, incoming: &IncomingCall, ringing: &mut Ringing) {
    let Some(mut call) = calls::map_call(incoming, ringing) else {
        return;
    };
    shared.emit(Event::Call(call.clone())).await;
    let settings = shared.settings();
    if call.status != CallStatus::Offer || !settings.auto_reject_calls {
        return;
    }
    if let Err(err) = client.voip().reject(incoming).await {
        tracing::warn!(instance_id = %shared.instance_id, call_id = %call.id, error = %err, "could not reject a call");
        return;
    }
    ringing.end(&call.id);
    call.status = CallStatus::Rejected;
    shared.emit(Event::Call(call.clone())).await;
    if let Some(text) = settings.call_reject_text() {
        send_reject_message(shared, client, &call, text).await;
    }
}

async fn send_reject_message(shared: &Shared, client: &Client, call: &CallEvent, text: &str) {
    let sent = match outbound::wa_jid(&call.from) {
        Ok(to) => send::send_with_id(client, to, outbound::text(text, None), None).await,
        Err(err) => Err(err),
    };
    if let Err(err) = sent {
        tracing::warn!(instance_id = %shared.instance_id, call_id = %call.id, error = %err, "could not send the call reject message");
    }
}

/// Hands every event to one task, in order, without blocking the crate.
struct QueuedEvents {
    queue: mpsc::UnboundedSender<Arc<WaEvent>>,
}

impl EventHandler for QueuedEvents {
    fn handle_event(&self, event: Arc<WaEvent>) {
        // Fails only once the session task has ended: nothing to report to.
        let _ = self.queue.send(event);
    }
}

async fn handle_events(
    shared: Arc<Shared>,
    client: std::sync::Weak<Client>,
    mut events: mpsc::UnboundedReceiver<Arc<WaEvent>>,
) {
    let id = shared.instance_id.clone();
    let mut ringing = Ringing::default();
    while let Some(event) = events.recv().await {
        if shared.stopping.load(Ordering::SeqCst) {
            continue;
        }
        match &*event {
            WaEvent::PairingQrCode(qr) => match qr::png_data_url(&qr.code) {
                Ok(png_data_url) => {
                    shared.set_login(Login::Code(LoginCode::QrCode {
                        code: qr.code.clone(),
                        png_data_url,
                    }));
                    shared.set_status(ConnectionState::Connecting, None).await;
                }
                Err(err) => shared.fail_login(format!("could not render the QR code: {err}")),
            },
            WaEvent::PairingCode(code) => {
                shared.set_login(Login::Code(LoginCode::PairingCode(code.code.clone())));
                shared.set_status(ConnectionState::Connecting, None).await;
            }
            WaEvent::PairingCodeError(err) => {
                tracing::warn!(instance_id = %id, error = %err.error, "pairing code refused");
                shared.fail_login(format!("pairing code refused: {}", err.error));
            }
            WaEvent::PairSuccess(_) => tracing::info!(instance_id = %id, "phone linked"),
            WaEvent::PairError(err) => {
                tracing::warn!(instance_id = %id, error = %err.error, "pairing failed");
                shared.fail_login(format!("pairing failed: {}", err.error));
            }
            WaEvent::Connected(_) => {
                let number = client
                    .upgrade()
                    .and_then(|c| c.pn())
                    .map(|jid| jid.to_non_ad_string());
                shared.set_login(Login::Linked);
                shared.set_status(ConnectionState::Connected, number).await;
                if let Some(client) = client.upgrade() {
                    announce_presence(&shared, &client).await;
                }
                tracing::info!(instance_id = %id, "WhatsApp connected");
            }
            // The crate announces itself available when it learns the push
            // name (first link); say again what the settings want.
            WaEvent::SelfPushNameUpdated(_) => {
                if let Some(client) = client.upgrade() {
                    announce_presence(&shared, &client).await;
                }
            }
            WaEvent::IncomingCall(incoming) => {
                if let Some(client) = client.upgrade() {
                    on_call(&shared, &client, incoming, &mut ringing).await;
                }
            }
            WaEvent::MissedCall(missed) => {
                if let Some(call) = calls::map_missed(missed) {
                    shared.emit(Event::Call(call)).await;
                }
            }
            WaEvent::Disconnected(why) => {
                // The crate reconnects by itself, with backoff.
                tracing::info!(instance_id = %id, reason = %why.reason, "WhatsApp connection lost; reconnecting");
                let number = shared.status().number_jid;
                shared.set_status(ConnectionState::Connecting, number).await;
            }
            WaEvent::LoggedOut(out) => {
                tracing::warn!(instance_id = %id, reason = ?out.reason, "WhatsApp logged this session out");
                shared.fail_login("the phone unlinked this session".to_owned());
                shared.set_status(ConnectionState::LoggedOut, None).await;
                (shared.on_ended)(Ended::LoggedOut);
            }
            WaEvent::StreamReplaced(_) => {
                tracing::warn!(instance_id = %id, "another client opened this WhatsApp session; stopping here");
                end(&shared, "another client opened this session").await;
            }
            WaEvent::TemporaryBan(ban) => {
                tracing::warn!(instance_id = %id, code = ?ban.code, "WhatsApp banned this number temporarily");
                end(&shared, "WhatsApp banned this number temporarily").await;
            }
            WaEvent::ClientOutdated(_) => {
                tracing::error!(instance_id = %id, "WhatsApp refuses this client version: set ZAPGATE_WA_VERSION to a current WhatsApp Web version");
                end(
                    &shared,
                    "WhatsApp refuses this client version (ZAPGATE_WA_VERSION)",
                )
                .await;
            }
            WaEvent::PairingQrCodesExhausted(_) => {
                tracing::info!(instance_id = %id, "QR codes expired unscanned");
                end(&shared, "QR codes expired unscanned").await;
            }
            WaEvent::ConnectFailure(failure) => {
                let reason = failure
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", failure.reason));
                tracing::warn!(instance_id = %id, %reason, "WhatsApp refused the connection");
                shared.fail_login(format!("WhatsApp refused the connection: {reason}"));
            }
            WaEvent::GroupUpdate(update) => {
                if let Some(change) = super::groups::group_change(update) {
                    shared.emit(Event::Group(change)).await;
                }
            }
            WaEvent::ContactUpdate(update) => {
                if let Some(contact) = super::chat_state::contact_of(update) {
                    let mut book = shared
                        .address_book
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if book.len() < super::chat_state::ADDRESS_BOOK_LIMIT
                        || book.contains_key(&contact.jid.user)
                    {
                        book.insert(contact.jid.user.clone(), contact);
                    }
                }
            }
            WaEvent::LabelEditUpdate(update) => {
                if let Some(change) = labels::label_edit(update) {
                    shared.emit(Event::Label(change)).await;
                }
            }
            WaEvent::LabelAssociationUpdate(update) => {
                if let Some(change) = labels::label_association(update) {
                    shared.emit(Event::Label(change)).await;
                }
            }
            WaEvent::HistorySync(sync) => {
                if let Some(client) = client.upgrade() {
                    on_history(&shared, &client, sync).await;
                }
            }
            WaEvent::Receipt(receipt) => {
                let chat = inbound::jid_of(&receipt.source.chat);
                for (message_id, status) in inbound::map_receipt(receipt) {
                    let chat = chat.clone();
                    shared
                        .emit(Event::Receipt {
                            message_id,
                            status,
                            chat,
                        })
                        .await;
                }
            }
            _ => {}
        }
    }
}

/// A history sync while an import waits: its messages in the window (of
/// chats the settings deliver) go to the history sink; the requests it
/// answers are marked. Without a waiting import it is dropped.
async fn on_history(shared: &Shared, client: &Client, sync: &LazyHistorySync) {
    let Some((since, sink)) = shared.with_want(|w| (w.since_secs, w.sink.clone())) else {
        return;
    };
    let Some(decoded) = sync.get() else {
        tracing::warn!(instance_id = %shared.instance_id, "a history sync could not be decoded");
        return;
    };
    let own = client.pn().map(|j| j.to_non_ad());
    let mut harvest = history::harvest(decoded, own.as_ref(), since);
    let settings = shared.settings();
    harvest.messages.retain(|m| settings.delivers(&m.chat));
    let stored = if harvest.messages.is_empty() {
        0
    } else {
        match sink
            .store_history(&shared.instance_id, &harvest.messages)
            .await
        {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(instance_id = %shared.instance_id, error = %err, "could not store history");
                0
            }
        }
    };
    tracing::info!(instance_id = %shared.instance_id, sync_type = sync.sync_type(), conversations = decoded.conversations.len(), stored, "history sync kept for an import");
    shared.with_want(|w| {
        w.answer(sync.peer_data_request_session_id(), &harvest.chats);
        w.stored += stored;
        w.next.extend(harvest.more);
        w.last_sync = Some(tokio::time::Instant::now());
    });
    shared.history_seen.notify_waiters();
}

/// The session cannot go on: report it stopped, keeping the phone number of
/// a linked session so a later `connect` can resume it.
async fn end(shared: &Shared, reason: &str) {
    shared.fail_login(reason.to_owned());
    let number = shared.status().number_jid;
    shared
        .set_status(ConnectionState::Disconnected, number)
        .await;
    (shared.on_ended)(Ended::Stopped);
}

/// The phone numbers the client knows for the lids a message names.
async fn phone_numbers(client: &Client, message: &InboundMessage) -> HashMap<Jid, Jid> {
    let mut found = HashMap::new();
    for lid in [&message.chat, &message.sender]
        .into_iter()
        .filter(|j| j.is_lid())
    {
        let Ok(wa_lid) = outbound::wa_jid(lid) else {
            continue;
        };
        if let Ok(Some(entry)) = client.get_lid_pn_entry(&wa_lid).await {
            found.insert(lid.clone(), Jid::user(&entry.phone_number));
        }
    }
    found
}

/// Stores each inbound message before WhatsApp gets its acknowledgement.
struct DurableInbound {
    shared: Arc<Shared>,
}

#[async_trait]
impl InboundDurabilityHook for DurableInbound {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[WaInbound],
    ) -> whatsapp_rust::anyhow::Result<()> {
        let settings = self.shared.settings();
        let mut reads = Vec::new();
        for item in batch {
            if let Some(encrypted) = polls::encrypted_vote(&item.message) {
                let vote = match polls::decrypt(&client, &item.info, &encrypted).await {
                    Some(hashes) => polls::vote_of(&item.info, &encrypted, hashes),
                    None => None,
                };
                if let Some(vote) = vote.filter(|v| settings.delivers(&v.chat)) {
                    self.shared
                        .sink
                        .deliver(WhatsAppEvent {
                            instance_id: self.shared.instance_id.clone(),
                            event: Event::PollVote(vote),
                        })
                        .await
                        .map_err(|err| {
                            whatsapp_rust::anyhow::anyhow!("storing a poll vote: {err}")
                        })?;
                }
                continue;
            }
            let Some(mapped) = inbound::map_message(&item.message, &item.info) else {
                continue;
            };
            // Dropped before any download; returning still acknowledges it.
            if !settings.delivers(&mapped.message.chat) {
                continue;
            }
            let mut message = mapped.message;
            let phones = phone_numbers(&client, &message).await;
            inbound::with_phone_number(&mut message, |lid| phones.get(lid).cloned());
            if let Some(pending) = mapped.media {
                let downloads = &self.shared.downloads;
                let declared = pending.source.file_length();
                let source = pending.source.as_ref();
                let fetched = downloads
                    .fetch(declared, |buffer| async {
                        let writer = WaBuffer(buffer);
                        let done = client.download_to_writer(source, writer).await;
                        done.map(|w| w.0).map_err(|e| e.to_string())
                    })
                    .await;
                match fetched {
                    Ok(data) => {
                        message.media = Some(Media {
                            kind: pending.kind,
                            mimetype: pending.mimetype,
                            file_name: pending.file_name,
                            data: data.into(),
                        });
                    }
                    // Retrying cannot help an expired, purged or oversized
                    // file; the message still goes through, saying why its
                    // media is missing.
                    Err(skipped) => {
                        tracing::warn!(
                            instance_id = %self.shared.instance_id,
                            message_id = %message.id,
                            ?skipped,
                            limit = downloads.limit(),
                            "inbound media not downloaded; delivered without it"
                        );
                        if message.extra.is_none() {
                            message.extra = Some(zapgate_core::whatsapp::Extra::Unsupported {
                                kind: skipped.note(pending.kind, downloads.limit()),
                            });
                        }
                    }
                }
            }
            if message.chat.is_group() {
                message.group_subject = group_subject(&self.shared, &client, &message.chat).await;
            }
            let read = settings.reads(&message);
            // An error here withholds the acknowledgement: WhatsApp delivers
            // the message again later.
            self.shared
                .sink
                .deliver(WhatsAppEvent {
                    instance_id: self.shared.instance_id.clone(),
                    event: Event::Message(Box::new(message)),
                })
                .await
                .map_err(|err| {
                    whatsapp_rust::anyhow::anyhow!("storing an inbound message: {err}")
                })?;
            if read {
                reads.push(inbound::read_mark(&item.info));
            }
        }
        if !reads.is_empty() {
            // Off the acknowledgement's path: a slow or failed receipt must
            // not make WhatsApp deliver stored messages again.
            let instance_id = self.shared.instance_id.clone();
            tokio::spawn(async move {
                for (chat, sender, id) in reads {
                    if let Err(err) = client.mark_as_read(&chat, sender.as_ref(), &[&id]).await {
                        tracing::warn!(%instance_id, message_id = %id, error = %err, "could not mark a message read");
                    }
                }
            });
        }
        Ok(())
    }
}

/// The bounded buffer as whatsapp-rust's download sink.
pub(super) struct WaBuffer(pub(super) CappedBuffer);

impl std::io::Write for WaBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl std::io::Seek for WaBuffer {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl DownloadWriter for WaBuffer {
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.0.truncate(len);
        Ok(())
    }
}
