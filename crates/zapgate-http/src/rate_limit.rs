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
/// At most this many buckets are counted in memory (~150 bytes each). A
/// flood of distinct callers (client IPs) makes room by dropping finished
/// windows, then the least used buckets.
const MEMORY_CAP: usize = 100_000;

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
    Memory(Mutex<Buckets>),
    Shared(Arc<dyn Store>),
}

/// The in-memory counters: bucket → (window start, count), at most `cap`.
struct Buckets {
    map: HashMap<String, (i64, u64)>,
    cap: usize,
}

pub struct RateLimiter {
    config: RateLimitConfig,
    counter: Counter,
}

impl RateLimiter {
    /// Counters in this process.
    pub fn in_memory(config: RateLimitConfig) -> Self {
        Self::in_memory_capped(config, MEMORY_CAP)
    }

    fn in_memory_capped(config: RateLimitConfig, cap: usize) -> Self {
        Self {
            config,
            counter: Counter::Memory(Mutex::new(Buckets {
                map: HashMap::new(),
                cap,
            })),
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

fn count_in_memory(buckets: &Mutex<Buckets>, bucket: &str, window: i64) -> u64 {
    let mut buckets = buckets
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !buckets.map.contains_key(bucket) && buckets.map.len() >= buckets.cap {
        buckets.make_room(window);
    }
    let entry = buckets.map.entry(bucket.to_owned()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 += 1;
    entry.1
}

impl Buckets {
    /// Drops finished windows; if the current one alone fills the map,
    /// drops its least used buckets down to three quarters of the cap (they
    /// start counting again: at worst a caller seen least gets a fresh
    /// window). Leaving a quarter free makes the scan rare: its cost is
    /// spread over the next `cap / 4` new buckets.
    fn make_room(&mut self, window: i64) {
        self.map.retain(|_, (start, _)| *start == window);
        let keep = self.cap * 3 / 4;
        if self.map.len() <= keep {
            return;
        }
        let mut counts: Vec<u64> = self.map.values().map(|(_, count)| *count).collect();
        let mut excess = self.map.len() - keep;
        let (_, &mut threshold, _) = counts.select_nth_unstable(excess - 1);
        self.map.retain(|_, (_, count)| {
            if excess > 0 && *count <= threshold {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
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
    async fn a_flood_of_buckets_stays_under_the_cap_and_the_busy_keep_their_count() {
        let cap = 100;
        let limiter = RateLimiter::in_memory_capped(RateLimitConfig::default(), cap);
        let mut first = None;
        for _ in 0..5 {
            first = limiter.hit("busy", 5).await;
        }
        for i in 0..10_000 {
            limiter.hit(&format!("ip:{i}"), 5).await.unwrap();
            let Counter::Memory(buckets) = &limiter.counter else {
                unreachable!()
            };
            let size = buckets.lock().unwrap().map.len();
            assert!(size <= cap, "{size} buckets after {i} callers");
        }
        // The busiest bucket outlived the flood: still over its limit
        // (unless the flood crossed into a new window, which resets it).
        let last = limiter.hit("busy", 5).await.unwrap();
        assert!(!last.allowed || last.reset != first.unwrap().reset);
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
