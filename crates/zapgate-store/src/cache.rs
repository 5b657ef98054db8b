//! Per-process read caches for rows read on every request or message and
//! rarely written (token owners, instances, decrypted integrations, the
//! summaries the list routes show). Every write through this store that can
//! change such a row forgets every cache, so within one process a change is
//! seen by the next read; another process on the same database sees it at
//! most `ttl` after it committed. Single rows are kept only when found, so a
//! row created anywhere is seen at once; a cached list may miss, for up to
//! `ttl`, an instance another process just created. The negative entries
//! are a token found nowhere (see [`UNKNOWN_TOKEN_TTL`]) and an instance
//! without a Chatwoot integration (see [`MISSING_INTEGRATION_TTL`]).

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use zapgate_core::{
    Result,
    chatwoot::{Integration, IntegrationSummary},
    chatwoot_import::ImportProgress,
    instance::Instance,
    store::Principal,
};

/// How long a resolved token, an instance or a list is trusted without asking
/// the database again. Deleting an account or an instance through this store
/// forgets it at once; a deletion by another process on the same database (a
/// fleet on PostgreSQL, `zapgate account delete`) revokes its tokens here at
/// most this late.
const ROW_TTL: Duration = Duration::from_secs(1);

/// How long a token found nowhere is known as unknown, so a client repeating
/// a wrong token costs no query. A token created through this store is seen
/// at once (the write forgets this); one created by another process (a fleet
/// on PostgreSQL, `zapgate account create`) after this process was asked
/// for it works here at most this late.
const UNKNOWN_TOKEN_TTL: Duration = Duration::from_secs(10);

/// How long a decrypted integration is reused: another process's change (a
/// token or flag updated elsewhere, a deactivation elsewhere: its jobs are
/// taken from the queue at once) reaches a job already running here at most
/// this late.
const INTEGRATION_TTL: Duration = Duration::from_secs(2);

/// How long an integration found nowhere is known as missing. The bridge
/// asks for the instance's integration on every message and receipt, and
/// most instances of an events-only deployment have none: without this,
/// each of their events cost a query. An activation through this store is
/// seen at once (the write forgets this); one by another process (a fleet
/// on PostgreSQL) reaches messages handled here at most this late.
const MISSING_INTEGRATION_TTL: Duration = Duration::from_secs(1);

/// Every read cache of one store, forgotten together on any write that can
/// change what one of them holds: writes of these rows are rare, and one rule
/// leaves no write site that forgets too little.
pub(crate) struct ReadCaches {
    /// Resolved tokens, by token hash.
    pub(crate) principals: TtlCache<String, Principal>,
    /// Token hashes that resolved to nobody.
    pub(crate) unknown_tokens: TtlCache<String, ()>,
    /// Decrypted integrations, by (column, value).
    pub(crate) integrations: TtlCache<(&'static str, String), Integration>,
    /// Lookups of `integrations` that found nothing.
    pub(crate) missing_integrations: TtlCache<(&'static str, String), ()>,
    /// Instances, by id ([`InstanceKey::Id`]) or by account and name.
    pub(crate) instances: TtlCache<InstanceKey, Instance>,
    /// An account's whole instance list, by account id.
    pub(crate) instance_lists: TtlCache<String, Arc<[Instance]>>,
    /// An account's integration summaries, by account id.
    pub(crate) summaries: TtlCache<String, Arc<[IntegrationSummary]>>,
    /// An integration's dead-letter count and newest error, by integration id.
    pub(crate) dead_jobs: TtlCache<String, (u64, Option<String>)>,
    /// An instance's last history import, or none, by instance id: the
    /// Chatwoot list shows it on every read.
    pub(crate) imports: TtlCache<String, Option<ImportProgress>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum InstanceKey {
    Id(String),
    Name { account_id: String, name: String },
}

impl ReadCaches {
    pub(crate) fn new() -> Self {
        Self {
            principals: TtlCache::new(ROW_TTL),
            unknown_tokens: TtlCache::new(UNKNOWN_TOKEN_TTL),
            integrations: TtlCache::new(INTEGRATION_TTL),
            missing_integrations: TtlCache::new(MISSING_INTEGRATION_TTL),
            instances: TtlCache::new(ROW_TTL),
            instance_lists: TtlCache::new(ROW_TTL),
            summaries: TtlCache::new(ROW_TTL),
            dead_jobs: TtlCache::new(ROW_TTL),
            imports: TtlCache::new(ROW_TTL),
        }
    }

    /// After every write that may change a cached row (committed or not).
    pub(crate) fn forget_all(&self) {
        self.principals.forget_all();
        self.unknown_tokens.forget_all();
        self.integrations.forget_all();
        self.missing_integrations.forget_all();
        self.instances.forget_all();
        self.instance_lists.forget_all();
        self.summaries.forget_all();
        self.dead_jobs.forget_all();
        self.imports.forget_all();
    }
}

/// More entries than this and the cache starts over.
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    /// Bumped by every write: a read that began before it does not fill in.
    generation: AtomicU64,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// The value cached for `key`, else what `load` reads, kept when found.
    pub(crate) async fn get_or_load(
        &self,
        key: K,
        load: impl Future<Output = Result<Option<V>>>,
    ) -> Result<Option<V>> {
        if let Some(found) = self.get(&key) {
            return Ok(Some(found));
        }
        // Futures are lazy: the read starts after the generation is taken.
        let generation = self.generation();
        let found = load.await?;
        if let Some(found) = &found {
            self.put(generation, key, found.clone());
        }
        Ok(found)
    }

    /// Taken before the database read whose result goes to [`Self::put`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `value` unless a write came since `generation` was taken: the
    /// read may have seen the row as it was before that write.
    pub(crate) fn put(&self, generation: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub(crate) fn forget_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_during_a_read_keeps_the_read_out() {
        let cache = TtlCache::<String, u32>::new(Duration::from_secs(60));
        let before = cache.generation();
        cache.forget_all();
        cache.put(before, "a".to_owned(), 1);
        assert_eq!(cache.get("a"), None);
        cache.put(cache.generation(), "a".to_owned(), 2);
        assert_eq!(cache.get("a"), Some(2));
        cache.forget_all();
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn entries_expire() {
        let cache = TtlCache::<String, u32>::new(Duration::ZERO);
        cache.put(cache.generation(), "a".to_owned(), 1);
        assert_eq!(cache.get("a"), None);
    }
}
