//! The bot contact (`botContact`): one contact per integration, named after
//! the instance (or `botName`), whose conversation in the inbox shows the
//! instance's QR code and connection changes and takes the agents' commands.
//! It is made when it first has something to post. What it posts comes from
//! the bus (`BridgeSink`: session changes, `QrReady`) as `BotPost` jobs;
//! agents' commands come by the webhook as `BotCommand` jobs (run where the
//! WhatsApp session runs). Nothing in that conversation is ever sent to
//! WhatsApp: the webhook recognises it by the contact's identifier before
//! anything is queued, and `recipient` refuses it.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use zapgate_core::{
    chatwoot::Integration,
    instance::{ConnectionState, SessionStatus},
    jid::parse_phone_number,
    jobs::NewJob,
    time::{now_ms, rfc3339},
    whatsapp::{LoginCode, LoginMethod},
};

use super::{
    Bridge, Failure,
    payload::{INBOUND, JobPayload, OUTBOUND},
};
use crate::client::{Attachment, ChatwootError, NewContact, NewMessage};

/// The bot contact's `identifier` (and contact-inbox source id): never a
/// WhatsApp JID, so nothing can route it to WhatsApp.
pub(crate) fn bot_identifier(integration: &Integration) -> String {
    format!("zapgate-bot:{}", integration.instance_id)
}

pub(crate) const HELP: &str = "Commands: /status (the connection), /connect (a QR code to scan), \
/connect <number> (a pairing code for that phone), /disconnect, /logout (unlinks the phone), /help";

/// How long `/connect` waits for WhatsApp's first code.
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// What this process remembers of each integration's bot: its conversation
/// (saves the lookups), the QR message to replace and the last state posted.
#[derive(Default)]
pub(crate) struct BotMemory(Mutex<HashMap<String, BotSeen>>);

#[derive(Default, Clone)]
struct BotSeen {
    conversation_id: Option<i64>,
    qr_message_id: Option<i64>,
    state: Option<ConnectionState>,
}

impl BotMemory {
    fn with<R>(&self, integration_id: &str, f: impl FnOnce(&mut BotSeen) -> R) -> R {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(integration_id.to_owned()).or_default())
    }
}

/// A line for a connection change; `None` for the passing `connecting`.
fn state_line(status: &SessionStatus) -> Option<String> {
    let number = status
        .number_jid
        .as_deref()
        .and_then(|j| j.split('@').next())
        .map(|digits| format!(" as +{digits}"))
        .unwrap_or_default();
    Some(match status.state {
        ConnectionState::Connected => format!("✅ WhatsApp connected{number}."),
        ConnectionState::Disconnected => {
            "⚠️ WhatsApp disconnected. Type /connect to link the phone again.".to_owned()
        }
        ConnectionState::LoggedOut => {
            "⛔ WhatsApp logged out: the phone is unlinked. Type /connect to link one.".to_owned()
        }
        ConnectionState::Connecting => return None,
    })
}

impl Bridge {
    /// A session change from the bus: queued for the bot when it differs
    /// from the last one this process posted.
    pub(crate) fn bot_state_job(
        &self,
        integration: &Integration,
        status: &SessionStatus,
    ) -> Option<NewJob> {
        if !integration.options.bot_contact {
            return None;
        }
        let text = state_line(status)?;
        let changed = self.bots.with(&integration.id, |seen| {
            let changed = seen.state != Some(status.state);
            seen.state = Some(status.state);
            changed
        });
        changed
            .then(|| bot_post_job(integration, text, None))
            .flatten()
    }

    /// A QR code from the bus (`QrReady`), for the bot to show.
    pub(crate) fn bot_qr_job(
        &self,
        integration: &Integration,
        png_data_url: &str,
    ) -> Option<NewJob> {
        if !integration.options.bot_contact {
            return None;
        }
        let png = png_data_url.strip_prefix("data:image/png;base64,")?;
        bot_post_job(
            integration,
            "📷 Scan this QR code with WhatsApp (Linked devices) to connect.".to_owned(),
            Some(png.to_owned()),
        )
    }

    /// An agent's message in the bot's conversation: a command is queued,
    /// anything else is left alone. Never a send to WhatsApp.
    pub(crate) fn bot_command_job(
        &self,
        integration: &Integration,
        message_id: i64,
        content: Option<&str>,
    ) -> Option<NewJob> {
        let command = content?.trim();
        if !command.starts_with('/') {
            return None;
        }
        let payload = JobPayload::BotCommand {
            command: command.chars().take(100).collect(),
        };
        Some(NewJob {
            integration_id: integration.id.clone(),
            instance_id: integration.instance_id.clone(),
            // It may need the WhatsApp session: run where it runs.
            direction: OUTBOUND,
            chat_key: "bot".to_owned(),
            dedupe_key: format!("botcmd:{}:{message_id}", integration.id),
            payload: payload.to_json().ok()?,
            blob: None,
            run_at_ms: now_ms(),
        })
    }

    /// Runs an agent's command and answers in the bot's conversation.
    pub(super) async fn run_bot_command(
        &self,
        integration: &Integration,
        command: &str,
    ) -> Result<(), Failure> {
        let mut words = command.split_whitespace();
        let name = words.next().unwrap_or_default().to_ascii_lowercase();
        let argument = words.collect::<Vec<_>>().join(" ");
        let instance_id = &integration.instance_id;
        let answer = match name.as_str() {
            "/help" => HELP.to_owned(),
            "/status" => {
                let whatsapp = self.whatsapp()?;
                let status = match whatsapp.status(instance_id) {
                    Some(status) => status,
                    None => self
                        .store
                        .find_instance_by_id(instance_id)
                        .await?
                        .map(|i| i.session)
                        .unwrap_or_else(SessionStatus::disconnected),
                };
                state_line(&status).unwrap_or_else(|| "⏳ WhatsApp is connecting.".to_owned())
            }
            "/connect" => return self.bot_connect(integration, &argument).await,
            "/disconnect" => "zapgate keeps a linked phone's session open and reconnects it \
                by itself; to unlink the phone type /logout."
                .to_owned(),
            "/logout" => {
                let whatsapp = self.whatsapp()?;
                match whatsapp.logout(instance_id).await {
                    Ok(()) => {
                        let status = SessionStatus {
                            state: ConnectionState::LoggedOut,
                            number_jid: None,
                        };
                        self.store.set_session_status(instance_id, &status).await?;
                        "Logged out: the phone is unlinked.".to_owned()
                    }
                    Err(e) => format!("Logout failed: {}", e.public_message()),
                }
            }
            _ => format!("Unknown command {name}. {HELP}"),
        };
        self.bot_post(integration, &answer, None).await
    }

    /// `/connect` (QR code) or `/connect <number>` (pairing code).
    async fn bot_connect(&self, integration: &Integration, number: &str) -> Result<(), Failure> {
        let method = if number.is_empty() {
            LoginMethod::QrCode
        } else {
            match parse_phone_number(number) {
                Ok(phone) => LoginMethod::PairingCode { phone },
                Err(_) => {
                    let answer = format!("{number} is not a phone number. {HELP}");
                    return self.bot_post(integration, &answer, None).await;
                }
            }
        };
        let whatsapp = self.whatsapp()?;
        let instance_id = &integration.instance_id;
        if let Some(instance) = self.store.find_instance_by_id(instance_id).await? {
            whatsapp
                .apply_settings(instance_id, &instance.settings)
                .await;
        }
        let code =
            tokio::time::timeout(CONNECT_DEADLINE, whatsapp.connect(instance_id, method)).await;
        match code {
            Ok(Ok(LoginCode::QrCode { png_data_url, .. })) => {
                let png = png_data_url
                    .strip_prefix("data:image/png;base64,")
                    .map(str::to_owned);
                self.bot_post(
                    integration,
                    "📷 Scan this QR code with WhatsApp (Linked devices) to connect.",
                    png,
                )
                .await
            }
            Ok(Ok(LoginCode::PairingCode(code))) => {
                let answer = format!(
                    "🔢 Pairing code: {code}. On the phone: Linked devices > Link with phone number."
                );
                self.bot_post(integration, &answer, None).await
            }
            Ok(Ok(LoginCode::AlreadyConnected)) => {
                self.bot_post(integration, "✅ WhatsApp is already connected.", None)
                    .await
            }
            Ok(Err(e)) => {
                let answer = format!("Could not connect: {}", e.public_message());
                self.bot_post(integration, &answer, None).await
            }
            Err(_) => {
                self.bot_post(
                    integration,
                    "Could not connect: WhatsApp gave no code in time.",
                    None,
                )
                .await
            }
        }
    }

    /// Posts `text` (with the QR code when given, replacing the previous
    /// one) as the bot contact's message, creating the contact and its
    /// conversation the first time.
    pub(super) async fn bot_post(
        &self,
        integration: &Integration,
        text: &str,
        qr_png_base64: Option<String>,
    ) -> Result<(), Failure> {
        if !integration.options.bot_contact {
            return Ok(());
        }
        let client = self.client(integration);
        let conversation_id = self.bot_conversation(integration).await?;
        let mut attachments = Vec::new();
        let is_qr = qr_png_base64.is_some();
        if let Some(png) = qr_png_base64 {
            let data = base64::engine::general_purpose::STANDARD
                .decode(png)
                .map_err(|e| Failure::Rejected {
                    error: format!("the QR code is not base64: {e}"),
                })?;
            attachments.push(Attachment {
                file_name: "qrcode.png".to_owned(),
                mimetype: "image/png".to_owned(),
                data,
            });
        }
        // A QR code is good until the next one, and none is once connected.
        let replaced = self.bots.with(&integration.id, |seen| {
            if is_qr || text.starts_with('✅') {
                seen.qr_message_id.take()
            } else {
                None
            }
        });
        if let Some(old) = replaced {
            match client.delete_message(conversation_id, old).await {
                Ok(()) | Err(ChatwootError::Status { status: 404, .. }) => {}
                Err(e) => tracing::debug!(error = %e, "the old QR code stays"),
            }
        }
        let message = NewMessage {
            content: Some(text.to_owned()),
            message_type: "incoming",
            source_id: None,
            private: false,
            content_attributes: None,
            attachments,
        };
        match client.create_message(conversation_id, message).await {
            Ok(created) => {
                if is_qr {
                    self.bots.with(&integration.id, |seen| {
                        seen.qr_message_id = Some(created.id)
                    });
                }
                Ok(())
            }
            Err(ChatwootError::Status { status: 404, .. }) => {
                // The conversation was deleted: the next try makes a new one.
                self.bots
                    .with(&integration.id, |seen| seen.conversation_id = None);
                Err(Failure::Transient {
                    error: format!("bot conversation {conversation_id} no longer exists"),
                    after: Some(Duration::ZERO),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The bot's open conversation: remembered, found, or made.
    async fn bot_conversation(&self, integration: &Integration) -> Result<i64, Failure> {
        if let Some(id) = self.bots.with(&integration.id, |seen| seen.conversation_id) {
            return Ok(id);
        }
        let client = self.client(integration);
        let identifier = bot_identifier(integration);
        let found = client
            .filter_contacts("identifier", std::slice::from_ref(&identifier))
            .await?
            .into_iter()
            .find(|c| c.identifier.as_deref() == Some(identifier.as_str()));
        let contact_id = match found {
            Some(contact) => {
                // Made for an inbox replaced since: join this one.
                match client
                    .create_contact_inbox(contact.id, integration.inbox_id, &identifier)
                    .await
                {
                    Ok(_) | Err(ChatwootError::Status { status: 422, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                contact.id
            }
            None => {
                let name = match &integration.options.bot_name {
                    Some(name) => name.clone(),
                    None => self
                        .store
                        .find_instance_by_id(&integration.instance_id)
                        .await?
                        .map(|i| i.name.to_string())
                        .unwrap_or_else(|| "zapgate".to_owned()),
                };
                let new = NewContact {
                    inbox_id: integration.inbox_id,
                    name: Some(name),
                    phone_number: None,
                    identifier: Some(identifier.clone()),
                    source_id: Some(identifier.clone()),
                };
                match client.create_contact(&new).await {
                    Ok((contact, _)) => contact.id,
                    Err(ChatwootError::Status { status: 404, .. }) => {
                        return Err(Failure::inbox_gone(integration));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let open = client
            .contact_conversations(contact_id)
            .await?
            .into_iter()
            .find(|c| c.inbox_id == integration.inbox_id && c.status != "resolved");
        let conversation_id = match open {
            Some(conversation) => conversation.id,
            None => {
                client
                    .create_conversation(integration.inbox_id, contact_id, &identifier, "open")
                    .await?
                    .id
            }
        };
        self.bots.with(&integration.id, |seen| {
            seen.conversation_id = Some(conversation_id)
        });
        Ok(conversation_id)
    }
}

/// The line for an outage longer than `minutes`.
fn offline_line(minutes: u32, since_ms: i64) -> String {
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "⏰ WhatsApp has been offline for more than {minutes} {unit} (since {}). \
         Type /status to check, /connect to link the phone again.",
        rfc3339(since_ms)
    )
}

/// Outages looked at per check; the rest wait for the next.
const OUTAGES_PER_CHECK: u32 = 500;

impl Bridge {
    /// `botOfflineMinutes`: posts, once per outage, to the bot of every
    /// instance that has been offline (not logged out) longer than its
    /// integration's minutes at `now_ms`. The outage and whether it was told
    /// live in the store, so a restart or another process never tells it
    /// twice; a crash between noting and queueing loses that one post.
    /// Returns how many were queued. Runs every `offline_check`; tests call
    /// it with the time they want.
    pub async fn post_offline_notices(&self, now_ms: i64) -> zapgate_core::Result<u64> {
        let shortest = 60_000;
        let outages = self
            .store
            .outages(now_ms - shortest, OUTAGES_PER_CHECK)
            .await?;
        let mut queued = 0;
        for outage in outages {
            let Some(integration) = self.store.find_integration(&outage.instance_id).await? else {
                continue;
            };
            let minutes = integration.options.bot_offline_minutes;
            if !integration.options.bot_contact
                || minutes == 0
                || now_ms - outage.since_ms <= i64::from(minutes) * 60_000
            {
                continue;
            }
            if !self.store.note_outage(&outage).await? {
                continue;
            }
            let text = offline_line(minutes, outage.since_ms);
            if let Some(job) = bot_post_job(&integration, text, None) {
                self.store.enqueue_jobs(&[job]).await?;
                queued += 1;
            }
        }
        if queued > 0 {
            self.nudge();
        }
        Ok(queued)
    }

    /// Checks outages every `offline_check` until shutdown.
    pub(super) async fn watch_outages(self: std::sync::Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(self.config.offline_check) => {}
            }
            if let Err(e) = self.post_offline_notices(now_ms()).await {
                tracing::warn!(error = %e, "could not check the instances' outages");
            }
        }
    }
}

/// A post of the bot, in its own order (`bot`), on any process.
fn bot_post_job(
    integration: &Integration,
    text: String,
    qr_png_base64: Option<String>,
) -> Option<NewJob> {
    static POSTS: AtomicU64 = AtomicU64::new(0);
    let at = now_ms();
    let n = POSTS.fetch_add(1, Ordering::Relaxed);
    let payload = JobPayload::BotPost {
        text,
        qr_png_base64,
    };
    Some(NewJob {
        integration_id: integration.id.clone(),
        instance_id: integration.instance_id.clone(),
        direction: INBOUND,
        chat_key: "bot".to_owned(),
        // Every post is its own: the time and this process's count.
        dedupe_key: format!("bot:{}:{at}:{n}", integration.id),
        payload: payload.to_json().ok()?,
        blob: None,
        run_at_ms: at,
    })
}
