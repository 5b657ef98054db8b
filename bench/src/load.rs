//! Load generation (open loop at a fixed rate, closed loop with N clients)
//! and percentiles. Every loop is bounded in count and in time.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::Semaphore;

/// Milliseconds between two wall-clock instants (0 when `b` is before `a`).
pub fn ms_between(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Sorted samples in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn new(mut v: Vec<f64>) -> Self {
        v.sort_by(|a, b| a.total_cmp(b));
        Self(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile; NaN when empty.
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
}

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One request of an open-loop run.
#[derive(Debug, Clone)]
pub struct Shot {
    pub started: SystemTime,
    pub elapsed_ms: f64,
    /// What the request returned (an id), or the error.
    pub outcome: Result<String, String>,
}

pub struct OpenLoop {
    pub shots: Vec<Shot>,
    /// How late the last request left compared with its schedule.
    pub lag: Duration,
}

/// Requests a load step keeps open at once: past it the generator waits,
/// and its lag shows the server fell behind.
pub const MAX_IN_FLIGHT: usize = 2048;

/// Sends `total` requests at `rate` per second, each made by `make(i)`;
/// at most `max_in_flight` at once (a full window delays the schedule,
/// which shows in `lag`). Gives up dispatching after `limit`.
pub async fn open_loop(
    rate: f64,
    total: usize,
    max_in_flight: usize,
    limit: Duration,
    make: Arc<dyn Fn(usize) -> BoxFut<Result<String, String>> + Send + Sync>,
) -> OpenLoop {
    let shots = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let window = Arc::new(Semaphore::new(max_in_flight));
    let start = tokio::time::Instant::now();
    let mut lag = Duration::ZERO;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = window.clone().acquire_owned().await else {
            break;
        };
        lag = tokio::time::Instant::now().saturating_duration_since(due);
        if start.elapsed() > limit {
            break;
        }
        let fut = make(i);
        let shots = shots.clone();
        tokio::spawn(async move {
            let started = SystemTime::now();
            let t = Instant::now();
            let outcome = fut.await;
            let elapsed_ms = t.elapsed().as_secs_f64() * 1000.0;
            shots.lock().unwrap().push(Shot {
                started,
                elapsed_ms,
                outcome,
            });
            drop(permit);
        });
    }
    // Wait for the stragglers (bounded).
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        window.acquire_many(max_in_flight as u32),
    )
    .await;
    let shots = std::mem::take(&mut *shots.lock().unwrap());
    OpenLoop { shots, lag }
}

pub struct ClosedLoop {
    pub requests: usize,
    pub errors: usize,
    pub per_sec: f64,
    pub latency: Samples,
    wall_secs: f64,
}

impl ClosedLoop {
    /// Several runs of the same load as one: requests over their summed time.
    pub fn merged(runs: Vec<ClosedLoop>) -> ClosedLoop {
        let wall_secs: f64 = runs.iter().map(|r| r.wall_secs).sum();
        let requests = runs.iter().map(|r| r.requests).sum();
        ClosedLoop {
            requests,
            errors: runs.iter().map(|r| r.errors).sum(),
            per_sec: requests as f64 / wall_secs,
            latency: Samples::new(runs.into_iter().flat_map(|r| r.latency.0).collect()),
            wall_secs,
        }
    }
}

/// `clients` tasks, each sending `make()` back to back for `duration`.
pub async fn closed_loop(
    clients: usize,
    duration: Duration,
    make: Arc<dyn Fn() -> BoxFut<bool> + Send + Sync>,
) -> ClosedLoop {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            // Bounded both by time and by count.
            for _ in 0..10_000_000u64 {
                if start.elapsed() >= duration {
                    break;
                }
                let t = Instant::now();
                let ok = make().await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    ClosedLoop {
        requests: all.len(),
        errors,
        per_sec: all.len() as f64 / wall,
        latency: Samples::new(all),
        wall_secs: wall,
    }
}
