//! `impl Store for SqlStore`: the trait's entry points, each delegating to
//! the module that owns the concern.

use async_trait::async_trait;
use zapgate_core::{
    Error, Result,
    account::{Account, NewAccount},
    instance::{Instance, NewInstance, SessionStatus},
    store::{Principal, Store},
    token::{Token, TokenHash},
};

use crate::{SqlStore, accounts, instances, rate_limit, rekey};

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
        accounts::create_account(self, new, token).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        accounts::list_accounts(self).await
    }

    async fn delete_account(&self, account_id: &str) -> Result<bool> {
        accounts::delete_account(self, account_id).await
    }

    async fn find_principal(&self, token: &TokenHash) -> Result<Option<Principal>> {
        accounts::find_principal(self, token).await
    }

    async fn create_instance(&self, account: &Account, new: &NewInstance) -> Result<Instance> {
        instances::create_instance(self, account, new).await
    }

    async fn list_instances(
        &self,
        account_id: &str,
        names: Option<&[String]>,
    ) -> Result<Vec<Instance>> {
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
        instances::set_session_status(self, instance_id, status).await
    }

    async fn paired_instances(&self) -> Result<Vec<Instance>> {
        instances::paired_instances(self).await
    }

    async fn delete_instance(&self, account_id: &str, instance_id: &str) -> Result<bool> {
        instances::delete_instance(self, account_id, instance_id).await
    }

    async fn count_request(&self, bucket: &str, window_start: i64) -> Result<u64> {
        rate_limit::count_request(self, bucket, window_start).await
    }

    async fn rekey_secrets(&self) -> Result<u64> {
        rekey::rekey_secrets(self).await
    }
}

impl SqlStore {
    /// The plaintext `Authorization` value of the instance's default webhook,
    /// `None` when it has none. Not yet part of the `Store` trait.
    pub async fn webhook_authorization(&self, instance_id: &str) -> Result<Option<String>> {
        instances::webhook_authorization(self, instance_id).await
    }
}
