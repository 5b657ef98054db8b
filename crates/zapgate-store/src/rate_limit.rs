//! Rate-limit counters in the database, so every process sharing it counts
//! against the same budget. One upsert per request; old windows are swept
//! now and then by whoever opens a new window.

use zapgate_core::Result;

use crate::{SqlStore, conn::StoreQuery, rows::get};

/// Windows older than this many seconds before the current one are deleted.
const KEEP_SECONDS: i64 = 120;

pub(crate) async fn count_request(
    store: &SqlStore,
    bucket: &str,
    window_start: i64,
) -> Result<u64> {
    let row = sqlx::query(
        "INSERT INTO rate_limit_counters (bucket, window_start, count) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket, window_start) \
         DO UPDATE SET count = rate_limit_counters.count + 1 \
         RETURNING count",
    )
    .bind(bucket)
    .bind(window_start)
    .fetch_one_on(store)
    .await?;
    let count: i64 = get(&row, "count")?;
    if count == 1 {
        // First request of a new window for this bucket: a cheap moment to
        // sweep. Losing the sweep only delays it to the next window.
        if let Err(e) = sqlx::query("DELETE FROM rate_limit_counters WHERE window_start < $1")
            .bind(window_start - KEEP_SECONDS)
            .execute_on(store)
            .await
        {
            tracing::warn!(error = %e, "sweeping old rate-limit windows failed");
        }
    }
    Ok(u64::try_from(count).unwrap_or(0))
}
