//! The double's in-memory database: accounts, users, inboxes, contacts,
//! contact_inboxes, conversations, messages and attachment blobs, with the id
//! sequences Chatwoot uses (global primary keys, per-account conversation
//! `display_id`). Everything lives behind one `std::sync::Mutex` in
//! [`crate::Shared`]; nothing here awaits.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// A user's role inside the accounts it belongs to (Chatwoot `account_users.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May create, update and delete inboxes.
    Administrator,
    /// Everything else; inbox management answers 401 "not authorized to do this action".
    Agent,
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: i64,
    pub name: String,
    pub inbox_limit: Option<usize>,
    pub next_display_id: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub accounts: Vec<i64>,
    pub token: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    pub id: i64,
    pub account_id: i64,
    pub channel_id: i64,
    pub name: String,
    /// `Channel::Api`, `Channel::WebWidget`, ...
    pub channel_type: String,
    pub webhook_url: String,
    pub inbox_identifier: String,
    pub hmac_token: String,
    pub hmac_mandatory: bool,
    pub additional_attributes: Value,
    /// Webhook signing secret (v4.13+ `secret`); only shown/used when signing is on.
    pub secret: String,
    /// Generic inbox attributes (`lock_to_single_conversation`, `greeting_enabled`, ...).
    pub attrs: Map<String, Value>,
    pub created_at: f64,
}

impl Inbox {
    pub fn is_api(&self) -> bool {
        self.channel_type == "Channel::Api"
    }
    pub fn lock_to_single_conversation(&self) -> bool {
        self.attrs
            .get("lock_to_single_conversation")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub identifier: Option<String>,
    pub additional_attributes: Value,
    pub custom_attributes: Value,
    pub blocked: bool,
    pub created_at: f64,
    pub last_activity_at: Option<f64>,
    /// The picture from the last `avatar_url` Chatwoot was given. Chatwoot
    /// fetches it in a background job (`Avatar::AvatarFromUrlJob`) and
    /// serves its own copy as `thumbnail`; the double shows the URL itself,
    /// as if the fetch succeeded.
    pub avatar_url: Option<String>,
}

impl Contact {
    /// Chatwoot's `resolved_contacts` scope: only these are returned by
    /// list/search/filter.
    pub fn is_resolved(&self) -> bool {
        [&self.email, &self.phone_number, &self.identifier]
            .iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ContactInbox {
    pub id: i64,
    pub contact_id: i64,
    pub inbox_id: i64,
    pub source_id: String,
    pub pubsub_token: String,
    pub created_at: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    /// Internal primary key (never exposed by Chatwoot).
    pub pk: i64,
    pub account_id: i64,
    /// What every URL and payload calls the conversation `id`.
    pub display_id: i64,
    pub inbox_id: i64,
    pub contact_id: i64,
    pub contact_inbox_id: i64,
    pub status: String,
    pub uuid: String,
    pub snoozed_until: Option<i64>,
    pub custom_attributes: Value,
    pub additional_attributes: Value,
    pub created_at: f64,
    pub updated_at: f64,
    pub last_activity_at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Contact(i64),
    User(i64),
    None,
}

#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub id: i64,
    pub file_type: String,
    pub token: String,
    pub filename: String,
    pub file_size: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: i64,
    pub account_id: i64,
    pub conversation_pk: i64,
    pub inbox_id: i64,
    pub content: Option<String>,
    /// 0 incoming, 1 outgoing, 2 activity, 3 template.
    pub message_type: u8,
    pub content_type: String,
    pub private: bool,
    pub status: String,
    pub source_id: Option<String>,
    pub content_attributes: Value,
    pub sender: Sender,
    pub attachments: Vec<Attachment>,
    pub created_at: f64,
    pub updated_at: f64,
}

/// Stored attachment bytes, served by the blob routes.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub content_type: String,
    pub bytes: axum::body::Bytes,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub accounts: BTreeMap<i64, Account>,
    pub users: BTreeMap<i64, User>,
    pub inboxes: BTreeMap<i64, Inbox>,
    pub contacts: BTreeMap<i64, Contact>,
    pub contact_inboxes: BTreeMap<i64, ContactInbox>,
    pub conversations: BTreeMap<i64, Conversation>,
    pub messages: BTreeMap<i64, Message>,
    pub blobs: HashMap<String, Blob>,
    seq: HashMap<&'static str, i64>,
}

impl State {
    /// Next value of a global primary-key sequence (starts at 1).
    pub fn next_id(&mut self, table: &'static str) -> i64 {
        let v = self.seq.entry(table).or_insert(0);
        *v += 1;
        *v
    }

    pub fn user_by_token(&self, token: &str) -> Option<&User> {
        self.users.values().find(|u| u.token == token)
    }

    pub fn inbox_in(&self, account_id: i64, id: i64) -> Option<&Inbox> {
        self.inboxes.get(&id).filter(|i| i.account_id == account_id)
    }

    pub fn contact_in(&self, account_id: i64, id: i64) -> Option<&Contact> {
        self.contacts
            .get(&id)
            .filter(|c| c.account_id == account_id)
    }

    pub fn conversation_pk(&self, account_id: i64, display_id: i64) -> Option<i64> {
        self.conversations
            .values()
            .find(|c| c.account_id == account_id && c.display_id == display_id)
            .map(|c| c.pk)
    }

    pub fn conversation_messages(&self, pk: i64) -> impl Iterator<Item = &Message> {
        self.messages
            .values()
            .filter(move |m| m.conversation_pk == pk)
    }

    /// Finds or creates the contact_inbox (Chatwoot `ContactInboxBuilder`):
    /// an existing (contact, inbox, source_id) row is reused; a blank
    /// `source_id` always produces a NEW row with a random uuid (real quirk).
    /// `Err` when the (inbox, source_id) pair belongs to another contact.
    pub fn build_contact_inbox(
        &mut self,
        contact_id: i64,
        inbox_id: i64,
        source_id: Option<&str>,
        now: f64,
    ) -> Result<i64, ()> {
        let source_id = match source_id.filter(|s| !s.is_empty()) {
            Some(s) => s.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        if let Some(ci) = self
            .contact_inboxes
            .values()
            .find(|ci| ci.inbox_id == inbox_id && ci.source_id == source_id)
        {
            return if ci.contact_id == contact_id {
                Ok(ci.id)
            } else {
                Err(())
            };
        }
        let id = self.next_id("contact_inboxes");
        self.contact_inboxes.insert(
            id,
            ContactInbox {
                id,
                contact_id,
                inbox_id,
                source_id,
                pubsub_token: random_token(24),
                created_at: now,
            },
        );
        Ok(id)
    }
}

/// Random alphanumeric token like Rails' `has_secure_token` (24 chars).
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
        }
    }
    out
}

/// Current time as fractional unix seconds.
pub(crate) fn now() -> f64 {
    let t = chrono::Utc::now();
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}
