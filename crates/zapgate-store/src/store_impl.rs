//! `impl Store for SqlStore`: the trait's entry points, each delegating to
//! the module that owns the concern.

use std::sync::Arc;

use async_trait::async_trait;
use zapgate_core::{
    Error, Result,
    account::{Account, NewAccount},
    chatwoot::{Integration, IntegrationStatus, IntegrationSummary},
    chatwoot_import::ImportProgress,
    idempotency::{IdempotencyClaim, IdempotencyRecord},
    instance::{Instance, InstanceSettings, NewInstance, Outage, SessionStatus, SettingsPatch},
    jobs::{
        AgentMessageLinks, AvatarRefresh, ChatLink, ClaimShare, Enqueued, Job, MessageLink, NewJob,
        UnreadMessage,
    },
    store::{Principal, Store},
    token::{Token, TokenHash},
};

use crate::{
    SqlStore, accounts, idempotency, imports, instances, integrations, jobs, links, rate_limit,
    rekey,
};

#[async_trait]
impl Store for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(Error::internal)
    }

    async fn create_account(&self, new: &NewAccount, token: &Token) -> Result<Account> {
        let done = accounts::create_account(self, new, token).await;
        // The token may be remembered as unknown.
        self.caches.forget_all();
        done
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        accounts::list_accounts(self).await
    }

    async fn delete_account(&self, account_id: &str) -> Result<bool> {
        // Cascades to the account's instances (their tokens) and integrations.
        let done = accounts::delete_account(self, account_id).await;
        self.caches.forget_all();
        done
    }

    async fn find_principal(&self, token: &TokenHash) -> Result<Option<Principal>> {
        accounts::find_principal(self, token).await
    }

    async fn create_instance(&self, account: &Account, new: &NewInstance) -> Result<Instance> {
        let done = instances::create_instance(self, account, new).await;
        self.caches.forget_all();
        done
    }

    async fn list_instances(
        &self,
        account_id: &str,
        names: Option<&[String]>,
    ) -> Result<Arc<[Instance]>> {
        instances::list_instances(self, account_id, names).await
    }

    async fn find_instance(&self, account_id: &str, name: &str) -> Result<Option<Instance>> {
        instances::find_instance(self, account_id, name).await
    }

    async fn find_instance_by_id(&self, instance_id: &str) -> Result<Option<Instance>> {
        instances::find_instance_by_id(self, instance_id).await
    }

    async fn instance_token(&self, instance_id: &str) -> Result<Token> {
        instances::instance_token(self, instance_id).await
    }

    async fn set_session_status(&self, instance_id: &str, status: &SessionStatus) -> Result<()> {
        let done = instances::set_session_status(self, instance_id, status).await;
        self.caches.forget_all();
        done
    }

    async fn outages(&self, started_before_ms: i64, limit: u32) -> Result<Vec<Outage>> {
        instances::outages(self, started_before_ms, limit).await
    }

    async fn note_outage(&self, outage: &Outage) -> Result<bool> {
        instances::note_outage(self, outage).await
    }

    async fn update_settings(
        &self,
        account_id: &str,
        instance_id: &str,
        patch: &SettingsPatch,
    ) -> Result<Option<InstanceSettings>> {
        let done = instances::update_settings(self, account_id, instance_id, patch).await;
        self.caches.forget_all();
        done
    }

    async fn paired_instances(&self, after: Option<&Instance>) -> Result<Vec<Instance>> {
        instances::paired_instances(self, after).await
    }

    async fn delete_instance(&self, account_id: &str, instance_id: &str) -> Result<bool> {
        // Revokes the instance's token; cascades to its integration.
        let done = instances::delete_instance(self, account_id, instance_id).await;
        self.caches.forget_all();
        done
    }

    async fn count_request(&self, bucket: &str, window_start: i64) -> Result<u64> {
        rate_limit::count_request(self, bucket, window_start).await
    }

    async fn rekey_secrets(&self) -> Result<u64> {
        rekey::rekey_secrets(self).await
    }

    async fn save_integration(
        &self,
        integration: &Integration,
        move_direction: Option<&str>,
    ) -> Result<u64> {
        let done = integrations::save(self, integration, move_direction).await;
        self.caches.forget_all();
        done
    }

    async fn find_integration(&self, instance_id: &str) -> Result<Option<Integration>> {
        integrations::find_by(self, "instance_id", instance_id).await
    }

    async fn find_integration_by_id(&self, integration_id: &str) -> Result<Option<Integration>> {
        integrations::find_by(self, "bridge_integration_id", integration_id).await
    }

    async fn list_integrations(&self) -> Result<Vec<Integration>> {
        integrations::list(self).await
    }

    async fn integration_summaries(&self, account_id: &str) -> Result<Arc<[IntegrationSummary]>> {
        integrations::summaries(self, account_id).await
    }

    async fn set_integration_status(
        &self,
        integration_id: &str,
        status: IntegrationStatus,
        last_error: &str,
    ) -> Result<()> {
        let done = integrations::set_status(self, integration_id, status, last_error).await;
        self.caches.forget_all();
        done
    }

    async fn set_integration_webhook_url(&self, integration_id: &str, url: &str) -> Result<()> {
        let done = integrations::set_webhook_url(self, integration_id, url).await;
        self.caches.forget_all();
        done
    }

    async fn delete_integration(&self, instance_id: &str) -> Result<bool> {
        let done = integrations::delete(self, instance_id).await;
        self.caches.forget_all();
        done
    }

    async fn save_import(&self, progress: &ImportProgress) -> Result<()> {
        let saved = imports::save(self, progress).await;
        self.caches.forget_all();
        saved
    }

    async fn find_import(&self, instance_id: &str) -> Result<Option<ImportProgress>> {
        imports::find(self, instance_id).await
    }

    async fn stale_imports(&self, now_ms: i64) -> Result<Vec<ImportProgress>> {
        imports::stale(self, now_ms).await
    }

    async fn claim_import(&self, instance_id: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let claimed = imports::claim(self, instance_id, now_ms, until_ms).await;
        self.caches.forget_all();
        claimed
    }

    async fn advance_import(&self, progress: &ImportProgress) -> Result<bool> {
        let advanced = imports::advance(self, progress).await;
        self.caches.forget_all();
        advanced
    }

    async fn enqueue_jobs(&self, new: &[NewJob]) -> Result<u64> {
        jobs::enqueue(self, new).await
    }

    async fn job_blob(&self, job_id: i64) -> Result<Option<Vec<u8>>> {
        jobs::blob(self, job_id).await
    }

    async fn enqueue_capped(&self, job: NewJob, cap: u32) -> Result<Enqueued> {
        jobs::enqueue_capped(self, job, cap).await
    }

    async fn claim_jobs(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        share: &ClaimShare,
    ) -> Result<Vec<Job>> {
        jobs::claim(self, now_ms, lease_until_ms, limit, share).await
    }

    async fn complete_job(&self, job_id: i64, link: Option<&MessageLink>) -> Result<()> {
        jobs::complete(self, job_id, link).await
    }

    async fn retry_job(&self, job_id: i64, run_at_ms: i64, error: &str) -> Result<()> {
        jobs::requeue(self, job_id, run_at_ms, error, 1).await
    }

    async fn defer_job(&self, job_id: i64, run_at_ms: i64, reason: &str) -> Result<()> {
        jobs::requeue(self, job_id, run_at_ms, reason, 0).await
    }

    async fn park_job(&self, job_id: i64, error: &str) -> Result<()> {
        let done = jobs::park(self, job_id, error).await;
        self.caches.forget_all();
        done
    }

    async fn park_orphan_job(
        &self,
        job_id: i64,
        integration_id: &str,
        error: &str,
    ) -> Result<bool> {
        let done = jobs::park_orphan(self, job_id, integration_id, error).await;
        self.caches.forget_all();
        done
    }

    async fn wake_jobs(&self, instance_id: &str, direction: &str, now_ms: i64) -> Result<u64> {
        jobs::wake(self, instance_id, direction, now_ms).await
    }

    async fn replay_dead_jobs(&self, integration_id: Option<&str>, now_ms: i64) -> Result<u64> {
        let done = jobs::replay_dead(self, integration_id, now_ms).await;
        self.caches.forget_all();
        done
    }

    async fn dead_job_summary(&self, integration_id: &str) -> Result<(u64, Option<String>)> {
        jobs::dead_summary(self, integration_id).await
    }

    async fn take_jobs(&self, integration_id: &str) -> Result<Vec<Job>> {
        let done = jobs::take(self, integration_id).await;
        self.caches.forget_all();
        done
    }

    async fn save_message_link(&self, link: &MessageLink) -> Result<()> {
        links::save_message(self, link).await
    }

    async fn find_message_by_wa(
        &self,
        integration_id: &str,
        wa_message_id: &str,
    ) -> Result<Option<MessageLink>> {
        links::find_message_by_wa(self, integration_id, wa_message_id).await
    }

    async fn find_messages_by_chatwoot(
        &self,
        integration_id: &str,
        chatwoot_message_id: i64,
    ) -> Result<Vec<MessageLink>> {
        links::find_messages_by_chatwoot(self, integration_id, chatwoot_message_id).await
    }

    async fn find_agent_message_links(
        &self,
        integration_id: &str,
        chatwoot_message_id: i64,
        conversation_id: i64,
    ) -> Result<AgentMessageLinks> {
        links::find_agent_message_links(self, integration_id, chatwoot_message_id, conversation_id)
            .await
    }

    async fn unread_inbound(
        &self,
        integration_id: &str,
        instance_id: &str,
        conversation_id: i64,
        limit: u32,
    ) -> Result<Vec<UnreadMessage>> {
        links::unread_inbound(self, integration_id, instance_id, conversation_id, limit).await
    }

    async fn avatar_refresh(
        &self,
        integration_id: &str,
        chat_jid: &str,
    ) -> Result<Option<AvatarRefresh>> {
        links::avatar_refresh(self, integration_id, chat_jid).await
    }

    async fn save_avatar_refresh(
        &self,
        integration_id: &str,
        chat_jid: &str,
        refresh: &AvatarRefresh,
    ) -> Result<()> {
        links::save_avatar_refresh(self, integration_id, chat_jid, refresh).await
    }

    async fn find_chat(&self, integration_id: &str, chat_jid: &str) -> Result<Option<ChatLink>> {
        links::find_chat(self, integration_id, chat_jid).await
    }

    async fn find_chats(
        &self,
        integration_id: &str,
        chat_jids: &[String],
    ) -> Result<Vec<ChatLink>> {
        links::find_chats(self, integration_id, chat_jids).await
    }

    async fn find_chats_unless_posted(
        &self,
        integration_id: &str,
        wa_message_id: &str,
        chat_jids: &[String],
    ) -> Result<Option<Vec<ChatLink>>> {
        links::find_chats_unless_posted(self, integration_id, wa_message_id, chat_jids).await
    }

    async fn find_chat_by_conversation(
        &self,
        integration_id: &str,
        conversation_id: i64,
    ) -> Result<Option<ChatLink>> {
        links::find_chat_by_conversation(self, integration_id, conversation_id).await
    }

    async fn save_chat(&self, link: &ChatLink) -> Result<()> {
        links::save_chat(self, link).await
    }

    async fn set_conversation_status(
        &self,
        integration_id: &str,
        conversation_id: i64,
        status: &str,
    ) -> Result<()> {
        links::set_conversation_status(self, integration_id, conversation_id, status).await
    }

    async fn forget_conversation(&self, integration_id: &str, conversation_id: i64) -> Result<()> {
        links::forget_conversation(self, integration_id, conversation_id).await
    }

    async fn set_reconciled(
        &self,
        integration_id: &str,
        conversation_id: i64,
        message_id: i64,
    ) -> Result<()> {
        links::set_reconciled(self, integration_id, conversation_id, message_id).await
    }

    async fn claim_idempotency_key(
        &self,
        claim: &IdempotencyClaim,
    ) -> Result<Option<IdempotencyRecord>> {
        idempotency::claim(self, claim).await
    }

    async fn finish_idempotency_key(
        &self,
        instance_id: &str,
        key: &str,
        response: &str,
    ) -> Result<()> {
        idempotency::finish(self, instance_id, key, response).await
    }

    async fn release_idempotency_key(&self, instance_id: &str, key: &str) -> Result<()> {
        idempotency::release(self, instance_id, key).await
    }
}

impl SqlStore {
    /// The plaintext `Authorization` value of the instance's default webhook,
    /// `None` when it has none. Not yet part of the `Store` trait.
    pub async fn webhook_authorization(&self, instance_id: &str) -> Result<Option<String>> {
        instances::webhook_authorization(self, instance_id).await
    }
}
