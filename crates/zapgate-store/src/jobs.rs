//! The bridge's job queue in `bridge_jobs`: durable work that survives
//! restarts and is shared by every process on the database. Jobs of one chat
//! run one at a time in id order; a claim leases a job with a compare-and-set
//! update, so two processes claiming at once never both get it.

use sqlx::any::AnyRow;
use zapgate_core::{
    Error, Result,
    error::Cause,
    jobs::{Job, JobStatus, NewJob},
    time::now_ms,
};

use crate::{
    SqlStore,
    backend::Backend,
    rows::{get, to_u32},
};

/// The columns [`job`] reads.
const COLUMNS: &str = "id, integration_id, instance_id, direction, chat_key, dedupe_key, \
    payload, status, attempts, last_error, created_at";

/// Whether the job of the row in scope (`bridge_jobs`) may be leased at `$1`:
/// queued and due, or running under an expired lease, and no older job of
/// its chat is still queued or running (dead ones no longer hold it back).
const CLAIMABLE: &str = "((bridge_jobs.status = 'queued' AND bridge_jobs.run_at <= $1) \
      OR (bridge_jobs.status = 'running' AND bridge_jobs.locked_until < $1)) \
     AND NOT EXISTS (SELECT 1 FROM bridge_jobs older \
         WHERE older.integration_id = bridge_jobs.integration_id \
           AND older.chat_key = bridge_jobs.chat_key \
           AND older.id < bridge_jobs.id \
           AND older.status IN ('queued', 'running'))";

const INSERT: &str = "INSERT INTO bridge_jobs (integration_id, instance_id, direction, chat_key, \
     dedupe_key, payload, status, attempts, run_at, locked_until, last_error, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, NULL, '', $8) \
     ON CONFLICT (dedupe_key) DO NOTHING";

fn insert<'q>(
    new: &'q NewJob,
    created_at: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(INSERT)
        .bind(&new.integration_id)
        .bind(&new.instance_id)
        .bind(new.direction)
        .bind(&new.chat_key)
        .bind(&new.dedupe_key)
        .bind(&new.payload)
        .bind(new.run_at_ms)
        .bind(created_at)
}

pub(crate) async fn enqueue(store: &SqlStore, jobs: &[NewJob]) -> Result<u64> {
    let _turn = store.write_turn().await;
    let created_at = now_ms();
    match jobs {
        [] => Ok(0),
        // One statement commits on its own: no transaction's round trips.
        [new] => Ok(insert(new, created_at)
            .execute(&store.pool)
            .await
            .map_err(Error::internal)?
            .rows_affected()),
        _ => {
            let mut inserted = 0;
            let mut tx = store.pool.begin().await.map_err(Error::internal)?;
            for new in jobs {
                inserted += insert(new, created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::internal)?
                    .rows_affected();
            }
            tx.commit().await.map_err(Error::internal)?;
            Ok(inserted)
        }
    }
}

/// Leases up to `limit` claimable jobs, oldest first, in one statement: the
/// outer `WHERE` re-checks the whole claim rule on each picked row, so it is
/// a compare-and-set per row. On PostgreSQL a row another process is leasing
/// at the same moment is locked: the subquery skips it (`SKIP LOCKED`), and
/// should it still be picked, the update re-reads it after the other commit
/// and the re-check leaves it out. On SQLite the statement holds the write
/// lock. A job leased elsewhere meanwhile is simply not returned.
pub(crate) async fn claim(
    store: &SqlStore,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
) -> Result<Vec<Job>> {
    const LEASE: &str = "UPDATE bridge_jobs SET status = 'running', locked_until = $2, \
         attempts = attempts + CASE WHEN status = 'running' THEN 1 ELSE 0 END";
    if limit == 0 {
        return Ok(Vec::new());
    }
    let _turn = store.write_turn().await;
    let sql = match store.backend {
        // A CTE that locks is evaluated once, so the limit holds (an `IN`
        // subquery may be run again per row).
        Backend::Postgres => format!(
            "WITH picked (picked_id) AS (SELECT bridge_jobs.id FROM bridge_jobs \
                 WHERE {CLAIMABLE} ORDER BY bridge_jobs.id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             {LEASE} FROM picked WHERE bridge_jobs.id = picked.picked_id AND {CLAIMABLE} \
             RETURNING {COLUMNS}"
        ),
        Backend::Sqlite => format!(
            "{LEASE} WHERE bridge_jobs.id IN (SELECT bridge_jobs.id FROM bridge_jobs \
                 WHERE {CLAIMABLE} ORDER BY bridge_jobs.id LIMIT $3) \
             AND {CLAIMABLE} RETURNING {COLUMNS}"
        ),
    };
    let rows = sqlx::query(&sql)
        .bind(now_ms)
        .bind(lease_until_ms)
        .bind(i64::from(limit))
        .fetch_all(&store.pool)
        .await
        .map_err(Error::internal)?;
    let mut claimed = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
    // RETURNING promises no order.
    claimed.sort_by_key(|j| j.id);
    Ok(claimed)
}

pub(crate) async fn complete(store: &SqlStore, job_id: i64) -> Result<()> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM bridge_jobs WHERE id = $1")
        .bind(job_id)
        .execute(&store.pool)
        .await
        .map_err(Error::internal)?;
    Ok(())
}

/// Back to the queue at `run_at_ms`; `attempts_added` is 1 for a failure
/// (retry) and 0 for a wait (defer).
pub(crate) async fn requeue(
    store: &SqlStore,
    job_id: i64,
    run_at_ms: i64,
    error: &str,
    attempts_added: i64,
) -> Result<()> {
    let _turn = store.write_turn().await;
    sqlx::query(
        "UPDATE bridge_jobs SET status = 'queued', attempts = attempts + $1, run_at = $2, \
         last_error = $3, locked_until = NULL WHERE id = $4",
    )
    .bind(attempts_added)
    .bind(run_at_ms)
    .bind(error)
    .bind(job_id)
    .execute(&store.pool)
    .await
    .map_err(Error::internal)?;
    Ok(())
}

pub(crate) async fn park(store: &SqlStore, job_id: i64, error: &str) -> Result<()> {
    let _turn = store.write_turn().await;
    sqlx::query(
        "UPDATE bridge_jobs SET status = 'dead', attempts = attempts + 1, last_error = $1, \
         locked_until = NULL WHERE id = $2",
    )
    .bind(error)
    .bind(job_id)
    .execute(&store.pool)
    .await
    .map_err(Error::internal)?;
    Ok(())
}

pub(crate) async fn wake(
    store: &SqlStore,
    instance_id: &str,
    direction: &str,
    now_ms: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE bridge_jobs SET run_at = $1 \
         WHERE instance_id = $2 AND direction = $3 AND status = 'queued' AND run_at > $1",
    )
    .bind(now_ms)
    .bind(instance_id)
    .bind(direction)
    .execute(&store.pool)
    .await
    .map_err(Error::internal)?;
    Ok(done.rows_affected())
}

/// Dead letters back to the queue, due now, with their attempts reset. Their
/// `last_error` stays, as a trace of why they had died.
pub(crate) async fn replay_dead(
    store: &SqlStore,
    integration_id: Option<&str>,
    now_ms: i64,
) -> Result<u64> {
    const REPLAY: &str = "UPDATE bridge_jobs SET status = 'queued', attempts = 0, run_at = $1, \
         locked_until = NULL WHERE status = 'dead'";
    let done = match integration_id {
        Some(integration_id) => {
            sqlx::query(&format!("{REPLAY} AND integration_id = $2"))
                .bind(now_ms)
                .bind(integration_id)
                .execute(&store.pool)
                .await
        }
        None => sqlx::query(REPLAY).bind(now_ms).execute(&store.pool).await,
    }
    .map_err(Error::internal)?;
    Ok(done.rows_affected())
}

pub(crate) async fn dead_summary(
    store: &SqlStore,
    integration_id: &str,
) -> Result<(u64, Option<String>)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS dead, \
            (SELECT newest.last_error FROM bridge_jobs newest \
             WHERE newest.integration_id = $1 AND newest.status = 'dead' \
             ORDER BY newest.id DESC LIMIT 1) AS last_error \
         FROM bridge_jobs WHERE integration_id = $1 AND status = 'dead'",
    )
    .bind(integration_id)
    .fetch_one(&store.pool)
    .await
    .map_err(Error::internal)?;
    let count: i64 = get(&row, "dead")?;
    Ok((u64::try_from(count).unwrap_or(0), get(&row, "last_error")?))
}

/// One statement, so atomic on both backends without a read-then-write
/// transaction (which SQLite may refuse to upgrade under contention).
pub(crate) async fn take(store: &SqlStore, integration_id: &str) -> Result<Vec<Job>> {
    let rows = sqlx::query(&format!(
        "DELETE FROM bridge_jobs WHERE integration_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(integration_id)
    .fetch_all(&store.pool)
    .await
    .map_err(Error::internal)?;
    let mut jobs = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
    // RETURNING promises no order.
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

fn job(row: &AnyRow) -> Result<Job> {
    let id: i64 = get(row, "id")?;
    let status: String = get(row, "status")?;
    Ok(Job {
        integration_id: get(row, "integration_id")?,
        instance_id: get(row, "instance_id")?,
        direction: get(row, "direction")?,
        chat_key: get(row, "chat_key")?,
        dedupe_key: get(row, "dedupe_key")?,
        payload: get(row, "payload")?,
        status: JobStatus::parse(&status).ok_or_else(|| {
            Error::internal(Cause(format!("job {id} has unknown status {status:?}")))
        })?,
        attempts: to_u32(get(row, "attempts")?, "attempts")?,
        last_error: get(row, "last_error")?,
        created_at_ms: get(row, "created_at")?,
        id,
    })
}
