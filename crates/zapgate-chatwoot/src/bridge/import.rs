//! History import: the messages the instance holds for the last N days (its
//! message store, fed by live traffic and by WhatsApp's history) written
//! into the inbox chat by chat, in JID order, each chat oldest first.
//!
//! ```text
//! POST /api/chatwoot/import | first connection ─► chatwoot_imports row (running)
//!   runner: message store [since, until) ─► per chat: link (never reopened)
//!           ─► skip what is linked or already in the conversation (WAID:)
//!           ─► post, paced per conversation ─► message link ─► progress row
//! ```
//! The row is the import's only state: a runner that finds it no longer
//! running (cancelled, deactivated) stops; a process that finds it running
//! past its holder's lease takes it over after the last chat finished.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use tokio::time::Instant;
use zapgate_core::{
    Error, Result,
    chatwoot::Integration,
    chatwoot_import::{ImportProgress, ImportState},
    event_log::EventStore,
    jid::{BROADCAST_SERVER, Jid},
    jobs::ChatLink,
    message_store::StoredMessage,
    time::now_ms,
    whatsapp::{Extra, HistoryAnchor, HistoryRequest},
};

use super::{
    Bridge, Failure,
    identity::ChatIdentity,
    inbound::{MediaBytes, posted},
    payload::{InboundJob, media_job},
};
use crate::client::{ChatwootClient, ChatwootError};

/// Messages one import reads at most.
const MAX_IMPORT_MESSAGES: u32 = 200_000;
/// Pages of 20 read back in a conversation for messages already there.
const MAX_SCAN_PAGES: usize = 25;
/// Times one chat is tried again after Chatwoot failed it.
const CHAT_ATTEMPTS: u32 = 5;
/// Progress is written at least this often within a chat.
const PROGRESS_EVERY: u64 = 25;
pub const IMPORT_RUNNING: &str = "an import is already running for this instance";
pub const NO_IMPORT_RUNNING: &str = "no import running for this instance";
const DEACTIVATED: &str = "the integration was deactivated or replaced";

impl Bridge {
    /// Where imports read history (the message store), set once at start.
    pub fn attach_history(&self, history: Arc<dyn EventStore>) {
        if self.history.set(history).is_err() {
            tracing::warn!("the bridge's message store was already attached");
        }
    }

    /// Starts an import of `days` days (and the contacts) into the
    /// integration's inbox; `409` while one runs.
    pub async fn start_import(
        self: &Arc<Self>,
        integration: &Integration,
        days: u32,
        contacts: bool,
    ) -> Result<ImportProgress> {
        if let Some(current) = self.store.find_import(&integration.instance_id).await?
            && current.state == ImportState::Running
            && current.integration_id == integration.id
        {
            return Err(Error::conflict(IMPORT_RUNNING));
        }
        let now = now_ms();
        let now_secs = now / 1000;
        let progress = ImportProgress {
            instance_id: integration.instance_id.clone(),
            integration_id: integration.id.clone(),
            state: ImportState::Running,
            days,
            contacts,
            since_secs: now_secs - i64::from(days) * 86_400,
            // This second included: what comes later is the live bridge's.
            until_secs: now_secs + 1,
            chats: 0,
            last_chat: None,
            messages_done: 0,
            messages_total: 0,
            started_at_ms: now,
            finished_at_ms: None,
            error: None,
            locked_until_ms: now + self.lease_ms(),
        };
        self.store.save_import(&progress).await?;
        tracing::info!(instance_id = %progress.instance_id, days, contacts, "history import started");
        self.spawn_import(progress.clone());
        Ok(progress)
    }

    /// Cancels the running import; `404` when none runs.
    pub async fn cancel_import(&self, integration: &Integration) -> Result<ImportProgress> {
        let mut progress = self
            .store
            .find_import(&integration.instance_id)
            .await?
            .filter(|p| p.state == ImportState::Running && p.integration_id == integration.id)
            .ok_or_else(|| Error::not_found(NO_IMPORT_RUNNING))?;
        progress.state = ImportState::Cancelled;
        progress.finished_at_ms = Some(now_ms());
        if !self.store.advance_import(&progress).await? {
            return Err(Error::not_found(NO_IMPORT_RUNNING));
        }
        if let Some(flag) = self.import_flags().get(&integration.instance_id) {
            flag.store(true, Ordering::SeqCst);
        }
        tracing::info!(instance_id = %integration.instance_id, "history import cancelled");
        Ok(progress)
    }

    /// The first connection after an activation with `importMessagesDays`
    /// starts its import (once per integration).
    pub async fn import_on_connect(self: &Arc<Self>, integration: &Integration) -> Result<()> {
        let days = integration.options.import_messages_days;
        if days == 0 {
            return Ok(());
        }
        let current = self.store.find_import(&integration.instance_id).await?;
        if current.is_some_and(|c| c.integration_id == integration.id) {
            return Ok(());
        }
        self.start_import(integration, days, integration.options.import_contacts)
            .await
            .map(|_| ())
    }

    /// Takes over imports whose process stopped, until shutdown.
    pub(super) async fn watch_imports(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            match self.store.stale_imports(now_ms()).await {
                Ok(stale) => {
                    for progress in stale {
                        let until = now_ms() + self.lease_ms();
                        match self
                            .store
                            .claim_import(&progress.instance_id, now_ms(), until)
                            .await
                        {
                            Ok(true) => {
                                tracing::info!(instance_id = %progress.instance_id, after = ?progress.last_chat, "history import resumed");
                                self.spawn_import(progress);
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "could not claim an import"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look for imports to resume"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(self.config.lease) => {}
            }
        }
    }

    /// Cancelled, or this process is shutting down (the row stays running
    /// and another start takes it over once the lease ends).
    fn import_stopped(&self, cancel: &AtomicBool) -> bool {
        cancel.load(Ordering::SeqCst) || *self.stop.borrow()
    }

    /// Sleeps `pause`, or less when shutdown comes first.
    async fn import_pause(&self, pause: Duration) {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            () = tokio::time::sleep(pause) => {}
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn import_flags(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.imports.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_import(self: &Arc<Self>, progress: ImportProgress) {
        let cancel = Arc::new(AtomicBool::new(false));
        if let Some(previous) = self
            .import_flags()
            .insert(progress.instance_id.clone(), cancel.clone())
        {
            previous.store(true, Ordering::SeqCst);
        }
        let bridge = self.clone();
        tokio::spawn(async move {
            let instance_id = progress.instance_id.clone();
            bridge.run_import(progress, &cancel).await;
            let mut flags = bridge.import_flags();
            if flags
                .get(&instance_id)
                .is_some_and(|f| Arc::ptr_eq(f, &cancel))
            {
                flags.remove(&instance_id);
            }
        });
    }

    async fn run_import(&self, mut progress: ImportProgress, cancel: &AtomicBool) {
        let outcome = self.import_all(&mut progress, cancel).await;
        let (state, error) = match outcome {
            Ok(true) => (ImportState::Done, None),
            // Cancelled or no longer ours: the row says so already.
            Ok(false) => return,
            Err(error) => (ImportState::Failed, Some(error)),
        };
        progress.state = state;
        progress.error = error.clone();
        progress.finished_at_ms = Some(now_ms());
        match self.store.advance_import(&progress).await {
            Ok(_) => {
                tracing::info!(instance_id = %progress.instance_id, state = state.as_str(), messages = progress.messages_done, error = error.as_deref().unwrap_or(""), "history import finished")
            }
            Err(e) => tracing::warn!(error = %e, "could not record the end of an import"),
        }
    }

    /// `Ok(true)` when every chat is done, `Ok(false)` when it stopped
    /// because it is no longer running, `Err` with why it failed.
    async fn import_all(
        &self,
        progress: &mut ImportProgress,
        cancel: &AtomicBool,
    ) -> std::result::Result<bool, String> {
        let internal = |e: Error| {
            tracing::warn!(error = %e, "history import failed on an internal error");
            super::INTERNAL_FAILURE.to_owned()
        };
        let integration = match self
            .store
            .find_integration(&progress.instance_id)
            .await
            .map_err(internal)?
        {
            Some(i) if i.id == progress.integration_id => i,
            _ => return Err(DEACTIVATED.to_owned()),
        };
        let history = self
            .history
            .get()
            .ok_or_else(|| "the message store is not available".to_owned())?;
        let from = if progress.contacts {
            0
        } else {
            progress.since_secs
        };
        let read_all = || {
            history.messages_between(
                &progress.instance_id,
                from,
                progress.until_secs,
                MAX_IMPORT_MESSAGES + 1,
            )
        };
        let mut read = read_all().await.map_err(internal)?;
        // A fresh import first has the provider fetch the window's history
        // the store lacks (the web provider asks the phone; the sandbox's
        // comes from its fixture), then reads again.
        if progress.last_chat.is_none()
            && progress.days > 0
            && self.fetch_history(&integration, progress, &read).await > 0
        {
            read = read_all().await.map_err(internal)?;
        }
        if read.len() > MAX_IMPORT_MESSAGES as usize {
            return Err(format!(
                "more than {MAX_IMPORT_MESSAGES} messages to read; import fewer days"
            ));
        }
        let plan = Plan::of(&integration, progress, read);
        progress.chats = plan.chats.len() as u64;
        progress.messages_total = plan.chats.iter().map(|(_, m)| m.len() as u64).sum();
        progress.messages_done = plan
            .chats
            .iter()
            .filter(|(chat, _)| progress.last_chat.as_ref().is_some_and(|l| chat <= l))
            .map(|(_, m)| m.len() as u64)
            .sum();
        if !self.advance(progress).await.map_err(internal)? {
            return Ok(false);
        }
        let client = self.client(&integration);
        if progress.contacts && progress.last_chat.is_none() {
            self.import_contacts(&client, &integration, &plan.contacts_only)
                .await;
        }
        for (chat, messages) in &plan.chats {
            if progress.last_chat.as_ref().is_some_and(|l| chat <= l) {
                continue;
            }
            let mut attempt = 0;
            let outcome = loop {
                match self
                    .import_chat(&client, &integration, chat, messages, progress, cancel)
                    .await
                {
                    Err(Failure::Transient { error, after }) if attempt + 1 < CHAT_ATTEMPTS => {
                        attempt += 1;
                        tracing::info!(instance_id = %progress.instance_id, chat = %chat, error = %error, "history import: chat failed, trying again");
                        self.import_pause(after.unwrap_or(self.config.retry_base * attempt))
                            .await;
                        if self.import_stopped(cancel) {
                            return Ok(false);
                        }
                    }
                    other => break other,
                }
            };
            let counts = match outcome {
                Ok(counts) => counts,
                Err(Failure::Transient { error, .. })
                | Err(Failure::Refused { error })
                | Err(Failure::Rejected { error })
                | Err(Failure::Wait { reason: error, .. }) => return Err(error),
                Err(Failure::Orphaned) => return Err(DEACTIVATED.to_owned()),
            };
            let Some(counts) = counts else {
                return Ok(false);
            };
            tracing::info!(
                instance_id = %progress.instance_id,
                chat = %chat,
                posted = counts.posted,
                already = counts.already,
                skipped = counts.skipped,
                reason = counts.reason,
                "history import: chat done"
            );
            progress.last_chat = Some(chat.clone());
            if !self.advance(progress).await.map_err(internal)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Asks the provider for the history of the import's window, anchored
    /// at each routed chat's oldest stored message in it; returns how many
    /// messages it stored. Best effort: a provider that cannot leaves the
    /// import with what the store holds.
    async fn fetch_history(
        &self,
        integration: &Integration,
        progress: &ImportProgress,
        read: &[StoredMessage],
    ) -> usize {
        let Ok(whatsapp) = self.whatsapp() else {
            return 0;
        };
        let request = HistoryRequest {
            since_secs: progress.since_secs,
            anchors: history_anchors(integration, progress.since_secs, read),
            deadline: self.config.history_fetch,
        };
        match whatsapp
            .fetch_history(&progress.instance_id, &request)
            .await
        {
            Ok(fetched) => {
                if fetched.requests > 0 || fetched.stored > 0 {
                    tracing::info!(instance_id = %progress.instance_id, requests = fetched.requests, answered = fetched.answered, stored = fetched.stored, "history import: history fetched from the phone");
                }
                fetched.stored
            }
            Err(e) => {
                tracing::warn!(instance_id = %progress.instance_id, error = %e, "history import: could not fetch history from the phone; importing what is stored");
                0
            }
        }
    }

    /// Writes the progress and extends the lease.
    async fn advance(&self, progress: &mut ImportProgress) -> Result<bool> {
        progress.locked_until_ms = now_ms() + self.lease_ms();
        self.store.advance_import(progress).await
    }

    /// A contact for every person with no message in the window (those with
    /// one get theirs with their conversation). Best effort: a refusal is
    /// logged and the import goes on.
    async fn import_contacts(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        chats: &[(String, StoredMessage)],
    ) {
        let mut created = 0;
        for (chat, message) in chats {
            let Ok(jid) = Jid::parse(chat) else { continue };
            let identity = ChatIdentity::of(&jid, None);
            match self
                .store
                .find_chats(&integration.id, &identity.all_jids())
                .await
            {
                Ok(found) if !found.is_empty() => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "history import: could not read chat links");
                    continue;
                }
            }
            let job = job_of(message, None);
            match self
                .find_or_create_contact(client, integration, &identity, &job, &identity.chat_jid)
                .await
            {
                Ok(_) => created += 1,
                Err(e) => {
                    tracing::info!(instance_id = %integration.instance_id, chat = %chat, error = ?e, "history import: contact not created")
                }
            }
        }
        tracing::info!(instance_id = %integration.instance_id, contacts = created, "history import: contacts done");
    }

    /// One chat's messages, oldest first. `Ok(None)` when the import
    /// stopped running meanwhile.
    async fn import_chat(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        chat: &str,
        messages: &[StoredMessage],
        progress: &mut ImportProgress,
        cancel: &AtomicBool,
    ) -> std::result::Result<Option<ChatCounts>, Failure> {
        let done_before = progress.messages_done;
        let mut counts = ChatCounts::default();
        let mut pending = Vec::new();
        for message in messages {
            if self
                .store
                .find_message_by_wa(&integration.id, &message.id)
                .await?
                .is_some()
            {
                counts.already += 1;
            } else {
                pending.push(message);
            }
        }
        progress.messages_done = done_before + counts.already;
        let Some(first) = pending.first() else {
            return Ok(Some(counts));
        };
        let jid = Jid::parse(chat).map_err(|e| Failure::Rejected {
            error: e.to_string(),
        })?;
        let identity = ChatIdentity::of(&jid, None);
        let Some(link) = self
            .import_link(client, integration, &identity, first)
            .await?
        else {
            // Posting the contact's messages would reopen it.
            counts.skipped = pending.len() as u64;
            counts.reason = "conversation resolved";
            progress.messages_done = done_before + messages.len() as u64;
            return Ok(Some(counts));
        };
        let mut there = self.posted_in(client, link.conversation_id).await?;
        let mut pace = Pace::new(self.config.import_per_minute);
        for message in pending {
            if self.import_stopped(cancel) {
                return Ok(None);
            }
            let source_id = format!("WAID:{}", message.id);
            let chatwoot_id = match there.remove(&source_id) {
                Some(id) => {
                    counts.already += 1;
                    id
                }
                None => {
                    pace.wait().await;
                    let Some(id) = self
                        .post_history(client, integration, &link, message, source_id, cancel)
                        .await?
                    else {
                        return Ok(None);
                    };
                    counts.posted += 1;
                    id
                }
            };
            let job = job_of(message, None);
            self.store
                .save_message_link(&posted(integration, &job, &link, chatwoot_id))
                .await?;
            progress.messages_done += 1;
            if (counts.posted + counts.already) % PROGRESS_EVERY == 0
                && !self.advance(progress).await?
            {
                return Ok(None);
            }
        }
        Ok(Some(counts))
    }

    /// The chat's conversation, created when there is none; `None` when
    /// it is resolved (an incoming message would reopen it).
    async fn import_link(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        identity: &ChatIdentity,
        first: &StoredMessage,
    ) -> std::result::Result<Option<ChatLink>, Failure> {
        let jids = identity.all_jids();
        let stored = self.store.find_chats(&integration.id, &jids).await?;
        let link = match jids
            .iter()
            .find_map(|jid| stored.iter().find(|l| &l.chat_jid == jid))
        {
            Some(found) => found.clone(),
            None => {
                let job = job_of(first, None);
                let link = self
                    .find_or_create_link(client, integration, identity, &job)
                    .await?;
                for jid in &jids {
                    self.store
                        .save_chat(&ChatLink {
                            chat_jid: jid.clone(),
                            ..link.clone()
                        })
                        .await?;
                }
                link
            }
        };
        Ok((link.conversation_status != "resolved").then_some(link))
    }

    /// The `WAID:` messages already in the conversation (newest pages
    /// first, bounded), by source id.
    async fn posted_in(
        &self,
        client: &ChatwootClient,
        conversation_id: i64,
    ) -> std::result::Result<HashMap<String, i64>, Failure> {
        let mut found = HashMap::new();
        let mut page = client.latest_messages(conversation_id).await?;
        for _ in 0..MAX_SCAN_PAGES {
            let Some(oldest) = page.iter().map(|m| m.id).min() else {
                break;
            };
            for m in &page {
                if let Some(source_id) = m.source_id.as_ref().filter(|s| s.starts_with("WAID:")) {
                    found.insert(source_id.clone(), m.id);
                }
            }
            page = client.messages_before(conversation_id, oldest).await?;
        }
        Ok(found)
    }

    /// Posts one message of the history: as the live bridge would, with
    /// its media fetched again from WhatsApp, and WhatsApp's time in
    /// `external_created_at` (Chatwoot stamps its own `created_at`).
    async fn post_history(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        link: &ChatLink,
        message: &StoredMessage,
        source_id: String,
        cancel: &AtomicBool,
    ) -> std::result::Result<Option<i64>, Failure> {
        let media = match message.media.as_ref().filter(|m| m.downloadable()) {
            Some(media) => match self
                .whatsapp()?
                .download_media(&integration.instance_id, media)
                .await
            {
                Ok(data) => Some(zapgate_core::whatsapp::Media {
                    kind: media.kind,
                    mimetype: media.mimetype.clone(),
                    file_name: media.file_name.clone(),
                    data: data.into(),
                }),
                Err(Error::NotConnected) => {
                    return Err(Failure::Transient {
                        error: "WhatsApp is not connected: media cannot be fetched".to_owned(),
                        after: Some(self.config.wait_poll),
                    });
                }
                Err(e) => {
                    tracing::info!(instance_id = %integration.instance_id, message_id = %message.id, error = %e, "history import: media not available");
                    None
                }
            },
            None => None,
        };
        let missing_media = message.media.is_some() && media.is_none();
        let job = job_of(message, media.as_ref());
        let job = match (missing_media, &job.extra) {
            (true, None) => InboundJob {
                extra: Some(Extra::Unsupported {
                    kind: format!(
                        "{} no longer available on WhatsApp",
                        message.media.as_ref().map_or("media", |m| m.kind.as_str())
                    ),
                }),
                ..job
            },
            _ => job,
        };
        let fetched = media.map(|m| m.data.to_vec());
        let mut new = self
            .new_message(MediaBytes::Fetched(fetched), integration, &job, source_id)
            .await?;
        let mut attributes = new.content_attributes.take().unwrap_or_else(|| json!({}));
        attributes["external_created_at"] = json!(message.timestamp);
        new.content_attributes = Some(attributes);
        let mut flooded = 0;
        loop {
            match client
                .create_message(link.conversation_id, new.clone())
                .await
            {
                Ok(created) => return Ok(Some(created.id)),
                // Live traffic shares the conversation's budget.
                Err(ChatwootError::Status {
                    status: 422, body, ..
                }) if body.contains("Too many messages") && flooded < 2 => {
                    flooded += 1;
                    self.import_pause(Duration::from_secs(60)).await;
                    if self.import_stopped(cancel) {
                        return Ok(None);
                    }
                }
                Err(ChatwootError::Status { status: 404, .. }) => {
                    self.store
                        .forget_conversation(&integration.id, link.conversation_id)
                        .await?;
                    return Err(Failure::Transient {
                        error: format!("conversation {} no longer exists", link.conversation_id),
                        after: Some(Duration::ZERO),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[derive(Debug, Default)]
struct ChatCounts {
    posted: u64,
    already: u64,
    skipped: u64,
    reason: &'static str,
}

/// What an import writes: chats in JID order with their messages oldest
/// first, and (for `importContacts`) the people with no message in the window.
struct Plan {
    chats: Vec<(String, Vec<StoredMessage>)>,
    contacts_only: Vec<(String, StoredMessage)>,
}

/// Where on-demand history requests reach back from: each routed chat's
/// oldest stored message in the window (`read` is in chat order, oldest
/// first). A chat with nothing stored has no anchor.
fn history_anchors(
    integration: &Integration,
    since_secs: i64,
    read: &[StoredMessage],
) -> Vec<HistoryAnchor> {
    let mut anchors = Vec::new();
    let mut last_chat: Option<&str> = None;
    for message in read {
        // A chat's oldest message only; one from before the window means
        // the store reaches back far enough already.
        if last_chat == Some(message.chat.as_str()) {
            continue;
        }
        last_chat = Some(&message.chat);
        if message.timestamp < since_secs {
            continue;
        }
        let Ok(chat) = Jid::parse(&message.chat) else {
            continue;
        };
        if !routed(integration, &chat) {
            continue;
        }
        anchors.push(HistoryAnchor {
            chat,
            id: message.id.clone(),
            from_me: message.from_me,
            timestamp: message.timestamp,
        });
    }
    anchors
}

impl Plan {
    fn of(integration: &Integration, progress: &ImportProgress, read: Vec<StoredMessage>) -> Self {
        let mut chats: Vec<(String, Vec<StoredMessage>)> = Vec::new();
        let mut people = HashSet::new();
        let mut contacts_only = Vec::new();
        for message in read {
            let Ok(jid) = Jid::parse(&message.chat) else {
                continue;
            };
            if !routed(integration, &jid) {
                continue;
            }
            let in_window = message.timestamp >= progress.since_secs && progress.days > 0;
            if !in_window {
                if !jid.is_group() && people.insert(message.chat.clone()) {
                    contacts_only.push((message.chat.clone(), message));
                }
                continue;
            }
            // Deleted for everyone: nothing left to show.
            if message.revoked_at_ms.is_some() {
                continue;
            }
            match chats.last_mut() {
                Some((chat, list)) if *chat == message.chat => list.push(message),
                _ => chats.push((message.chat.clone(), vec![message])),
            }
        }
        let with_messages: HashSet<&str> = chats.iter().map(|(c, _)| c.as_str()).collect();
        contacts_only.retain(|(chat, _)| !with_messages.contains(chat.as_str()));
        Self {
            chats,
            contacts_only,
        }
    }
}

/// Whether the live bridge would route this chat.
fn routed(integration: &Integration, chat: &Jid) -> bool {
    chat.server != BROADCAST_SERVER
        && !(chat.is_group() && integration.flags.ignore_groups)
        && !integration.options.ignores(chat)
}

/// A stored message as the live bridge's job.
fn job_of(m: &StoredMessage, media: Option<&zapgate_core::whatsapp::Media>) -> InboundJob {
    InboundJob {
        id: m.id.clone(),
        chat: m.chat.clone(),
        sender: m.sender.clone(),
        sender_lid: None,
        push_name: None,
        from_me: m.from_me,
        group_subject: None,
        text: m.text.clone(),
        media: media.map(media_job),
        quoted_id: m.quoted_id.clone(),
        extra: m.extra.clone(),
        timestamp: m.timestamp,
    }
}

/// At most `per_minute` posts in any minute (Chatwoot refuses a
/// conversation's 201st message within a minute).
struct Pace {
    per_minute: usize,
    sent: VecDeque<Instant>,
}

impl Pace {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1) as usize,
            sent: VecDeque::new(),
        }
    }

    async fn wait(&mut self) {
        let pause = self.next(Instant::now());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }

    /// How long a post at `now` must wait, counting it as sent then.
    fn next(&mut self, now: Instant) -> Duration {
        const MINUTE: Duration = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            self.sent.pop_front();
        }
        let pause = match self.sent.len() >= self.per_minute {
            true => self.sent.pop_front().map_or(Duration::ZERO, |oldest| {
                MINUTE.saturating_sub(now.saturating_duration_since(oldest))
            }),
            false => Duration::ZERO,
        };
        self.sent.push_back(now + pause);
        pause
    }
}

#[cfg(test)]
mod tests {
    use zapgate_core::{
        chatwoot::{ChatwootFlags, ChatwootOptions, IntegrationStatus},
        message_store::MessageStatus,
        token::Token,
    };

    use super::*;

    fn integration(flags: ChatwootFlags) -> Integration {
        Integration {
            id: "int_1".into(),
            instance_id: "ins_1".into(),
            base_url: "https://chatwoot.example".into(),
            account_id: 1,
            api_token: Token::new("t"),
            inbox_id: 1,
            inbox_name: "suporte".into(),
            inbox_identifier: None,
            webhook_secret: Token::new("s"),
            inbox_secret: None,
            webhook_url: String::new(),
            status: IntegrationStatus::Active,
            last_error: String::new(),
            flags,
            options: ChatwootOptions::default(),
            created_at_ms: 0,
        }
    }

    fn stored(chat: &str, id: &str, from_me: bool, timestamp: i64) -> StoredMessage {
        StoredMessage {
            instance_id: "ins_1".into(),
            id: id.into(),
            chat: chat.into(),
            sender: chat.into(),
            from_me,
            kind: "text".into(),
            text: Some("oi".into()),
            media: None,
            extra: None,
            quoted_id: None,
            source: None,
            status: MessageStatus::Read,
            timestamp,
            edited_at_ms: None,
            revoked_at_ms: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn history_is_asked_from_each_routed_chats_oldest_message_in_the_window() {
        const SINCE: i64 = 1_800_000_000;
        let maria = "5511988887777@s.whatsapp.net";
        let joao = "5511977776666@s.whatsapp.net";
        let group = "120363041234567890@g.us";
        // As the store reads them: by chat, oldest first.
        let read = [
            stored(group, "G1", false, SINCE + 5),
            stored(maria, "M1", true, SINCE + 10),
            stored(maria, "M2", false, SINCE + 20),
            // Reaches back before the window already: nothing to ask.
            stored(joao, "J0", false, SINCE - 10),
            stored(joao, "J1", false, SINCE + 30),
            stored("status@broadcast", "S1", false, SINCE + 40),
        ];
        let anchors = history_anchors(&integration(ChatwootFlags::default()), SINCE, &read);
        let got: Vec<(String, &str, bool, i64)> = anchors
            .iter()
            .map(|a| (a.chat.to_string(), a.id.as_str(), a.from_me, a.timestamp))
            .collect();
        assert_eq!(
            got,
            [
                (group.to_owned(), "G1", false, SINCE + 5),
                (maria.to_owned(), "M1", true, SINCE + 10),
            ]
        );
        // Groups the integration ignores are not asked about.
        let no_groups = ChatwootFlags {
            ignore_groups: true,
            ..ChatwootFlags::default()
        };
        let anchors = history_anchors(&integration(no_groups), SINCE, &read);
        assert_eq!(anchors.len(), 1);
        assert_eq!(anchors[0].id, "M1");
    }

    #[test]
    fn the_pace_keeps_a_conversation_under_its_minute_budget() {
        let mut pace = Pace::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(pace.next(t0), Duration::ZERO);
        }
        // The fourth within the minute waits for the first to age out.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(pace.next(t1), Duration::from_secs(50));
        // A minute after the first ones, there is room again.
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(pace.next(t2), Duration::ZERO);
        assert_eq!(pace.next(t2), Duration::ZERO);
        assert!(pace.next(t2) > Duration::ZERO);
    }
}
