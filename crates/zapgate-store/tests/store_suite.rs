//! The store's behaviour suite: one set of async tests, written once against
//! a `Db` handle, run on SQLite (a temporary file) and on PostgreSQL (a fresh
//! database per test, dropped afterwards), so both backends keep one contract.
//!
//! PostgreSQL comes from `ZAPGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached the
//! PostgreSQL variants print `SKIPPED` and pass, unless
//! `ZAPGATE_TEST_REQUIRE_POSTGRES=1`, in which case they fail.

mod common;

use std::{collections::BTreeSet, future::Future, sync::Arc, time::Duration};

use sqlx::{AnyPool, Row as _, any::AnyPoolOptions};
use zapgate_core::{
    Error,
    account::{Account, NewAccount},
    chatwoot::{ChatwootFlags, Integration, IntegrationStatus},
    chatwoot_import::{ImportProgress, ImportState},
    event_log::{
        DeliveryOutcome, DeliveryStatus, EventName, EventStore, NewDelivery, NewEvent,
        WebhookSettings,
    },
    idempotency::{IdempotencyClaim, IdempotencyRecord, WINDOW_MS},
    instance::{
        ConnectionState, InstanceName, InstanceSettings, NewInstance, SessionStatus, SettingsPatch,
        WebhookConfig,
    },
    jobs::{ChatLink, ClaimShare, Enqueued, Job, JobStatus, MessageLink, NewJob},
    message_store::{MessageChange, MessageStatus, MessageWrite, StoredMessage},
    messages,
    store::{Principal, Store},
    token::Token,
};
use zapgate_store::{Backend, SecretBox, SqlStore};

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];

// ---------------------------------------------------------------- harness

/// One test database: its URL, and for SQLite the folder that holds it.
struct Db {
    url: String,
    backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    /// A migrated store on this database sealing with `secrets`.
    async fn open(&self, secrets: SecretBox) -> SqlStore {
        let store = SqlStore::connect(&self.url, secrets)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    /// A migrated store with key A.
    async fn store(&self) -> SqlStore {
        self.open(SecretBox::new(KEY_A, vec![])).await
    }

    /// A plain sqlx pool, to look at the rows as they are stored.
    async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("raw connect")
    }
}

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("data/zapgate.db").display());
    test(Db {
        url,
        backend: Backend::Sqlite,
        _dir: Some(dir),
    })
    .await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    common::with_postgres_database("zg", move |url| {
        test(Db {
            url,
            backend: Backend::Postgres,
            _dir: None,
        })
    })
    .await;
}

/// Declares every test twice: `sqlite::<name>` and `postgres::<name>`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_sqlite(crate::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_postgres(crate::$name).await;
                }
            )*
        }
    };
}

suite!(
    migrations_are_idempotent,
    accounts_are_created_listed_and_deleted_with_their_instances,
    principals_resolve_both_token_kinds,
    resolved_tokens_go_with_their_owner,
    an_unknown_token_is_not_looked_up_again_until_a_write_here,
    account_tokens_are_unique_and_concurrent_creates_succeed,
    create_instance_enforces_names_tokens_and_quota,
    concurrent_creates_never_exceed_the_quota,
    concurrent_creates_of_one_name_make_one_instance,
    list_instances_orders_and_filters,
    lookups_never_cross_accounts,
    sealed_secrets_decrypt_to_the_originals,
    session_status_drives_paired_instances,
    paired_instances_are_read_across_pages_once_each,
    an_outage_lasts_until_connected_and_is_noted_once,
    delete_instance_removes_it,
    settings_updates_merge_invalidate_the_cache_and_stay_in_the_account,
    count_request_is_per_bucket_and_window_and_shared,
    idempotency_keys_have_one_winner_keep_the_answer_and_expire,
    rekey_moves_secrets_to_the_current_key,
    secrets_are_absent_from_raw_rows,
    a_sealed_token_copied_to_another_row_does_not_decrypt,
    enqueue_skips_duplicate_dedupe_keys,
    concurrent_enqueues_keep_each_callers_order_and_count,
    claim_returns_only_the_head_of_each_chat,
    jobs_not_yet_due_are_not_claimed,
    expired_leases_are_reclaimed_live_ones_are_not,
    concurrent_claims_never_share_a_job,
    claims_take_turns_between_integrations_within_each_ones_cap,
    outbound_jobs_go_to_the_process_that_runs_the_session,
    completions_store_their_links_and_free_the_chat,
    retry_counts_attempts_and_defer_does_not,
    wake_jobs_makes_queued_jobs_due_now,
    replay_dead_jobs_requeues_dead_letters,
    dead_job_summary_counts_and_shows_the_newest_error,
    take_jobs_removes_and_returns_every_job,
    job_blobs_are_stored_with_their_job_and_go_when_it_ends,
    capped_enqueues_count_unfinished_jobs_per_integration_and_direction,
    concurrent_capped_enqueues_store_exactly_the_cap,
    capped_enqueues_of_several_integrations_in_one_batch_each_get_their_room,
    deleting_an_instance_deletes_its_jobs,
    message_links_round_trip_and_ignore_duplicates,
    chat_links_upsert_and_follow_their_conversation,
    an_inbound_lookup_finds_chats_unless_the_message_was_posted,
    an_agent_message_lookup_finds_its_links_and_its_conversations_chat,
    reconciled_watermark_only_grows,
    delete_integration_clears_its_links,
    integrations_are_listed_across_pages_once_each,
    replacing_an_integration_moves_its_jobs_of_the_direction_with_the_row,
    a_job_is_parked_as_an_orphan_only_while_its_integration_is_missing,
    a_missing_integration_is_remembered_until_a_write_here_or_a_second,
    cached_reads_follow_writes_here_at_once_and_elsewhere_within_a_second,
    claims_recover_after_the_database_drops_their_connections,
    a_claim_planned_on_an_empty_queue_probes_each_chat_by_its_index,
    unread_messages_are_found_without_reading_the_conversations_history,
    events_get_consecutive_sequences_and_are_stored_once,
    delivery_claims_cap_running_deliveries_per_webhook,
    a_delivery_claim_takes_the_oldest_due_per_webhook_and_overall,
    a_leased_delivery_runs_at_once_and_is_claimed_only_once_its_lease_lapsed,
    instance_webhook_blocks_are_adopted_once,
    messages_and_receipts_stored_together_end_at_each_ones_highest_status,
    an_import_row_is_claimed_once_advanced_only_while_running_and_goes_with_its_integration,
    history_is_stored_once_and_read_by_chat_oldest_first_within_the_window,
);

// ---------------------------------------------------------------- helpers

async fn account(store: &SqlStore, name: &str, max_instances: u32) -> (Account, Token) {
    let token = Token::generate_account();
    let new = NewAccount::parse(name, max_instances, None).unwrap();
    let account = store.create_account(&new, &token).await.unwrap();
    (account, token)
}

fn new_instance(name: &str) -> NewInstance {
    NewInstance {
        name: InstanceName::parse(name).unwrap(),
        token: Token::generate_instance(),
        settings: InstanceSettings::default(),
        webhook: WebhookConfig::default(),
        webhook_authorization: None,
    }
}

fn with_token(name: &str, token: &str) -> NewInstance {
    NewInstance {
        token: Token::new(token),
        ..new_instance(name)
    }
}

fn assert_conflict(result: zapgate_core::Result<impl std::fmt::Debug>, message: &str) {
    match result {
        Err(Error::Conflict(m)) => assert_eq!(m, message),
        other => panic!("expected Conflict({message:?}), got {other:?}"),
    }
}

fn assert_quota_exceeded(result: zapgate_core::Result<impl std::fmt::Debug>) {
    match result {
        Err(Error::Forbidden(m)) => assert_eq!(m, messages::INSTANCE_QUOTA_EXCEEDED),
        other => panic!("expected the quota error, got {other:?}"),
    }
}

fn names(instances: &[zapgate_core::instance::Instance]) -> Vec<&str> {
    instances.iter().map(|i| i.name.as_str()).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every value of every row of `table`, as bytes, whatever the column type.
async fn raw_values(pool: &AnyPool, table: &str) -> Vec<Vec<u8>> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut values = Vec::new();
    for row in &rows {
        for i in 0..row.len() {
            let value = if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                v.map(String::into_bytes)
            } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                v
            } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                v.map(|n| n.to_string().into_bytes())
            } else {
                panic!("{table}: column {i} has a type the dump does not know");
            };
            values.extend(value);
        }
    }
    values
}

// ---------------------------------------------------------------- tests

async fn migrations_are_idempotent(db: Db) {
    let store = db.store().await;
    store.migrate().await.unwrap();
    assert_eq!(store.backend(), db.backend);
    assert_eq!(store.backend_name(), db.backend.name());
    assert!(store.list_accounts().await.unwrap().is_empty());
}

async fn accounts_are_created_listed_and_deleted_with_their_instances(db: Db) {
    let store = db.store().await;
    let (one, one_token) = account(&store, "One", 5).await;
    let new = NewAccount::parse("Two", 7, Some(90)).unwrap();
    let two = store
        .create_account(&new, &Token::generate_account())
        .await
        .unwrap();
    assert_eq!(two.max_instances, 7);
    assert_eq!(two.rate_limit_per_minute, Some(90));

    let listed = store.list_accounts().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&one) && listed.contains(&two), "{listed:?}");

    let instance = store
        .create_instance(&one, &new_instance("main"))
        .await
        .unwrap();
    let instance_token = store.instance_token(&instance.id).await.unwrap();

    assert!(store.delete_account(&one.id).await.unwrap());
    assert!(!store.delete_account(&one.id).await.unwrap());
    assert_eq!(store.list_accounts().await.unwrap(), vec![two]);
    assert!(
        store
            .find_instance_by_id(&instance.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_instances(&one.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .find_principal(&one_token.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_principal(&instance_token.hash())
            .await
            .unwrap()
            .is_none()
    );
}

async fn account_tokens_are_unique_and_concurrent_creates_succeed(db: Db) {
    let store = Arc::new(db.store().await);
    let (acc, acc_token) = account(&store, "First", 2).await;
    let new = NewAccount::parse("Copycat", 1, None).unwrap();
    assert_conflict(
        store.create_account(&new, &acc_token).await,
        messages::TOKEN_IN_USE,
    );
    let instance = new_instance("inst");
    store.create_instance(&acc, &instance).await.unwrap();
    assert_conflict(
        store.create_account(&new, &instance.token).await,
        messages::TOKEN_IN_USE,
    );
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);

    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let new = NewAccount::parse(&format!("Tenant {n}"), 1, None).unwrap();
                store.create_account(&new, &Token::generate_account()).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.list_accounts().await.unwrap().len(), 11);
}

async fn principals_resolve_both_token_kinds(db: Db) {
    let store = db.store().await;
    let (acc, acc_token) = account(&store, "Acme", 3).await;
    let new = new_instance("sales");
    let instance = store.create_instance(&acc, &new).await.unwrap();

    match store.find_principal(&acc_token.hash()).await.unwrap() {
        Some(Principal::Account(found)) => assert_eq!(found, acc),
        other => panic!("expected the account, got {other:?}"),
    }
    match store.find_principal(&new.token.hash()).await.unwrap() {
        Some(Principal::Instance {
            account,
            instance_id,
        }) => {
            assert_eq!(account, acc);
            assert_eq!(instance_id, instance.id);
        }
        other => panic!("expected the instance, got {other:?}"),
    }
    let unknown = Token::new("zgi_nobody-has-this-token");
    assert!(
        store
            .find_principal(&unknown.hash())
            .await
            .unwrap()
            .is_none()
    );
}

/// Resolved tokens are cached: a deletion through the same store revokes
/// them at once, one through another process (another store on the same
/// database) within the documented second.
async fn resolved_tokens_go_with_their_owner(db: Db) {
    let store = db.store().await;
    let elsewhere = db.store().await;
    let (acc, acc_token) = account(&store, "Acme", 3).await;
    let doomed = new_instance("doomed");
    let instance = store.create_instance(&acc, &doomed).await.unwrap();
    let kept = new_instance("kept");
    store.create_instance(&acc, &kept).await.unwrap();
    for token in [&acc_token, &doomed.token, &kept.token] {
        for resolver in [&store, &elsewhere] {
            assert!(
                resolver
                    .find_principal(&token.hash())
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }

    assert!(store.delete_instance(&acc.id, &instance.id).await.unwrap());
    assert!(
        store
            .find_principal(&doomed.token.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_principal(&kept.token.hash())
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.delete_account(&acc.id).await.unwrap());
    for token in [&acc_token, &kept.token] {
        assert!(store.find_principal(&token.hash()).await.unwrap().is_none());
    }

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for token in [&acc_token, &doomed.token, &kept.token] {
        assert!(
            elsewhere
                .find_principal(&token.hash())
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// A token found nowhere is remembered: asking again makes no query (so an
/// account another process creates meanwhile is not seen here yet, the
/// documented delay), while a token created through this store works at once.
async fn an_unknown_token_is_not_looked_up_again_until_a_write_here(db: Db) {
    let store = db.store().await;
    let elsewhere = db.store().await;
    let token = Token::generate_account();
    assert!(store.find_principal(&token.hash()).await.unwrap().is_none());
    let new = NewAccount::parse("Later", 2, None).unwrap();
    let acc = elsewhere.create_account(&new, &token).await.unwrap();
    assert!(
        elsewhere
            .find_principal(&token.hash())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store.find_principal(&token.hash()).await.unwrap().is_none(),
        "the unknown token was looked up in the database again"
    );

    // An instance created here: its token, unknown a moment ago, works at
    // once, and the account's token too (every write forgets the unknowns).
    let created = new_instance("later");
    assert!(
        store
            .find_principal(&created.token.hash())
            .await
            .unwrap()
            .is_none()
    );
    store.create_instance(&acc, &created).await.unwrap();
    for token in [&created.token, &token] {
        assert!(store.find_principal(&token.hash()).await.unwrap().is_some());
    }

    // An account created here works at once too.
    let mine = Token::generate_account();
    assert!(store.find_principal(&mine.hash()).await.unwrap().is_none());
    let new = NewAccount::parse("Mine", 1, None).unwrap();
    store.create_account(&new, &mine).await.unwrap();
    assert!(store.find_principal(&mine.hash()).await.unwrap().is_some());
}

async fn create_instance_enforces_names_tokens_and_quota(db: Db) {
    let store = db.store().await;
    let (one, one_token) = account(&store, "One", 2).await;
    let (two, _) = account(&store, "Two", 5).await;

    let created = store
        .create_instance(&one, &new_instance("main"))
        .await
        .unwrap();
    assert_eq!(created.name, "main");
    assert_eq!(created.account_id, one.id);
    assert_eq!(created.session, SessionStatus::disconnected());
    assert_eq!(created.settings, InstanceSettings::default());

    assert_conflict(
        store.create_instance(&one, &new_instance("main")).await,
        messages::INSTANCE_NAME_TAKEN,
    );
    // The same name in another account is another instance.
    store
        .create_instance(&two, &new_instance("main"))
        .await
        .unwrap();

    // A custom token is unique on the whole server.
    let custom = "custom-token-0123456789";
    store
        .create_instance(&one, &with_token("custom", custom))
        .await
        .unwrap();
    assert_conflict(
        store
            .create_instance(&two, &with_token("other", custom))
            .await,
        messages::TOKEN_IN_USE,
    );
    // An account's token cannot become an instance token.
    assert_conflict(
        store
            .create_instance(&two, &with_token("stolen", one_token.expose()))
            .await,
        messages::TOKEN_IN_USE,
    );

    // "One" now holds two instances, its quota.
    assert_quota_exceeded(store.create_instance(&one, &new_instance("third")).await);
    assert_eq!(store.list_instances(&one.id, None).await.unwrap().len(), 2);

    let zero = account(&store, "Zero", 0).await.0;
    assert_quota_exceeded(store.create_instance(&zero, &new_instance("any")).await);
}

async fn concurrent_creates_never_exceed_the_quota(db: Db) {
    let store = Arc::new(db.store().await);
    let (acc, _) = account(&store, "Busy", 3).await;
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let store = Arc::clone(&store);
            let acc = acc.clone();
            tokio::spawn(async move {
                store
                    .create_instance(&acc, &new_instance(&format!("i{n}")))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            refused => assert_quota_exceeded(refused),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(store.list_instances(&acc.id, None).await.unwrap().len(), 3);

    // And two at once through tokio::join! on a fresh account.
    let (pair, _) = account(&store, "Pair", 1).await;
    let (new_a, new_b) = (new_instance("a"), new_instance("b"));
    let (a, b) = tokio::join!(
        store.create_instance(&pair, &new_a),
        store.create_instance(&pair, &new_b),
    );
    assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1);
    assert_eq!(store.list_instances(&pair.id, None).await.unwrap().len(), 1);
}

async fn concurrent_creates_of_one_name_make_one_instance(db: Db) {
    let store = Arc::new(db.store().await);
    let (acc, _) = account(&store, "Race", 50).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let acc = acc.clone();
            tokio::spawn(async move { store.create_instance(&acc, &new_instance("same")).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            refused => assert_conflict(refused, messages::INSTANCE_NAME_TAKEN),
        }
    }
    assert_eq!(created, 1);
}

async fn list_instances_orders_and_filters(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Lister", 10).await;
    let (other, _) = account(&store, "Other", 10).await;
    for name in ["alpha", "bravo", "charlie"] {
        store
            .create_instance(&acc, &new_instance(name))
            .await
            .unwrap();
    }
    store
        .create_instance(&other, &new_instance("delta"))
        .await
        .unwrap();

    let all = store.list_instances(&acc.id, None).await.unwrap();
    assert_eq!(names(&all), ["alpha", "bravo", "charlie"]);

    let wanted = ["charlie", "alpha", "nope", "delta"].map(String::from);
    let some = store.list_instances(&acc.id, Some(&wanted)).await.unwrap();
    assert_eq!(names(&some), ["alpha", "charlie"]);

    assert!(
        store
            .list_instances(&acc.id, Some(&[]))
            .await
            .unwrap()
            .is_empty()
    );
    let theirs = store.list_instances(&other.id, None).await.unwrap();
    assert_eq!(names(&theirs), ["delta"]);
    // Listed as looked up one by one, every field.
    for listed in all.iter().chain(some.iter()) {
        let found = store
            .find_instance(&acc.id, &listed.name)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(format!("{listed:?}"), format!("{found:?}"));
    }
    let (empty, _) = account(&store, "Empty", 10).await;
    assert!(
        store
            .list_instances(&empty.id, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn lookups_never_cross_accounts(db: Db) {
    let store = db.store().await;
    let (mine, _) = account(&store, "Mine", 5).await;
    let (theirs, _) = account(&store, "Theirs", 5).await;
    let instance = store
        .create_instance(&mine, &new_instance("private"))
        .await
        .unwrap();

    let found = store.find_instance(&mine.id, "private").await.unwrap();
    assert_eq!(found.map(|i| i.id), Some(instance.id.clone()));
    assert!(
        store
            .find_instance(&theirs.id, "private")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_instance(&mine.id, "absent")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .delete_instance(&theirs.id, &instance.id)
            .await
            .unwrap()
    );
    assert!(
        store
            .find_instance_by_id(&instance.id)
            .await
            .unwrap()
            .is_some()
    );
}

async fn sealed_secrets_decrypt_to_the_originals(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Sealed", 5).await;
    let settings = InstanceSettings {
        auto_reject_calls: true,
        call_reject_message: "Busy, text me".into(),
        ..InstanceSettings::default()
    };
    let webhook = WebhookConfig {
        enabled: true,
        url: "https://example.test/hook".into(),
        by_events: true,
        events: vec!["messages".into(), "connection".into()],
        media_base64: true,
    };
    let new = NewInstance {
        settings: settings.clone(),
        webhook: webhook.clone(),
        webhook_authorization: Some("Bearer hook-secret-42".into()),
        ..new_instance("hooked")
    };
    let created = store.create_instance(&acc, &new).await.unwrap();
    assert_eq!(store.instance_token(&created.id).await.unwrap(), new.token);
    assert_eq!(
        store.webhook_authorization(&created.id).await.unwrap(),
        Some("Bearer hook-secret-42".into())
    );
    let found = store
        .find_instance_by_id(&created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.settings, settings);
    assert_eq!(found.webhook, webhook);
    assert_eq!(found.created_at_ms, created.created_at_ms);

    let plain = store
        .create_instance(&acc, &new_instance("plain"))
        .await
        .unwrap();
    assert_eq!(store.webhook_authorization(&plain.id).await.unwrap(), None);
    assert!(matches!(
        store.instance_token("ins_missing").await,
        Err(Error::InstanceNotFound)
    ));
}

async fn session_status_drives_paired_instances(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Sessions", 10).await;
    let jid = Some("5511999990000@s.whatsapp.net".to_owned());
    let cases = [
        ("connected", ConnectionState::Connected, None, true),
        ("dropped", ConnectionState::Disconnected, jid.clone(), true),
        (
            "reconnecting",
            ConnectionState::Connecting,
            jid.clone(),
            true,
        ),
        ("logged-out", ConnectionState::LoggedOut, jid.clone(), false),
        ("pairing", ConnectionState::Connecting, None, false),
        ("fresh", ConnectionState::Disconnected, None, false),
    ];
    let mut expected = BTreeSet::new();
    for (name, state, number_jid, paired) in cases {
        let instance = store
            .create_instance(&acc, &new_instance(name))
            .await
            .unwrap();
        let status = SessionStatus { state, number_jid };
        store
            .set_session_status(&instance.id, &status)
            .await
            .unwrap();
        let found = store.find_instance(&acc.id, name).await.unwrap().unwrap();
        assert_eq!(found.session, status);
        if paired {
            expected.insert(instance.id);
        }
    }
    let paired: BTreeSet<String> = all_paired(&store).await.into_iter().collect();
    assert_eq!(paired, expected);
}

/// Every page of `paired_instances`, ids in the order given.
async fn all_paired(store: &SqlStore) -> Vec<String> {
    let mut ids = Vec::new();
    let mut page = store.paired_instances(None).await.unwrap();
    while !page.is_empty() {
        ids.extend(page.iter().map(|i| i.id.clone()));
        page = store.paired_instances(page.last()).await.unwrap();
    }
    ids
}

async fn paired_instances_are_read_across_pages_once_each(db: Db) {
    let store = db.store().await;
    let count = zapgate_store::PAIRED_PAGE + 2;
    let (acc, _) = account(&store, "Paired", count as u32 + 1).await;
    let status = SessionStatus {
        state: ConnectionState::Connected,
        number_jid: Some("5511999990000@s.whatsapp.net".to_owned()),
    };
    let mut expected = Vec::new();
    for n in 0..count {
        let instance = store
            .create_instance(&acc, &new_instance(&format!("paired{n:04}")))
            .await
            .unwrap();
        store
            .set_session_status(&instance.id, &status)
            .await
            .unwrap();
        expected.push((instance.created_at_ms, instance.id));
    }
    // One not paired, which no page may hold.
    store
        .create_instance(&acc, &new_instance("unpaired"))
        .await
        .unwrap();
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(all_paired(&store).await, expected);
}

async fn an_outage_lasts_until_connected_and_is_noted_once(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Outages", 10).await;
    let jid = Some("5511999990000@s.whatsapp.net".to_owned());
    let status = |state| SessionStatus {
        state,
        number_jid: jid.clone(),
    };
    let bridged = store
        .create_instance(&acc, &new_instance("bridged"))
        .await
        .unwrap();
    let plain = store
        .create_instance(&acc, &new_instance("plain"))
        .await
        .unwrap();
    store
        .save_integration(&integration("int_out", &bridged.id), None)
        .await
        .unwrap();
    let later = || zapgate_core::time::now_ms() + 60_000;
    for instance in [&bridged, &plain] {
        let connected = status(ConnectionState::Connected);
        store
            .set_session_status(&instance.id, &connected)
            .await
            .unwrap();
    }
    assert!(store.outages(later(), 10).await.unwrap().is_empty());

    // Lost: an outage, of the instance with an integration only; its start
    // stays through reconnection attempts.
    let before = zapgate_core::time::now_ms();
    for instance in [&bridged, &plain] {
        let dropped = status(ConnectionState::Disconnected);
        store
            .set_session_status(&instance.id, &dropped)
            .await
            .unwrap();
    }
    let found = store.outages(later(), 10).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let outage = found[0].clone();
    assert_eq!(outage.instance_id, bridged.id);
    assert!(outage.since_ms >= before, "{outage:?}");
    assert!(store.outages(outage.since_ms, 10).await.unwrap().is_empty());
    for state in [ConnectionState::Connecting, ConnectionState::Disconnected] {
        store
            .set_session_status(&bridged.id, &status(state))
            .await
            .unwrap();
    }
    assert_eq!(
        store.outages(later(), 10).await.unwrap(),
        vec![outage.clone()]
    );

    // Noted once, by one caller; then no longer listed.
    assert!(store.note_outage(&outage).await.unwrap());
    assert!(!store.note_outage(&outage).await.unwrap());
    assert!(store.outages(later(), 10).await.unwrap().is_empty());

    // Connected again: over. The next loss is a new outage.
    let connected = status(ConnectionState::Connected);
    store
        .set_session_status(&bridged.id, &connected)
        .await
        .unwrap();
    assert!(!store.note_outage(&outage).await.unwrap());
    let dropped = status(ConnectionState::Disconnected);
    store
        .set_session_status(&bridged.id, &dropped)
        .await
        .unwrap();
    let next = store.outages(later(), 10).await.unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].since_ms >= outage.since_ms);
    assert!(store.note_outage(&next[0]).await.unwrap());

    // A logout, or a session no longer paired, is not an outage.
    for ended in [
        status(ConnectionState::LoggedOut),
        SessionStatus::disconnected(),
    ] {
        store
            .set_session_status(&bridged.id, &connected)
            .await
            .unwrap();
        store.set_session_status(&bridged.id, &ended).await.unwrap();
        assert!(store.outages(later(), 10).await.unwrap().is_empty());
    }
}

async fn delete_instance_removes_it(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Deleter", 5).await;
    let new = new_instance("doomed");
    let instance = store.create_instance(&acc, &new).await.unwrap();
    let kept = store
        .create_instance(&acc, &new_instance("kept"))
        .await
        .unwrap();

    assert!(store.delete_instance(&acc.id, &instance.id).await.unwrap());
    assert!(!store.delete_instance(&acc.id, &instance.id).await.unwrap());
    assert!(
        store
            .find_instance(&acc.id, "doomed")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_principal(&new.token.hash())
            .await
            .unwrap()
            .is_none()
    );
    let left = store.list_instances(&acc.id, None).await.unwrap();
    assert_eq!(names(&left), ["kept"]);
    assert_eq!(left[0].id, kept.id);
    // The name and the token are free again.
    store.create_instance(&acc, &new).await.unwrap();
}

async fn settings_updates_merge_invalidate_the_cache_and_stay_in_the_account(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Tuner", 5).await;
    let (other, _) = account(&store, "Other", 5).await;
    let instance = store
        .create_instance(&acc, &new_instance("tuned"))
        .await
        .unwrap();
    // Cached before the write: the write must drop it.
    let before = store
        .find_instance(&acc.id, "tuned")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.settings, InstanceSettings::default());

    let groups = SettingsPatch {
        ignore_group_messages: Some(true),
        call_reject_message: Some("Só mensagens".into()),
        ..SettingsPatch::default()
    };
    let after = store
        .update_settings(&acc.id, &instance.id, &groups)
        .await
        .unwrap()
        .unwrap();
    assert!(after.ignore_group_messages);
    let status = SettingsPatch {
        ignore_status: Some(true),
        ..SettingsPatch::default()
    };
    store
        .update_settings(&acc.id, &instance.id, &status)
        .await
        .unwrap();
    for found in [
        store
            .find_instance(&acc.id, "tuned")
            .await
            .unwrap()
            .unwrap(),
        store
            .find_instance_by_id(&instance.id)
            .await
            .unwrap()
            .unwrap(),
        store.list_instances(&acc.id, None).await.unwrap()[0].clone(),
    ] {
        assert!(found.settings.ignore_group_messages, "earlier field kept");
        assert!(found.settings.ignore_status);
        assert_eq!(found.settings.call_reject_message, "Só mensagens");
        assert!(found.settings.disable_history_sync);
    }

    // Concurrent partial updates of different fields all land.
    let patches = [
        SettingsPatch {
            auto_read_messages: Some(true),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            keep_online_status: Some(true),
            ..SettingsPatch::default()
        },
        SettingsPatch {
            auto_reject_calls: Some(true),
            ..SettingsPatch::default()
        },
    ];
    let tasks: Vec<_> = patches
        .into_iter()
        .map(|patch| {
            let (store, account_id, instance_id) =
                (store.clone(), acc.id.clone(), instance.id.clone());
            tokio::spawn(async move {
                store
                    .update_settings(&account_id, &instance_id, &patch)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap().unwrap();
    }
    let merged = store
        .find_instance_by_id(&instance.id)
        .await
        .unwrap()
        .unwrap();
    assert!(merged.settings.auto_read_messages);
    assert!(merged.settings.keep_online_status);
    assert!(merged.settings.auto_reject_calls);
    assert!(merged.settings.ignore_status);

    // A refused patch changes nothing.
    let refused = SettingsPatch {
        ignore_status: Some(false),
        disable_history_sync: Some(false),
        ..SettingsPatch::default()
    };
    assert!(matches!(
        store.update_settings(&acc.id, &instance.id, &refused).await,
        Err(Error::BadRequest(_))
    ));
    let kept = store
        .find_instance_by_id(&instance.id)
        .await
        .unwrap()
        .unwrap();
    assert!(kept.settings.ignore_status);

    // A row from before `disableHistorySync: false` was refused reads as
    // what zapgate does (history sync off), and still takes updates.
    let raw = db.raw().await;
    let legacy = serde_json::to_string(&InstanceSettings {
        disable_history_sync: false,
        ..InstanceSettings::default()
    })
    .unwrap();
    assert!(legacy.contains("\"disableHistorySync\":false"), "{legacy}");
    sqlx::query("UPDATE instances SET settings = $1 WHERE id = $2")
        .bind(&legacy)
        .bind(&instance.id)
        .execute(&raw)
        .await
        .unwrap();
    let fresh = db.store().await;
    let read = fresh
        .find_instance_by_id(&instance.id)
        .await
        .unwrap()
        .unwrap();
    assert!(read.settings.disable_history_sync);
    let updated = fresh
        .update_settings(&acc.id, &instance.id, &status)
        .await
        .unwrap()
        .unwrap();
    assert!(updated.disable_history_sync && updated.ignore_status);

    // Another account's instance, or none, is not there.
    assert!(
        store
            .update_settings(&other.id, &instance.id, &status)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .update_settings(&acc.id, "ins_missing", &status)
            .await
            .unwrap()
            .is_none()
    );
}

async fn count_request_is_per_bucket_and_window_and_shared(db: Db) {
    let first = db.store().await;
    let second = db.store().await;
    let window = 1_800_000_000;
    for n in 1..=6u64 {
        let store = if n % 2 == 0 { &first } else { &second };
        assert_eq!(store.count_request("acc:1", window).await.unwrap(), n);
    }
    assert_eq!(first.count_request("acc:2", window).await.unwrap(), 1);
    assert_eq!(second.count_request("acc:1", window + 60).await.unwrap(), 1);
    assert_eq!(first.count_request("acc:1", window + 60).await.unwrap(), 2);
    assert_eq!(second.count_request("acc:1", window).await.unwrap(), 7);

    // A window opened much later sweeps the old ones away.
    assert_eq!(
        first.count_request("acc:3", window + 3600).await.unwrap(),
        1
    );
    assert_eq!(second.count_request("acc:1", window).await.unwrap(), 1);

    // Concurrent increments are not lost.
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { store.count_request("hot", window).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    assert_eq!(seen, (1..=20).collect());
}

/// Claims `key` of `instance` for a request hashing to `hash`, at `now_ms`.
async fn claim_key(
    store: &SqlStore,
    instance: &str,
    key: &str,
    hash: &str,
    now_ms: i64,
) -> Option<IdempotencyRecord> {
    let claim = IdempotencyClaim {
        instance_id: instance.to_owned(),
        key: key.to_owned(),
        request_hash: hash.to_owned(),
        now_ms,
    };
    store.claim_idempotency_key(&claim).await.unwrap()
}

fn running(hash: &str) -> Option<IdempotencyRecord> {
    Some(IdempotencyRecord {
        request_hash: hash.into(),
        response: None,
    })
}

async fn idempotency_keys_have_one_winner_keep_the_answer_and_expire(db: Db) {
    let first = db.store().await;
    let second = db.store().await;
    let instance = job_instance(&first, "idem").await;
    let now = 1_800_000_000_000;

    // Racing claims of one key, from two stores: exactly one wins.
    let racers: Vec<_> = (0..16)
        .map(|n| {
            let store = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let instance = instance.clone();
            tokio::spawn(async move { claim_key(&store, &instance, "k", "h1", now).await })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        match racer.await.unwrap() {
            None => winners += 1,
            other => assert_eq!(other, running("h1")),
        }
    }
    assert_eq!(winners, 1);

    // The answer is kept for the window and shown to a repeat.
    first
        .finish_idempotency_key(&instance, "k", r#"{"ok":1}"#)
        .await
        .unwrap();
    let repeat = claim_key(&second, &instance, "k", "h2", now + WINDOW_MS - 1).await;
    assert_eq!(
        repeat,
        Some(IdempotencyRecord {
            request_hash: "h1".into(),
            response: Some(r#"{"ok":1}"#.into()),
        })
    );

    // Past the window the key is claimed as new, its answer forgotten (the
    // row taken over: `second` pruned 2 ms ago, so it does not prune again).
    let later = now + WINDOW_MS + 1;
    assert_eq!(claim_key(&second, &instance, "k", "h3", later).await, None);
    assert_eq!(
        claim_key(&first, &instance, "k", "h4", later).await,
        running("h3")
    );

    // A released claim (the send failed) is free again; an answered one
    // is not released.
    first.release_idempotency_key(&instance, "k").await.unwrap();
    assert_eq!(claim_key(&first, &instance, "k", "h5", later).await, None);
    first
        .finish_idempotency_key(&instance, "k", "{}")
        .await
        .unwrap();
    first.release_idempotency_key(&instance, "k").await.unwrap();
    let answered = claim_key(&first, &instance, "k", "h6", later).await;
    assert_eq!(answered.and_then(|r| r.response).as_deref(), Some("{}"));
}

async fn rekey_moves_secrets_to_the_current_key(db: Db) {
    let old = db.open(SecretBox::new(KEY_A, vec![])).await;
    let (acc, _) = account(&old, "Rotating", 5).await;
    let hooked = NewInstance {
        webhook_authorization: Some("Basic dXNlcjpwYXNz".into()),
        ..new_instance("hooked")
    };
    let plain = new_instance("plain");
    let hooked_id = old.create_instance(&acc, &hooked).await.unwrap().id;
    let plain_id = old.create_instance(&acc, &plain).await.unwrap().id;
    old.close().await;

    let rotating = db.open(SecretBox::new(KEY_B, vec![KEY_A])).await;
    assert_eq!(
        rotating.instance_token(&hooked_id).await.unwrap(),
        hooked.token
    );
    // Two tokens and one webhook authorization.
    assert_eq!(rotating.rekey_secrets().await.unwrap(), 3);
    assert_eq!(rotating.rekey_secrets().await.unwrap(), 0);
    rotating.close().await;

    let new_only = db.open(SecretBox::new(KEY_B, vec![])).await;
    assert_eq!(
        new_only.instance_token(&hooked_id).await.unwrap(),
        hooked.token
    );
    assert_eq!(
        new_only.instance_token(&plain_id).await.unwrap(),
        plain.token
    );
    assert_eq!(
        new_only.webhook_authorization(&hooked_id).await.unwrap(),
        hooked.webhook_authorization
    );

    let old_only = db.open(SecretBox::new(KEY_A, vec![])).await;
    assert!(old_only.instance_token(&hooked_id).await.is_err());
}

async fn secrets_are_absent_from_raw_rows(db: Db) {
    let store = db.store().await;
    let (acc, acc_token) = account(&store, "Raw", 5).await;
    let authorization = "Bearer very-secret-webhook-authorization";
    let new = NewInstance {
        webhook_authorization: Some(authorization.into()),
        ..with_token("raw", "custom-instance-token-that-must-not-leak")
    };
    let instance = store.create_instance(&acc, &new).await.unwrap();

    let raw = db.raw().await;
    let instances = raw_values(&raw, "instances").await.concat();
    let accounts = raw_values(&raw, "accounts").await.concat();
    // The dump does see the rows...
    assert!(contains(&instances, instance.id.as_bytes()));
    assert!(contains(&instances, new.token.hash().0.as_bytes()));
    assert!(contains(&accounts, acc_token.hash().0.as_bytes()));
    // ...but no secret in the clear.
    for secret in [
        new.token.expose(),
        acc_token.expose(),
        authorization,
        "very-secret-webhook",
    ] {
        assert!(
            !contains(&instances, secret.as_bytes()),
            "{secret} in instances"
        );
        assert!(
            !contains(&accounts, secret.as_bytes()),
            "{secret} in accounts"
        );
    }
    raw.close().await;
}

async fn a_sealed_token_copied_to_another_row_does_not_decrypt(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Copier", 5).await;
    let victim = store
        .create_instance(&acc, &new_instance("victim"))
        .await
        .unwrap();
    let thief = store
        .create_instance(&acc, &new_instance("thief"))
        .await
        .unwrap();

    let raw = db.raw().await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT token_sealed FROM instances WHERE id = $1")
        .bind(&victim.id)
        .fetch_one(&raw)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE instances SET token_sealed = $1, webhook_authorization_sealed = $1 WHERE id = $2",
    )
    .bind(sealed.clone())
    .bind(&thief.id)
    .execute(&raw)
    .await
    .unwrap();
    // And the token moved to the other column of its own row.
    sqlx::query("UPDATE instances SET webhook_authorization_sealed = $1 WHERE id = $2")
        .bind(sealed)
        .bind(&victim.id)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    assert!(matches!(
        store.instance_token(&thief.id).await,
        Err(Error::Internal { .. })
    ));
    assert!(store.webhook_authorization(&thief.id).await.is_err());
    assert!(store.webhook_authorization(&victim.id).await.is_err());
    assert!(store.instance_token(&victim.id).await.is_ok());
}

// ---------------------------------------------------------------- bridge jobs and links

const NOW: i64 = 1_800_000_000_000;
const LEASE: i64 = 30_000;

/// An instance to hang jobs on (jobs reference their instance).
async fn job_instance(store: &SqlStore, name: &str) -> String {
    let (acc, _) = account(store, &format!("Jobs {name}"), 5).await;
    store
        .create_instance(&acc, &new_instance(name))
        .await
        .unwrap()
        .id
}

fn new_job(instance_id: &str, integration_id: &str, chat: &str, key: &str, run_at: i64) -> NewJob {
    NewJob {
        integration_id: integration_id.to_owned(),
        instance_id: instance_id.to_owned(),
        direction: "inbound",
        chat_key: chat.to_owned(),
        dedupe_key: key.to_owned(),
        payload: format!("{{\"key\":\"{key}\"}}"),
        run_at_ms: run_at,
        blob: None,
    }
}

/// An agent reply's job, alone in its chat, due now.
fn outbound_job(instance_id: &str, integration_id: &str, key: &str) -> NewJob {
    NewJob {
        direction: "outbound",
        ..new_job(instance_id, integration_id, key, key, NOW)
    }
}

async fn claim(store: &SqlStore, now: i64) -> Vec<Job> {
    store
        .claim_jobs(now, now + LEASE, 100, &ClaimShare::default())
        .await
        .unwrap()
}

fn keys(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.dedupe_key.as_str()).collect()
}

/// The id of the job stored under `key`, claiming nothing.
async fn job_id(db: &Db, key: &str) -> i64 {
    let raw = db.raw().await;
    let id = sqlx::query_scalar("SELECT id FROM bridge_jobs WHERE dedupe_key = $1")
        .bind(key)
        .fetch_one(&raw)
        .await
        .unwrap();
    raw.close().await;
    id
}

async fn enqueue_skips_duplicate_dedupe_keys(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "dedupe").await;
    let a = new_job(&ins, "int_1", "chat", "a", NOW);
    let again = NewJob {
        payload: "other".into(),
        ..a.clone()
    };
    let b = new_job(&ins, "int_1", "other-chat", "b", NOW);
    assert_eq!(store.enqueue_jobs(&[]).await.unwrap(), 0);
    // A duplicate within the batch and one across batches are both skipped.
    assert_eq!(
        store
            .enqueue_jobs(&[a.clone(), b.clone(), again.clone()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.enqueue_jobs(&[again, b]).await.unwrap(), 0);

    let before = zapgate_core::time::now_ms();
    let jobs = claim(&store, NOW).await;
    assert_eq!(keys(&jobs), ["a", "b"]);
    let got = &jobs[0];
    assert!(jobs[0].id < jobs[1].id);
    assert_eq!(got.integration_id, "int_1");
    assert_eq!(got.instance_id, ins);
    assert_eq!(got.direction, "inbound");
    assert_eq!(got.chat_key, "chat");
    assert_eq!(got.payload, a.payload, "the first payload is kept");
    assert_eq!(got.status, JobStatus::Running);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.last_error, "");
    assert!(got.created_at_ms > 0 && got.created_at_ms <= before + 1000);

    // Once the job is gone its key may be used again.
    store.complete_job(got.id, None).await.unwrap();
    assert_eq!(store.enqueue_jobs(&[a]).await.unwrap(), 1);
}

/// Enqueues arriving together are stored together: each caller's jobs keep
/// their order, each caller learns how many of its jobs were new, and a
/// hand-over longer than one statement holds is stored whole.
async fn concurrent_enqueues_keep_each_callers_order_and_count(db: Db) {
    let store = Arc::new(db.store().await);
    let ins = job_instance(&store, "together").await;
    let callers: Vec<_> = (0..30)
        .map(|c| {
            let store = store.clone();
            // Two callers share each `shared` key: only one stores it.
            let jobs = [
                new_job(&ins, "int_1", &format!("chat{c}"), &format!("c{c}-a"), NOW),
                new_job(&ins, "int_1", &format!("chat{c}"), &format!("c{c}-b"), NOW),
                new_job(&ins, "int_1", "shared", &format!("shared{}", c / 2), NOW),
            ];
            tokio::spawn(async move { store.enqueue_jobs(&jobs).await })
        })
        .collect();
    let mut new = 0;
    for caller in callers {
        new += caller.await.unwrap().unwrap();
    }
    assert_eq!(new, 75, "each stored key counted once");

    // Taken in id order: each caller's jobs kept their order.
    let stored = store.take_jobs("int_1").await.unwrap();
    assert_eq!(stored.len(), 75);
    for c in 0..30 {
        let chat = format!("chat{c}");
        let keys: Vec<_> = stored
            .iter()
            .filter(|j| j.chat_key == chat)
            .map(|j| j.dedupe_key.clone())
            .collect();
        assert_eq!(keys, [format!("c{c}-a"), format!("c{c}-b")]);
    }

    let long: Vec<_> = (0..1_200)
        .map(|n| new_job(&ins, "int_2", "long", &format!("long{n}"), NOW))
        .collect();
    assert_eq!(store.enqueue_jobs(&long).await.unwrap(), 1_200);
    assert_eq!(store.enqueue_jobs(&long[..10]).await.unwrap(), 0);
    let taken = store.take_jobs("int_2").await.unwrap();
    let keys: Vec<_> = taken.iter().map(|j| j.dedupe_key.clone()).collect();
    let expected: Vec<_> = (0..1_200).map(|n| format!("long{n}")).collect();
    assert_eq!(keys, expected, "stored in order");
}

async fn claim_returns_only_the_head_of_each_chat(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "heads").await;
    let jobs = [
        new_job(&ins, "int_1", "A", "a1", NOW),
        new_job(&ins, "int_1", "A", "a2", NOW),
        new_job(&ins, "int_1", "B", "b1", NOW),
        new_job(&ins, "int_1", "A", "a3", NOW),
        // The same chat key on another integration is another chat.
        new_job(&ins, "int_2", "A", "other", NOW),
    ];
    assert_eq!(store.enqueue_jobs(&jobs).await.unwrap(), 5);

    let first = claim(&store, NOW).await;
    assert_eq!(keys(&first), ["a1", "b1", "other"]);
    // A1 is running: A2 waits behind it.
    assert!(claim(&store, NOW).await.is_empty());
    for done in &first[1..] {
        store.complete_job(done.id, None).await.unwrap();
    }

    store.complete_job(first[0].id, None).await.unwrap();
    let a2 = claim(&store, NOW).await;
    assert_eq!(keys(&a2), ["a2"]);

    // Retried into the future, A2 still holds A3 back.
    store
        .retry_job(a2[0].id, NOW + 60_000, "chatwoot 502")
        .await
        .unwrap();
    assert!(claim(&store, NOW + 1).await.is_empty());
    let again = claim(&store, NOW + 60_000).await;
    assert_eq!(keys(&again), ["a2"]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error, "chatwoot 502");

    // Dead, it no longer does.
    store.park_job(a2[0].id, "gave up").await.unwrap();
    assert_eq!(keys(&claim(&store, NOW + 60_000).await), ["a3"]);

    // The limit is honoured, in id order.
    let more: Vec<_> = (0..5)
        .map(|n| new_job(&ins, "int_3", &format!("c{n}"), &format!("c{n}"), NOW))
        .collect();
    store.enqueue_jobs(&more).await.unwrap();
    let two = store
        .claim_jobs(NOW, NOW + LEASE, 2, &ClaimShare::default())
        .await
        .unwrap();
    assert_eq!(keys(&two), ["c0", "c1"]);
    assert!(
        store
            .claim_jobs(NOW, NOW + LEASE, 0, &ClaimShare::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn jobs_not_yet_due_are_not_claimed(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "due").await;
    store
        .enqueue_jobs(&[new_job(&ins, "int_1", "A", "later", NOW + 5_000)])
        .await
        .unwrap();
    assert!(claim(&store, NOW).await.is_empty());
    assert!(claim(&store, NOW + 4_999).await.is_empty());
    assert_eq!(keys(&claim(&store, NOW + 5_000).await), ["later"]);
}

async fn expired_leases_are_reclaimed_live_ones_are_not(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "lease").await;
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_1", "A", "crashed", NOW),
            new_job(&ins, "int_1", "A", "behind", NOW),
        ])
        .await
        .unwrap();
    let first = claim(&store, NOW).await;
    assert_eq!(keys(&first), ["crashed"]);
    // The lease runs until NOW + LEASE.
    assert!(claim(&store, NOW + 10_000).await.is_empty());
    assert!(claim(&store, NOW + LEASE).await.is_empty());
    let reclaimed = claim(&store, NOW + LEASE + 1).await;
    assert_eq!(keys(&reclaimed), ["crashed"]);
    assert_eq!(reclaimed[0].id, first[0].id);
    assert_eq!(reclaimed[0].status, JobStatus::Running);
    // A worker that died mid-job counts as an attempt.
    assert_eq!(reclaimed[0].attempts, 1);
    // Leased again: live until NOW + 2 * LEASE + 1.
    assert!(claim(&store, NOW + 2 * LEASE).await.is_empty());
}

/// One integration's backlog does not fill a claim: each integration's
/// oldest job comes before anyone's second, and an integration at its cap
/// (counting what runs now) gets nothing more.
async fn claims_take_turns_between_integrations_within_each_ones_cap(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "turns").await;
    let mut jobs: Vec<_> = (0..10)
        .map(|n| new_job(&ins, "int_hog", &format!("h{n}"), &format!("h{n}"), NOW))
        .collect();
    jobs.extend((0..3).map(|n| new_job(&ins, "int_b", &format!("b{n}"), &format!("b{n}"), NOW)));
    jobs.push(new_job(&ins, "int_c", "c0", "c0", NOW));
    store.enqueue_jobs(&jobs).await.unwrap();

    let share = |cap: u32, running: &[(&str, u32)]| ClaimShare {
        per_integration: cap,
        running: running
            .iter()
            .map(|(id, n)| ((*id).to_owned(), *n))
            .collect(),
        session_owner: None,
    };
    let first = store
        .claim_jobs(NOW, NOW + LEASE, 5, &share(8, &[]))
        .await
        .unwrap();
    assert_eq!(keys(&first), ["h0", "h1", "b0", "b1", "c0"]);

    // The hog runs its cap (2 claimed above, 1 elsewhere counted as 2 here):
    // it is skipped; int_b, running 2 of 3, gets one more.
    let second = store
        .claim_jobs(
            NOW,
            NOW + LEASE,
            5,
            &share(3, &[("int_hog", 3), ("int_b", 2)]),
        )
        .await
        .unwrap();
    assert_eq!(keys(&second), ["b2"]);

    // With room again, the hog's next ones come, up to its cap.
    let third = store
        .claim_jobs(NOW, NOW + LEASE, 5, &share(3, &[("int_hog", 1)]))
        .await
        .unwrap();
    assert_eq!(keys(&third), ["h2", "h3"]);
}

/// Several processes on one database: an agent reply can only be sent by
/// the process running the instance's WhatsApp session, so the others
/// leave it; inbound work, and outbound work of a session nobody runs (or
/// whose process stopped renewing), goes to anyone.
async fn outbound_jobs_go_to_the_process_that_runs_the_session(db: Db) {
    let store = db.store().await;
    let here = job_instance(&store, "here").await;
    let there = job_instance(&store, "there").await;
    let lapsed = job_instance(&store, "lapsed").await;
    let nobody = job_instance(&store, "nobody").await;
    let outbound = |instance: &str, key: &str| NewJob {
        direction: "outbound",
        ..new_job(instance, "int_1", key, key, NOW)
    };
    store
        .enqueue_jobs(&[
            outbound(&here, "reply-here"),
            outbound(&there, "reply-there"),
            new_job(&there, "int_1", "in-there", "in-there", NOW),
            outbound(&lapsed, "reply-lapsed"),
            outbound(&nobody, "reply-nobody"),
        ])
        .await
        .unwrap();
    assert!(
        store
            .acquire_wa_lease(&here, "me", NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_wa_lease(&there, "other", NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_wa_lease(&lapsed, "other", NOW - 2 * LEASE, NOW - LEASE)
            .await
            .unwrap()
    );

    let mine = ClaimShare {
        session_owner: Some("me".to_owned()),
        ..ClaimShare::default()
    };
    let claimed = store.claim_jobs(NOW, NOW + LEASE, 10, &mine).await.unwrap();
    assert_eq!(
        keys(&claimed),
        ["reply-here", "in-there", "reply-lapsed", "reply-nobody"]
    );
    // The process running the session takes its reply.
    let theirs = ClaimShare {
        session_owner: Some("other".to_owned()),
        ..ClaimShare::default()
    };
    let claimed = store
        .claim_jobs(NOW, NOW + LEASE, 10, &theirs)
        .await
        .unwrap();
    assert_eq!(keys(&claimed), ["reply-there"]);
}

async fn concurrent_claims_never_share_a_job(db: Db) {
    let one = db.store().await;
    let two = db.store().await;
    let ins = job_instance(&one, "race").await;
    let total = 120;
    let jobs: Vec<_> = (0..total)
        .map(|n| new_job(&ins, "int_1", &format!("chat{n}"), &format!("job{n}"), NOW))
        .collect();
    assert_eq!(one.enqueue_jobs(&jobs).await.unwrap(), total);

    async fn drain(store: &SqlStore) -> Vec<i64> {
        let mut ids = Vec::new();
        loop {
            let claimed = store
                .claim_jobs(NOW, NOW + LEASE, 7, &ClaimShare::default())
                .await
                .unwrap();
            if claimed.is_empty() {
                return ids;
            }
            ids.extend(claimed.iter().map(|j| j.id));
        }
    }
    let (a, b) = tokio::join!(drain(&one), drain(&two));
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), a.len() + b.len(), "a job was claimed twice");
    assert_eq!(all.len() as u64, total);
    assert!(claim(&one, NOW).await.is_empty());
}

/// Completions arriving together are stored together; each saves its link,
/// a link already stored stays as it was, and the chat's next job is free.
async fn completions_store_their_links_and_free_the_chat(db: Db) {
    let store = Arc::new(db.store().await);
    let ins = job_instance(&store, "done").await;
    let total = 40;
    let mut jobs: Vec<_> = (0..total)
        .map(|n| new_job(&ins, "int_1", &format!("chat{n}"), &format!("job{n}"), NOW))
        .collect();
    jobs.push(new_job(&ins, "int_1", "chat0", "next", NOW));
    store.enqueue_jobs(&jobs).await.unwrap();
    let first = message_link("int_1", "WA0", 1);
    store.save_message_link(&first).await.unwrap();

    let claimed = claim(&store, NOW).await;
    assert_eq!(claimed.len(), total as usize);
    // All spawned before any is awaited, so they meet in the store.
    let done: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(n, job)| {
            let store = store.clone();
            let id = job.id;
            // Every other job posted nothing (a receipt, a redelivery).
            let link =
                (n % 2 == 0).then(|| message_link("int_1", &format!("WA{n}"), 100 + n as i64));
            tokio::spawn(async move { store.complete_job(id, link.as_ref()).await })
        })
        .collect();
    for finished in done {
        finished.await.unwrap().unwrap();
    }

    assert_eq!(keys(&claim(&store, NOW).await), ["next"]);
    assert_eq!(
        store.find_message_by_wa("int_1", "WA0").await.unwrap(),
        Some(first)
    );
    for n in (2..total as usize).step_by(2) {
        let link = store
            .find_message_by_wa("int_1", &format!("WA{n}"))
            .await
            .unwrap()
            .expect("link stored with its completion");
        assert_eq!(link.chatwoot_message_id, 100 + n as i64);
    }
    assert_eq!(
        store.find_message_by_wa("int_1", "WA1").await.unwrap(),
        None
    );
}

async fn retry_counts_attempts_and_defer_does_not(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "retry").await;
    store
        .enqueue_jobs(&[new_job(&ins, "int_1", "A", "flaky", NOW)])
        .await
        .unwrap();
    let id = claim(&store, NOW).await[0].id;

    store.retry_job(id, NOW, "timeout").await.unwrap();
    let job = &claim(&store, NOW).await[0];
    assert_eq!((job.attempts, job.last_error.as_str()), (1, "timeout"));

    store
        .defer_job(id, NOW + 1_000, "not connected")
        .await
        .unwrap();
    assert!(claim(&store, NOW).await.is_empty());
    let job = &claim(&store, NOW + 1_000).await[0];
    assert_eq!(
        (job.attempts, job.last_error.as_str()),
        (1, "not connected")
    );

    store.retry_job(id, NOW, "timeout again").await.unwrap();
    assert_eq!(claim(&store, NOW).await[0].attempts, 2);

    store.park_job(id, "giving up").await.unwrap();
    assert!(claim(&store, NOW + 1_000_000).await.is_empty());
    assert_eq!(
        store.dead_job_summary("int_1").await.unwrap(),
        (1, Some("giving up".into()))
    );
    let taken = store.take_jobs("int_1").await.unwrap();
    assert_eq!(taken[0].status, JobStatus::Dead);
    assert_eq!(taken[0].attempts, 3);
}

async fn wake_jobs_makes_queued_jobs_due_now(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "wake").await;
    let other = job_instance(&store, "sleepy").await;
    let later = NOW + 600_000;
    let outbound = |chat: &str, key: &str| NewJob {
        direction: "outbound",
        ..new_job(&ins, "int_1", chat, key, later)
    };
    store
        .enqueue_jobs(&[
            outbound("A", "out-a"),
            outbound("B", "out-b"),
            outbound("C", "out-due"),
            new_job(&ins, "int_1", "D", "in-later", later),
            new_job(&other, "int_2", "E", "other-later", later),
        ])
        .await
        .unwrap();
    // One is already due: it does not count.
    let due = job_id(&db, "out-due").await;
    store.defer_job(due, NOW - 5, "").await.unwrap();
    assert_eq!(store.wake_jobs(&ins, "outbound", NOW).await.unwrap(), 2);
    let woken = claim(&store, NOW).await;
    assert_eq!(keys(&woken), ["out-a", "out-b", "out-due"]);
    for job in &woken {
        store.complete_job(job.id, None).await.unwrap();
    }

    // Running jobs are not woken either.
    store.enqueue_jobs(&[outbound("F", "out-f")]).await.unwrap();
    let running = claim(&store, later).await;
    assert_eq!(keys(&running), ["in-later", "other-later", "out-f"]);
    assert_eq!(store.wake_jobs(&ins, "outbound", NOW).await.unwrap(), 0);
    assert_eq!(store.wake_jobs(&ins, "inbound", NOW).await.unwrap(), 0);
}

async fn replay_dead_jobs_requeues_dead_letters(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "replay").await;
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_1", "A", "dead-1", NOW),
            new_job(&ins, "int_1", "B", "alive", NOW),
            new_job(&ins, "int_2", "A", "dead-2", NOW),
        ])
        .await
        .unwrap();
    let claimed = claim(&store, NOW).await;
    store.park_job(claimed[0].id, "bad").await.unwrap();
    store
        .retry_job(claimed[1].id, NOW + 1_000_000, "later")
        .await
        .unwrap();
    store.park_job(claimed[2].id, "worse").await.unwrap();
    assert!(claim(&store, NOW + 10).await.is_empty());

    assert_eq!(
        store
            .replay_dead_jobs(Some("int_1"), NOW + 10)
            .await
            .unwrap(),
        1
    );
    let replayed = claim(&store, NOW + 10).await;
    assert_eq!(keys(&replayed), ["dead-1"]);
    assert_eq!(replayed[0].attempts, 0);
    assert_eq!(store.dead_job_summary("int_1").await.unwrap(), (0, None));

    store.park_job(replayed[0].id, "still bad").await.unwrap();
    assert_eq!(store.replay_dead_jobs(None, NOW + 20).await.unwrap(), 2);
    assert_eq!(keys(&claim(&store, NOW + 20).await), ["dead-1", "dead-2"]);
    assert_eq!(store.replay_dead_jobs(None, NOW + 20).await.unwrap(), 0);
}

async fn dead_job_summary_counts_and_shows_the_newest_error(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "summary").await;
    assert_eq!(store.dead_job_summary("int_1").await.unwrap(), (0, None));
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_1", "A", "one", NOW),
            new_job(&ins, "int_1", "B", "two", NOW),
            new_job(&ins, "int_1", "C", "three", NOW),
            new_job(&ins, "int_2", "A", "elsewhere", NOW),
        ])
        .await
        .unwrap();
    let claimed = claim(&store, NOW).await;
    // Parked out of id order: the newest by id wins.
    store.park_job(claimed[1].id, "second").await.unwrap();
    store.park_job(claimed[0].id, "first").await.unwrap();
    store.park_job(claimed[3].id, "other").await.unwrap();
    assert_eq!(
        store.dead_job_summary("int_1").await.unwrap(),
        (2, Some("second".into()))
    );
    assert_eq!(
        store.dead_job_summary("int_2").await.unwrap(),
        (1, Some("other".into()))
    );
}

async fn blob_rows(db: &Db) -> i64 {
    let raw = db.raw().await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM bridge_job_blobs")
        .fetch_one(&raw)
        .await
        .unwrap();
    raw.close().await;
    n
}

async fn job_blobs_are_stored_with_their_job_and_go_when_it_ends(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "blobs").await;
    let with_blob = |key: &str, data: &'static [u8]| NewJob {
        blob: Some(data.into()),
        ..new_job(&ins, "int_1", key, key, NOW)
    };
    let stored = store
        .enqueue_jobs(&[
            with_blob("done", b"sent bytes"),
            with_blob("parked", b"dead bytes"),
            new_job(&ins, "int_1", "plain", "plain", NOW),
            with_blob("deleted", b"deleted bytes"),
            // A key stored twice: the first job and its blob count.
            with_blob("done", b"other bytes"),
        ])
        .await
        .unwrap();
    assert_eq!(stored, 4);
    // A repeat of a stored key stores no second blob.
    store
        .enqueue_jobs(&[with_blob("parked", b"again")])
        .await
        .unwrap();
    assert_eq!(blob_rows(&db).await, 3);
    let id = |key: &'static str| job_id(&db, key);
    let (done, parked, plain) = (id("done").await, id("parked").await, id("plain").await);
    assert_eq!(
        store.job_blob(done).await.unwrap().as_deref(),
        Some(&b"sent bytes"[..])
    );
    assert_eq!(store.job_blob(plain).await.unwrap(), None);

    store.complete_job(done, None).await.unwrap();
    assert_eq!(store.job_blob(done).await.unwrap(), None);
    store.park_job(parked, "boom").await.unwrap();
    assert_eq!(store.job_blob(parked).await.unwrap(), None);
    assert_eq!(store.dead_job_summary("int_1").await.unwrap().0, 1);
    assert_eq!(blob_rows(&db).await, 1);
    // Jobs deleted another way (here: taken) take their blobs too.
    store.take_jobs("int_1").await.unwrap();
    assert_eq!(blob_rows(&db).await, 0);
}

async fn capped_enqueues_count_unfinished_jobs_per_integration_and_direction(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "count").await;
    let outbound = |integration: &str, key: &str| outbound_job(&ins, integration, key);
    let capped = |job: NewJob| store.enqueue_capped(job, 4);
    for key in ["a", "b", "c", "d"] {
        assert_eq!(capped(outbound("int_1", key)).await.unwrap(), Enqueued::New);
    }
    assert_eq!(
        capped(outbound("int_1", "e")).await.unwrap(),
        Enqueued::QueueFull
    );
    // Another integration, or another direction, has its own count.
    assert_eq!(capped(outbound("int_2", "f")).await.unwrap(), Enqueued::New);
    let inbound = new_job(&ins, "int_1", "in", "in", NOW);
    assert_eq!(capped(inbound).await.unwrap(), Enqueued::New);
    // A stored key is a duplicate, under a cap with room.
    assert_eq!(
        store
            .enqueue_capped(outbound("int_1", "a"), 10)
            .await
            .unwrap(),
        Enqueued::Duplicate
    );
    // Running jobs count; dead and finished ones do not.
    let claimed = claim(&store, NOW).await;
    assert_eq!(keys(&claimed), ["a", "b", "c", "d", "f", "in"]);
    assert_eq!(
        capped(outbound("int_1", "e")).await.unwrap(),
        Enqueued::QueueFull
    );
    store.park_job(claimed[0].id, "boom").await.unwrap();
    store.complete_job(claimed[1].id, None).await.unwrap();
    for key in ["e", "g"] {
        assert_eq!(capped(outbound("int_1", key)).await.unwrap(), Enqueued::New);
    }
    assert_eq!(
        capped(outbound("int_1", "h")).await.unwrap(),
        Enqueued::QueueFull
    );
    let raw = db.raw().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT dedupe_key FROM bridge_jobs ORDER BY id")
        .fetch_all(&raw)
        .await
        .unwrap();
    raw.close().await;
    // "b" finished (deleted), "a" parked; the refused never stored.
    assert_eq!(stored, ["a", "c", "d", "f", "in", "e", "g"]);
}

async fn concurrent_capped_enqueues_store_exactly_the_cap(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "race").await;
    // Enqueued at once, most share a batch: the count taken for the batch
    // must admit exactly the room left.
    let mut enqueues = tokio::task::JoinSet::new();
    for n in 0..40 {
        let job = outbound_job(&ins, "int_1", &format!("race{n}"));
        let store = store.clone();
        enqueues.spawn(async move { store.enqueue_capped(job, 7).await.unwrap() });
    }
    let outcomes = enqueues.join_all().await;
    let new = outcomes.iter().filter(|o| **o == Enqueued::New).count();
    let full = outcomes
        .iter()
        .filter(|o| **o == Enqueued::QueueFull)
        .count();
    assert_eq!((new, full), (7, 33));
    assert_eq!(claim(&store, NOW).await.len(), 7);
}

async fn capped_enqueues_of_several_integrations_in_one_batch_each_get_their_room(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "rooms").await;
    let outbound = |integration: &str, key: &str| outbound_job(&ins, integration, key);
    // Queued before: int_1 has 5 of its 6, int_2 has 2, int_3 none of its
    // direction (its inbound jobs have a count of their own).
    let mut before: Vec<NewJob> = (0..5)
        .map(|n| outbound("int_1", &format!("old1-{n}")))
        .collect();
    before.extend((0..2).map(|n| outbound("int_2", &format!("old2-{n}"))));
    before.extend((0..3).map(|n| new_job(&ins, "int_3", "in", &format!("in3-{n}"), NOW)));
    store.enqueue_jobs(&before).await.unwrap();
    // Enqueued at once, interleaved: most share a batch, whose one count
    // must give each integration its own room.
    let mut enqueues = tokio::task::JoinSet::new();
    for n in 0..8 {
        for integration in ["int_1", "int_2", "int_3"] {
            let job = outbound(integration, &format!("{integration}-{n}"));
            let store = store.clone();
            enqueues.spawn(async move {
                let outcome = store.enqueue_capped(job, 6).await.unwrap();
                (integration, outcome)
            });
        }
    }
    let outcomes = enqueues.join_all().await;
    let new = |integration: &str| {
        outcomes
            .iter()
            .filter(|(i, o)| *i == integration && *o == Enqueued::New)
            .count()
    };
    assert_eq!((new("int_1"), new("int_2"), new("int_3")), (1, 4, 6));
}

async fn take_jobs_removes_and_returns_every_job(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "take").await;
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_1", "A", "running", NOW),
            new_job(&ins, "int_1", "B", "dead", NOW),
            new_job(&ins, "int_1", "A", "queued", NOW),
            new_job(&ins, "int_2", "A", "kept", NOW + 1),
        ])
        .await
        .unwrap();
    let claimed = claim(&store, NOW).await;
    assert_eq!(keys(&claimed), ["running", "dead"]);
    store.park_job(claimed[1].id, "boom").await.unwrap();

    let taken = store.take_jobs("int_1").await.unwrap();
    assert_eq!(keys(&taken), ["running", "dead", "queued"]);
    let statuses: Vec<_> = taken.iter().map(|j| j.status).collect();
    assert_eq!(
        statuses,
        [JobStatus::Running, JobStatus::Dead, JobStatus::Queued]
    );
    assert_eq!(taken[1].last_error, "boom");
    assert!(store.take_jobs("int_1").await.unwrap().is_empty());
    assert_eq!(store.dead_job_summary("int_1").await.unwrap(), (0, None));
    assert_eq!(keys(&claim(&store, NOW + 1).await), ["kept"]);
}

async fn deleting_an_instance_deletes_its_jobs(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Cascade", 5).await;
    let doomed = store
        .create_instance(&acc, &new_instance("doomed"))
        .await
        .unwrap();
    let kept = store
        .create_instance(&acc, &new_instance("kept"))
        .await
        .unwrap();
    store
        .enqueue_jobs(&[
            new_job(&doomed.id, "int_1", "A", "d1", NOW),
            new_job(&doomed.id, "int_1", "B", "d2", NOW),
            new_job(&kept.id, "int_2", "A", "k1", NOW),
        ])
        .await
        .unwrap();
    assert!(store.delete_instance(&acc.id, &doomed.id).await.unwrap());
    assert!(store.take_jobs("int_1").await.unwrap().is_empty());
    assert_eq!(keys(&store.take_jobs("int_2").await.unwrap()), ["k1"]);
    // And with the account.
    store
        .enqueue_jobs(&[new_job(&kept.id, "int_2", "A", "k2", NOW)])
        .await
        .unwrap();
    assert!(store.delete_account(&acc.id).await.unwrap());
    assert!(store.take_jobs("int_2").await.unwrap().is_empty());
}

fn message_link(integration: &str, wa: &str, chatwoot: i64) -> MessageLink {
    MessageLink {
        integration_id: integration.to_owned(),
        wa_message_id: wa.to_owned(),
        chatwoot_message_id: chatwoot,
        chatwoot_conversation_id: 77,
        direction: "outbound".to_owned(),
    }
}

fn chat_link(integration: &str, jid: &str, conversation: i64) -> ChatLink {
    ChatLink {
        integration_id: integration.to_owned(),
        chat_jid: jid.to_owned(),
        contact_id: 10,
        source_id: format!("src-{jid}"),
        conversation_id: conversation,
        conversation_status: "open".to_owned(),
        reconciled_message_id: 0,
    }
}

async fn message_links_round_trip_and_ignore_duplicates(db: Db) {
    let store = db.store().await;
    let first = message_link("int_1", "WA1", 500);
    store.save_message_link(&first).await.unwrap();
    assert_eq!(
        store.find_message_by_wa("int_1", "WA1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.find_message_by_wa("int_2", "WA1").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_message_by_wa("int_1", "WA9").await.unwrap(),
        None
    );

    // The same WhatsApp message again: ignored, the first link stays.
    store
        .save_message_link(&message_link("int_1", "WA1", 999))
        .await
        .unwrap();
    assert_eq!(
        store.find_message_by_wa("int_1", "WA1").await.unwrap(),
        Some(first.clone())
    );

    // One Chatwoot message split into several WhatsApp messages.
    let parts = [
        message_link("int_1", "WA3", 600),
        message_link("int_1", "WA2", 600),
        message_link("int_1", "WA4", 600),
    ];
    for part in &parts {
        store.save_message_link(part).await.unwrap();
    }
    store
        .save_message_link(&message_link("int_2", "WA5", 600))
        .await
        .unwrap();
    assert_eq!(
        store.find_messages_by_chatwoot("int_1", 600).await.unwrap(),
        parts
    );
    assert_eq!(
        store.find_messages_by_chatwoot("int_1", 500).await.unwrap(),
        [first]
    );
    assert!(
        store
            .find_messages_by_chatwoot("int_1", 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn chat_links_upsert_and_follow_their_conversation(db: Db) {
    let store = db.store().await;
    let person = chat_link("int_1", "5511@s.whatsapp.net", 7);
    store.save_chat(&person).await.unwrap();
    assert_eq!(
        store.find_chat("int_1", &person.chat_jid).await.unwrap(),
        Some(person.clone())
    );
    assert_eq!(
        store.find_chat("int_2", &person.chat_jid).await.unwrap(),
        None
    );

    // Saving again replaces every column.
    let moved = ChatLink {
        contact_id: 11,
        source_id: "new-source".into(),
        conversation_id: 8,
        conversation_status: "pending".into(),
        reconciled_message_id: 40,
        ..person.clone()
    };
    store.save_chat(&moved).await.unwrap();
    assert_eq!(
        store.find_chat("int_1", &person.chat_jid).await.unwrap(),
        Some(moved.clone())
    );
    assert_eq!(
        store.find_chat_by_conversation("int_1", 7).await.unwrap(),
        None
    );

    // Two chats in one conversation: the one saved last is found.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let lid = chat_link("int_1", "123@lid", 8);
    store.save_chat(&lid).await.unwrap();
    let other = chat_link("int_1", "group@g.us", 9);
    store.save_chat(&other).await.unwrap();
    store
        .save_chat(&chat_link("int_2", "x@g.us", 8))
        .await
        .unwrap();
    assert_eq!(
        store.find_chat_by_conversation("int_1", 8).await.unwrap(),
        Some(lid.clone())
    );
    assert_eq!(
        store.find_chat_by_conversation("int_1", 99).await.unwrap(),
        None
    );

    store
        .set_conversation_status("int_1", 8, "resolved")
        .await
        .unwrap();
    for jid in [&moved.chat_jid, &lid.chat_jid] {
        let found = store.find_chat("int_1", jid).await.unwrap().unwrap();
        assert_eq!(found.conversation_status, "resolved", "{jid}");
    }
    let untouched = store.find_chat("int_1", "group@g.us").await.unwrap();
    assert_eq!(untouched, Some(other.clone()));
    let elsewhere = store.find_chat("int_2", "x@g.us").await.unwrap().unwrap();
    assert_eq!(elsewhere.conversation_status, "open");

    store.forget_conversation("int_1", 8).await.unwrap();
    assert_eq!(
        store.find_chat("int_1", &moved.chat_jid).await.unwrap(),
        None
    );
    assert_eq!(store.find_chat("int_1", &lid.chat_jid).await.unwrap(), None);
    assert_eq!(
        store.find_chat_by_conversation("int_1", 8).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_chat("int_1", "group@g.us").await.unwrap(),
        Some(other)
    );
    assert!(store.find_chat("int_2", "x@g.us").await.unwrap().is_some());
}

async fn an_inbound_lookup_finds_chats_unless_the_message_was_posted(db: Db) {
    let store = db.store().await;
    let phone = chat_link("int_1", "5511@s.whatsapp.net", 7);
    let lid = chat_link("int_1", "123@lid", 7);
    for link in [&phone, &lid, &chat_link("int_2", "5511@s.whatsapp.net", 8)] {
        store.save_chat(link).await.unwrap();
    }
    let both = [phone.chat_jid.clone(), lid.chat_jid.clone()];
    let sorted = |mut links: Vec<ChatLink>| {
        links.sort_by(|a, b| a.chat_jid.cmp(&b.chat_jid));
        links
    };

    // Not posted: every link of the person in this integration, no other.
    let found = store
        .find_chats_unless_posted("int_1", "WA1", &both)
        .await
        .unwrap()
        .expect("not posted yet");
    assert_eq!(sorted(found), vec![lid.clone(), phone.clone()]);
    let unknown = ["9999@s.whatsapp.net".to_owned()];
    let none = store
        .find_chats_unless_posted("int_1", "WA1", &unknown)
        .await
        .unwrap();
    assert_eq!(none, Some(Vec::new()));
    assert_eq!(
        store
            .find_chats_unless_posted("int_1", "WA1", &[])
            .await
            .unwrap(),
        Some(Vec::new())
    );

    // Posted (in this integration only): nothing else is read.
    let mut posted = message_link("int_1", "WA1", 500);
    posted.direction = "inbound".to_owned();
    store.save_message_link(&posted).await.unwrap();
    for jids in [&both[..], &unknown[..], &[]] {
        let found = store.find_chats_unless_posted("int_1", "WA1", jids).await;
        assert_eq!(found.unwrap(), None, "{jids:?}");
    }
    let elsewhere = store
        .find_chats_unless_posted("int_2", "WA1", &both)
        .await
        .unwrap()
        .expect("posted in int_1 only");
    assert_eq!(
        elsewhere,
        vec![chat_link("int_2", "5511@s.whatsapp.net", 8)]
    );
}

/// An agent message's one read before it is sent answers what the two
/// look-ups it replaces answer: the message's links (its parts, in order)
/// and its conversation's chat, each of this integration only.
async fn an_agent_message_lookup_finds_its_links_and_its_conversations_chat(db: Db) {
    let store = db.store().await;
    let read = |chatwoot: i64, conversation: i64| {
        let store = &store;
        async move {
            let found = store
                .find_agent_message_links("int_1", chatwoot, conversation)
                .await
                .unwrap();
            let sent = store
                .find_messages_by_chatwoot("int_1", chatwoot)
                .await
                .unwrap();
            let chat = store
                .find_chat_by_conversation("int_1", conversation)
                .await
                .unwrap();
            assert_eq!(found.sent, sent);
            assert_eq!(found.conversation_chat, chat.map(|c| c.chat_jid));
            found
        }
    };

    // Nothing sent, no chat.
    let nothing = read(500, 7).await;
    assert!(nothing.sent.is_empty());
    assert_eq!(nothing.conversation_chat, None);

    // Another integration's chat and links are not this one's.
    store
        .save_chat(&chat_link("int_2", "9999@s.whatsapp.net", 7))
        .await
        .unwrap();
    store
        .save_message_link(&message_link("int_2", "OTHER", 500))
        .await
        .unwrap();
    assert_eq!(read(500, 7).await, nothing);

    // Two parts sent and the conversation's chat.
    let parts = [
        message_link("int_1", "PART0", 500),
        message_link("int_1", "PART1", 500),
    ];
    for part in &parts {
        store.save_message_link(part).await.unwrap();
    }
    store
        .save_message_link(&message_link("int_1", "ANOTHER", 501))
        .await
        .unwrap();
    store
        .save_chat(&chat_link("int_1", "5511@s.whatsapp.net", 7))
        .await
        .unwrap();
    let found = read(500, 7).await;
    assert_eq!(found.sent, parts);
    assert_eq!(
        found.conversation_chat.as_deref(),
        Some("5511@s.whatsapp.net")
    );

    // A chat but nothing sent; links but no chat.
    let chat_only = read(502, 7).await;
    assert!(chat_only.sent.is_empty());
    assert!(chat_only.conversation_chat.is_some());
    let links_only = read(500, 8).await;
    assert_eq!(links_only.sent, parts);
    assert_eq!(links_only.conversation_chat, None);
}

async fn reconciled_watermark_only_grows(db: Db) {
    let store = db.store().await;
    store
        .save_chat(&chat_link("int_1", "a@s.whatsapp.net", 5))
        .await
        .unwrap();
    store
        .save_chat(&chat_link("int_1", "b@lid", 5))
        .await
        .unwrap();
    store
        .save_chat(&chat_link("int_1", "c@g.us", 6))
        .await
        .unwrap();
    let watermark = |jid: &'static str| {
        let store = &store;
        async move {
            store
                .find_chat("int_1", jid)
                .await
                .unwrap()
                .unwrap()
                .reconciled_message_id
        }
    };

    store.set_reconciled("int_1", 5, 100).await.unwrap();
    assert_eq!(watermark("a@s.whatsapp.net").await, 100);
    assert_eq!(watermark("b@lid").await, 100);
    assert_eq!(watermark("c@g.us").await, 0);

    store.set_reconciled("int_1", 5, 90).await.unwrap();
    assert_eq!(watermark("a@s.whatsapp.net").await, 100);
    store.set_reconciled("int_1", 5, 150).await.unwrap();
    assert_eq!(watermark("b@lid").await, 150);
    store.set_reconciled("int_2", 6, 500).await.unwrap();
    assert_eq!(watermark("c@g.us").await, 0);
}

fn import_row(instance_id: &str, integration_id: &str, locked_until_ms: i64) -> ImportProgress {
    ImportProgress {
        instance_id: instance_id.into(),
        integration_id: integration_id.into(),
        state: ImportState::Running,
        days: 7,
        contacts: false,
        since_secs: 1_000,
        until_secs: 2_000,
        chats: 0,
        last_chat: None,
        messages_done: 0,
        messages_total: 0,
        started_at_ms: NOW,
        finished_at_ms: None,
        error: None,
        locked_until_ms,
    }
}

/// The row a restart resumes from: one process wins the claim of a row
/// whose lease lapsed; progress is written only while it still runs for the
/// same integration; it goes with the integration.
async fn an_import_row_is_claimed_once_advanced_only_while_running_and_goes_with_its_integration(
    db: Db,
) {
    let store = db.store().await;
    let ins = job_instance(&store, "importing").await;
    store
        .save_integration(&integration("int_imp", &ins), None)
        .await
        .unwrap();
    assert_eq!(store.find_import(&ins).await.unwrap(), None);
    let row = import_row(&ins, "int_imp", NOW + 60_000);
    store.save_import(&row).await.unwrap();
    assert_eq!(store.find_import(&ins).await.unwrap(), Some(row.clone()));
    // Its holder's lease runs: nobody takes it.
    assert!(store.stale_imports(NOW).await.unwrap().is_empty());
    assert!(!store.claim_import(&ins, NOW, NOW + 1).await.unwrap());
    // Lapsed: listed, and two claims make one winner.
    let later = NOW + 60_001;
    assert_eq!(store.stale_imports(later).await.unwrap().len(), 1);
    let (a, b) = tokio::join!(
        store.claim_import(&ins, later, later + 60_000),
        store.claim_import(&ins, later, later + 60_000)
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);

    let mut progress = store.find_import(&ins).await.unwrap().unwrap();
    progress.last_chat = Some("5511@s.whatsapp.net".into());
    progress.messages_done = 3;
    progress.messages_total = 9;
    progress.chats = 2;
    assert!(store.advance_import(&progress).await.unwrap());
    assert_eq!(
        store.find_import(&ins).await.unwrap(),
        Some(progress.clone())
    );
    // Another integration's runner writes nothing.
    let stranger = ImportProgress {
        integration_id: "int_other".into(),
        ..progress.clone()
    };
    assert!(!store.advance_import(&stranger).await.unwrap());
    // Cancelled: a runner's later write is refused, the state stays.
    progress.state = ImportState::Cancelled;
    assert!(store.advance_import(&progress).await.unwrap());
    let running = ImportProgress {
        state: ImportState::Running,
        messages_done: 4,
        ..progress.clone()
    };
    assert!(!store.advance_import(&running).await.unwrap());
    let stored = store.find_import(&ins).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.messages_done),
        (ImportState::Cancelled, 3)
    );

    assert!(store.delete_integration(&ins).await.unwrap());
    assert_eq!(store.find_import(&ins).await.unwrap(), None);
}

async fn history_is_stored_once_and_read_by_chat_oldest_first_within_the_window(db: Db) {
    use zapgate_core::message_store::{MessageStatus, StoredMessage};
    let store = db.store().await;
    let ins = job_instance(&store, "history").await;
    let message = |id: &str, chat: &str, at: i64| StoredMessage {
        instance_id: ins.clone(),
        id: id.into(),
        chat: chat.into(),
        sender: chat.into(),
        from_me: false,
        kind: "text".into(),
        text: Some(format!("text {id}")),
        media: None,
        extra: None,
        quoted_id: None,
        source: None,
        status: MessageStatus::Delivered,
        timestamp: at,
        edited_at_ms: None,
        revoked_at_ms: None,
        created_at_ms: 0,
    };
    let rows = vec![
        message("B2", "b@s.whatsapp.net", 1_500),
        message("A1", "a@s.whatsapp.net", 1_200),
        message("B1", "b@s.whatsapp.net", 1_100),
        message("OLD", "a@s.whatsapp.net", 900),
        message("LATE", "a@s.whatsapp.net", 2_000),
    ];
    store.store_history(&rows).await.unwrap();
    // The same ids again keep their first rows.
    let mut changed = rows.clone();
    changed[0].text = Some("changed".into());
    store.store_history(&changed).await.unwrap();
    let read = store
        .messages_between(&ins, 1_000, 2_000, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = read.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["A1", "B1", "B2"]);
    assert_eq!(read[2].text.as_deref(), Some("text B2"));
    assert_eq!(
        store
            .messages_between(&ins, 0, 3_000, 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

fn integration(id: &str, instance_id: &str) -> Integration {
    Integration {
        id: id.into(),
        instance_id: instance_id.into(),
        base_url: "https://chatwoot.example.test".into(),
        account_id: 1,
        api_token: Token::new("api-token"),
        inbox_id: 2,
        inbox_name: "WhatsApp".into(),
        inbox_identifier: None,
        webhook_secret: Token::new("hook-secret"),
        inbox_secret: None,
        webhook_url: format!("https://zapgate.example.test/chatwoot/webhook/{id}/hook-secret"),
        status: IntegrationStatus::Active,
        last_error: String::new(),
        flags: ChatwootFlags::default(),
        options: Default::default(),
        created_at_ms: NOW,
    }
}

async fn integrations_are_listed_across_pages_once_each(db: Db) {
    let store = db.store().await;
    let count = zapgate_store::INTEGRATION_PAGE + 2;
    let (acc, _) = account(&store, "Many", count as u32).await;
    let mut expected = Vec::new();
    for n in 0..count {
        let ins = store
            .create_instance(&acc, &new_instance(&format!("paged{n:04}")))
            .await
            .unwrap()
            .id;
        // The same created_at for all: the page boundary falls inside a tie.
        let id = format!("int_paged{n:04}");
        store
            .save_integration(&integration(&id, &ins), None)
            .await
            .unwrap();
        expected.push(id);
    }
    let listed: Vec<String> = store
        .list_integrations()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, expected);
}

async fn delete_integration_clears_its_links(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "unlinked").await;
    store
        .save_integration(&integration("int_doomed", &ins), None)
        .await
        .unwrap();
    for id in ["int_doomed", "int_other"] {
        store
            .save_message_link(&message_link(id, "WA1", 1))
            .await
            .unwrap();
        store.save_chat(&chat_link(id, "a@lid", 3)).await.unwrap();
    }
    store
        .enqueue_jobs(&[new_job(&ins, "int_doomed", "A", "pending", NOW)])
        .await
        .unwrap();

    assert!(store.delete_integration(&ins).await.unwrap());
    assert!(store.find_integration(&ins).await.unwrap().is_none());
    assert_eq!(
        store.find_message_by_wa("int_doomed", "WA1").await.unwrap(),
        None
    );
    assert_eq!(store.find_chat("int_doomed", "a@lid").await.unwrap(), None);
    assert!(
        store
            .find_message_by_wa("int_other", "WA1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_chat("int_other", "a@lid")
            .await
            .unwrap()
            .is_some()
    );
    // Jobs are the bridge's to take.
    assert_eq!(
        keys(&store.take_jobs("int_doomed").await.unwrap()),
        ["pending"]
    );
    assert!(!store.delete_integration(&ins).await.unwrap());
}

/// Re-activation onto a new inbox: the row is replaced and the old
/// integration's inbound jobs move over in one transaction (dead ones queued
/// again, keys re-keyed); other directions stay behind for the bridge to fail.
async fn replacing_an_integration_moves_its_jobs_of_the_direction_with_the_row(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "moved").await;
    assert_eq!(
        store
            .save_integration(&integration("int_old", &ins), Some("inbound"))
            .await
            .unwrap(),
        0
    );
    let mut reply = new_job(&ins, "int_old", "conv:7", "out:int_old:7:1", NOW);
    reply.direction = "outbound";
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_old", "A", "in:int_old:W1", NOW),
            new_job(&ins, "int_old", "B", "in:int_old:W2", NOW),
            reply,
        ])
        .await
        .unwrap();
    let claimed = claim(&store, NOW).await;
    assert_eq!(
        keys(&claimed),
        ["in:int_old:W1", "in:int_old:W2", "out:int_old:7:1"]
    );
    store.park_job(claimed[1].id, "gave up").await.unwrap();
    store
        .defer_job(claimed[0].id, NOW, "waiting")
        .await
        .unwrap();
    store
        .defer_job(claimed[2].id, NOW, "waiting")
        .await
        .unwrap();

    let moved = store
        .save_integration(&integration("int_new", &ins), Some("inbound"))
        .await
        .unwrap();
    assert_eq!(moved, 2);
    assert_eq!(
        store.find_integration(&ins).await.unwrap().unwrap().id,
        "int_new"
    );
    assert_eq!(store.dead_job_summary("int_old").await.unwrap(), (0, None));
    let now_due = claim(&store, NOW + 10).await;
    let by_new: Vec<_> = now_due
        .iter()
        .filter(|j| j.integration_id == "int_new")
        .collect();
    assert_eq!(
        by_new
            .iter()
            .map(|j| j.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        ["in:int_new:W1", "in:int_new:W2"]
    );
    assert!(by_new.iter().all(|j| j.attempts == 0), "{by_new:?}");
    // The agent reply stays with the old inbox's integration.
    assert_eq!(
        keys(&store.take_jobs("int_old").await.unwrap()),
        ["out:int_old:7:1"]
    );

    // Saving the same integration again moves nothing.
    assert_eq!(
        store
            .save_integration(&integration("int_new", &ins), Some("inbound"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.take_jobs("int_new").await.unwrap().len(), 2);
}

/// A job whose integration is gone is a dead letter with its reason, not a
/// deleted row; one whose integration exists, or that moved to another, is
/// left alone.
async fn a_job_is_parked_as_an_orphan_only_while_its_integration_is_missing(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "orphan").await;
    store
        .save_integration(&integration("int_live", &ins), None)
        .await
        .unwrap();
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_gone", "A", "orphan", NOW),
            new_job(&ins, "int_live", "B", "live", NOW),
        ])
        .await
        .unwrap();
    let claimed = claim(&store, NOW).await;
    assert_eq!(keys(&claimed), ["orphan", "live"]);

    // Claimed while it belonged elsewhere: it moved, so it is not parked.
    assert!(
        !store
            .park_orphan_job(claimed[1].id, "int_gone", "why")
            .await
            .unwrap()
    );
    assert!(
        !store
            .park_orphan_job(claimed[1].id, "int_live", "why")
            .await
            .unwrap()
    );
    assert!(
        store
            .park_orphan_job(claimed[0].id, "int_gone", "integration gone")
            .await
            .unwrap()
    );
    assert_eq!(
        store.dead_job_summary("int_gone").await.unwrap(),
        (1, Some("integration gone".to_owned()))
    );
    assert_eq!(store.dead_job_summary("int_live").await.unwrap(), (0, None));
    // Kept: replay brings it back.
    assert_eq!(
        store
            .replay_dead_jobs(Some("int_gone"), NOW + 1)
            .await
            .unwrap(),
        1
    );
}

/// An instance without an integration is not looked up again on each of its
/// messages: another process's activation is seen here within a second, one
/// through this store at once.
async fn a_missing_integration_is_remembered_until_a_write_here_or_a_second(db: Db) {
    let store = db.store().await;
    let elsewhere = db.store().await;
    let ins = job_instance(&store, "later").await;
    assert!(store.find_integration(&ins).await.unwrap().is_none());
    elsewhere
        .save_integration(&integration("int_later", &ins), None)
        .await
        .unwrap();
    assert!(
        store.find_integration(&ins).await.unwrap().is_none(),
        "the missing integration was looked up in the database again"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while store.find_integration(&ins).await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "another process's integration was never seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mine = job_instance(&store, "mine").await;
    assert!(store.find_integration(&mine).await.unwrap().is_none());
    store
        .save_integration(&integration("int_mine", &mine), None)
        .await
        .unwrap();
    assert_eq!(
        store.find_integration(&mine).await.unwrap().unwrap().id,
        "int_mine"
    );
    assert!(
        store
            .find_integration_by_id("int_mine")
            .await
            .unwrap()
            .is_some()
    );
}

/// Instances, lists, integration summaries and dead-letter counts are cached:
/// every write through the same store is seen by its next read; a write by
/// another process (another store on the same database) within the
/// documented second. An instance created elsewhere is found by name at once.
async fn cached_reads_follow_writes_here_at_once_and_elsewhere_within_a_second(db: Db) {
    let store = db.store().await;
    let elsewhere = db.store().await;
    let (acc, _) = account(&store, "Cached", 5).await;
    let a = store
        .create_instance(&acc, &new_instance("a"))
        .await
        .unwrap();
    for reader in [&store, &elsewhere] {
        assert_eq!(
            names(&reader.list_instances(&acc.id, None).await.unwrap()),
            ["a"]
        );
        assert!(
            reader
                .integration_summaries(&acc.id)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(reader.dead_job_summary("int_a").await.unwrap(), (0, None));
        let found = reader.find_instance_by_id(&a.id).await.unwrap().unwrap();
        assert_eq!(found.session, SessionStatus::disconnected());
    }
    assert!(
        elsewhere
            .find_instance(&acc.id, "b")
            .await
            .unwrap()
            .is_none()
    );

    let b = store
        .create_instance(&acc, &new_instance("b"))
        .await
        .unwrap();
    let connected = SessionStatus {
        state: ConnectionState::Connected,
        number_jid: Some("5511999990000@s.whatsapp.net".into()),
    };
    store.set_session_status(&a.id, &connected).await.unwrap();
    store
        .save_integration(&integration("int_a", &a.id), None)
        .await
        .unwrap();
    store
        .enqueue_jobs(&[new_job(&a.id, "int_a", "A", "doomed", NOW)])
        .await
        .unwrap();
    let job = claim(&store, NOW).await.remove(0);
    store.park_job(job.id, "gone").await.unwrap();

    let written = |reader: &SqlStore| {
        let reader = reader.clone();
        let (acc_id, a_id) = (acc.id.clone(), a.id.clone());
        async move {
            (
                names(&reader.list_instances(&acc_id, None).await.unwrap())
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
                reader
                    .find_instance_by_id(&a_id)
                    .await
                    .unwrap()
                    .unwrap()
                    .session,
                reader.integration_summaries(&acc_id).await.unwrap().len(),
                reader.dead_job_summary("int_a").await.unwrap(),
            )
        }
    };
    let expected = (
        vec!["a".to_owned(), "b".to_owned()],
        connected.clone(),
        1,
        (1, Some("gone".to_owned())),
    );
    assert_eq!(written(&store).await, expected);
    assert_eq!(
        elsewhere
            .find_instance(&acc.id, "b")
            .await
            .unwrap()
            .unwrap()
            .id,
        b.id
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(written(&elsewhere).await, expected);

    assert!(store.delete_instance(&acc.id, &b.id).await.unwrap());
    assert!(store.find_instance(&acc.id, "b").await.unwrap().is_none());
    assert!(store.find_instance_by_id(&b.id).await.unwrap().is_none());
    assert_eq!(
        names(&store.list_instances(&acc.id, None).await.unwrap()),
        ["a"]
    );
    assert_eq!(store.replay_dead_jobs(Some("int_a"), NOW).await.unwrap(), 1);
    assert_eq!(store.dead_job_summary("int_a").await.unwrap(), (0, None));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        elsewhere
            .find_instance(&acc.id, "b")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        names(&elsewhere.list_instances(&acc.id, None).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        elsewhere.dead_job_summary("int_a").await.unwrap(),
        (0, None)
    );
}

/// PostgreSQL claims run on a connection of their own, outside the pool: when
/// the server drops it (a restart, a failover), the next claim opens another
/// and the job is still there to take. On SQLite nothing is dropped and the
/// claims simply run.
async fn claims_recover_after_the_database_drops_their_connections(db: Db) {
    let store = db.store().await;
    let ins = job_instance(&store, "dropped").await;
    store
        .enqueue_jobs(&[
            new_job(&ins, "int_1", "A", "first", NOW),
            new_job(&ins, "int_1", "B", "second", NOW),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(
            &store
                .claim_jobs(NOW, NOW + LEASE, 1, &ClaimShare::default())
                .await
                .unwrap()
        ),
        ["first"]
    );

    if db.backend == Backend::Postgres {
        let raw = db.raw().await;
        let dropped: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&raw)
        .await
        .unwrap();
        raw.close().await;
        assert!(dropped.iter().any(|d| *d), "the claim connection was open");
    }
    // The claims that meet a dropped connection may fail (the termination
    // reaches each backend a moment later, so under load more than one
    // may); a later one must not, and must find the job nobody took.
    let mut claimed = Vec::new();
    for _ in 0..5 {
        match store
            .claim_jobs(NOW, NOW + LEASE, 10, &ClaimShare::default())
            .await
        {
            Ok(jobs) => {
                claimed = jobs;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(keys(&claimed), ["second"]);
}

/// PostgreSQL plans the claim once per connection, here while the queue is
/// empty. With a long queue that plan must still probe each candidate's
/// chat through the chat index, not scan the whole index per candidate
/// (the plan the empty queue's statistics would pick for a join).
async fn a_claim_planned_on_an_empty_queue_probes_each_chat_by_its_index(db: Db) {
    const CHATS: usize = 400;
    const ROUNDS: usize = 10;
    let store = db.store().await;
    let ins = job_instance(&store, "planned").await;
    assert!(claim(&store, NOW).await.is_empty());

    // Each round holds one job per chat, so the oldest 400 are the heads.
    let backlog: Vec<_> = (0..ROUNDS)
        .flat_map(|round| {
            let ins = &ins;
            (0..CHATS).map(move |chat| {
                new_job(
                    ins,
                    "int_1",
                    &format!("c{chat}"),
                    &format!("c{chat}-{round}"),
                    NOW,
                )
            })
        })
        .collect();
    assert_eq!(
        store.enqueue_jobs(&backlog).await.unwrap(),
        (CHATS * ROUNDS) as u64
    );
    let raw = db.raw().await;
    let reads_before = match db.backend {
        Backend::Postgres => Some(index_reads(&raw).await),
        Backend::Sqlite => None,
    };

    let claimed = claim(&store, NOW).await;
    let expected: Vec<_> = (0..100).map(|chat| format!("c{chat}-0")).collect();
    assert_eq!(keys(&claimed), expected);

    if let Some(reads_before) = reads_before {
        // The claim walks at least its 400 candidates in the id index; once
        // its statistics show that, they show its chat probes too.
        let mut reads = index_reads(&raw).await;
        for _ in 0..600 {
            if reads.walk >= reads_before.walk + CHATS as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            reads = index_reads(&raw).await;
        }
        assert!(
            reads.walk >= reads_before.walk + CHATS as i64,
            "the claim's walk never showed in the statistics: {reads_before:?} -> {reads:?}"
        );
        // Probed by index, a head's probe reads nothing; scanned, each
        // candidate's probe reads the whole chat index (4,000 entries).
        let probed = reads.chat_probes - reads_before.chat_probes;
        assert!(
            probed < (CHATS * ROUNDS) as i64,
            "the chat probes read {probed} index entries for {CHATS} candidates"
        );
    }
}

/// An agent reply reads the customer's messages since the conversation's
/// last reply (markReadOnReply): those after the newest outbound link, found
/// by walking back from the newest link, not by reading every link of the
/// conversation (a reply would then cost more the longer the conversation).
async fn unread_messages_are_found_without_reading_the_conversations_history(db: Db) {
    const REPLIES: usize = 300;
    let store = db.store().await;
    let link = |wa: &str, chatwoot: i64, direction: &str| MessageLink {
        direction: direction.to_owned(),
        ..message_link("int_1", wa, chatwoot)
    };
    store
        .save_message_link(&link("read-before", 1, "inbound"))
        .await
        .unwrap();
    for n in 0..REPLIES {
        let reply = link(&format!("reply{n}"), 10 + n as i64, "outbound");
        store.save_message_link(&reply).await.unwrap();
    }
    for (wa, chatwoot) in [("unread1", 5_000), ("unread2", 5_001)] {
        store
            .save_message_link(&link(wa, chatwoot, "inbound"))
            .await
            .unwrap();
    }
    // Another conversation's message is not this one's.
    store
        .save_message_link(&MessageLink {
            chatwoot_conversation_id: 78,
            ..link("elsewhere", 6_000, "inbound")
        })
        .await
        .unwrap();
    let raw = db.raw().await;
    let reads_before = match db.backend {
        Backend::Postgres => Some(conversation_index_reads(&raw).await),
        Backend::Sqlite => None,
    };

    let unread = store.unread_inbound("int_1", "ins", 77, 20).await.unwrap();
    let ids: Vec<_> = unread.iter().map(|m| m.wa_message_id.as_str()).collect();
    assert_eq!(ids, ["unread2", "unread1"]);

    if let Some(reads_before) = reads_before {
        // The look-up reads at least the two unread links; once the
        // statistics show those, they show all it read.
        let mut reads = conversation_index_reads(&raw).await;
        for _ in 0..600 {
            if reads >= reads_before + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            reads = conversation_index_reads(&raw).await;
        }
        let read = reads - reads_before;
        assert!(read >= 2, "the look-up never showed in the statistics");
        assert!(
            read < 20,
            "the look-up read {read} index entries of a conversation of {} links",
            REPLIES + 3
        );
    }
}

/// Index entries PostgreSQL's statistics count as read in the index of
/// message links by conversation.
async fn conversation_index_reads(raw: &AnyPool) -> i64 {
    sqlx::query_scalar(
        "SELECT idx_tup_read FROM pg_stat_user_indexes \
         WHERE indexrelname = 'message_links_conversation_idx'",
    )
    .fetch_one(raw)
    .await
    .unwrap()
}

/// Index entries PostgreSQL's statistics count as read in the queue's id
/// walk and in its chat probes.
#[derive(Debug, Clone, Copy)]
struct IndexReads {
    walk: i64,
    chat_probes: i64,
}

async fn index_reads(raw: &AnyPool) -> IndexReads {
    let (walk, chat_probes) = sqlx::query_as(
        "SELECT MAX(idx_tup_read) FILTER (WHERE indexrelname = 'bridge_jobs_unfinished_idx'), \
           MAX(idx_tup_read) FILTER (WHERE indexrelname = 'bridge_jobs_unfinished_chat_idx') \
         FROM pg_stat_user_indexes",
    )
    .fetch_one(raw)
    .await
    .unwrap();
    IndexReads { walk, chat_probes }
}

// ---------------------------------------------------------------- events

fn hook(label: &str) -> WebhookSettings {
    WebhookSettings {
        label: label.into(),
        enabled: true,
        url: format!("https://hooks.example.test/{label}"),
        authorization: Some(format!("Bearer {label}")),
        by_events: false,
        events: vec![EventName::MessageExchange],
        media_base64: false,
    }
}

fn event(instance_id: &str, key: &str) -> NewEvent {
    NewEvent {
        instance_id: instance_id.into(),
        name: EventName::MessageExchange,
        dedupe_key: key.into(),
        data: format!("{{\"id\":\"{key}\"}}"),
    }
}

/// An instance `suporte` of a new account, with enabled webhooks `a` and `b`.
async fn two_webhooks(
    store: &SqlStore,
    account_name: &str,
) -> (
    zapgate_core::instance::Instance,
    zapgate_core::event_log::Webhook,
    zapgate_core::event_log::Webhook,
) {
    let (acc, _) = account(store, account_name, 5).await;
    let instance = store
        .create_instance(&acc, &new_instance("suporte"))
        .await
        .unwrap();
    let a = store.save_webhook(&instance.id, &hook("a")).await.unwrap();
    let b = store.save_webhook(&instance.id, &hook("b")).await.unwrap();
    (instance, a, b)
}

/// Deliveries queued for a claim, one per webhook.
/// A message `id` this instance sent (stored `sent`).
fn sent_message(instance_id: &str, id: &str) -> MessageWrite {
    MessageWrite {
        instance_id: instance_id.into(),
        change: MessageChange::Insert(Box::new(StoredMessage {
            instance_id: instance_id.into(),
            id: id.into(),
            chat: "5511988887777@s.whatsapp.net".into(),
            sender: "5511900000000@s.whatsapp.net".into(),
            from_me: true,
            kind: "text".into(),
            text: Some(format!("text of {id}")),
            media: None,
            extra: None,
            quoted_id: None,
            source: None,
            status: MessageStatus::Sent,
            timestamp: 1_700_000_000,
            edited_at_ms: None,
            revoked_at_ms: None,
            created_at_ms: 0,
        })),
    }
}

fn receipt(instance_id: &str, id: &str, status: MessageStatus) -> MessageWrite {
    MessageWrite {
        instance_id: instance_id.into(),
        change: MessageChange::Status {
            id: id.into(),
            status,
        },
    }
}

/// Messages and receipts stored by one group commit (the first poll of
/// `join!` queues every write in order, so the storing task finds them
/// together): receipts of one message, out of order and repeated, move it
/// to the highest status with every status in its history once; a receipt
/// for a message not stored changes nothing; a late lower receipt never
/// moves a message back.
async fn messages_and_receipts_stored_together_end_at_each_ones_highest_status(db: Db) {
    use MessageStatus::{Delivered, Read, Sent};
    let store = db.store().await;
    let (acc, _) = account(&store, "Receipts", 5).await;
    let ins = store
        .create_instance(&acc, &new_instance("loja"))
        .await
        .unwrap()
        .id;
    let writes = [
        sent_message(&ins, "A"),
        receipt(&ins, "A", Read),
        sent_message(&ins, "B"),
        receipt(&ins, "A", Delivered),
        receipt(&ins, "B", Delivered),
        receipt(&ins, "A", Read),
        receipt(&ins, "GONE", Read),
        sent_message(&ins, "C"),
    ];
    let record = |k: usize| store.record(None, &[], Some(&writes[k]));
    let done = tokio::join!(
        record(0),
        record(1),
        record(2),
        record(3),
        record(4),
        record(5),
        record(6),
        record(7)
    );
    for outcome in [
        done.0, done.1, done.2, done.3, done.4, done.5, done.6, done.7,
    ] {
        assert_eq!(outcome.unwrap(), None, "no event was appended");
    }
    store
        .record(None, &[], Some(&receipt(&ins, "B", Sent)))
        .await
        .unwrap();
    let status = |id: &'static str| {
        let store = &store;
        let ins = &ins;
        async move { store.message(ins, id).await.unwrap().map(|m| m.status) }
    };
    let history = |id: &'static str| {
        let store = &store;
        let ins = &ins;
        async move {
            store
                .message_history(ins, id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.status)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(status("A").await, Some(Read));
    assert_eq!(history("A").await, BTreeSet::from([Sent, Delivered, Read]));
    assert_eq!(status("B").await, Some(Delivered), "never moved back");
    assert_eq!(history("B").await, BTreeSet::from([Sent, Delivered]));
    assert_eq!(status("C").await, Some(Sent));
    assert_eq!(history("C").await, BTreeSet::from([Sent]));
    assert_eq!(status("GONE").await, None);
    assert!(history("GONE").await.is_empty());
}

fn queued(webhook_ids: &[&str]) -> Vec<NewDelivery> {
    webhook_ids
        .iter()
        .map(|id| NewDelivery {
            webhook_id: (*id).to_owned(),
            lease_until_ms: None,
        })
        .collect()
}

/// A delivery stored leased to the appending process runs at once (one
/// attempt made), counts towards its webhook's cap until its receiver
/// answered, is not claimed while its lease lives, and is claimed again
/// once it lapsed (its process died).
async fn a_leased_delivery_runs_at_once_and_is_claimed_only_once_its_lease_lapsed(db: Db) {
    let store = db.store().await;
    let (instance, a, b) = two_webhooks(&store, "Leased").await;
    let now = zapgate_core::time::now_ms();
    let deliveries = [
        NewDelivery {
            webhook_id: a.id.clone(),
            lease_until_ms: Some(now + 60_000),
        },
        NewDelivery {
            webhook_id: b.id.clone(),
            lease_until_ms: None,
        },
    ];
    let (event1, ids) = store
        .append_event(&event(&instance.id, "k1"), &deliveries)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 2);
    store
        .append_event(&event(&instance.id, "k2"), &queued(&[&a.id]))
        .await
        .unwrap();
    let listed = store.deliveries(&instance.id, None, 100).await.unwrap();
    let find = |id: i64| listed.iter().find(|d| d.id == id).unwrap().clone();
    let (leased, waiting) = (find(ids[0]), find(ids[1]));
    assert_eq!(
        (leased.status, leased.attempts, leased.webhook_id.as_str()),
        (DeliveryStatus::Running, 1, a.id.as_str())
    );
    assert_eq!(leased.event_id, event1.id);
    assert_eq!(
        (
            waiting.status,
            waiting.attempts,
            waiting.webhook_id.as_str()
        ),
        (DeliveryStatus::Queued, 0, b.id.as_str())
    );
    // With a cap of 1, webhook a is full: only b's delivery is claimed.
    let now = zapgate_core::time::now_ms();
    let claimed = store
        .claim_deliveries(now, now + 60_000, 100, 1, &[])
        .await
        .unwrap();
    let ids_claimed: Vec<i64> = claimed.iter().map(|w| w.delivery.id).collect();
    assert_eq!(ids_claimed, [ids[1]]);
    // Once a's leased delivery is answered (its outcome is being stored),
    // it holds no place: a's queued one is claimed under the same cap.
    let claimed = store
        .claim_deliveries(now, now + 60_000, 100, 1, &[ids[0]])
        .await
        .unwrap();
    let taken: Vec<(&str, &str)> = claimed
        .iter()
        .map(|w| (w.webhook.id.as_str(), w.event.data.as_str()))
        .collect();
    assert_eq!(taken, [(a.id.as_str(), "{\"id\":\"k2\"}")]);
    // Past the lease, the leased one is taken again, second attempt.
    let later = now + 120_000;
    let again = store
        .claim_deliveries(later, later + 60_000, 100, 3, &[])
        .await
        .unwrap();
    let retaken = again.iter().find(|w| w.delivery.id == ids[0]).unwrap();
    assert_eq!(retaken.delivery.attempts, 2);
}

async fn events_get_consecutive_sequences_and_are_stored_once(db: Db) {
    let store = Arc::new(db.store().await);
    let (acc, _) = account(&store, "Events", 5).await;
    let instance = store
        .create_instance(&acc, &new_instance("suporte"))
        .await
        .unwrap();
    // Concurrent appends: every sequence once, no gap.
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (store, id) = (store.clone(), instance.id.clone());
        tasks.push(tokio::spawn(async move {
            store.append_event(&event(&id, &format!("k{n}")), &[]).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    assert!(
        store
            .append_event(&event(&instance.id, "k3"), &[])
            .await
            .unwrap()
            .is_none()
    );
    let log = store.events_after(&instance.id, 0, 100).await.unwrap();
    let sequences: Vec<i64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=20).collect::<Vec<_>>());
    let rest = store.events_after(&instance.id, 15, 100).await.unwrap();
    assert_eq!(rest.len(), 5);

    // Appends stored together (group commit): two instances' events
    // interleaved, a key sent twice at once, and one event the store refuses
    // (its instance is gone), which fails alone.
    let other = store
        .create_instance(&acc, &new_instance("vendas"))
        .await
        .unwrap();
    let whk = store.save_webhook(&other.id, &hook("a")).await.unwrap();
    // Outcomes ride the same batches: these are recorded whatever the
    // refused event does to the batch they share.
    for n in 0..3 {
        store
            .append_event(&event(&other.id, &format!("f{n}")), &queued(&[&whk.id]))
            .await
            .unwrap();
    }
    let now = zapgate_core::time::now_ms();
    let claimed = store
        .claim_deliveries(now, now + 60_000, 100, 8, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let finishing: Vec<_> = claimed
        .iter()
        .map(|work| {
            let store = store.clone();
            let id = work.delivery.id;
            tokio::spawn(async move {
                let outcome = DeliveryOutcome::Delivered { status: 200 };
                store.finish_delivery(id, &outcome).await
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        let (id, key) = match n % 4 {
            0 => (instance.id.clone(), format!("b{n}")),
            1 => (other.id.clone(), format!("b{n}")),
            2 => (other.id.clone(), "twice".to_owned()),
            _ => ("ins_gone".to_owned(), format!("b{n}")),
        };
        let webhooks = if id == other.id {
            queued(&[&whk.id])
        } else {
            vec![]
        };
        tasks.push(tokio::spawn(async move {
            (
                n % 4,
                store.append_event(&event(&id, &key), &webhooks).await,
            )
        }));
    }
    let mut twice_stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            (0 | 1, outcome) => assert!(outcome.unwrap().is_some()),
            (2, outcome) => twice_stored += usize::from(outcome.unwrap().is_some()),
            (_, outcome) => assert!(outcome.is_err(), "{outcome:?}"),
        }
    }
    assert_eq!(twice_stored, 1, "a key sent twice at once is stored once");
    for task in finishing {
        task.await.unwrap().unwrap();
    }
    let listed = store.deliveries(&other.id, None, 100).await.unwrap();
    for work in &claimed {
        let delivery = listed.iter().find(|d| d.id == work.delivery.id).unwrap();
        assert_eq!(
            (delivery.status, delivery.response_status),
            (DeliveryStatus::Delivered, Some(200))
        );
    }
    let log = store.events_after(&instance.id, 0, 100).await.unwrap();
    let sequences: Vec<i64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=30).collect::<Vec<_>>());
    let log = store.events_after(&other.id, 0, 100).await.unwrap();
    let sequences: Vec<i64> = log.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=14).collect::<Vec<_>>());
    // One delivery per event, queued in sequence order.
    let deliveries = store.deliveries(&other.id, None, 100).await.unwrap();
    let mut by_id: Vec<_> = deliveries
        .iter()
        .map(|d| (d.id, d.event_id.clone()))
        .collect();
    by_id.sort();
    let order: Vec<String> = by_id.into_iter().map(|(_, event)| event).collect();
    assert_eq!(order, log.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
}

async fn delivery_claims_cap_running_deliveries_per_webhook(db: Db) {
    let store = db.store().await;
    let (instance, a, b) = two_webhooks(&store, "Deliveries").await;
    assert!(a.signing_secret.starts_with("whsec_"));
    for n in 0..10 {
        store
            .append_event(
                &event(&instance.id, &format!("k{n}")),
                &queued(&[&a.id, &b.id]),
            )
            .await
            .unwrap();
    }
    let now = zapgate_core::time::now_ms();
    let claimed = store
        .claim_deliveries(now, now + 60_000, 100, 3, &[])
        .await
        .unwrap();
    let per = |id: &str| claimed.iter().filter(|w| w.webhook.id == id).count();
    assert_eq!((per(&a.id), per(&b.id)), (3, 3));
    assert_eq!(
        claimed[0].webhook.settings.authorization.as_deref(),
        Some("Bearer a")
    );
    // At the cap: nothing more until one finishes.
    assert!(
        store
            .claim_deliveries(now, now + 60_000, 100, 3, &[])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .finish_delivery(
            claimed[0].delivery.id,
            &DeliveryOutcome::Delivered { status: 200 },
        )
        .await
        .unwrap();
    let next = store
        .claim_deliveries(now, now + 60_000, 100, 3, &[])
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].webhook.id, claimed[0].webhook.id);
    // Outcomes recorded together, each its own.
    let now = zapgate_core::time::now_ms();
    let outcomes = [
        DeliveryOutcome::Delivered { status: 204 },
        DeliveryOutcome::Retry {
            run_at_ms: now + 3_600_000,
            status: Some(503),
            error: "the receiver answered HTTP 503".into(),
        },
        DeliveryOutcome::Dead {
            status: None,
            error: "gone".into(),
        },
    ];
    let finishing: Vec<_> = claimed[1..4]
        .iter()
        .zip(outcomes)
        .map(|(work, outcome)| {
            let store = store.clone();
            let id = work.delivery.id;
            tokio::spawn(async move { store.finish_delivery(id, &outcome).await })
        })
        .collect();
    for task in finishing {
        task.await.unwrap().unwrap();
    }
    let listed = store.deliveries(&instance.id, None, 100).await.unwrap();
    let find = |id: i64| listed.iter().find(|d| d.id == id).unwrap();
    let (d1, d2, d3) = (
        find(claimed[1].delivery.id),
        find(claimed[2].delivery.id),
        find(claimed[3].delivery.id),
    );
    assert_eq!(
        (d1.status, d1.response_status),
        (DeliveryStatus::Delivered, Some(204))
    );
    assert_eq!(
        (d2.status, d2.response_status),
        (DeliveryStatus::Queued, Some(503))
    );
    assert_eq!(d2.run_at_ms, now + 3_600_000);
    assert_eq!(d2.last_error, "the receiver answered HTTP 503");
    assert_eq!(
        (d3.status, d3.response_status),
        (DeliveryStatus::Dead, None)
    );
    assert_eq!(d3.last_error, "gone");
    // A lapsed lease is claimed again (its process died).
    let later = now + 120_000;
    assert_eq!(
        store
            .claim_deliveries(later, later + 60_000, 100, 3, &[])
            .await
            .unwrap()
            .len(),
        6
    );
    // A released delivery made no attempt: queued again and due, its count
    // back down, its last answer kept.
    let retry_at = now + 3_600_000;
    let retried = store
        .claim_deliveries(retry_at, retry_at + 60_000, 100, 3, &[])
        .await
        .unwrap();
    let d2_id = claimed[2].delivery.id;
    let attempts = retried
        .iter()
        .find(|w| w.delivery.id == d2_id)
        .expect("due again")
        .delivery
        .attempts;
    store
        .finish_delivery(d2_id, &DeliveryOutcome::Released)
        .await
        .unwrap();
    let listed = store.deliveries(&instance.id, None, 100).await.unwrap();
    let d2 = listed.iter().find(|d| d.id == d2_id).unwrap();
    assert_eq!(
        (d2.status, d2.attempts, d2.response_status),
        (DeliveryStatus::Queued, attempts - 1, Some(503))
    );
    assert_eq!(d2.last_error, "the receiver answered HTTP 503");
    assert!(d2.run_at_ms <= zapgate_core::time::now_ms());
    // A fourth enabled webhook is refused; a disabled one is not counted.
    store.save_webhook(&instance.id, &hook("c")).await.unwrap();
    assert!(matches!(
        store.save_webhook(&instance.id, &hook("d")).await,
        Err(Error::Conflict(_))
    ));
    let off = WebhookSettings::disabled("c".into(), false);
    store.save_webhook(&instance.id, &off).await.unwrap();
    store.save_webhook(&instance.id, &hook("d")).await.unwrap();
}

/// Per webhook the claim hands out its oldest due deliveries in id order,
/// passing over one that waits for a retry; across webhooks the oldest
/// first, within the claim's limit; and it stops at each webhook's cap
/// however long its backlog is.
async fn a_delivery_claim_takes_the_oldest_due_per_webhook_and_overall(db: Db) {
    let store = db.store().await;
    let (instance, a, b) = two_webhooks(&store, "Oldest").await;
    for n in 0..40 {
        store
            .append_event(&event(&instance.id, &format!("k{n}")), &queued(&[&a.id]))
            .await
            .unwrap();
    }
    for n in 40..43 {
        store
            .append_event(
                &event(&instance.id, &format!("k{n}")),
                &queued(&[&b.id, &a.id]),
            )
            .await
            .unwrap();
    }
    let mut listed = store.deliveries(&instance.id, None, 100).await.unwrap();
    listed.sort_by_key(|d| d.id);
    let of = |webhook: &str| -> Vec<i64> {
        listed
            .iter()
            .filter(|d| d.webhook_id == webhook)
            .map(|d| d.id)
            .collect()
    };
    let (a_ids, b_ids) = (of(&a.id), of(&b.id));
    let now = zapgate_core::time::now_ms();
    // a's oldest fails and waits an hour for its retry.
    assert_eq!(claim_ids(&store, now, 1).await, [a_ids[0]]);
    store
        .finish_delivery(
            a_ids[0],
            &DeliveryOutcome::Retry {
                run_at_ms: now + 3_600_000,
                status: Some(503),
                error: "the receiver answered HTTP 503".into(),
            },
        )
        .await
        .unwrap();
    // Limit 4, cap 3: the oldest due overall, a's three then b's first.
    let claimed = claim_ids(&store, now, 4).await;
    assert_eq!(claimed, [a_ids[1], a_ids[2], a_ids[3], b_ids[0]]);
    // a is at its cap; b gets its remaining two.
    let claimed = claim_ids(&store, now, 100).await;
    assert_eq!(claimed, [b_ids[1], b_ids[2]]);
    // One of a's finishes: its next one in order, not the one retrying.
    store
        .finish_delivery(a_ids[2], &DeliveryOutcome::Delivered { status: 200 })
        .await
        .unwrap();
    let claimed = claim_ids(&store, now, 100).await;
    assert_eq!(claimed, [a_ids[4]]);
    // Once its retry is due, the waiting one comes first again.
    let later = now + 3_600_000;
    store
        .finish_delivery(a_ids[1], &DeliveryOutcome::Delivered { status: 200 })
        .await
        .unwrap();
    let claimed = claim_ids(&store, later, 1).await;
    assert_eq!(claimed, [a_ids[0]]);
}

/// The ids a claim at `now` hands out (lease 60 s, cap 3).
async fn claim_ids(store: &SqlStore, now: i64, limit: u32) -> Vec<i64> {
    store
        .claim_deliveries(now, now + 60_000, limit, 3, &[])
        .await
        .unwrap()
        .iter()
        .map(|w| w.delivery.id)
        .collect()
}

async fn instance_webhook_blocks_are_adopted_once(db: Db) {
    let store = db.store().await;
    let (acc, _) = account(&store, "Legacy", 5).await;
    let new = NewInstance {
        webhook: WebhookConfig {
            enabled: true,
            url: "https://hooks.example.test/legacy".into(),
            by_events: true,
            events: vec!["message.exchange".into(), "messages.upsert".into()],
            media_base64: false,
        },
        webhook_authorization: Some("Bearer legacy".into()),
        ..new_instance("legacy")
    };
    let legacy = store.create_instance(&acc, &new).await.unwrap();
    let unknown_only = NewInstance {
        webhook: WebhookConfig {
            enabled: true,
            url: "https://hooks.example.test/x".into(),
            events: vec!["messages.upsert".into()],
            ..WebhookConfig::default()
        },
        ..new_instance("unknown")
    };
    let skipped = store.create_instance(&acc, &unknown_only).await.unwrap();
    store
        .create_instance(&acc, &new_instance("plain"))
        .await
        .unwrap();

    assert_eq!(store.adopt_instance_webhooks().await.unwrap(), 1);
    assert_eq!(store.adopt_instance_webhooks().await.unwrap(), 0);
    let hooks = store.webhooks(&legacy.id).await.unwrap();
    assert_eq!(hooks.len(), 1);
    let adopted = &hooks[0].settings;
    assert_eq!(adopted.label, "default");
    assert_eq!(adopted.authorization.as_deref(), Some("Bearer legacy"));
    assert_eq!(adopted.events, vec![EventName::MessageExchange]);
    assert!(adopted.by_events);
    assert!(store.webhooks(&skipped.id).await.unwrap().is_empty());
}
