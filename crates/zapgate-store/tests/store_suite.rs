//! The store's behaviour suite: one set of async tests, written once against
//! a `Db` handle, run on SQLite (a temporary file) and on PostgreSQL (a fresh
//! database per test, dropped afterwards), so both backends keep one contract.
//!
//! PostgreSQL comes from `ZAPGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached the
//! PostgreSQL variants print `SKIPPED` and pass, unless
//! `ZAPGATE_TEST_REQUIRE_POSTGRES=1`, in which case they fail.

use std::{collections::BTreeSet, future::Future, sync::Arc, time::Duration};

use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _, Row as _, any::AnyPoolOptions};
use zapgate_core::{
    Error,
    account::{Account, NewAccount},
    instance::{
        ConnectionState, InstanceName, InstanceSettings, NewInstance, SessionStatus, WebhookConfig,
    },
    messages,
    store::{Principal, Store},
    token::{Token, random_hex},
};
use zapgate_store::{Backend, SecretBox, SqlStore, redact_url};

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("ZAPGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let required = std::env::var("ZAPGATE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1");
    sqlx::any::install_default_drivers();
    let connected =
        tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(&admin_url)).await;
    let mut admin = match connected {
        Ok(Ok(conn)) => conn,
        failed => {
            let reason = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "connection timed out".to_owned(),
            };
            let shown = redact_url(&admin_url);
            if required {
                panic!("PostgreSQL required but not reachable at {shown}: {reason}");
            }
            eprintln!(
                "\n!!!!! SKIPPED: PostgreSQL not reachable at {shown} ({reason}); \
                 set ZAPGATE_TEST_REQUIRE_POSTGRES=1 to fail instead !!!!!\n"
            );
            return;
        }
    };
    let name = format!("zg_{}", random_hex(8));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("postgres URL");
    url.set_path(&name);
    let db = Db {
        url: url.to_string(),
        backend: Backend::Postgres,
        _dir: None,
    };
    // Run on a task so a failing test still gets its database dropped.
    let outcome = tokio::spawn(test(db)).await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop test database");
    admin.close().await.ok();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
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
    account_tokens_are_unique_and_concurrent_creates_succeed,
    create_instance_enforces_names_tokens_and_quota,
    concurrent_creates_never_exceed_the_quota,
    concurrent_creates_of_one_name_make_one_instance,
    list_instances_orders_and_filters,
    lookups_never_cross_accounts,
    sealed_secrets_decrypt_to_the_originals,
    session_status_drives_paired_instances,
    delete_instance_removes_it,
    count_request_is_per_bucket_and_window_and_shared,
    rekey_moves_secrets_to_the_current_key,
    secrets_are_absent_from_raw_rows,
    a_sealed_token_copied_to_another_row_does_not_decrypt,
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
        Err(Error::NotFound(_))
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
    let paired: BTreeSet<String> = store
        .paired_instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(paired, expected);
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
