//! Idempotency keys of sends: claimed with one insert, so two processes
//! racing on a key see one winner.

use zapgate_core::{
    Result,
    idempotency::{IdempotencyClaim, IdempotencyRecord, WINDOW_MS},
};

use crate::{SqlStore, conn::StoreQuery, rows::get};

pub(crate) async fn claim(
    store: &SqlStore,
    claim: &IdempotencyClaim,
) -> Result<Option<IdempotencyRecord>> {
    // Keys past the window are forgotten, everyone's at once: the index on
    // created_at keeps this cheap, and it only runs on keyed sends.
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(claim.now_ms - WINDOW_MS)
        .execute_on(store)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (instance_id, idem_key, request_hash, response, created_at) \
         VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (instance_id, idem_key) DO NOTHING",
    )
    .bind(&claim.instance_id)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(claim.now_ms)
    .execute_on(store)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT request_hash, response FROM idempotency_keys WHERE instance_id = $1 AND idem_key = $2",
    )
    .bind(&claim.instance_id)
    .bind(&claim.key)
    .fetch_optional_on(store)
    .await?;
    match row {
        Some(row) => Ok(Some(IdempotencyRecord {
            request_hash: get(&row, "request_hash")?,
            response: get(&row, "response")?,
        })),
        // Released between the insert and the read: claim it afresh.
        None => Box::pin(self::claim(store, claim)).await,
    }
}

pub(crate) async fn finish(
    store: &SqlStore,
    instance_id: &str,
    key: &str,
    response: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET response = $1 WHERE instance_id = $2 AND idem_key = $3",
    )
    .bind(response)
    .bind(instance_id)
    .bind(key)
    .execute_on(store)
    .await?;
    Ok(())
}

pub(crate) async fn release(store: &SqlStore, instance_id: &str, key: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE instance_id = $1 AND idem_key = $2 AND response IS NULL",
    )
    .bind(instance_id)
    .bind(key)
    .execute_on(store)
    .await?;
    Ok(())
}
