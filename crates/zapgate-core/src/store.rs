//! The storage contract. Implementations live in `zapgate-store` (SQLite and
//! PostgreSQL); services and the HTTP layer only see this trait.
//!
//! Every method on tenant data takes the account id, and the SQL filters on
//! it: there is no way to reach another account's instance by name.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Result,
    account::{Account, NewAccount},
    chatwoot::{Integration, IntegrationStatus, IntegrationSummary},
    chatwoot_import::ImportProgress,
    idempotency::{IdempotencyClaim, IdempotencyRecord},
    instance::{Instance, InstanceSettings, NewInstance, Outage, SessionStatus, SettingsPatch},
    jobs::{
        AgentMessageLinks, AvatarRefresh, ChatLink, ClaimShare, Enqueued, Job, MessageLink, NewJob,
        UnreadMessage,
    },
    token::{Token, TokenHash},
};

/// Who a token belongs to.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A TokenAccount: the account and all its instances.
    Account(Account),
    /// A TokenInstance: one instance of the account.
    Instance {
        account: Account,
        instance_id: String,
    },
}

impl Principal {
    pub fn account(&self) -> &Account {
        match self {
            Self::Account(account) | Self::Instance { account, .. } => account,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`, for logs and metrics.
    fn backend_name(&self) -> &'static str;

    /// Answers when the database does (readiness checks).
    async fn ping(&self) -> Result<()>;

    async fn create_account(&self, new: &NewAccount, token: &Token) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Deletes the account and everything it owns; `false` when there was none.
    async fn delete_account(&self, account_id: &str) -> Result<bool>;

    /// Resolves a token hash to its owner, account tokens first. The answer
    /// may be remembered briefly, but never past this store's own deletion
    /// of the owner.
    async fn find_principal(&self, token: &TokenHash) -> Result<Option<Principal>>;

    /// Creates the instance, enforcing the name's uniqueness in the account,
    /// the token's uniqueness on the server and the account's quota, all in
    /// one transaction.
    async fn create_instance(&self, account: &Account, new: &NewInstance) -> Result<Instance>;
    /// The account's instances, by name; all of them when `names` is `None`.
    /// Shared, so a cached list is handed out without a copy.
    async fn list_instances(
        &self,
        account_id: &str,
        names: Option<&[String]>,
    ) -> Result<Arc<[Instance]>>;
    async fn find_instance(&self, account_id: &str, name: &str) -> Result<Option<Instance>>;
    async fn find_instance_by_id(&self, instance_id: &str) -> Result<Option<Instance>>;
    /// The instance's plaintext TokenInstance (decrypted).
    async fn instance_token(&self, instance_id: &str) -> Result<Token>;
    /// Stores the session's state. A paired session (its number known) that
    /// is `disconnected` or `connecting` is in an outage, which keeps the
    /// time it started through further such states and restarts; being
    /// `connected` or logged out ends it.
    async fn set_session_status(&self, instance_id: &str, status: &SessionStatus) -> Result<()>;
    /// Outages that started before `started_before_ms`, of instances with a
    /// Chatwoot integration, not yet noted ([`Store::note_outage`]); at most
    /// `limit`, oldest first.
    async fn outages(&self, started_before_ms: i64, limit: u32) -> Result<Vec<Outage>>;
    /// Notes that the outage was told about: `true` for the one caller that
    /// noted it (once per outage, across processes), `false` when it was
    /// already noted or is over.
    async fn note_outage(&self, outage: &Outage) -> Result<bool>;
    /// Applies `patch` to the instance's stored settings in one transaction
    /// (two concurrent partial updates both land) and returns the result;
    /// `None` when the account has no such instance.
    async fn update_settings(
        &self,
        account_id: &str,
        instance_id: &str,
        patch: &SettingsPatch,
    ) -> Result<Option<InstanceSettings>>;
    /// Instances whose session was paired when last seen, to resume at
    /// start: one page of them in creation order, those after `after` (from
    /// the first when `None`); empty past the last.
    async fn paired_instances(&self, after: Option<&Instance>) -> Result<Vec<Instance>>;
    /// Deletes the instance and all it owns; `false` when there was none.
    async fn delete_instance(&self, account_id: &str, instance_id: &str) -> Result<bool>;

    /// Counts one request in `bucket` for the window starting at
    /// `window_start` (Unix seconds) and returns the count so far. Shared by
    /// every process on the same database.
    async fn count_request(&self, bucket: &str, window_start: i64) -> Result<u64>;

    /// Creates or replaces the instance's integration (one per instance).
    /// Stores the instance's integration, replacing the one it had. When that
    /// one had another id, its jobs of `move_direction` (when given) move to
    /// the new one (dedupe keys re-keyed, dead ones queued again) in the same
    /// transaction, so no crash in between loses them. Returns how many moved.
    async fn save_integration(
        &self,
        integration: &Integration,
        move_direction: Option<&str>,
    ) -> Result<u64>;
    async fn find_integration(&self, instance_id: &str) -> Result<Option<Integration>>;
    async fn find_integration_by_id(&self, integration_id: &str) -> Result<Option<Integration>>;
    /// Every integration on the server (start-up maintenance).
    async fn list_integrations(&self) -> Result<Vec<Integration>>;
    /// The integrations of the account's instances, secrets left out.
    async fn integration_summaries(&self, account_id: &str) -> Result<Arc<[IntegrationSummary]>>;
    async fn set_integration_status(
        &self,
        integration_id: &str,
        status: IntegrationStatus,
        last_error: &str,
    ) -> Result<()>;
    async fn set_integration_webhook_url(&self, integration_id: &str, url: &str) -> Result<()>;
    /// `false` when the instance had none.
    async fn delete_integration(&self, instance_id: &str) -> Result<bool>;

    /// Creates or replaces the instance's import row.
    async fn save_import(&self, progress: &ImportProgress) -> Result<()>;
    async fn find_import(&self, instance_id: &str) -> Result<Option<ImportProgress>>;
    /// Imports still running whose holder's lease ended before `now_ms`.
    async fn stale_imports(&self, now_ms: i64) -> Result<Vec<ImportProgress>>;
    /// Takes a running import whose lease ended, until `until_ms`; `false`
    /// when another process holds it (or it is no longer running).
    async fn claim_import(&self, instance_id: &str, now_ms: i64, until_ms: i64) -> Result<bool>;
    /// Writes the progress (and state) of a running import of the same
    /// integration; `false` when it is no longer running there (cancelled,
    /// deactivated, replaced), which tells its runner to stop.
    async fn advance_import(&self, progress: &ImportProgress) -> Result<bool>;

    /// Stores jobs; one whose `dedupe_key` is already stored is skipped.
    /// Returns how many were new.
    async fn enqueue_jobs(&self, jobs: &[NewJob]) -> Result<u64>;
    /// The media stored with the job ([`NewJob::blob`]); `None` once the
    /// job was parked as a dead letter (or when it had none).
    async fn job_blob(&self, job_id: i64) -> Result<Option<Vec<u8>>>;
    /// Stores `job` unless its integration already has `cap` jobs of its
    /// direction queued or running. The count is taken in the insert's own
    /// batch of enqueues, once per integration for the whole batch.
    async fn enqueue_capped(&self, job: NewJob, cap: u32) -> Result<Enqueued>;
    /// Leases up to `limit` runnable jobs until `lease_until_ms`: each the
    /// oldest unfinished job of its chat, queued and due (or running with an
    /// expired lease: its worker died, which counts as an attempt, so the
    /// retry checks whether that attempt landed), shared between
    /// integrations as `share` says. Safe across processes.
    async fn claim_jobs(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        share: &ClaimShare,
    ) -> Result<Vec<Job>>;
    /// Done: the job row goes, and `link` (the message the job posted), when
    /// given, is saved no later. Completions that arrive together are stored
    /// together.
    async fn complete_job(&self, job_id: i64, link: Option<&MessageLink>) -> Result<()>;
    /// Back to the queue, due at `run_at_ms`, with one more attempt counted.
    async fn retry_job(&self, job_id: i64, run_at_ms: i64, error: &str) -> Result<()>;
    /// Back to the queue without counting an attempt (waiting, not failing).
    async fn defer_job(&self, job_id: i64, run_at_ms: i64, reason: &str) -> Result<()>;
    /// A dead letter: kept for the operator, no longer run.
    async fn park_job(&self, job_id: i64, error: &str) -> Result<()>;
    /// Parks the job while it still belongs to `integration_id` and that
    /// integration no longer exists; `false` when it moved meanwhile.
    async fn park_orphan_job(&self, job_id: i64, integration_id: &str, error: &str)
    -> Result<bool>;
    /// Makes every queued job of the instance's `direction` due now (a
    /// reconnect, a fixed integration).
    async fn wake_jobs(&self, instance_id: &str, direction: &str, now_ms: i64) -> Result<u64>;
    /// Dead letters back to the queue (of one integration, or all).
    async fn replay_dead_jobs(&self, integration_id: Option<&str>, now_ms: i64) -> Result<u64>;
    /// Dead letters of an integration: how many and the newest error.
    async fn dead_job_summary(&self, integration_id: &str) -> Result<(u64, Option<String>)>;
    /// Removes every job of the integration and returns them.
    async fn take_jobs(&self, integration_id: &str) -> Result<Vec<Job>>;

    async fn save_message_link(&self, link: &MessageLink) -> Result<()>;
    async fn find_message_by_wa(
        &self,
        integration_id: &str,
        wa_message_id: &str,
    ) -> Result<Option<MessageLink>>;
    /// Every WhatsApp message sent for one Chatwoot message (media split).
    async fn find_messages_by_chatwoot(
        &self,
        integration_id: &str,
        chatwoot_message_id: i64,
    ) -> Result<Vec<MessageLink>>;
    /// An agent message's one read before it is sent (both of its look-ups
    /// in one statement).
    async fn find_agent_message_links(
        &self,
        integration_id: &str,
        chatwoot_message_id: i64,
        conversation_id: i64,
    ) -> Result<AgentMessageLinks>;

    /// The customer's messages posted into the conversation since the last
    /// message sent from it (at most `limit`, newest first); the account's
    /// own messages (sent from the phone) are left out.
    async fn unread_inbound(
        &self,
        integration_id: &str,
        instance_id: &str,
        conversation_id: i64,
        limit: u32,
    ) -> Result<Vec<UnreadMessage>>;

    /// When the chat's contact last got its WhatsApp picture.
    async fn avatar_refresh(
        &self,
        integration_id: &str,
        chat_jid: &str,
    ) -> Result<Option<AvatarRefresh>>;
    async fn save_avatar_refresh(
        &self,
        integration_id: &str,
        chat_jid: &str,
        refresh: &AvatarRefresh,
    ) -> Result<()>;

    async fn find_chat(&self, integration_id: &str, chat_jid: &str) -> Result<Option<ChatLink>>;
    /// An inbound message's one read before it is posted: `None` when its
    /// WhatsApp id was posted already, else what [`Store::find_chats`] finds.
    async fn find_chats_unless_posted(
        &self,
        integration_id: &str,
        wa_message_id: &str,
        chat_jids: &[String],
    ) -> Result<Option<Vec<ChatLink>>>;
    /// The links stored under any of `chat_jids`, in no particular order.
    async fn find_chats(
        &self,
        integration_id: &str,
        chat_jids: &[String],
    ) -> Result<Vec<ChatLink>> {
        let mut found = Vec::new();
        for jid in chat_jids {
            found.extend(self.find_chat(integration_id, jid).await?);
        }
        Ok(found)
    }
    async fn find_chat_by_conversation(
        &self,
        integration_id: &str,
        conversation_id: i64,
    ) -> Result<Option<ChatLink>>;
    /// Creates or replaces the link of `(integration_id, chat_jid)`.
    async fn save_chat(&self, link: &ChatLink) -> Result<()>;
    async fn set_conversation_status(
        &self,
        integration_id: &str,
        conversation_id: i64,
        status: &str,
    ) -> Result<()>;
    /// Forgets links to a conversation Chatwoot no longer has.
    async fn forget_conversation(&self, integration_id: &str, conversation_id: i64) -> Result<()>;
    async fn set_reconciled(
        &self,
        integration_id: &str,
        conversation_id: i64,
        message_id: i64,
    ) -> Result<()>;

    /// Re-encrypts every secret under the current key; returns how many.
    async fn rekey_secrets(&self) -> Result<u64>;

    // Idempotent sends (`Idempotency-Key`).

    /// Takes `claim` when its key is free (or its last use is older than
    /// the window): `None`, the caller sends. Otherwise what the earlier
    /// request left.
    async fn claim_idempotency_key(
        &self,
        claim: &IdempotencyClaim,
    ) -> Result<Option<IdempotencyRecord>>;

    /// Stores the answer of the send that holds the claim.
    async fn finish_idempotency_key(
        &self,
        instance_id: &str,
        key: &str,
        response: &str,
    ) -> Result<()>;

    /// Gives up a claim whose send failed, so the key can be retried.
    async fn release_idempotency_key(&self, instance_id: &str, key: &str) -> Result<()>;
}
