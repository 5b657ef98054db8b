//! Fixed one-minute windows counted per token (or per client IP for requests
//! without a valid token). With SQLite there is one process, so counters live
//! in memory; with PostgreSQL they live in the database, so every process of
//! a fleet shares each bucket.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use zapgate_core::{store::Store, time::now_secs};

const WINDOW_SECS: i64 = 60;
/// Above this many tracked buckets the memory counter drops finished windows.
const MEMORY_PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per minute on every route.
    pub per_minute: u32,
    /// Requests per minute on `POST /api/instance/new`.
    pub create_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_minute: 100,
            create_per_minute: 20,
        }
    }
}

/// The outcome of counting one request, and what the `X-RateLimit-*`
/// headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window resets.
    pub reset: i64,
    pub allowed: bool,
}

enum Counter {
    Memory(Mutex<HashMap<String, (i64, u64)>>),
    Shared(Arc<dyn Store>),
}

pub struct RateLimiter {
    config: RateLimitConfig,
    counter: Counter,
}

impl RateLimiter {
    /// Counters in this process.
    pub fn in_memory(config: RateLimitConfig) -> Self {
        Self {
            config,
            counter: Counter::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// Counters in the database, shared by every process that uses it.
    pub fn shared(config: RateLimitConfig, store: Arc<dyn Store>) -> Self {
        Self {
            config,
            counter: Counter::Shared(store),
        }
    }

    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Counts a request against `bucket`. `None` when limits are off.
    pub async fn hit(&self, bucket: &str, limit: u32) -> Option<Verdict> {
        if !self.config.enabled {
            return None;
        }
        let now = now_secs();
        let window_start = now - now.rem_euclid(WINDOW_SECS);
        let count = match &self.counter {
            Counter::Memory(map) => count_in_memory(map, bucket, window_start),
            Counter::Shared(store) => match store.count_request(bucket, window_start).await {
                Ok(count) => count,
                // Failing open: a limiter outage must not take the API down
                // with it; the request itself will meet the database anyway.
                Err(err) => {
                    tracing::warn!(error = %err, "rate limit counter unavailable");
                    return None;
                }
            },
        };
        Some(Verdict {
            limit,
            remaining: u64::from(limit).saturating_sub(count) as u32,
            reset: window_start + WINDOW_SECS,
            allowed: count <= u64::from(limit),
        })
    }
}

fn count_in_memory(map: &Mutex<HashMap<String, (i64, u64)>>, bucket: &str, window: i64) -> u64 {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() >= MEMORY_PRUNE_AT {
        map.retain(|_, (start, _)| *start == window);
    }
    let entry = map.entry(bucket.to_owned()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 += 1;
    entry.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_counter_allows_up_to_the_limit() {
        let limiter = RateLimiter::in_memory(RateLimitConfig::default());
        for expected_remaining in (0..3).rev() {
            let v = limiter.hit("a", 3).await.unwrap();
            assert!(v.allowed);
            assert_eq!(v.remaining, expected_remaining);
        }
        let over = limiter.hit("a", 3).await.unwrap();
        assert!(!over.allowed);
        assert_eq!(over.remaining, 0);
        assert!(
            limiter.hit("b", 3).await.unwrap().allowed,
            "buckets are separate"
        );
        assert_eq!(over.reset % WINDOW_SECS, 0);
    }

    #[tokio::test]
    async fn disabled_limiter_counts_nothing() {
        let config = RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        };
        assert!(RateLimiter::in_memory(config).hit("a", 1).await.is_none());
    }
}
