//! Bulk seeding through the `Store` trait, before the server starts:
//! instances paired (so `serve` resumes them) with an active integration.

use std::sync::Arc;

use anyhow::Context;
use zapgate_core::{
    account::{Account, NewAccount},
    chatwoot::{ChatwootFlags, Integration, IntegrationStatus, webhook_url},
    instance::{ConnectionState, InstanceName, InstanceSettings, NewInstance, SessionStatus},
    store::Store,
    token::{Token, new_id, random_hex},
};
use zapgate_store::{SecretBox, SqlStore};

use crate::server::KEY;

pub struct Seeded {
    pub store: Arc<SqlStore>,
    pub account: Account,
    pub account_token: Token,
    pub count: usize,
}

pub async fn open(url: &str, max_instances: u32) -> anyhow::Result<Seeded> {
    let store = SqlStore::connect(url, SecretBox::new(KEY, Vec::new())).await?;
    store.migrate().await?;
    let account_token = Token::generate_account();
    let account = store
        .create_account(
            &NewAccount::parse("bench-seed", max_instances, None)?,
            &account_token,
        )
        .await?;
    Ok(Seeded {
        store: Arc::new(store),
        account,
        account_token,
        count: 0,
    })
}

/// Adds instances until there are `target`, `parallel` at a time.
pub async fn grow(
    seeded: &mut Seeded,
    target: usize,
    public_url: &str,
    chatwoot_base: &str,
    chatwoot_token: &str,
    parallel: usize,
) -> anyhow::Result<()> {
    let from = seeded.count;
    let mut tasks = Vec::new();
    for worker in 0..parallel {
        let store = seeded.store.clone();
        let account = seeded.account.clone();
        let public_url = public_url.to_owned();
        let base = chatwoot_base.to_owned();
        let token = chatwoot_token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut i = from + worker;
            while i < target {
                one(&*store, &account, i, &public_url, &base, &token).await?;
                i += parallel;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("seeding task")??;
    }
    seeded.count = target;
    Ok(())
}

async fn one(
    store: &dyn Store,
    account: &Account,
    i: usize,
    public_url: &str,
    chatwoot_base: &str,
    chatwoot_token: &str,
) -> anyhow::Result<()> {
    let instance = store
        .create_instance(
            account,
            &NewInstance {
                name: InstanceName::parse(&format!("seed{i:05}"))?,
                token: Token::generate_instance(),
                settings: InstanceSettings::default(),
                webhook: Default::default(),
                webhook_authorization: None,
            },
        )
        .await?;
    store
        .set_session_status(
            &instance.id,
            &SessionStatus {
                state: ConnectionState::Connected,
                number_jid: Some(format!("5511{:09}@s.whatsapp.net", 900_000_000 + i)),
            },
        )
        .await?;
    let id = new_id("int");
    let secret = Token::new(random_hex(24));
    let url = webhook_url(public_url, &id, &secret);
    store
        .save_integration(
            &Integration {
                id,
                instance_id: instance.id.clone(),
                base_url: chatwoot_base.to_owned(),
                account_id: 1,
                api_token: Token::new(chatwoot_token),
                inbox_id: 100_000 + i as i64,
                inbox_name: format!("WhatsApp seed{i:05}"),
                inbox_identifier: Some(random_hex(12)),
                webhook_secret: secret,
                inbox_secret: Some(Token::new(random_hex(16))),
                webhook_url: url,
                status: IntegrationStatus::Active,
                last_error: String::new(),
                flags: ChatwootFlags::default(),
                options: Default::default(),
                created_at_ms: zapgate_core::time::now_ms(),
            },
            None,
        )
        .await?;
    Ok(())
}
