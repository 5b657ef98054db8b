//! The bridge's durable work: every message crossing between WhatsApp and
//! Chatwoot is a job row before anyone acts on it. Jobs of one chat run one
//! at a time in the order they were stored; a job that keeps failing is
//! parked as a dead letter and no longer holds its chat back.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A job to store. `dedupe_key` makes enqueueing idempotent: a second job
/// with the same key is ignored while the first exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub integration_id: String,
    pub instance_id: String,
    /// `inbound` (WhatsApp → Chatwoot) or `outbound` (Chatwoot → WhatsApp).
    pub direction: &'static str,
    /// Jobs with the same key run in order, one at a time.
    pub chat_key: String,
    pub dedupe_key: String,
    /// The work itself, as JSON (the bridge's job payload type).
    pub payload: String,
    /// Unix ms before which the job is not run.
    pub run_at_ms: i64,
    /// The job's media, stored beside the row (not in `payload`) and
    /// removed with it when the job ends; read with
    /// [`crate::store::Store::job_blob`].
    pub blob: Option<Bytes>,
}

/// What became of a job given to [`crate::store::Store::enqueue_capped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// A job with its `dedupe_key` is already stored.
    Duplicate,
    /// Its integration already had the cap's number of jobs of its
    /// direction queued or running: not stored.
    QueueFull,
}

/// A stored job, as a worker claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub integration_id: String,
    pub instance_id: String,
    pub direction: String,
    pub chat_key: String,
    pub dedupe_key: String,
    pub payload: String,
    pub status: JobStatus,
    /// Attempts made before this one.
    pub attempts: u32,
    pub last_error: String,
    pub created_at_ms: i64,
}

/// How a claim shares the worker's free slots between integrations: at most
/// `per_integration` jobs of one integration run at once, counting the ones
/// already `running` in this worker, and a claim takes the oldest job of
/// each integration before the second of any (so one tenant's backlog does
/// not delay the others').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimShare {
    pub per_integration: u32,
    /// Integrations with jobs running now, and how many.
    pub running: Vec<(String, u32)>,
    /// This process's name on WhatsApp session leases, when its provider
    /// leases sessions (see [`crate::whatsapp::WhatsApp::session_owner`]):
    /// outbound jobs of an instance whose session another live process runs
    /// are left to that process, the only one that can send them.
    pub session_owner: Option<String>,
}

impl Default for ClaimShare {
    /// No cap: only the rotation.
    fn default() -> Self {
        Self {
            per_integration: u32::MAX,
            running: Vec::new(),
            session_owner: None,
        }
    }
}

/// A WhatsApp message and its Chatwoot counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLink {
    pub integration_id: String,
    pub wa_message_id: String,
    pub chatwoot_message_id: i64,
    pub chatwoot_conversation_id: i64,
    /// `inbound` (posted into Chatwoot) or `outbound` (sent to WhatsApp).
    pub direction: String,
}

/// What an agent message's job reads before it sends: what was sent (or
/// deleted) for the message already, and the chat its conversation is
/// linked to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentMessageLinks {
    /// As [`crate::store::Store::find_messages_by_chatwoot`] finds them.
    pub sent: Vec<MessageLink>,
    /// The `chat_jid` of [`crate::store::Store::find_chat_by_conversation`].
    pub conversation_chat: Option<String>,
}

/// A customer's message posted into a conversation after the last agent
/// reply: what a read receipt for it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadMessage {
    pub wa_message_id: String,
    /// Who wrote it, when the message store still has it (a group's read
    /// receipt names the member).
    pub sender: Option<String>,
}

/// The WhatsApp picture a chat's Chatwoot contact last got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarRefresh {
    /// `""` when the chat showed no picture.
    pub picture_url: String,
    pub refreshed_at_ms: i64,
}

/// Where a WhatsApp chat lives in Chatwoot: the contact, its contact-inbox
/// source id, the conversation in use and its last known status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLink {
    pub integration_id: String,
    /// The WhatsApp chat (`5511988887777@s.whatsapp.net`, `<id>@g.us`, `<id>@lid`).
    pub chat_jid: String,
    pub contact_id: i64,
    pub source_id: String,
    pub conversation_id: i64,
    pub conversation_status: String,
    /// The newest Chatwoot message id the reconciler has looked at.
    pub reconciled_message_id: i64,
}
