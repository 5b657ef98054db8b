//! Managing an instance's Chatwoot integration (spec §3.2-§3.5): activate
//! (create or keep the API inbox, point its webhook at us), info (live
//! state, cached), deactivate (stop the webhook, keep the inbox), and the
//! start-up pass that re-points webhooks when our public URL changed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Map, Value};
use zapgate_core::{
    Error, Result,
    chatwoot::{
        AGENT_PLACEHOLDER, ChatwootFlags, ChatwootOptions, IGNORE_WILDCARDS, Integration,
        IntegrationStatus, MAX_BOT_OFFLINE_MINUTES, MAX_IGNORE_JIDS, webhook_url,
    },
    chatwoot_import::MAX_IMPORT_DAYS,
    instance::Instance,
    jid::Jid,
    jobs::Job,
    store::Store,
    time::now_ms,
    token::{Token, new_id, random_hex},
};

use crate::{
    bridge::payload::{self, JobPayload},
    client::{ChatwootClient, ChatwootError, ChatwootHttp, Inbox},
    guard::GuardError,
};

pub const NOT_CONFIGURED: &str = "integration gateway not configured";
pub const INSTANCE_NOT_FOUND: &str = "instance not found";
pub const NO_INTEGRATION: &str = "no chatwoot integration for this instance";
pub const NO_INTEGRATION_TO_DELETE: &str = "no chatwoot integration to delete";
pub const ACTIVATED: &str = "chatwoot integration activated";
pub const DEACTIVATED: &str = "chatwoot integration deactivated";

const MAX_URL_LEN: usize = 2048;
const MAX_TOKEN_LEN: usize = 512;
const MAX_INBOX_NAME_LEN: usize = 255;

/// Deadlines of the three management calls, and how long a live state may
/// be served from memory.
#[derive(Debug, Clone, Copy)]
pub struct ChatwootTimeouts {
    pub activate: Duration,
    pub info: Duration,
    pub deactivate: Duration,
    pub info_cache: Duration,
}

impl Default for ChatwootTimeouts {
    fn default() -> Self {
        Self {
            activate: Duration::from_secs(60),
            info: Duration::from_secs(10),
            deactivate: Duration::from_secs(30),
            info_cache: Duration::from_secs(30),
        }
    }
}

/// The JSON field names of a body: `set` and the inline block of
/// `POST /api/instance/new` name the same things differently.
pub struct FieldNames {
    pub base_url: &'static str,
    pub account_id: &'static str,
    pub api_token: &'static str,
    pub inbox_name: &'static str,
    pub sign_messages: &'static str,
    pub ignore_groups: &'static str,
    pub start_as_pending: &'static str,
    pub reopen_resolved: &'static str,
    pub ignore_jids: &'static str,
    pub sign_delimiter: &'static str,
    pub sign_format: &'static str,
    pub import_messages_days: &'static str,
    pub import_contacts: &'static str,
    pub mark_read_on_reply: &'static str,
    pub contact_avatars: &'static str,
    pub bot_contact: &'static str,
    pub bot_name: &'static str,
    pub bot_offline_minutes: &'static str,
}

/// `POST /api/chatwoot/set/:instance`.
pub const SET_FIELDS: FieldNames = FieldNames {
    base_url: "chatwootBaseUrl",
    account_id: "chatwootAccountId",
    api_token: "chatwootApiToken",
    inbox_name: "inboxName",
    sign_messages: "signMessages",
    ignore_groups: "ignoreGroups",
    start_as_pending: "startAsPending",
    reopen_resolved: "reopenResolved",
    ignore_jids: "ignoreJids",
    sign_delimiter: "signDelimiter",
    sign_format: "signFormat",
    import_messages_days: "importMessagesDays",
    import_contacts: "importContacts",
    mark_read_on_reply: "markReadOnReply",
    contact_avatars: "contactAvatars",
    bot_contact: "botContact",
    bot_name: "botName",
    bot_offline_minutes: "botOfflineMinutes",
};

/// The `chatwoot*` block of `POST /api/instance/new`.
pub const INLINE_FIELDS: FieldNames = FieldNames {
    base_url: "chatwootBaseUrl",
    account_id: "chatwootAccountId",
    api_token: "chatwootApiToken",
    inbox_name: "chatwootInboxName",
    sign_messages: "chatwootSignMessages",
    ignore_groups: "chatwootIgnoreGroups",
    start_as_pending: "chatwootStartAsPending",
    reopen_resolved: "chatwootReopenResolved",
    ignore_jids: "chatwootIgnoreJids",
    sign_delimiter: "chatwootSignDelimiter",
    sign_format: "chatwootSignFormat",
    import_messages_days: "chatwootImportMessagesDays",
    import_contacts: "chatwootImportContacts",
    mark_read_on_reply: "chatwootMarkReadOnReply",
    contact_avatars: "chatwootContactAvatars",
    bot_contact: "chatwootBotContact",
    bot_name: "chatwootBotName",
    bot_offline_minutes: "chatwootBotOfflineMinutes",
};

/// A validated activation.
#[derive(Debug, Clone)]
pub struct ActivateRequest {
    /// Absolute http(s), no trailing `/`.
    pub base_url: String,
    pub account_id: i64,
    pub api_token: Token,
    pub inbox_name: Option<String>,
    pub flags: ChatwootFlags,
    pub options: ChatwootOptions,
}

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("invalid body: {what}"))
}

impl ActivateRequest {
    /// Validates a JSON object, naming the field at fault.
    pub fn parse(body: &Map<String, Value>, names: &FieldNames) -> Result<Self> {
        let base_url = match body.get(names.base_url) {
            None | Some(Value::Null) => {
                return Err(invalid(format!("{} is required", names.base_url)));
            }
            Some(Value::String(s)) => parse_base_url(s).ok_or_else(|| {
                invalid(format!(
                    "{} must be an absolute http(s) URL",
                    names.base_url
                ))
            })?,
            Some(_) => return Err(invalid(format!("{} must be a string", names.base_url))),
        };
        let account_id = match body.get(names.account_id) {
            None | Some(Value::Null) => {
                return Err(invalid(format!("{} is required", names.account_id)));
            }
            Some(v) => v.as_i64().filter(|id| *id > 0).ok_or_else(|| {
                invalid(format!(
                    "{} must be an integer greater than 0",
                    names.account_id
                ))
            })?,
        };
        let api_token = match body.get(names.api_token) {
            None | Some(Value::Null) => {
                return Err(invalid(format!("{} is required", names.api_token)));
            }
            Some(Value::String(s))
                if !s.trim().is_empty()
                    && s.len() <= MAX_TOKEN_LEN
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Token::new(s.as_str())
            }
            Some(_) => {
                return Err(invalid(format!(
                    "{} must be a non-empty string of at most {MAX_TOKEN_LEN} characters without spaces",
                    names.api_token
                )));
            }
        };
        let inbox_name = match body.get(names.inbox_name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if (1..=MAX_INBOX_NAME_LEN).contains(&s.trim().chars().count()) =>
            {
                Some(s.trim().to_owned())
            }
            Some(_) => {
                return Err(invalid(format!(
                    "{} must be a string of 1-{MAX_INBOX_NAME_LEN} characters",
                    names.inbox_name
                )));
            }
        };
        let flag = |name: &str| -> Result<bool> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(invalid(format!("{name} must be a boolean"))),
            }
        };
        Ok(Self {
            base_url,
            account_id,
            api_token,
            inbox_name,
            flags: ChatwootFlags {
                sign_messages: flag(names.sign_messages)?,
                ignore_groups: flag(names.ignore_groups)?,
                start_as_pending: flag(names.start_as_pending)?,
                reopen_resolved: flag(names.reopen_resolved)?,
            },
            options: parse_options(body, names)?,
        })
    }
}

const MAX_JID_LEN: usize = 128;
const MAX_SIGN_DELIMITER_LEN: usize = 20;
const MAX_SIGN_FORMAT_LEN: usize = 200;
const MAX_BOT_NAME_LEN: usize = 100;

/// The second-wave options; each absent one keeps its default.
fn parse_options(body: &Map<String, Value>, names: &FieldNames) -> Result<ChatwootOptions> {
    let mut options = ChatwootOptions::default();
    match body.get(names.ignore_jids) {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) if entries.len() <= MAX_IGNORE_JIDS => {
            for (i, entry) in entries.iter().enumerate() {
                let jid = entry
                    .as_str()
                    .filter(|e| e.len() <= MAX_JID_LEN)
                    .and_then(ignore_entry)
                    .ok_or_else(|| {
                        invalid(format!(
                            "{}[{i}] must be a phone number, a JID or one of {}",
                            names.ignore_jids,
                            IGNORE_WILDCARDS.join(", ")
                        ))
                    })?;
                if !options.ignore_jids.contains(&jid) {
                    options.ignore_jids.push(jid);
                }
            }
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be an array of at most {MAX_IGNORE_JIDS} phone numbers or JIDs",
                names.ignore_jids
            )));
        }
    }
    match body.get(names.sign_delimiter) {
        None | Some(Value::Null) => {}
        // A literal `\n` (two characters) is what people type in forms.
        Some(Value::String(s)) if s.chars().count() <= MAX_SIGN_DELIMITER_LEN => {
            options.sign_delimiter = s.replace("\\n", "\n");
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be a string of at most {MAX_SIGN_DELIMITER_LEN} characters",
                names.sign_delimiter
            )));
        }
    }
    match body.get(names.sign_format) {
        None | Some(Value::Null) => {}
        Some(Value::String(s))
            if s.contains(AGENT_PLACEHOLDER) && s.chars().count() <= MAX_SIGN_FORMAT_LEN =>
        {
            options.sign_format = s.clone();
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be a string of at most {MAX_SIGN_FORMAT_LEN} characters containing {AGENT_PLACEHOLDER}",
                names.sign_format
            )));
        }
    }
    options.mark_read_on_reply = option_flag(body, names.mark_read_on_reply, true)?;
    options.contact_avatars = option_flag(body, names.contact_avatars, true)?;
    options.bot_contact = option_flag(body, names.bot_contact, false)?;
    match body.get(names.bot_name) {
        None | Some(Value::Null) => {}
        Some(Value::String(s))
            if !s.trim().is_empty() && s.trim().chars().count() <= MAX_BOT_NAME_LEN =>
        {
            options.bot_name = Some(s.trim().to_owned());
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be a non-empty string of at most {MAX_BOT_NAME_LEN} characters",
                names.bot_name
            )));
        }
    }
    match body.get(names.bot_offline_minutes) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n))
            if n.as_u64()
                .is_some_and(|m| m <= u64::from(MAX_BOT_OFFLINE_MINUTES)) =>
        {
            options.bot_offline_minutes =
                n.as_u64().and_then(|m| u32::try_from(m).ok()).unwrap_or(0);
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be an integer from 0 (off) to {MAX_BOT_OFFLINE_MINUTES}",
                names.bot_offline_minutes
            )));
        }
    }
    parse_import(body, names, &mut options)?;
    Ok(options)
}

/// A boolean option; absent (or null) is `default`.
fn option_flag(body: &Map<String, Value>, name: &str, default: bool) -> Result<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("{name} must be a boolean"))),
    }
}

/// `importMessagesDays` and `importContacts`.
fn parse_import(
    body: &Map<String, Value>,
    names: &FieldNames,
    options: &mut ChatwootOptions,
) -> Result<()> {
    match body.get(names.import_messages_days) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d <= u64::from(MAX_IMPORT_DAYS)) => {
            options.import_messages_days =
                n.as_u64().and_then(|d| u32::try_from(d).ok()).unwrap_or(0);
        }
        Some(_) => {
            return Err(invalid(format!(
                "{} must be an integer from 0 to {MAX_IMPORT_DAYS}",
                names.import_messages_days
            )));
        }
    }
    match body.get(names.import_contacts) {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => options.import_contacts = *b,
        Some(_) => {
            return Err(invalid(format!(
                "{} must be a boolean",
                names.import_contacts
            )));
        }
    }
    Ok(())
}

/// An `ignoreJids` entry as stored: a wildcard, or a full JID.
fn ignore_entry(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.starts_with('@') {
        return IGNORE_WILDCARDS.contains(&raw).then(|| raw.to_owned());
    }
    Jid::parse(raw).ok().map(|jid| jid.to_string())
}

/// An absolute http(s) URL with a host, trailing `/` removed.
fn parse_base_url(raw: &str) -> Option<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.len() > MAX_URL_LEN {
        return None;
    }
    let url = url::Url::parse(trimmed).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.query().is_none()
        && url.fragment().is_none();
    ok.then(|| trimmed.to_owned())
}

/// What `GET /api/chatwoot/list` shows: the row and the live status.
#[derive(Debug, Clone)]
pub struct IntegrationInfo {
    pub integration: Integration,
    pub status: IntegrationStatus,
}

/// The status people see: `error` while Chatwoot refuses us, else `paused`
/// while WhatsApp is not connected, else `active`.
pub fn shown_status(stored: IntegrationStatus, whatsapp_connected: bool) -> IntegrationStatus {
    match stored {
        IntegrationStatus::Error => IntegrationStatus::Error,
        _ if !whatsapp_connected => IntegrationStatus::Paused,
        _ => IntegrationStatus::Active,
    }
}

#[derive(Clone)]
struct LiveState {
    checked: Instant,
    status: IntegrationStatus,
    last_error: String,
}

pub struct ChatwootService {
    store: Arc<dyn Store>,
    http: ChatwootHttp,
    public_url: String,
    timeouts: ChatwootTimeouts,
    live: Mutex<HashMap<String, LiveState>>,
}

impl ChatwootService {
    pub fn new(
        store: Arc<dyn Store>,
        http: ChatwootHttp,
        public_url: &str,
        timeouts: ChatwootTimeouts,
    ) -> Self {
        Self {
            store,
            http,
            public_url: public_url.trim_end_matches('/').to_owned(),
            timeouts,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, integration: &Integration) -> ChatwootClient {
        self.http.account(
            &integration.base_url,
            integration.account_id,
            integration.api_token.clone(),
        )
    }

    fn forget_live(&self, integration_id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(integration_id);
    }

    /// Creates the inbox (or keeps the current one) and stores the integration.
    pub async fn activate(
        &self,
        instance: &Instance,
        request: ActivateRequest,
    ) -> Result<Integration> {
        let deadline = self.timeouts.activate;
        match tokio::time::timeout(deadline, self.activate_within(instance, request)).await {
            Ok(result) => result,
            Err(_) => Err(did_not_answer(deadline)),
        }
    }

    async fn activate_within(
        &self,
        instance: &Instance,
        request: ActivateRequest,
    ) -> Result<Integration> {
        self.check_destination(&request.base_url).await?;
        let client = self.http.account(
            &request.base_url,
            request.account_id,
            request.api_token.clone(),
        );
        let inbox_name = request
            .inbox_name
            .clone()
            .unwrap_or_else(|| instance.name.clone());
        let map = |e: ChatwootError| activation_error(e, &request, self.timeouts.activate);

        let previous = self.store.find_integration(&instance.id).await?;
        let existing = previous
            .clone()
            .filter(|e| e.base_url == request.base_url && e.account_id == request.account_id);
        let kept = match &existing {
            Some(current) => match client.get_inbox(current.inbox_id).await {
                Ok(_) => Some(current),
                Err(ChatwootError::Status { status: 404, .. }) => None,
                Err(e) => return Err(map(e)),
            },
            None => None,
        };

        let (id, secret, created_at_ms, inbox) = match kept {
            Some(current) => {
                let url = webhook_url(&self.public_url, &current.id, &current.webhook_secret);
                let mut inbox = client
                    .set_inbox_webhook(current.inbox_id, &url)
                    .await
                    .map_err(map)?;
                if inbox.name != inbox_name {
                    inbox = client
                        .rename_inbox(current.inbox_id, &inbox_name)
                        .await
                        .map_err(map)?;
                }
                let secret = current.webhook_secret.clone();
                (current.id.clone(), secret, current.created_at_ms, inbox)
            }
            None => {
                let id = new_id("int");
                let secret = Token::new(random_hex(24));
                let url = webhook_url(&self.public_url, &id, &secret);
                let inbox = client.create_inbox(&inbox_name, &url).await.map_err(map)?;
                (id, secret, now_ms(), inbox)
            }
        };
        let integration =
            self.integration_from(instance, &request, id, secret, created_at_ms, inbox);
        // WhatsApp messages not yet posted move to the new inbox with the row.
        let moved = self
            .store
            .save_integration(&integration, Some(payload::INBOUND))
            .await?;
        self.forget_live(&integration.id);
        if let Some(old) = previous.filter(|p| p.id != integration.id) {
            if moved > 0 {
                tracing::info!(from = %old.id, to = %integration.id, count = moved, "pending WhatsApp messages moved to the new inbox");
            }
            // The old inbox would keep calling a URL that no longer exists.
            // Cleared first: Chatwoot posts each failure mark below back to
            // the inbox's webhook, and our 401 for the replaced row would
            // mark the message failed again as "401 Unauthorized", hiding why.
            self.stop_webhook(&old).await;
            self.fail_old_replies(&old).await;
        }
        // Deliveries held back while Chatwoot refused us go now.
        self.wake_jobs(&instance.id).await?;
        tracing::info!(
            instance_id = %instance.id,
            integration_id = %integration.id,
            inbox_id = integration.inbox_id,
            "chatwoot integration activated"
        );
        Ok(integration)
    }

    fn integration_from(
        &self,
        instance: &Instance,
        request: &ActivateRequest,
        id: String,
        webhook_secret: Token,
        created_at_ms: i64,
        inbox: Inbox,
    ) -> Integration {
        Integration {
            webhook_url: webhook_url(&self.public_url, &id, &webhook_secret),
            id,
            instance_id: instance.id.clone(),
            base_url: request.base_url.clone(),
            account_id: request.account_id,
            api_token: request.api_token.clone(),
            inbox_id: inbox.id,
            inbox_name: inbox.name,
            inbox_identifier: inbox.inbox_identifier,
            webhook_secret,
            inbox_secret: inbox.secret.filter(|s| !s.is_empty()).map(Token::new),
            status: IntegrationStatus::Active,
            last_error: String::new(),
            flags: request.flags,
            options: request.options.clone(),
            created_at_ms,
        }
    }

    /// Refuses a base URL that is, or resolves to, a forbidden address.
    async fn check_destination(&self, base_url: &str) -> Result<()> {
        let url = url::Url::parse(base_url)
            .map_err(|_| invalid("chatwootBaseUrl must be an absolute http(s) URL"))?;
        let policy = self.http.policy();
        policy
            .check_url(&url)
            .map_err(|p| private_address_error(p.0))?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            match policy.check_host(host, port).await {
                Ok(()) => {}
                Err(GuardError::Private(p)) => return Err(private_address_error(p.0)),
                Err(GuardError::Resolve(detail)) => return Err(unreachable(base_url, &detail)),
            }
        }
        Ok(())
    }

    /// The integration with its live state (cached), persisting a change.
    pub async fn info(
        &self,
        instance: &Instance,
        whatsapp_connected: bool,
    ) -> Result<IntegrationInfo> {
        let mut integration = self
            .store
            .find_integration(&instance.id)
            .await?
            .ok_or_else(|| Error::not_found(NO_INTEGRATION))?;
        if let Some(live) = self.live_state(&integration, &instance.name).await
            && (live.status != integration.status || live.last_error != integration.last_error)
        {
            self.store
                .set_integration_status(&integration.id, live.status, &live.last_error)
                .await?;
            if live.status == IntegrationStatus::Error {
                tracing::warn!(integration_id = %integration.id, reason = %live.last_error, "chatwoot integration in error");
            } else {
                // Chatwoot accepts us again: held deliveries go now.
                self.wake_jobs(&instance.id).await?;
            }
            integration.status = live.status;
            integration.last_error = live.last_error;
        }
        if integration.last_error.is_empty() {
            let (dead, last) = self.store.dead_job_summary(&integration.id).await?;
            if dead > 0 {
                integration.last_error = format!(
                    "{dead} message(s) could not be delivered after every retry (last error: {}); replay them with POST /api/chatwoot/replay/{}, `zapgate jobs replay` or POST /admin/jobs/replay",
                    last.unwrap_or_default(),
                    instance.name
                );
            }
        }
        Ok(IntegrationInfo {
            status: shown_status(integration.status, whatsapp_connected),
            integration,
        })
    }

    /// Asks Chatwoot whether the inbox and token still work. `None` when
    /// Chatwoot could not say (down, slow): the stored row stands.
    async fn live_state(
        &self,
        integration: &Integration,
        instance_name: &str,
    ) -> Option<LiveState> {
        let cached = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&integration.id)
            .filter(|l| l.checked.elapsed() < self.timeouts.info_cache)
            .cloned();
        if cached.is_some() {
            return cached;
        }
        let client = self.client(integration);
        let check = client.get_inbox(integration.inbox_id);
        let outcome = match tokio::time::timeout(self.timeouts.info, check).await {
            Ok(outcome) => outcome,
            Err(_) => return None,
        };
        let (status, last_error) = match outcome {
            Ok(_) => (IntegrationStatus::Active, String::new()),
            Err(ChatwootError::Status { status: 404, .. }) => (
                IntegrationStatus::Error,
                format!(
                    "Chatwoot inbox {} no longer exists - call POST /api/chatwoot/set/{instance_name} to create a new one",
                    integration.inbox_id
                ),
            ),
            Err(
                e @ ChatwootError::Status {
                    status: 401 | 403, ..
                },
            ) => (
                IntegrationStatus::Error,
                format!(
                    "Chatwoot refuses the API token ({}) - call POST /api/chatwoot/set/{instance_name} with a valid chatwootApiToken",
                    e.chatwoot_message().unwrap_or_else(|| e.detail())
                ),
            ),
            Err(e) => {
                tracing::debug!(integration_id = %integration.id, error = %e, "live check inconclusive");
                return None;
            }
        };
        let live = LiveState {
            checked: Instant::now(),
            status,
            last_error,
        };
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(integration.id.clone(), live.clone());
        Some(live)
    }

    /// Stops routing and removes the row; the inbox stays in Chatwoot.
    pub async fn deactivate(&self, instance: &Instance) -> Result<()> {
        let integration = self
            .store
            .find_integration(&instance.id)
            .await?
            .ok_or_else(|| Error::not_found(NO_INTEGRATION_TO_DELETE))?;
        // The webhook goes first, as on re-activation: the failure marks must
        // not come back to a row that is about to go.
        self.stop_webhook(&integration).await;
        self.cancel_jobs(
            &integration,
            "The WhatsApp integration was deactivated before this message was sent",
        )
        .await;
        self.store.delete_integration(&instance.id).await?;
        self.forget_live(&integration.id);
        tracing::info!(instance_id = %instance.id, integration_id = %integration.id, "chatwoot integration deactivated");
        Ok(())
    }

    async fn wake_jobs(&self, instance_id: &str) -> Result<()> {
        let now = now_ms();
        for direction in [payload::INBOUND, payload::OUTBOUND] {
            self.store.wake_jobs(instance_id, direction, now).await?;
        }
        Ok(())
    }

    /// Agent replies from the old inbox that never went out are marked
    /// failed there. Should this process stop first, they stay queued under
    /// an integration that no longer exists, and the worker parks them.
    async fn fail_old_replies(&self, old: &Integration) {
        self.cancel_jobs(
            old,
            "The WhatsApp integration moved to another inbox before this message was sent",
        )
        .await;
    }

    /// Drops the integration's pending deliveries; agent replies that never
    /// reached WhatsApp are marked failed in Chatwoot, with why. Best effort
    /// within the deactivation deadline.
    async fn cancel_jobs(&self, integration: &Integration, reason: &str) {
        let jobs = match self.store.take_jobs(&integration.id).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(integration_id = %integration.id, error = %e, "could not cancel the integration's jobs");
                return;
            }
        };
        self.fail_agent_replies(integration, &jobs, reason).await;
    }

    /// Marks the agent replies among `jobs` failed in Chatwoot, within the
    /// deactivation deadline.
    async fn fail_agent_replies(&self, integration: &Integration, jobs: &[Job], reason: &str) {
        let client = self.client(integration);
        let report = async {
            for job in jobs {
                let Ok(JobPayload::AgentMessage(message)) = JobPayload::from_json(&job.payload)
                else {
                    continue;
                };
                let outcome = client
                    .update_message_status(
                        message.conversation_id,
                        message.message_id,
                        "failed",
                        Some(reason),
                    )
                    .await;
                if let Err(e) = outcome {
                    tracing::warn!(integration_id = %integration.id, message_id = message.message_id, error = %e, "could not mark a queued reply failed");
                }
            }
        };
        if tokio::time::timeout(self.timeouts.deactivate, report)
            .await
            .is_err()
        {
            tracing::warn!(integration_id = %integration.id, "Chatwoot did not answer while failing queued replies");
        }
        if !jobs.is_empty() {
            tracing::info!(integration_id = %integration.id, cancelled = jobs.len(), "pending deliveries cancelled");
        }
    }

    /// Clears the inbox's webhook URL so Chatwoot stops calling us. Best
    /// effort: a missing inbox is already stopped; anything else is logged.
    async fn stop_webhook(&self, integration: &Integration) {
        let client = self.client(integration);
        let clear = client.set_inbox_webhook(integration.inbox_id, "");
        match tokio::time::timeout(self.timeouts.deactivate, clear).await {
            Ok(Ok(_)) | Ok(Err(ChatwootError::Status { status: 404, .. })) => {}
            Ok(Err(e)) => tracing::warn!(
                integration_id = %integration.id, error = %e,
                "could not clear the inbox webhook; removing the integration anyway"
            ),
            Err(_) => tracing::warn!(
                integration_id = %integration.id,
                "Chatwoot did not answer while clearing the inbox webhook; removing the integration anyway"
            ),
        }
    }

    /// Re-points every inbox whose webhook URL was registered under another
    /// public URL (the operator changed `ZAPGATE_PUBLIC_URL`). Returns how
    /// many were updated.
    pub async fn refresh_webhook_urls(&self) -> Result<usize> {
        let mut updated = 0;
        for integration in self.store.list_integrations().await? {
            let expected = webhook_url(
                &self.public_url,
                &integration.id,
                &integration.webhook_secret,
            );
            if integration.webhook_url == expected {
                continue;
            }
            let client = self.client(&integration);
            let update = client.set_inbox_webhook(integration.inbox_id, &expected);
            match tokio::time::timeout(self.timeouts.activate, update).await {
                Ok(Ok(_)) => {
                    self.store
                        .set_integration_webhook_url(&integration.id, &expected)
                        .await?;
                    updated += 1;
                }
                Ok(Err(e)) => {
                    tracing::warn!(integration_id = %integration.id, error = %e, "could not update the inbox webhook URL")
                }
                Err(_) => {
                    tracing::warn!(integration_id = %integration.id, "Chatwoot did not answer while updating the inbox webhook URL")
                }
            }
        }
        Ok(updated)
    }
}

fn did_not_answer(deadline: Duration) -> Error {
    Error::GatewayTimeout(format!(
        "Chatwoot did not answer within {}s",
        deadline.as_secs()
    ))
}

fn private_address_error(ip: std::net::IpAddr) -> Error {
    invalid(format!(
        "chatwootBaseUrl resolves to a private address ({ip}); set ZAPGATE_ALLOW_PRIVATE_URLS=true to allow it"
    ))
}

fn unreachable(base_url: &str, detail: &str) -> Error {
    let detail: String = detail.chars().take(crate::client::DETAIL_LIMIT).collect();
    Error::BadGateway(format!(
        "Chatwoot unreachable - verify chatwootBaseUrl ({base_url}). Detail: {detail}"
    ))
}

fn account_not_found(request: &ActivateRequest, detail: &str) -> Error {
    Error::bad_request(format!(
        "Chatwoot account or endpoint not found - verify chatwootBaseUrl ({}) and chatwootAccountId ({}). Detail: {detail}",
        request.base_url, request.account_id
    ))
}

/// Chatwoot's answer to an activation, as the contract's error (spec §3.2).
fn activation_error(err: ChatwootError, request: &ActivateRequest, deadline: Duration) -> Error {
    let detail = err.detail();
    match &err {
        ChatwootError::Private(p) => private_address_error(p.0),
        ChatwootError::Unreachable(_) => unreachable(&request.base_url, &detail),
        ChatwootError::Timeout => did_not_answer(deadline),
        ChatwootError::Unexpected(_) => account_not_found(request, &detail),
        ChatwootError::Status { status, .. } => {
            let said = err.chatwoot_message().unwrap_or_default();
            match *status {
                401 if said.contains("not authorized to access this account") => {
                    account_not_found(request, &detail)
                }
                401 | 403
                    if said.contains("not authorized to do this action") || *status == 403 =>
                {
                    Error::Forbidden(format!(
                        "Chatwoot denied the request - verify the API token has admin scope on account {}. Detail: {detail}",
                        request.account_id
                    ))
                }
                401 => Error::unauthorized(format!(
                    "Chatwoot rejected the API token - verify chatwootApiToken. Detail: {detail}"
                )),
                402 => Error::bad_request(format!(
                    "Chatwoot refused to create the inbox - the account's inbox limit is reached. Detail: {detail}"
                )),
                422 => Error::bad_request(format!(
                    "Chatwoot rejected the request as invalid - verify {}. Detail: {detail}",
                    named_fields(&err.invalid_attributes())
                )),
                429 | 500..=599 => {
                    Error::BadGateway(format!("Chatwoot failed - HTTP {status}. Detail: {detail}"))
                }
                // 404, and whatever a server that is not a Chatwoot answers.
                _ => account_not_found(request, &detail),
            }
        }
    }
}

/// Chatwoot's attribute names as the caller knows them.
fn named_fields(attributes: &[String]) -> String {
    if attributes.is_empty() {
        return "inboxName".to_owned();
    }
    attributes
        .iter()
        .map(|a| match a.as_str() {
            "name" => "inboxName".to_owned(),
            "webhook_url" => "ZAPGATE_PUBLIC_URL".to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<ActivateRequest> {
        ActivateRequest::parse(body.as_object().unwrap(), &SET_FIELDS)
    }

    fn message(body: Value) -> String {
        parse(body).unwrap_err().public_message().to_owned()
    }

    #[test]
    fn a_valid_body_is_normalised() {
        let r = parse(json!({
            "chatwootBaseUrl": "https://chat.example.com//",
            "chatwootAccountId": 5,
            "chatwootApiToken": "abc",
            "signMessages": true,
        }))
        .unwrap();
        assert_eq!(r.base_url, "https://chat.example.com");
        assert_eq!(r.account_id, 5);
        assert!(r.flags.sign_messages && !r.flags.reopen_resolved);
        assert_eq!(r.inbox_name, None);
    }

    #[test]
    fn each_field_is_named_when_wrong() {
        let ok = json!({"chatwootBaseUrl": "https://c.example", "chatwootAccountId": 1, "chatwootApiToken": "t"});
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        let without = |key: &str| {
            let mut body = ok.clone();
            body.as_object_mut().unwrap().remove(key);
            body
        };
        assert_eq!(
            message(without("chatwootBaseUrl")),
            "invalid body: chatwootBaseUrl is required"
        );
        assert_eq!(
            message(with("chatwootBaseUrl", json!("ftp://x"))),
            "invalid body: chatwootBaseUrl must be an absolute http(s) URL"
        );
        assert_eq!(
            message(with("chatwootBaseUrl", json!("chat.example.com"))),
            "invalid body: chatwootBaseUrl must be an absolute http(s) URL"
        );
        assert_eq!(
            message(without("chatwootAccountId")),
            "invalid body: chatwootAccountId is required"
        );
        for bad in [json!(0), json!(-3), json!("5"), json!(1.5)] {
            assert_eq!(
                message(with("chatwootAccountId", bad)),
                "invalid body: chatwootAccountId must be an integer greater than 0"
            );
        }
        assert_eq!(
            message(without("chatwootApiToken")),
            "invalid body: chatwootApiToken is required"
        );
        assert!(
            message(with("chatwootApiToken", json!("")))
                .starts_with("invalid body: chatwootApiToken")
        );
        assert!(message(with("inboxName", json!(""))).starts_with("invalid body: inboxName"));
        assert_eq!(
            message(with("ignoreGroups", json!("yes"))),
            "invalid body: ignoreGroups must be a boolean"
        );
    }

    #[test]
    fn options_are_normalised_and_named_when_wrong() {
        let ok = json!({"chatwootBaseUrl": "https://c.example", "chatwootAccountId": 1, "chatwootApiToken": "t"});
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        assert_eq!(
            parse(ok.clone()).unwrap().options,
            ChatwootOptions::default()
        );
        let r = parse(with(
            "ignoreJids",
            json!([
                "+55 11 98888-7777",
                "@g.us",
                "5511988887777@s.whatsapp.net",
                "1203@g.us"
            ]),
        ))
        .unwrap();
        assert_eq!(
            r.options.ignore_jids,
            ["5511988887777@s.whatsapp.net", "@g.us", "1203@g.us"]
        );
        assert_eq!(
            message(with("ignoreJids", json!(["5511988887777", "@c.us"]))),
            "invalid body: ignoreJids[1] must be a phone number, a JID or one of @g.us, @s.whatsapp.net, @lid"
        );
        assert!(
            message(with("ignoreJids", json!("@g.us")))
                .starts_with("invalid body: ignoreJids must be an array")
        );
        let too_many: Vec<String> = (0..=MAX_IGNORE_JIDS)
            .map(|i| format!("55119{i:08}"))
            .collect();
        assert!(
            message(with("ignoreJids", json!(too_many)))
                .starts_with("invalid body: ignoreJids must be")
        );
        let r = parse(with("signDelimiter", json!("\\n\\n"))).unwrap();
        assert_eq!(r.options.sign_delimiter, "\n\n");
        assert!(
            message(with("signDelimiter", json!(5))).starts_with("invalid body: signDelimiter")
        );
        assert!(
            message(with("signFormat", json!("*Agent*"))).starts_with("invalid body: signFormat")
        );
        let r = parse(with("signFormat", json!("_{agent}_ diz:"))).unwrap();
        assert_eq!(r.options.sign_format, "_{agent}_ diz:");
        assert!(parse(ok.clone()).unwrap().options.mark_read_on_reply);
        let r = parse(with("markReadOnReply", json!(false))).unwrap();
        assert!(!r.options.mark_read_on_reply);
        assert!(r.options.contact_avatars);
        let r = parse(with("contactAvatars", json!(false))).unwrap();
        assert!(!r.options.contact_avatars);
        assert!(!r.options.bot_contact);
        let r = parse(with("botName", json!(" Central "))).unwrap();
        assert_eq!(r.options.bot_name.as_deref(), Some("Central"));
        assert_eq!(
            message(with("botName", json!(" "))),
            "invalid body: botName must be a non-empty string of at most 100 characters"
        );
        assert_eq!(
            message(with("markReadOnReply", json!("no"))),
            "invalid body: markReadOnReply must be a boolean"
        );
        assert_eq!(parse(ok.clone()).unwrap().options.bot_offline_minutes, 5);
        for minutes in [0, 1440] {
            let r = parse(with("botOfflineMinutes", json!(minutes))).unwrap();
            assert_eq!(r.options.bot_offline_minutes, minutes);
        }
        for wrong in [json!(1441), json!(-1), json!(2.5), json!("5")] {
            assert_eq!(
                message(with("botOfflineMinutes", wrong)),
                "invalid body: botOfflineMinutes must be an integer from 0 (off) to 1440"
            );
        }
    }

    #[test]
    fn import_options_are_bounded_and_named_when_wrong() {
        let ok = json!({"chatwootBaseUrl": "https://c.example", "chatwootAccountId": 1, "chatwootApiToken": "t"});
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            body
        };
        let r = parse(with("importMessagesDays", json!(90))).unwrap();
        assert_eq!(r.options.import_messages_days, 90);
        assert!(!r.options.import_contacts);
        for bad in [json!(91), json!(-1), json!(1.5), json!("7")] {
            assert_eq!(
                message(with("importMessagesDays", bad)),
                "invalid body: importMessagesDays must be an integer from 0 to 90"
            );
        }
        assert!(
            parse(with("importContacts", json!(true)))
                .unwrap()
                .options
                .import_contacts
        );
        assert_eq!(
            message(with("importContacts", json!("yes"))),
            "invalid body: importContacts must be a boolean"
        );
    }

    #[test]
    fn status_shown_follows_whatsapp_unless_chatwoot_refuses() {
        use IntegrationStatus::*;
        assert_eq!(shown_status(Active, true), Active);
        assert_eq!(shown_status(Active, false), Paused);
        assert_eq!(shown_status(Error, true), Error);
        assert_eq!(shown_status(Error, false), Error);
    }
}
