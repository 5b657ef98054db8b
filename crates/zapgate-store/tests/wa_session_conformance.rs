//! Conformance of zapgate's `whatsapp-rust` storage backend: one set of
//! tests, written against `dyn Backend`, run on the crate's own in-memory
//! reference backend (`memory::`), on `WaSessionStore` over SQLite
//! (`sqlite::`) and over PostgreSQL (`postgres::`). The same assertions
//! passing on all three is the claim that ours answers like the reference.
//! A few tests only make sense for ours (sealing, wipe, cascade) and run on
//! the two databases only.
//!
//! PostgreSQL comes from `ZAPGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), a fresh database per test.
//! When it cannot be reached the PostgreSQL variants print `SKIPPED` and
//! pass, unless `ZAPGATE_TEST_REQUIRE_POSTGRES=1`.

mod common;

use std::{collections::BTreeMap, future::Future, sync::Arc};

use sqlx::{Row as _, any::AnyPoolOptions};
use whatsapp_rust::{
    bytes::Bytes,
    wacore::{
        appstate::{hash::HashState, processor::AppStateMutationMAC},
        store::{
            Device, InMemoryBackend,
            traits::{
                AppStateSyncKey, Backend, DeviceInfo, DeviceListRecord, LidPnMappingEntry,
                MsgSecretEntry, PendingInboundKey, PendingInboundRow, TcTokenEntry,
            },
        },
        time::now_secs,
    },
};
use zapgate_core::{
    account::{Account, NewAccount},
    instance::{InstanceName, InstanceSettings, NewInstance, WebhookConfig},
    store::Store as _,
    token::Token,
};
use zapgate_store::{SecretBox, SqlStore, WaSessionStore};

const KEY: [u8; 32] = [0x5a; 32];

// ---------------------------------------------------------------- harness

/// Where a test runs: the reference backend or ours on a database, with two
/// instances (0 and 1) either way.
struct Env {
    memory: Vec<Arc<InMemoryBackend>>,
    sql: Option<SqlEnv>,
}

struct SqlEnv {
    url: String,
    account: Account,
    instances: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    fn memory() -> Self {
        Self {
            memory: vec![
                Arc::new(InMemoryBackend::new()),
                Arc::new(InMemoryBackend::new()),
            ],
            sql: None,
        }
    }

    async fn on_database(url: String, dir: Option<tempfile::TempDir>) -> Self {
        let store = open_store(&url).await;
        store.migrate().await.expect("migrate");
        let token = Token::generate_account();
        let account = store
            .create_account(&NewAccount::parse("wa", 10, None).unwrap(), &token)
            .await
            .unwrap();
        let mut instances = Vec::new();
        for name in ["one", "two"] {
            let new = NewInstance {
                name: InstanceName::parse(name).unwrap(),
                token: Token::generate_instance(),
                settings: InstanceSettings::default(),
                webhook: WebhookConfig::default(),
                webhook_authorization: None,
            };
            instances.push(store.create_instance(&account, &new).await.unwrap().id);
        }
        store.close().await;
        Self {
            memory: Vec::new(),
            sql: Some(SqlEnv {
                url,
                account,
                instances,
                _dir: dir,
            }),
        }
    }

    /// The backend of instance `n`. On a database every call opens a new
    /// pool, so a second call is a reopened store.
    async fn backend(&self, n: usize) -> Arc<dyn Backend> {
        match &self.sql {
            None => self.memory[n].clone(),
            Some(sql) => Arc::new(
                self.wa_store(n)
                    .await
                    .unwrap_or_else(|| unreachable!("{}", sql.url)),
            ),
        }
    }

    async fn wa_store(&self, n: usize) -> Option<WaSessionStore> {
        let sql = self.sql.as_ref()?;
        let store = open_store(&sql.url).await;
        Some(WaSessionStore::new(store, sql.instances[n].clone()))
    }

    fn sql(&self) -> &SqlEnv {
        self.sql.as_ref().expect("a database test")
    }
}

async fn open_store(url: &str) -> SqlStore {
    SqlStore::connect(url, SecretBox::new(KEY, vec![]))
        .await
        .expect("connect")
}

async fn on_memory<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Env::memory()).await;
}

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("zapgate.db").display());
    test(Env::on_database(url, Some(dir)).await).await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    common::with_postgres_database("zg_wa", move |url| async move {
        test(Env::on_database(url, None).await).await;
    })
    .await;
}

/// Declares the conformance tests on all three backends and the tests of
/// our backend alone on both databases.
macro_rules! suite {
    (conformance: [$($name:ident),* $(,)?], ours: [$($own:ident),* $(,)?]) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_memory(crate::$name).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::on_sqlite(crate::$name).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $own() {
                    crate::on_sqlite(crate::$own).await;
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
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $own() {
                    crate::on_postgres(crate::$own).await;
                }
            )*
        }
    };
}

suite!(
    conformance: [
        identities_round_trip,
        sessions_round_trip,
        signal_state_for_user_matches_whole_users_only,
        prekeys_round_trip,
        signed_prekeys_round_trip,
        sender_keys_round_trip,
        sync_keys_and_the_latest_one,
        versions_default_and_round_trip,
        mutation_macs_are_per_collection,
        sender_key_devices_per_group,
        lid_mappings_both_ways,
        base_keys_compare,
        device_lists_round_trip,
        group_metadata_round_trip,
        tc_tokens_round_trip_and_merge,
        tc_tokens_expire_only_when_both_windows_are_stale,
        sent_messages_are_taken_once_and_expire,
        pending_inbound_round_trip_and_expiry,
        msg_secrets_merge_and_expire,
        device_create_save_load,
        instances_are_isolated,
        state_survives_reopening,
        concurrent_writes_all_land,
    ],
    ours: [
        values_are_sealed_in_the_raw_table,
        a_value_copied_to_another_row_does_not_open,
        wipe_removes_one_instance_only,
        deleting_the_instance_deletes_its_session,
        rotating_the_key_reseals_session_values,
    ]
);

// ---------------------------------------------------------------- helpers

fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

fn addr(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn lid_entry(lid: &str, phone: &str, at: i64) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: lid.into(),
        phone_number: phone.into(),
        created_at: at,
        updated_at: at,
        learning_source: "usync".into(),
    }
}

fn secret_entry(
    chat: &str,
    sender: &str,
    id: &str,
    secret: u8,
    exp: i64,
    ts: i64,
) -> MsgSecretEntry {
    MsgSecretEntry {
        chat: Arc::from(chat),
        sender: Arc::from(sender),
        msg_id: Arc::from(id),
        secret: [secret; 32],
        expires_at: exp,
        message_ts: ts,
    }
}

fn device_list(user: &str, devices: &[u32], ts: i64) -> DeviceListRecord {
    DeviceListRecord {
        user: user.into(),
        devices: devices
            .iter()
            .map(|d| DeviceInfo::new(*d, Some(*d + 10)))
            .collect(),
        timestamp: ts,
        phash: Some(format!("ph{ts}")),
        raw_id: Some(7),
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

// ---------------------------------------------------------------- Signal

async fn identities_round_trip(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.load_identity("1@s.whatsapp.net").await.unwrap(), None);
    s.put_identity("1@s.whatsapp.net", [1; 32]).await.unwrap();
    assert_eq!(
        s.load_identity("1@s.whatsapp.net").await.unwrap(),
        Some([1; 32])
    );
    s.put_identity("1@s.whatsapp.net", [2; 32]).await.unwrap();
    assert_eq!(
        s.load_identity("1@s.whatsapp.net").await.unwrap(),
        Some([2; 32])
    );
    s.put_identities_batch(&[
        (addr("2@lid"), [3; 32]),
        (addr("1@s.whatsapp.net"), [4; 32]),
    ])
    .await
    .unwrap();
    assert_eq!(s.load_identity("2@lid").await.unwrap(), Some([3; 32]));
    assert_eq!(
        s.load_identity("1@s.whatsapp.net").await.unwrap(),
        Some([4; 32])
    );
    s.delete_identity("1@s.whatsapp.net").await.unwrap();
    s.delete_identity("never-stored").await.unwrap();
    assert_eq!(s.load_identity("1@s.whatsapp.net").await.unwrap(), None);
    assert_eq!(s.load_identity("2@lid").await.unwrap(), Some([3; 32]));
}

async fn sessions_round_trip(env: Env) {
    let s = env.backend(0).await;
    let a = "5511999990001.0:2@s.whatsapp.net";
    assert_eq!(s.get_session(a).await.unwrap(), None);
    assert!(!s.has_session(a).await.unwrap());
    s.put_session(a, b"one").await.unwrap();
    assert_eq!(s.get_session(a).await.unwrap(), Some(b(b"one")));
    assert!(s.has_session(a).await.unwrap());
    s.put_session(a, b"").await.unwrap();
    assert_eq!(
        s.get_session(a).await.unwrap(),
        Some(b(b"")),
        "empty values survive"
    );
    s.put_sessions_batch(&[(addr(a), b(b"two")), (addr("x@lid"), b(&[0, 255, 7]))])
        .await
        .unwrap();
    assert_eq!(s.get_session(a).await.unwrap(), Some(b(b"two")));
    assert_eq!(s.get_session("x@lid").await.unwrap(), Some(b(&[0, 255, 7])));
    s.delete_session(a).await.unwrap();
    assert_eq!(s.get_session(a).await.unwrap(), None);
    assert!(!s.has_session(a).await.unwrap());
    assert!(s.has_session("x@lid").await.unwrap());
}

async fn signal_state_for_user_matches_whole_users_only(env: Env) {
    let s = env.backend(0).await;
    assert!(!s.has_signal_state_for_user("5511").await.unwrap());
    s.put_session("55119:3@s.whatsapp.net", b"s").await.unwrap();
    s.put_identity("77_%@lid", [9; 32]).await.unwrap();
    assert!(s.has_signal_state_for_user("55119").await.unwrap());
    assert!(
        !s.has_signal_state_for_user("5511").await.unwrap(),
        "prefix of a user"
    );
    assert!(!s.has_signal_state_for_user("551190").await.unwrap());
    assert!(
        s.has_signal_state_for_user("77_%").await.unwrap(),
        "identities count too"
    );
    assert!(!s.has_signal_state_for_user("77").await.unwrap());
    assert!(
        !s.has_signal_state_for_user("7%").await.unwrap(),
        "no wildcards"
    );
    s.delete_session("55119:3@s.whatsapp.net").await.unwrap();
    assert!(!s.has_signal_state_for_user("55119").await.unwrap());
}

async fn prekeys_round_trip(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.get_max_prekey_id().await.unwrap(), 0);
    assert_eq!(s.load_prekey(1).await.unwrap(), None);
    s.store_prekey(5, b"five", false).await.unwrap();
    s.store_prekeys_batch(&[(6, b(b"six")), (100, b(b"hundred"))], true)
        .await
        .unwrap();
    assert_eq!(s.load_prekey(5).await.unwrap(), Some(b(b"five")));
    assert_eq!(s.get_max_prekey_id().await.unwrap(), 100);
    s.store_prekey(5, b"FIVE", true).await.unwrap();
    assert_eq!(s.load_prekey(5).await.unwrap(), Some(b(b"FIVE")));
    let batch = sorted(s.load_prekeys_batch(&[6, 7, 5]).await.unwrap());
    assert_eq!(batch, vec![(5, b(b"FIVE")), (6, b(b"six"))]);
    s.remove_prekey(100).await.unwrap();
    assert_eq!(s.get_max_prekey_id().await.unwrap(), 6);
    // Marking never brings a consumed key back.
    s.mark_prekeys_uploaded(&[5, 100, 200]).await.unwrap();
    assert_eq!(s.load_prekey(100).await.unwrap(), None);
    assert_eq!(s.load_prekey(200).await.unwrap(), None);
    assert_eq!(s.load_prekey(5).await.unwrap(), Some(b(b"FIVE")));
    s.store_prekey(u32::MAX, b"max", false).await.unwrap();
    assert_eq!(s.get_max_prekey_id().await.unwrap(), u32::MAX);
}

async fn signed_prekeys_round_trip(env: Env) {
    let s = env.backend(0).await;
    assert!(s.load_all_signed_prekeys().await.unwrap().is_empty());
    assert_eq!(s.load_signed_prekey(1).await.unwrap(), None);
    s.store_signed_prekey(10, b"ten").await.unwrap();
    s.store_signed_prekey(2, b"two").await.unwrap();
    s.store_signed_prekey(10, b"TEN").await.unwrap();
    assert_eq!(
        s.load_signed_prekey(10).await.unwrap(),
        Some(b"TEN".to_vec())
    );
    assert_eq!(
        sorted(s.load_all_signed_prekeys().await.unwrap()),
        vec![(2, b"two".to_vec()), (10, b"TEN".to_vec())]
    );
    s.remove_signed_prekey(2).await.unwrap();
    assert_eq!(
        s.load_all_signed_prekeys().await.unwrap(),
        vec![(10, b"TEN".to_vec())]
    );
}

async fn sender_keys_round_trip(env: Env) {
    let s = env.backend(0).await;
    let k = "120363@g.us::5511:1@s.whatsapp.net";
    assert_eq!(s.get_sender_key(k).await.unwrap(), None);
    s.put_sender_key(k, b"r1").await.unwrap();
    assert_eq!(s.get_sender_key(k).await.unwrap(), Some(b"r1".to_vec()));
    s.put_sender_keys_batch(&[(addr(k), b(b"r2")), (addr("other"), b(b"o"))])
        .await
        .unwrap();
    assert_eq!(s.get_sender_key(k).await.unwrap(), Some(b"r2".to_vec()));
    assert_eq!(
        s.get_sender_key("other").await.unwrap(),
        Some(b"o".to_vec())
    );
    s.delete_sender_key(k).await.unwrap();
    assert_eq!(s.get_sender_key(k).await.unwrap(), None);
}

// ---------------------------------------------------------------- App state

async fn sync_keys_and_the_latest_one(env: Env) {
    let s = env.backend(0).await;
    assert!(s.get_sync_key(&[1, 2]).await.unwrap().is_none());
    assert_eq!(s.get_latest_sync_key_id().await.unwrap(), None);
    let key = |n: u8| AppStateSyncKey {
        key_data: vec![n; 32],
        fingerprint: vec![n, n],
        timestamp: i64::from(n) * 1000,
    };
    s.set_sync_key(&[1, 2], key(1)).await.unwrap();
    s.set_sync_key(&[0, 255], key(2)).await.unwrap();
    assert_eq!(
        s.get_latest_sync_key_id().await.unwrap(),
        Some(vec![0, 255])
    );
    let got = s.get_sync_key(&[1, 2]).await.unwrap().unwrap();
    assert_eq!(json(&got), json(&key(1)));
    // Setting an older id again makes it the latest.
    s.set_sync_key(&[1, 2], key(3)).await.unwrap();
    assert_eq!(s.get_latest_sync_key_id().await.unwrap(), Some(vec![1, 2]));
    assert_eq!(
        json(&s.get_sync_key(&[1, 2]).await.unwrap().unwrap()),
        json(&key(3))
    );
    assert!(s.get_sync_key(&[1]).await.unwrap().is_none());
}

async fn versions_default_and_round_trip(env: Env) {
    let s = env.backend(0).await;
    let missing = s.get_version("regular").await.unwrap();
    assert_eq!(json(&missing), json(&HashState::default()));
    let mut state = HashState {
        version: 42,
        ..HashState::default()
    };
    state.hash[0] = 9;
    state.hash[127] = 200;
    state.index_value_map.insert("idx".into(), vec![1, 2, 3]);
    s.set_version("regular", state.clone()).await.unwrap();
    let got = s.get_version("regular").await.unwrap();
    assert_eq!(got.version, 42);
    assert_eq!(got.hash, state.hash);
    assert_eq!(got.index_value_map, state.index_value_map);
    assert_eq!(
        json(&s.get_version("critical_block").await.unwrap()),
        json(&missing)
    );
    state.version = 43;
    s.set_version("regular", state).await.unwrap();
    assert_eq!(s.get_version("regular").await.unwrap().version, 43);
}

async fn mutation_macs_are_per_collection(env: Env) {
    let s = env.backend(0).await;
    let mac = |i: u8, v: u8| AppStateMutationMAC {
        index_mac: vec![i; 32],
        value_mac: vec![v; 32],
    };
    s.put_mutation_macs("regular", 1, &[mac(1, 10), mac(2, 20)])
        .await
        .unwrap();
    s.put_mutation_macs("critical", 1, &[mac(1, 11)])
        .await
        .unwrap();
    assert_eq!(
        s.get_mutation_mac("regular", &[1; 32]).await.unwrap(),
        Some(vec![10; 32])
    );
    assert_eq!(
        s.get_mutation_mac("critical", &[1; 32]).await.unwrap(),
        Some(vec![11; 32])
    );
    assert_eq!(s.get_mutation_mac("regular", &[3; 32]).await.unwrap(), None);
    s.put_mutation_macs("regular", 2, &[mac(1, 12)])
        .await
        .unwrap();
    let many = s
        .get_mutation_macs("regular", &[[1; 32], [2; 32], [3; 32]])
        .await
        .unwrap();
    assert_eq!(
        many.into_iter().collect::<BTreeMap<_, _>>(),
        BTreeMap::from([([1; 32], vec![12; 32]), ([2; 32], vec![20; 32])])
    );
    s.delete_mutation_macs("regular", &[vec![1; 32], vec![9; 32]])
        .await
        .unwrap();
    assert_eq!(s.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    assert_eq!(
        s.get_mutation_mac("critical", &[1; 32]).await.unwrap(),
        Some(vec![11; 32])
    );
    s.clear_mutation_macs("regular").await.unwrap();
    assert_eq!(s.get_mutation_mac("regular", &[2; 32]).await.unwrap(), None);
    assert_eq!(
        s.get_mutation_mac("critical", &[1; 32]).await.unwrap(),
        Some(vec![11; 32])
    );
}

// ---------------------------------------------------------------- Protocol

async fn sender_key_devices_per_group(env: Env) {
    let s = env.backend(0).await;
    let (g1, g2) = ("1@g.us", "2@g.us");
    assert!(s.get_sender_key_devices(g1).await.unwrap().is_empty());
    s.set_sender_key_status(g1, &[("a:1@lid", true), ("b:2@lid", false)])
        .await
        .unwrap();
    s.set_sender_key_status(g2, &[("a:1@lid", true), ("c@lid", true)])
        .await
        .unwrap();
    assert_eq!(
        sorted(s.get_sender_key_devices(g1).await.unwrap()),
        vec![("a:1@lid".into(), true), ("b:2@lid".into(), false)]
    );
    s.set_sender_key_status(g1, &[("b:2@lid", true)])
        .await
        .unwrap();
    assert_eq!(
        sorted(s.get_sender_key_devices(g1).await.unwrap()),
        vec![("a:1@lid".into(), true), ("b:2@lid".into(), true)]
    );
    s.delete_sender_key_device_rows(&["a:1@lid"]).await.unwrap();
    s.delete_sender_key_device_rows(&[]).await.unwrap();
    assert_eq!(
        s.get_sender_key_devices(g1).await.unwrap(),
        vec![("b:2@lid".into(), true)]
    );
    assert_eq!(
        s.get_sender_key_devices(g2).await.unwrap(),
        vec![("c@lid".into(), true)]
    );
    s.clear_sender_key_devices(g1).await.unwrap();
    assert!(s.get_sender_key_devices(g1).await.unwrap().is_empty());
    assert_eq!(s.get_sender_key_devices(g2).await.unwrap().len(), 1);
    s.set_sender_key_status(g1, &[("d@lid", false)])
        .await
        .unwrap();
    s.clear_all_sender_key_devices().await.unwrap();
    assert!(s.get_sender_key_devices(g1).await.unwrap().is_empty());
    assert!(s.get_sender_key_devices(g2).await.unwrap().is_empty());
}

async fn lid_mappings_both_ways(env: Env) {
    let s = env.backend(0).await;
    assert!(s.get_lid_mapping("100").await.unwrap().is_none());
    assert!(s.get_pn_mapping("5511").await.unwrap().is_none());
    assert!(s.get_all_lid_mappings().await.unwrap().is_empty());
    s.put_lid_mapping(&lid_entry("100", "5511", 1))
        .await
        .unwrap();
    assert_eq!(
        json(&s.get_lid_mapping("100").await.unwrap()),
        json(&Some(lid_entry("100", "5511", 1)))
    );
    assert_eq!(s.get_pn_mapping("5511").await.unwrap().unwrap().lid, "100");
    // The LID moves to another phone: the old phone forgets it.
    s.put_lid_mapping(&lid_entry("100", "5522", 2))
        .await
        .unwrap();
    assert!(s.get_pn_mapping("5511").await.unwrap().is_none());
    assert_eq!(
        s.get_pn_mapping("5522").await.unwrap().unwrap().updated_at,
        2
    );
    // The phone gets a new LID: lookups by phone find the newest.
    s.put_lid_mappings(&[lid_entry("200", "5522", 3), lid_entry("300", "5533", 3)])
        .await
        .unwrap();
    assert_eq!(s.get_pn_mapping("5522").await.unwrap().unwrap().lid, "200");
    assert_eq!(
        s.get_lid_mapping("100")
            .await
            .unwrap()
            .unwrap()
            .phone_number,
        "5522"
    );
    let mut all: Vec<_> = s
        .get_all_lid_mappings()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.lid, e.phone_number))
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("100".into(), "5522".into()),
            ("200".into(), "5522".into()),
            ("300".into(), "5533".into())
        ]
    );
}

async fn base_keys_compare(env: Env) {
    let s = env.backend(0).await;
    assert!(!s.has_same_base_key("a@lid", "m1", b"k").await.unwrap());
    s.save_base_key("a@lid", "m1", b"key-1").await.unwrap();
    assert!(s.has_same_base_key("a@lid", "m1", b"key-1").await.unwrap());
    assert!(!s.has_same_base_key("a@lid", "m1", b"key-2").await.unwrap());
    assert!(!s.has_same_base_key("a@lid", "m2", b"key-1").await.unwrap());
    assert!(!s.has_same_base_key("b@lid", "m1", b"key-1").await.unwrap());
    s.save_base_key("a@lid", "m1", b"key-2").await.unwrap();
    assert!(s.has_same_base_key("a@lid", "m1", b"key-2").await.unwrap());
    s.delete_base_key("a@lid", "m1").await.unwrap();
    assert!(!s.has_same_base_key("a@lid", "m1", b"key-2").await.unwrap());
}

async fn device_lists_round_trip(env: Env) {
    let s = env.backend(0).await;
    assert!(s.get_devices("5511").await.unwrap().is_none());
    s.update_device_list(device_list("5511", &[0, 2], 1))
        .await
        .unwrap();
    assert_eq!(
        json(&s.get_devices("5511").await.unwrap()),
        json(&Some(device_list("5511", &[0, 2], 1)))
    );
    s.update_device_lists(vec![
        device_list("5511", &[0], 2),
        device_list("100", &[0, 1, 5], 2),
    ])
    .await
    .unwrap();
    assert_eq!(
        json(&s.get_devices("5511").await.unwrap()),
        json(&Some(device_list("5511", &[0], 2)))
    );
    assert_eq!(
        s.get_devices("100").await.unwrap().unwrap().devices.len(),
        3
    );
    s.delete_devices("5511").await.unwrap();
    assert!(s.get_devices("5511").await.unwrap().is_none());
    assert!(s.get_devices("100").await.unwrap().is_some());
}

async fn group_metadata_round_trip(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.get_group_metadata("1@g.us").await.unwrap(), None);
    s.put_group_metadata("1@g.us", b"meta-1").await.unwrap();
    s.put_group_metadata("1@g.us", b"meta-2").await.unwrap();
    assert_eq!(
        s.get_group_metadata("1@g.us").await.unwrap(),
        Some(b"meta-2".to_vec())
    );
    s.delete_group_metadata("1@g.us").await.unwrap();
    assert_eq!(s.get_group_metadata("1@g.us").await.unwrap(), None);
}

async fn tc_tokens_round_trip_and_merge(env: Env) {
    let s = env.backend(0).await;
    assert!(s.get_tc_token("a@lid").await.unwrap().is_none());
    assert!(s.get_all_tc_token_jids().await.unwrap().is_empty());
    let entry = TcTokenEntry {
        token: b"tok".to_vec(),
        token_timestamp: 100,
        sender_timestamp: None,
    };
    s.put_tc_token("a@lid", &entry).await.unwrap();
    assert_eq!(
        json(&s.get_tc_token("a@lid").await.unwrap()),
        json(&Some(entry))
    );
    // The sender bucket only moves forward and keeps the token.
    s.touch_tc_token_sender_timestamp("a@lid", 50)
        .await
        .unwrap();
    s.touch_tc_token_sender_timestamp("a@lid", 40)
        .await
        .unwrap();
    let got = s.get_tc_token("a@lid").await.unwrap().unwrap();
    assert_eq!(
        (
            got.token.as_slice(),
            got.token_timestamp,
            got.sender_timestamp
        ),
        (&b"tok"[..], 100, Some(50))
    );
    // A placeholder for an unknown contact.
    s.touch_tc_token_sender_timestamp("b@lid", 70)
        .await
        .unwrap();
    let got = s.get_tc_token("b@lid").await.unwrap().unwrap();
    assert_eq!(
        (got.token.len(), got.token_timestamp, got.sender_timestamp),
        (0, 70, Some(70))
    );
    // Received tokens: newer wins, stale ones are ignored, a placeholder
    // never blocks, the sender bucket survives.
    s.store_received_tc_token("a@lid", b"old", 90)
        .await
        .unwrap();
    assert_eq!(
        s.get_tc_token("a@lid").await.unwrap().unwrap().token,
        b"tok"
    );
    s.store_received_tc_token("a@lid", b"new", 100)
        .await
        .unwrap();
    let got = s.get_tc_token("a@lid").await.unwrap().unwrap();
    assert_eq!(
        (got.token.as_slice(), got.sender_timestamp),
        (&b"new"[..], Some(50))
    );
    s.store_received_tc_token("b@lid", b"first", 10)
        .await
        .unwrap();
    let got = s.get_tc_token("b@lid").await.unwrap().unwrap();
    assert_eq!(
        (
            got.token.as_slice(),
            got.token_timestamp,
            got.sender_timestamp
        ),
        (&b"first"[..], 10, Some(70))
    );
    s.store_received_tc_token("c@lid", b"c", 5).await.unwrap();
    assert_eq!(
        sorted(s.get_all_tc_token_jids().await.unwrap()),
        vec!["a@lid".to_owned(), "b@lid".into(), "c@lid".into()]
    );
    s.delete_tc_token("b@lid").await.unwrap();
    assert!(s.get_tc_token("b@lid").await.unwrap().is_none());
    assert_eq!(s.get_all_tc_token_jids().await.unwrap().len(), 2);
}

async fn tc_tokens_expire_only_when_both_windows_are_stale(env: Env) {
    let s = env.backend(0).await;
    let put = |token: &'static [u8], ts: i64, sender: Option<i64>| TcTokenEntry {
        token: token.to_vec(),
        token_timestamp: ts,
        sender_timestamp: sender,
    };
    s.put_tc_token("live-token", &put(b"t", 100, None))
        .await
        .unwrap();
    s.put_tc_token("live-sender", &put(b"t", 10, Some(100)))
        .await
        .unwrap();
    s.put_tc_token("stale", &put(b"t", 10, Some(10)))
        .await
        .unwrap();
    s.put_tc_token("empty-recent", &put(b"", 100, None))
        .await
        .unwrap();
    s.put_tc_token("stale-no-sender", &put(b"t", 10, None))
        .await
        .unwrap();
    assert_eq!(s.delete_expired_tc_tokens(50, 50).await.unwrap(), 3);
    assert_eq!(
        sorted(s.get_all_tc_token_jids().await.unwrap()),
        vec!["live-sender".to_owned(), "live-token".into()]
    );
    assert_eq!(s.delete_expired_tc_tokens(50, 50).await.unwrap(), 0);
}

async fn sent_messages_are_taken_once_and_expire(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.take_sent_message("c@g.us", "m1").await.unwrap(), None);
    s.store_sent_message("c@g.us", "m1", b"payload-1")
        .await
        .unwrap();
    s.store_sent_message("c@g.us", "m1", b"payload-1b")
        .await
        .unwrap();
    s.store_sent_message("d@lid", "m1", b"other chat")
        .await
        .unwrap();
    assert_eq!(
        s.take_sent_message("c@g.us", "m1").await.unwrap(),
        Some(b"payload-1b".to_vec())
    );
    assert_eq!(s.take_sent_message("c@g.us", "m1").await.unwrap(), None);
    let now = now_secs();
    assert_eq!(s.delete_expired_sent_messages(now - 3600).await.unwrap(), 0);
    assert_eq!(s.delete_expired_sent_messages(now + 3600).await.unwrap(), 1);
    assert_eq!(s.take_sent_message("d@lid", "m1").await.unwrap(), None);
}

async fn pending_inbound_round_trip_and_expiry(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.get_pending_inbound("c", "s", "1").await.unwrap(), None);
    s.store_pending_inbound("c", "s", "1", b"m1").await.unwrap();
    // Stanza ids are unique per (chat, sender) only.
    s.store_pending_inbound("c", "t", "1", b"m1 from t")
        .await
        .unwrap();
    s.store_pending_inbound_batch(&[
        PendingInboundRow {
            chat: "c",
            sender: "s",
            id: "2",
            message: b"m2",
        },
        PendingInboundRow {
            chat: "d",
            sender: "s",
            id: "1",
            message: b"m1 in d",
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_pending_inbound("c", "s", "1").await.unwrap(),
        Some(b"m1".to_vec())
    );
    assert_eq!(
        s.get_pending_inbound("c", "t", "1").await.unwrap(),
        Some(b"m1 from t".to_vec())
    );
    assert_eq!(
        s.get_pending_inbound("d", "s", "1").await.unwrap(),
        Some(b"m1 in d".to_vec())
    );
    s.delete_pending_inbound("c", "s", "1").await.unwrap();
    assert_eq!(s.get_pending_inbound("c", "s", "1").await.unwrap(), None);
    s.delete_pending_inbound_batch(&[
        PendingInboundKey {
            chat: "c",
            sender: "s",
            id: "2",
        },
        PendingInboundKey {
            chat: "x",
            sender: "y",
            id: "z",
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.get_pending_inbound("c", "s", "2").await.unwrap(), None);
    let now = now_secs();
    assert_eq!(
        s.delete_expired_pending_inbound(now - 3600).await.unwrap(),
        0
    );
    assert_eq!(
        s.delete_expired_pending_inbound(now + 3600).await.unwrap(),
        2
    );
    assert_eq!(s.get_pending_inbound("d", "s", "1").await.unwrap(), None);
}

// ---------------------------------------------------------------- Msg secrets

async fn msg_secrets_merge_and_expire(env: Env) {
    let s = env.backend(0).await;
    assert_eq!(s.get_msg_secret("c", "s", "m").await.unwrap(), None);
    s.put_msg_secret("c", "s", "never", &[1; 32]).await.unwrap();
    let stored = s
        .put_msg_secrets(vec![
            secret_entry("c", "s", "m", 2, 100, 0),
            secret_entry("c", "t", "m", 3, 50, 7),
            secret_entry("d", "s", "m", 4, 300, 0),
        ])
        .await
        .unwrap();
    assert_eq!(stored, 3);
    assert_eq!(
        s.get_msg_secret("c", "s", "m").await.unwrap(),
        Some(vec![2; 32])
    );
    assert_eq!(
        s.get_msg_secret_with_ts("c", "t", "m").await.unwrap(),
        Some((vec![3; 32], 7))
    );
    assert_eq!(
        s.get_msg_secret_with_ts("c", "s", "never").await.unwrap(),
        Some((vec![1; 32], 0))
    );
    // Re-persisting: the secret is replaced, the deadline never shrinks and
    // the parent time is kept unless a later one comes.
    s.put_msg_secrets(vec![
        secret_entry("c", "s", "m", 5, 80, 9),
        secret_entry("c", "t", "m", 3, 0, 0),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_msg_secret_with_ts("c", "s", "m").await.unwrap(),
        Some((vec![5; 32], 9))
    );
    assert_eq!(
        s.get_msg_secret_with_ts("c", "t", "m").await.unwrap(),
        Some((vec![3; 32], 7))
    );
    // Deadlines at or before the cutoff go; "never" (0) stays.
    assert_eq!(s.delete_expired_msg_secrets(99).await.unwrap(), 0);
    assert_eq!(s.delete_expired_msg_secrets(100).await.unwrap(), 1);
    assert_eq!(s.get_msg_secret("c", "s", "m").await.unwrap(), None);
    assert_eq!(s.delete_expired_msg_secrets(i64::MAX).await.unwrap(), 1);
    assert!(s.get_msg_secret("c", "t", "m").await.unwrap().is_some());
    assert!(s.get_msg_secret("c", "s", "never").await.unwrap().is_some());
}

// ---------------------------------------------------------------- Device

async fn device_create_save_load(env: Env) {
    let s = env.backend(0).await;
    assert!(!s.exists().await.unwrap());
    assert!(s.load().await.unwrap().is_none());
    let id = s.create().await.unwrap();
    assert!(id > 0);
    assert!(s.exists().await.unwrap());
    let created = s.load().await.unwrap().expect("create stores a device");
    let mut device = Device::new();
    device.push_name = "Zap Gate".into();
    device.registration_id = 4242;
    device.next_pre_key_id = 812;
    device.edge_routing_info = Some(vec![1, 2, 3]);
    assert_ne!(json(&device), json(&created), "fresh keys each time");
    s.save(&device).await.unwrap();
    let loaded = s.load().await.unwrap().unwrap();
    assert_eq!(json(&loaded), json(&device));
    // create() on an existing device keeps it.
    s.create().await.unwrap();
    assert_eq!(json(&s.load().await.unwrap().unwrap()), json(&device));
}

// ---------------------------------------------------------------- Across

/// Writes one row of every kind, values derived from `tag`.
async fn fill(s: &dyn Backend, tag: &str) {
    let v = |what: &str| format!("{tag}-{what}").into_bytes();
    s.put_identity("u@lid", [tag.len() as u8; 32])
        .await
        .unwrap();
    s.put_session("u@lid", &v("session")).await.unwrap();
    s.store_prekey(1, &v("prekey"), true).await.unwrap();
    s.store_signed_prekey(1, &v("signed")).await.unwrap();
    s.put_sender_key("g@g.us::u@lid", &v("sender-key"))
        .await
        .unwrap();
    s.set_sync_key(
        b"kid",
        AppStateSyncKey {
            key_data: v("sync"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.put_mutation_macs(
        "regular",
        1,
        &[AppStateMutationMAC {
            index_mac: vec![1],
            value_mac: v("mac"),
        }],
    )
    .await
    .unwrap();
    s.set_sender_key_status("g@g.us", &[("u@lid", true)])
        .await
        .unwrap();
    s.put_lid_mapping(&lid_entry("u", &format!("{tag}-pn"), 1))
        .await
        .unwrap();
    s.save_base_key("u@lid", "m", &v("base")).await.unwrap();
    s.update_device_list(device_list("u", &[0], 1))
        .await
        .unwrap();
    s.put_group_metadata("g@g.us", &v("group")).await.unwrap();
    s.store_received_tc_token("u@lid", &v("tc"), 1)
        .await
        .unwrap();
    s.store_sent_message("g@g.us", "m", &v("sent"))
        .await
        .unwrap();
    s.store_pending_inbound("g@g.us", "u@lid", "m", &v("inbound"))
        .await
        .unwrap();
    s.put_msg_secret("g@g.us", "u@lid", "m", &[7; 32])
        .await
        .unwrap();
    let mut device = Device::new();
    device.push_name = format!("{tag}-device");
    s.save(&device).await.unwrap();
}

/// Checks the rows `fill(tag)` wrote, or their absence.
async fn check_filled(s: &dyn Backend, tag: &str, present: bool) {
    let v = |what: &str| format!("{tag}-{what}").into_bytes();
    let want = |what: &str| present.then(|| v(what));
    assert_eq!(
        s.get_session("u@lid").await.unwrap().map(|b| b.to_vec()),
        want("session")
    );
    assert_eq!(
        s.load_identity("u@lid").await.unwrap(),
        present.then_some([tag.len() as u8; 32])
    );
    assert_eq!(
        s.load_prekey(1).await.unwrap().map(|b| b.to_vec()),
        want("prekey")
    );
    assert_eq!(s.load_signed_prekey(1).await.unwrap(), want("signed"));
    assert_eq!(
        s.get_sender_key("g@g.us::u@lid").await.unwrap(),
        want("sender-key")
    );
    assert_eq!(
        s.get_sync_key(b"kid").await.unwrap().map(|k| k.key_data),
        want("sync")
    );
    assert_eq!(
        s.get_latest_sync_key_id().await.unwrap(),
        present.then(|| b"kid".to_vec())
    );
    assert_eq!(
        s.get_mutation_mac("regular", &[1]).await.unwrap(),
        want("mac")
    );
    assert_eq!(
        s.get_sender_key_devices("g@g.us").await.unwrap().len(),
        usize::from(present)
    );
    assert_eq!(
        s.get_lid_mapping("u")
            .await
            .unwrap()
            .map(|e| e.phone_number.into_bytes()),
        want("pn")
    );
    assert_eq!(
        s.get_pn_mapping(&format!("{tag}-pn"))
            .await
            .unwrap()
            .is_some(),
        present
    );
    assert_eq!(
        s.has_same_base_key("u@lid", "m", &v("base")).await.unwrap(),
        present
    );
    assert_eq!(s.get_devices("u").await.unwrap().is_some(), present);
    assert_eq!(s.get_group_metadata("g@g.us").await.unwrap(), want("group"));
    assert_eq!(
        s.get_tc_token("u@lid").await.unwrap().map(|t| t.token),
        want("tc")
    );
    assert_eq!(
        s.get_pending_inbound("g@g.us", "u@lid", "m").await.unwrap(),
        want("inbound")
    );
    assert_eq!(
        s.get_msg_secret("g@g.us", "u@lid", "m")
            .await
            .unwrap()
            .is_some(),
        present
    );
    assert_eq!(
        s.load().await.unwrap().map(|d| d.push_name.into_bytes()),
        want("device")
    );
    assert_eq!(s.exists().await.unwrap(), present);
    // Last: taking consumes the row.
    assert_eq!(
        s.take_sent_message("g@g.us", "m").await.unwrap(),
        want("sent")
    );
}

async fn instances_are_isolated(env: Env) {
    let (one, two) = (env.backend(0).await, env.backend(1).await);
    fill(&*one, "one").await;
    check_filled(&*two, "one", false).await;
    assert!(two.get_all_lid_mappings().await.unwrap().is_empty());
    assert!(two.get_all_tc_token_jids().await.unwrap().is_empty());
    assert!(two.load_all_signed_prekeys().await.unwrap().is_empty());
    assert_eq!(two.get_max_prekey_id().await.unwrap(), 0);
    assert!(!two.has_signal_state_for_user("u").await.unwrap());
    fill(&*two, "second").await;
    // Clearing and expiring in one instance leaves the other alone.
    two.clear_all_sender_key_devices().await.unwrap();
    two.clear_mutation_macs("regular").await.unwrap();
    assert_eq!(
        two.delete_expired_tc_tokens(i64::MAX, i64::MAX)
            .await
            .unwrap(),
        1
    );
    assert_eq!(two.delete_expired_msg_secrets(i64::MAX).await.unwrap(), 0);
    assert_eq!(
        two.delete_expired_pending_inbound(i64::MAX).await.unwrap(),
        1
    );
    check_filled(&*one, "one", true).await;
}

async fn state_survives_reopening(env: Env) {
    if env.sql.is_none() {
        eprintln!("not applicable: the in-memory backend keeps nothing across instances");
        return;
    }
    let s = env.backend(0).await;
    fill(&*s, "kept").await;
    drop(s);
    let reopened = env.backend(0).await;
    check_filled(&*reopened, "kept", true).await;
}

async fn concurrent_writes_all_land(env: Env) {
    let s = env.backend(0).await;
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15u32 {
                let a = format!("{t}:{i}@lid");
                s.put_session(&a, a.as_bytes()).await.unwrap();
                s.put_sessions_batch(&[(addr(&format!("b{a}")), b(a.as_bytes()))])
                    .await
                    .unwrap();
                s.store_prekey(t * 100 + i, a.as_bytes(), false)
                    .await
                    .unwrap();
                s.touch_tc_token_sender_timestamp("shared@lid", i64::from(t * 100 + i))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for t in 0..8u32 {
        for i in 0..15u32 {
            let a = format!("{t}:{i}@lid");
            assert_eq!(s.get_session(&a).await.unwrap(), Some(b(a.as_bytes())));
            assert_eq!(
                s.get_session(&format!("b{a}")).await.unwrap(),
                Some(b(a.as_bytes()))
            );
        }
    }
    assert_eq!(s.get_max_prekey_id().await.unwrap(), 714);
    let tc = s.get_tc_token("shared@lid").await.unwrap().unwrap();
    assert_eq!(
        tc.sender_timestamp,
        Some(714),
        "the sender bucket only grows"
    );
}

// ---------------------------------------------------------------- ours only

const MARKER: &str = "PLAINTEXT-MARKER";

async fn values_are_sealed_in_the_raw_table(env: Env) {
    let s = env.backend(0).await;
    fill(&*s, MARKER).await;
    s.put_identity("id@lid", *b"PLAINTEXT-MARKER-IDENTITY-KEY-32")
        .await
        .unwrap();
    let pool = raw_pool(&env).await;
    let rows = sqlx::query("SELECT ns, scope, key, value FROM wa_session")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(rows.len() >= 18, "{} rows", rows.len());
    for row in &rows {
        let ns: String = row.get(0);
        let scope: String = row.get(1);
        let key: String = row.get(2);
        let value: Vec<u8> = row.get(3);
        assert_eq!(value[0], 1, "{ns}: a secret-box envelope");
        assert!(
            !contains(&value, MARKER.as_bytes()),
            "{ns} value in plaintext"
        );
        // Keys are plain by design; only the phone index names the phone,
        // and it is not a value.
        assert!(!scope.contains(MARKER), "{ns} scope");
        if ns != "pn_to_lid" {
            assert!(!key.contains(MARKER), "{ns} key {key}");
        }
        assert!(!contains(&value, b"u@lid"), "{ns}: no addresses in values");
    }
    // The numbers in the clear are ids, times and flags, never key bytes.
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wa_session WHERE ns = 'session'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    pool.close().await;
}

async fn a_value_copied_to_another_row_does_not_open(env: Env) {
    let one = env.backend(0).await;
    one.put_session("a@lid", b"session of a").await.unwrap();
    one.put_session("b@lid", b"session of b").await.unwrap();
    let two = env.backend(1).await;
    two.put_session("a@lid", b"other instance").await.unwrap();
    let pool = raw_pool(&env).await;
    let sealed = |key: &'static str, instance: usize| {
        let pool = pool.clone();
        let id = env.sql().instances[instance].clone();
        async move {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT value FROM wa_session WHERE ns = 'session' AND key = $1 AND instance_id = $2",
            )
            .bind(key)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let a = sealed("a@lid", 0).await;
    // Copy a's value over b (same instance) and over instance two's a.
    for (key, instance) in [("b@lid", 0usize), ("a@lid", 1)] {
        sqlx::query("UPDATE wa_session SET value = $1 WHERE ns = 'session' AND key = $2 AND instance_id = $3")
            .bind(a.clone())
            .bind(key)
            .bind(env.sql().instances[instance].clone())
            .execute(&pool)
            .await
            .unwrap();
    }
    assert!(
        one.get_session("b@lid").await.is_err(),
        "copied to another key"
    );
    assert!(
        two.get_session("a@lid").await.is_err(),
        "copied to another instance"
    );
    // And to another kind of row.
    sqlx::query("UPDATE wa_session SET ns = 'sender_key' WHERE ns = 'session' AND key = 'a@lid' AND instance_id = $1")
        .bind(env.sql().instances[0].clone())
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        one.get_sender_key("a@lid").await.is_err(),
        "moved to another kind"
    );
    pool.close().await;
}

async fn wipe_removes_one_instance_only(env: Env) {
    let (one, two) = (env.backend(0).await, env.backend(1).await);
    fill(&*one, "one").await;
    fill(&*two, "two").await;
    let store = env.wa_store(0).await.unwrap();
    assert_eq!(store.instance_id(), env.sql().instances[0]);
    assert!(store.wipe().await.unwrap() >= 18);
    check_filled(&*one, "one", false).await;
    assert!(one.get_all_lid_mappings().await.unwrap().is_empty());
    check_filled(&*two, "two", true).await;
    assert_eq!(store.wipe().await.unwrap(), 0);
}

async fn deleting_the_instance_deletes_its_session(env: Env) {
    let (one, two) = (env.backend(0).await, env.backend(1).await);
    fill(&*one, "one").await;
    fill(&*two, "two").await;
    let sql = env.sql();
    let store = open_store(&sql.url).await;
    assert!(
        store
            .delete_instance(&sql.account.id, &sql.instances[0])
            .await
            .unwrap()
    );
    let pool = raw_pool(&env).await;
    let left: Vec<String> = sqlx::query_scalar("SELECT DISTINCT instance_id FROM wa_session")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![sql.instances[1].clone()]);
    pool.close().await;
    check_filled(&*two, "two", true).await;
}

async fn rotating_the_key_reseals_session_values(env: Env) {
    const NEW_KEY: [u8; 32] = [0x77; 32];
    let one = env.backend(0).await;
    fill(&*one, "rotated").await;
    let sql = env.sql();
    let with = |current, retired| {
        let url = sql.url.clone();
        async move {
            SqlStore::connect(&url, SecretBox::new(current, retired))
                .await
                .unwrap()
        }
    };
    let rotating = with(NEW_KEY, vec![KEY]).await;
    assert!(rotating.rekey_secrets().await.unwrap() >= 18);
    assert_eq!(
        rotating.rekey_secrets().await.unwrap(),
        0,
        "nothing left to move"
    );
    // The old key can now be dropped: the session opens under the new one.
    let only_new = with(NEW_KEY, vec![]).await;
    let s = WaSessionStore::new(only_new, sql.instances[0].clone());
    check_filled(&s, "rotated", true).await;
    // And no longer under the old one alone.
    assert!(one.get_session("u@lid").await.is_err());
}

async fn raw_pool(env: &Env) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&env.sql().url)
        .await
        .expect("raw connect")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
