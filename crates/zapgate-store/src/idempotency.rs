//! Idempotency keys of sends: claimed with one upsert, so two processes
//! racing on a key see one winner. On SQLite the writes take the hot
//! writers' turn (see [`crate::conn::WriteTurn`]) instead of colliding with
//! them on the database's write lock, whose busy handler sleeps.

use std::sync::atomic::Ordering;

use zapgate_core::{
    Result,
    idempotency::{IdempotencyClaim, IdempotencyRecord, WINDOW_MS},
};

use crate::{SqlStore, rows::get};

/// How often keys past the window are deleted. Until then an expired key is
/// still a row, but a claim takes it over (the upsert below), so pruning
/// only bounds the table.
const PRUNE_EVERY_MS: i64 = 10 * 60 * 1000;

pub(crate) async fn claim(
    store: &SqlStore,
    claim: &IdempotencyClaim,
) -> Result<Option<IdempotencyRecord>> {
    let expired_before = claim.now_ms - WINDOW_MS;
    let mut turn = store.write_turn().await;
    let last_prune = store.idempotency_pruned_at.load(Ordering::Relaxed);
    if claim.now_ms - last_prune >= PRUNE_EVERY_MS
        && store
            .idempotency_pruned_at
            .compare_exchange(
                last_prune,
                claim.now_ms,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    {
        turn.execute(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(expired_before),
        )
        .await?;
    }
    // A new key is inserted; a key past the window is taken over as new.
    let claimed = turn
        .execute(
            sqlx::query(
                "INSERT INTO idempotency_keys (instance_id, idem_key, request_hash, response, created_at) \
                 VALUES ($1, $2, $3, NULL, $4) \
                 ON CONFLICT (instance_id, idem_key) DO UPDATE SET \
                 request_hash = excluded.request_hash, response = NULL, created_at = excluded.created_at \
                 WHERE idempotency_keys.created_at < $5",
            )
            .bind(&claim.instance_id)
            .bind(&claim.key)
            .bind(&claim.request_hash)
            .bind(claim.now_ms)
            .bind(expired_before),
        )
        .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let row = turn
        .fetch_all(
            sqlx::query(
                "SELECT request_hash, response FROM idempotency_keys \
                 WHERE instance_id = $1 AND idem_key = $2",
            )
            .bind(&claim.instance_id)
            .bind(&claim.key),
        )
        .await?
        .pop();
    drop(turn);
    match row {
        Some(row) => Ok(Some(IdempotencyRecord {
            request_hash: get(&row, "request_hash")?,
            response: get(&row, "response")?,
        })),
        // Released between the insert and the read (PostgreSQL, where
        // writes do not take turns): claim it afresh.
        None => Box::pin(self::claim(store, claim)).await,
    }
}

pub(crate) async fn finish(
    store: &SqlStore,
    instance_id: &str,
    key: &str,
    response: &str,
) -> Result<()> {
    store
        .write_turn()
        .await
        .execute(
            sqlx::query(
                "UPDATE idempotency_keys SET response = $1 WHERE instance_id = $2 AND idem_key = $3",
            )
            .bind(response)
            .bind(instance_id)
            .bind(key),
        )
        .await?;
    Ok(())
}

pub(crate) async fn release(store: &SqlStore, instance_id: &str, key: &str) -> Result<()> {
    store
        .write_turn()
        .await
        .execute(
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE instance_id = $1 AND idem_key = $2 AND response IS NULL",
            )
            .bind(instance_id)
            .bind(key),
        )
        .await?;
    Ok(())
}
