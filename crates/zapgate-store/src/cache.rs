//! Per-process read caches for rows read on every request or message and
//! rarely written (token owners, decrypted integrations). Every write through
//! this store that can change such a row forgets the whole cache, so within
//! one process a change is seen by the next read; another process on the same
//! database sees it at most `ttl` after it committed. Only found rows are
//! kept: a row created anywhere is seen at once.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

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

    /// After every write that may change a cached row (committed or not).
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
