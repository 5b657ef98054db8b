//! Chat state: contacts, who is on WhatsApp, read marks, presence, and the
//! per-chat flags (archived, pinned, muted, read, deleted) and blocks that
//! RyzeAPI's chat module manages, as provider operations
//! ([`ChatState`], part of every `WhatsApp`).

use async_trait::async_trait;

use crate::{Result, jid::Jid};

/// Numbers per `checkNumbers` call: one usync query, and a bound on the work
/// one request can ask of WhatsApp.
pub const MAX_CHECK_NUMBERS: usize = 50;
/// Message ids per `markRead` call.
pub const MAX_READ_IDS: usize = 100;
/// The longest message id accepted (WhatsApp's are 16 to 32 characters).
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// Someone the account knows: a phone and, when WhatsApp gave it, the
/// hidden-number id (`@lid`) it uses for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The phone jid.
    pub jid: Jid,
    pub lid: Option<Jid>,
    /// The name in the phone's address book.
    pub name: Option<String>,
    /// The name the contact chose for themselves.
    pub push_name: Option<String>,
}

/// Whether a number has a WhatsApp account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberCheck {
    /// The number as asked (a phone jid).
    pub number: Jid,
    pub exists: bool,
    /// The account's jid as WhatsApp answers it (the Brazilian 9th digit
    /// may differ from the number asked).
    pub jid: Option<Jid>,
    pub lid: Option<Jid>,
    pub is_business: bool,
}

/// How long a chat stays muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mute {
    /// Until this Unix second.
    Until(i64),
    Forever,
    Off,
}

/// A change to one chat, synced to the phone and every linked device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatChange {
    Archive(bool),
    Pin(bool),
    Mute(Mute),
    /// The chat as read (`true`) or unread.
    MarkRead(bool),
    /// Deleted, with its messages, on every device.
    Delete,
}

/// The chat-state operations every provider offers. Each needs a connected
/// session (`Error::NotConnected` otherwise).
#[async_trait]
pub trait ChatState: Send + Sync {
    /// The account's address book.
    async fn contacts(&self, instance_id: &str) -> Result<Vec<Contact>>;

    /// One contact by phone jid or `@lid`; `None` when the account does not
    /// know it. The own number is always known.
    async fn contact(&self, instance_id: &str, who: &Jid) -> Result<Option<Contact>>;

    /// Which of `numbers` (phone jids, at most [`MAX_CHECK_NUMBERS`]) have a
    /// WhatsApp account, in the order asked.
    async fn check_numbers(&self, instance_id: &str, numbers: &[Jid]) -> Result<Vec<NumberCheck>>;

    /// Sends read receipts ("blue ticks") for `ids` in `chat`; in a group,
    /// `sender` is the member who wrote them.
    async fn mark_read(
        &self,
        instance_id: &str,
        chat: &Jid,
        sender: Option<&Jid>,
        ids: &[String],
    ) -> Result<()>;

    /// Shows the account online (`true`) or offline to everyone.
    async fn set_presence(&self, instance_id: &str, available: bool) -> Result<()>;

    async fn update_chat(&self, instance_id: &str, chat: &Jid, change: ChatChange) -> Result<()>;

    /// Blocks (`true`) or unblocks a user (phone jid or `@lid`).
    async fn block(&self, instance_id: &str, who: &Jid, blocked: bool) -> Result<()>;
}
