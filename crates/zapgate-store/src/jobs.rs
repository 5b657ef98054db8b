//! The bridge's job queue in `bridge_jobs`: durable work that survives
//! restarts and is shared by every process on the database. Jobs of one chat
//! run one at a time in id order; a claim leases a job with a compare-and-set
//! update, so two processes claiming at once never both get it.

use std::{
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use sqlx::any::AnyRow;
use zapgate_core::{
    Error, Result,
    error::Cause,
    jobs::{ClaimShare, Enqueued, Job, JobStatus, MessageLink, NewJob},
    time::now_ms,
};

use crate::{
    SqlStore,
    backend::Backend,
    conn::{AnyQuery, StoreQuery, WriteTurn},
    group::{self, Batch, GroupCommit},
    links,
    params::{Params, bucket, padded},
    rows::{get, to_u32},
};

/// The columns [`job`] reads.
const COLUMNS: &str = "id, integration_id, instance_id, direction, chat_key, dedupe_key, \
    payload, status, attempts, last_error, created_at";

/// Whether the job of the row in scope (`bridge_jobs`) may be leased at `$1`:
/// queued and due, or running under an expired lease, and no older job of
/// its chat is still queued or running (dead ones no longer hold it back).
/// The first term lets SQLite use the partial indexes of unfinished jobs.
/// `probe_tail` ends the older-job probe (see [`claim_sql`]).
fn claimable(probe_tail: &str) -> String {
    format!(
        "bridge_jobs.status IN ('queued', 'running') \
         AND ((bridge_jobs.status = 'queued' AND bridge_jobs.run_at <= $1) \
          OR (bridge_jobs.status = 'running' AND bridge_jobs.locked_until < $1)) \
         AND NOT EXISTS (SELECT 1 FROM bridge_jobs older \
             WHERE older.integration_id = bridge_jobs.integration_id \
               AND older.chat_key = bridge_jobs.chat_key \
               AND older.id < bridge_jobs.id \
               AND older.status IN ('queued', 'running'){probe_tail})"
    )
}

/// Stored jobs, batched (see [`crate::group`]): one caller's jobs are one
/// item, stored in order in the same statement.
pub(crate) struct Enqueues;

/// One caller's jobs, and the bound on their integration's queue.
pub(crate) struct Enqueue {
    jobs: Vec<NewJob>,
    /// Refused whole when the first job's integration already has this many
    /// jobs of its direction queued or running.
    cap: Option<u32>,
}

impl Batch for Enqueues {
    type Item = Enqueue;
    /// How many of the item's jobs were new; `None`: refused by its cap.
    type Outcome = Option<u64>;

    fn queue(store: &SqlStore) -> &GroupCommit<Self> {
        &store.enqueues
    }

    async fn store(store: &SqlStore, items: &[Enqueue]) -> Result<Vec<Option<u64>>> {
        let created_at = now_ms();
        let mut turn = store.write_turn().await;
        let admitted = admit(&mut turn, items).await?;
        let jobs: Vec<&NewJob> = items
            .iter()
            .zip(&admitted)
            .filter(|(_, admitted)| **admitted)
            .flat_map(|(item, _)| &item.jobs)
            .collect();
        let mut stored = Vec::new();
        let blobs = jobs.iter().any(|j| j.blob.is_some());
        if jobs.is_empty() {
            // Every item refused by its cap.
        } else if jobs.len() <= MAX_INSERT_ROWS && !blobs {
            // A repeated job is a repeated dedupe key: not stored twice.
            let sql = insert_sql(store.backend, bucket(jobs.len()));
            stored = turn
                .fetch_all(bind_jobs(&sql, padded(&jobs), created_at))
                .await?;
        } else {
            // A hand-over of a long queue, or jobs with media: several
            // statements, one transaction (a job is never stored without
            // its blob).
            let mut tx = turn.begin().await?;
            for chunk in jobs.chunks(MAX_INSERT_ROWS) {
                let sql = insert_sql(store.backend, chunk.len());
                let rows = bind_jobs(&sql, chunk.iter(), created_at)
                    .fetch_all(&mut *tx)
                    .await;
                let rows = rows.map_err(Error::internal)?;
                for row in &rows {
                    let key: String = get(row, "dedupe_key")?;
                    // The first job of the key is the one stored.
                    let Some(data) = chunk
                        .iter()
                        .find(|j| j.dedupe_key == key)
                        .and_then(|j| j.blob.as_deref())
                    else {
                        continue;
                    };
                    sqlx::query("INSERT INTO bridge_job_blobs (job_id, data) VALUES ($1, $2)")
                        .bind(get::<i64>(row, "id")?)
                        .bind(data)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::internal)?;
                }
                stored.extend(rows);
            }
            tx.commit().await.map_err(Error::internal)?;
        }
        // A key stored twice in the batch counts once, for its first job.
        let mut new_keys = stored
            .iter()
            .map(|row| get::<String>(row, "dedupe_key"))
            .collect::<Result<HashSet<_>>>()?;
        Ok(items
            .iter()
            .zip(admitted)
            .map(|(item, admitted)| {
                let new = item.jobs.iter().filter(|j| new_keys.remove(&j.dedupe_key));
                admitted.then(|| new.count() as u64)
            })
            .collect())
    }
}

/// Which items fit under their cap. Each capped integration and direction
/// is counted once for the batch, in the insert's turn, and its items are
/// admitted in order while they fit: counting before each enqueue cost a
/// statement per agent reply, and its walk over the queue grew with the
/// backlog.
async fn admit(turn: &mut WriteTurn<'_>, items: &[Enqueue]) -> Result<Vec<bool>> {
    let Some(up_to) = items.iter().filter_map(|item| item.cap).max() else {
        return Ok(vec![true; items.len()]);
    };
    let mut queued: HashMap<(&str, &str), u64> = HashMap::new();
    let mut admitted = Vec::with_capacity(items.len());
    for item in items {
        let (Some(cap), Some(first)) = (item.cap, item.jobs.first()) else {
            admitted.push(true);
            continue;
        };
        let key = (first.integration_id.as_str(), first.direction);
        let count = match queued.get(&key) {
            Some(count) => *count,
            None => count_unfinished(turn, key.0, key.1, up_to).await?,
        };
        let after = count + item.jobs.len() as u64;
        let fits = after <= u64::from(cap);
        queued.insert(key, if fits { after } else { count });
        admitted.push(fits);
    }
    Ok(admitted)
}

/// Unfinished (queued or running) jobs of the integration's `direction`,
/// counted up to `up_to` (a long queue is not read whole to be refused).
/// Running ones count too, so a job that waits (deferred, claimed again)
/// counts the same in every state.
async fn count_unfinished(
    turn: &mut WriteTurn<'_>,
    integration_id: &str,
    direction: &str,
    up_to: u32,
) -> Result<u64> {
    // The partial index of unfinished jobs per chat serves it.
    let query = sqlx::query(
        "SELECT COUNT(*) AS queued FROM (SELECT 1 FROM bridge_jobs \
         WHERE integration_id = $1 AND status IN ('queued', 'running') \
         AND direction = $2 LIMIT $3) capped",
    )
    .bind(integration_id)
    .bind(direction)
    .bind(i64::from(up_to));
    let rows = turn.fetch_all(query).await?;
    let queued = rows
        .first()
        .map(|row| get::<i64>(row, "queued"))
        .transpose()?;
    Ok(queued.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Rows one insert statement takes (8 parameters each).
const MAX_INSERT_ROWS: usize = 512;

/// Inserts `rows` jobs in order (ids only grow), skipping stored dedupe
/// keys, and returns the ids and keys it stored.
fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut params = Params::new(backend);
    let values = (0..rows)
        .map(|_| format!("({}, 'queued', 0, NULL, '')", params.list(8)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO bridge_jobs (integration_id, instance_id, direction, chat_key, \
         dedupe_key, payload, run_at, created_at, status, attempts, locked_until, last_error) \
         VALUES {values} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key"
    )
}

fn bind_jobs<'q>(
    sql: &'q str,
    jobs: impl Iterator<Item = &'q &'q NewJob>,
    created_at: i64,
) -> AnyQuery<'q> {
    let mut query = sqlx::query(sql);
    for new in jobs {
        query = query
            .bind(&new.integration_id)
            .bind(&new.instance_id)
            .bind(new.direction)
            .bind(&new.chat_key)
            .bind(&new.dedupe_key)
            .bind(&new.payload)
            .bind(new.run_at_ms)
            .bind(created_at);
    }
    query
}

pub(crate) async fn enqueue(store: &SqlStore, jobs: &[NewJob]) -> Result<u64> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let item = Enqueue {
        jobs: jobs.to_vec(),
        cap: None,
    };
    let new = group::submit::<Enqueues>(store, item).await?;
    Ok(new.unwrap_or_default())
}

pub(crate) async fn enqueue_capped(store: &SqlStore, job: NewJob, cap: u32) -> Result<Enqueued> {
    let item = Enqueue {
        jobs: vec![job],
        cap: Some(cap),
    };
    Ok(match group::submit::<Enqueues>(store, item).await? {
        None => Enqueued::QueueFull,
        Some(0) => Enqueued::Duplicate,
        Some(_) => Enqueued::New,
    })
}

/// How many claimable jobs a claim ranks per slot it fills: enough that one
/// integration's backlog below its cap leaves the others room in the same
/// claim (an integration at its cap is skipped while walking).
const CANDIDATES_PER_SLOT: i64 = 4;

/// Leases up to `limit` claimable jobs in one statement, shared between
/// integrations (see [`ClaimShare`]): it walks unfinished jobs in id order,
/// skipping integrations at their cap, takes a few candidates per slot, and
/// leases them in turns (each integration's oldest, then each one's second,
/// ...) within each integration's room. An outbound job whose instance's
/// WhatsApp session another live process runs is left to that process
/// (`ClaimShare::session_owner`). The outer `WHERE` re-checks the
/// claim rule on each picked row, so it is a compare-and-set per row. On
/// PostgreSQL a row another process is leasing at the same moment is locked:
/// the walk skips it (`SKIP LOCKED`), and should it still be picked, the
/// update re-reads it after the other commit and the re-check leaves it out.
/// On SQLite the statement holds the write lock. A job leased elsewhere
/// meanwhile is simply not returned.
///
/// The walk stops at its limit and the update goes by id: a backlog of
/// queued jobs does not make each claim read all of them (SQLite's planner
/// would otherwise sort every claimable job first, PostgreSQL's hash-join
/// the picked ids against them). SQLite is held to that plan by `INDEXED
/// BY`, PostgreSQL by running claims on a connection whose planner may only
/// walk indexes ([`crate::conn`]).
///
/// The text is fixed (each integration's room comes as one JSON argument),
/// so PostgreSQL plans the claim once per connection instead of once per
/// claim, where planning cost as much as running it.
pub(crate) async fn claim(
    store: &SqlStore,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u32,
    share: &ClaimShare,
) -> Result<Vec<Job>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let cap = i64::from(share.per_integration);
    let rooms: serde_json::Map<String, serde_json::Value> = share
        .running
        .iter()
        .map(|(id, running)| (id.clone(), (cap - i64::from(*running)).into()))
        .collect();
    let query = sqlx::query(claim_sql(store.backend))
        .bind(now_ms)
        .bind(lease_until_ms)
        .bind(i64::from(limit))
        .bind(i64::from(limit) * CANDIDATES_PER_SLOT)
        .bind(cap)
        .bind(serde_json::Value::Object(rooms).to_string())
        .bind(share.session_owner.as_deref());
    let rows = match store.backend {
        Backend::Sqlite => store.write_turn().await.fetch_all(query).await?,
        Backend::Postgres => store.conns.claim(store, query).await?,
    };
    let mut claimed = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
    // RETURNING promises no order.
    claimed.sort_by_key(|j| j.id);
    Ok(claimed)
}

/// The claim's statement: `$1` now, `$2` the lease's end, `$3` the limit,
/// `$4` the candidates, `$5` the cap, `$6` the room of each integration
/// with jobs running (a JSON object), `$7` this process's session owner
/// name (or NULL).
fn claim_sql(backend: Backend) -> &'static str {
    static POSTGRES: LazyLock<String> = LazyLock::new(|| {
        // A prepared plan is made once, maybe while the queue is empty: as
        // a join, the chat probe would then scan the whole chat index per
        // candidate. `OFFSET 0` keeps it a subplan, probed by its index
        // with the candidate's values whatever the statistics said. A CTE
        // that locks is evaluated once, so the limits hold (an `IN`
        // subquery may be run again per row); the ranking cannot lock, so
        // it reads the locked candidates.
        let claimable = claimable(" OFFSET 0");
        format!(
            "WITH rooms AS (SELECT key AS integration_id, value::bigint AS room \
                 FROM jsonb_each_text($6::jsonb)), \
             candidates AS (SELECT bridge_jobs.id, bridge_jobs.integration_id \
                 FROM bridge_jobs WHERE {claimable} AND {NOT_FULL} AND {NOT_ELSEWHERE} \
                 ORDER BY bridge_jobs.id LIMIT $4 FOR UPDATE OF bridge_jobs SKIP LOCKED), \
             picked (picked_id) AS (SELECT id FROM ({RANKED}) ranked \
                 WHERE turn <= room ORDER BY turn, id LIMIT $3) \
             {LEASE} WHERE bridge_jobs.id = ANY (ARRAY(SELECT picked_id FROM picked)) \
             AND {claimable} RETURNING {COLUMNS}"
        )
    });
    static SQLITE: LazyLock<String> = LazyLock::new(|| {
        let claimable = claimable("");
        format!(
            "WITH rooms AS (SELECT key AS integration_id, value AS room FROM json_each($6)), \
             candidates AS (SELECT bridge_jobs.id, bridge_jobs.integration_id FROM bridge_jobs \
                 INDEXED BY bridge_jobs_unfinished_idx \
                 WHERE {claimable} AND {NOT_FULL} AND {NOT_ELSEWHERE} \
                 ORDER BY bridge_jobs.id LIMIT $4) \
             {LEASE} WHERE bridge_jobs.id IN (SELECT id FROM ({RANKED}) ranked \
                 WHERE turn <= room ORDER BY turn, id LIMIT $3) \
             AND {claimable} RETURNING {COLUMNS}"
        )
    });
    const LEASE: &str = "UPDATE bridge_jobs SET status = 'running', locked_until = $2, \
         attempts = attempts + CASE WHEN status = 'running' THEN 1 ELSE 0 END";
    const RANKED: &str = "SELECT candidates.id, COALESCE(rooms.room, $5) AS room, \
         ROW_NUMBER() OVER (PARTITION BY candidates.integration_id ORDER BY candidates.id) \
         AS turn FROM candidates LEFT JOIN rooms \
         ON rooms.integration_id = candidates.integration_id";
    const NOT_FULL: &str =
        "bridge_jobs.integration_id NOT IN (SELECT integration_id FROM rooms WHERE room <= 0)";
    const NOT_ELSEWHERE: &str = "($7 IS NULL OR NOT (bridge_jobs.direction = 'outbound' \
         AND EXISTS (SELECT 1 FROM wa_session_leases lease \
         WHERE lease.instance_id = bridge_jobs.instance_id \
         AND lease.owner <> $7 AND lease.expires_at >= $1)))";
    match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    }
}

/// Finished jobs, batched (see [`crate::group`]): the job's id and the link
/// of the message it posted.
pub(crate) struct Completions;

impl Batch for Completions {
    type Item = (i64, Option<MessageLink>);
    type Outcome = ();

    fn queue(store: &SqlStore) -> &GroupCommit<Self> {
        &store.completions
    }

    async fn store(store: &SqlStore, items: &[Self::Item]) -> Result<Vec<()>> {
        store_completions(store, items).await?;
        Ok(vec![(); items.len()])
    }
}

pub(crate) async fn complete(
    store: &SqlStore,
    job_id: i64,
    link: Option<&MessageLink>,
) -> Result<()> {
    group::submit::<Completions>(store, (job_id, link.cloned())).await
}

/// One round trip: the links first, then the job rows. On PostgreSQL one
/// statement (atomic); on SQLite two in one call, so should the second fail,
/// the job runs again and finds its link (the idempotency check every job
/// starts with).
async fn store_completions(store: &SqlStore, batch: &[(i64, Option<MessageLink>)]) -> Result<()> {
    let links: Vec<&MessageLink> = batch.iter().filter_map(|(_, link)| link.as_ref()).collect();
    // The links' arguments, then the jobs': on SQLite the insert runs first.
    // Both padded (see `padded`): a repeated link is a conflict, a repeated
    // id deletes nothing more.
    let mut params = Params::new(store.backend);
    let values = params.rows(bucket(links.len()), 6);
    let ids = params.list(bucket(batch.len()));
    let delete = format!("DELETE FROM bridge_jobs WHERE id IN ({ids})");
    let sql = if links.is_empty() {
        delete
    } else {
        let insert = format!(
            "INSERT INTO message_links ({}, created_at) VALUES {values} \
             ON CONFLICT (integration_id, wa_message_id) DO NOTHING",
            links::MESSAGE_COLUMNS
        );
        match store.backend {
            Backend::Postgres => format!("WITH done AS ({delete}) {insert}"),
            Backend::Sqlite => format!("{insert}; {delete}"),
        }
    };
    let created_at = now_ms();
    let mut query = sqlx::query(&sql);
    for link in padded(&links) {
        query = query
            .bind(&link.integration_id)
            .bind(&link.wa_message_id)
            .bind(link.chatwoot_message_id)
            .bind(link.chatwoot_conversation_id)
            .bind(&link.direction)
            .bind(created_at);
    }
    for (job_id, _) in padded(batch) {
        query = query.bind(job_id);
    }
    store.write_turn().await.execute(query).await?;
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
    let query = sqlx::query(
        "UPDATE bridge_jobs SET status = 'queued', attempts = attempts + $1, run_at = $2, \
         last_error = $3, locked_until = NULL WHERE id = $4",
    )
    .bind(attempts_added)
    .bind(run_at_ms)
    .bind(error)
    .bind(job_id);
    store.write_turn().await.execute(query).await?;
    Ok(())
}

pub(crate) async fn park(store: &SqlStore, job_id: i64, error: &str) -> Result<()> {
    let query = sqlx::query(
        "UPDATE bridge_jobs SET status = 'dead', attempts = attempts + 1, last_error = $1, \
         locked_until = NULL WHERE id = $2",
    )
    .bind(error)
    .bind(job_id);
    store.write_turn().await.execute(query).await?;
    drop_blob(store, job_id).await
}

/// A dead letter keeps its row (the trace of what failed) but not its
/// media: dead letters may pile up, media would make them heavy. Should the
/// removal fail, the blob goes with the row.
async fn drop_blob(store: &SqlStore, job_id: i64) -> Result<()> {
    let query = sqlx::query("DELETE FROM bridge_job_blobs WHERE job_id = $1").bind(job_id);
    store.write_turn().await.execute(query).await?;
    Ok(())
}

pub(crate) async fn blob(store: &SqlStore, job_id: i64) -> Result<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT data FROM bridge_job_blobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional_on(store)
        .await?;
    row.map(|row| get(&row, "data")).transpose()
}

pub(crate) async fn park_orphan(
    store: &SqlStore,
    job_id: i64,
    integration_id: &str,
    error: &str,
) -> Result<bool> {
    let query = sqlx::query(
        "UPDATE bridge_jobs SET status = 'dead', attempts = attempts + 1, last_error = $1, \
         locked_until = NULL WHERE id = $2 AND integration_id = $3 AND NOT EXISTS \
         (SELECT 1 FROM chatwoot_integrations WHERE bridge_integration_id = $3)",
    )
    .bind(error)
    .bind(job_id)
    .bind(integration_id);
    let done = store.write_turn().await.execute(query).await?;
    let parked = done.rows_affected() > 0;
    if parked {
        drop_blob(store, job_id).await?;
    }
    Ok(parked)
}

/// Inside the transaction that replaces `from` by `to`: moves `from`'s jobs
/// of `direction` over, re-keying their dedupe keys (integration ids are
/// unique random strings, so the replacement touches only the id). Dead ones
/// are queued again, due at `now_ms`; running ones keep their lease.
pub(crate) async fn move_to(
    conn: &mut sqlx::AnyConnection,
    from: &str,
    to: &str,
    direction: &str,
    now_ms: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE bridge_jobs SET integration_id = $1, dedupe_key = REPLACE(dedupe_key, $2, $1), \
         attempts = CASE WHEN status = 'dead' THEN 0 ELSE attempts END, \
         run_at = CASE WHEN status = 'dead' THEN $4 ELSE run_at END, \
         status = CASE WHEN status = 'dead' THEN 'queued' ELSE status END \
         WHERE integration_id = $2 AND direction = $3",
    )
    .bind(to)
    .bind(from)
    .bind(direction)
    .bind(now_ms)
    .execute(conn)
    .await
    .map_err(Error::internal)?;
    Ok(done.rows_affected())
}

pub(crate) async fn wake(
    store: &SqlStore,
    instance_id: &str,
    direction: &str,
    now_ms: i64,
) -> Result<u64> {
    let wake = sqlx::query(
        "UPDATE bridge_jobs SET run_at = $1 \
         WHERE instance_id = $2 AND direction = $3 AND status = 'queued' AND run_at > $1",
    )
    .bind(now_ms)
    .bind(instance_id)
    .bind(direction);
    let done = store.write_turn().await.execute(wake).await?;
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
    let load = async {
        let row = sqlx::query(
            "SELECT COUNT(*) AS dead, \
                (SELECT newest.last_error FROM bridge_jobs newest \
                 WHERE newest.integration_id = $1 AND newest.status = 'dead' \
                 ORDER BY newest.id DESC LIMIT 1) AS last_error \
             FROM bridge_jobs WHERE integration_id = $1 AND status = 'dead'",
        )
        .bind(integration_id)
        .fetch_one_on(store)
        .await?;
        let count: i64 = get(&row, "dead")?;
        Ok(Some((
            u64::try_from(count).unwrap_or(0),
            get(&row, "last_error")?,
        )))
    };
    let summary = store
        .caches
        .dead_jobs
        .get_or_load(integration_id.to_owned(), load)
        .await?;
    Ok(summary.unwrap_or_default())
}

/// One statement, so atomic on both backends without a read-then-write
/// transaction (which SQLite may refuse to upgrade under contention).
pub(crate) async fn take(store: &SqlStore, integration_id: &str) -> Result<Vec<Job>> {
    let rows = sqlx::query(&format!(
        "DELETE FROM bridge_jobs WHERE integration_id = $1 RETURNING {COLUMNS}"
    ))
    .bind(integration_id)
    .fetch_all_on(store)
    .await?;
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
