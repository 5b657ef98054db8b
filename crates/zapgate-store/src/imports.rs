//! `chatwoot_imports`: one history import per instance, its progress and
//! the lease of the process running it.

use sqlx::any::AnyRow;
use zapgate_core::{
    Error, Result,
    chatwoot_import::{ImportProgress, ImportState},
};

use crate::{SqlStore, conn::StoreQuery, rows::get};

const COLUMNS: &str = "instance_id, integration_id, state, days, contacts, since_secs, \
    until_secs, chats, last_chat, messages_done, messages_total, started_at, finished_at, \
    error, locked_until";

pub(crate) async fn save(store: &SqlStore, p: &ImportProgress) -> Result<()> {
    let sql = format!(
        "INSERT INTO chatwoot_imports ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (instance_id) DO UPDATE SET integration_id = excluded.integration_id, \
         state = excluded.state, days = excluded.days, contacts = excluded.contacts, \
         since_secs = excluded.since_secs, until_secs = excluded.until_secs, \
         chats = excluded.chats, last_chat = excluded.last_chat, \
         messages_done = excluded.messages_done, messages_total = excluded.messages_total, \
         started_at = excluded.started_at, finished_at = excluded.finished_at, \
         error = excluded.error, locked_until = excluded.locked_until"
    );
    sqlx::query(&sql)
        .bind(&p.instance_id)
        .bind(&p.integration_id)
        .bind(p.state.as_str())
        .bind(i64::from(p.days))
        .bind(i64::from(p.contacts))
        .bind(p.since_secs)
        .bind(p.until_secs)
        .bind(to_i64(p.chats))
        .bind(p.last_chat.clone())
        .bind(to_i64(p.messages_done))
        .bind(to_i64(p.messages_total))
        .bind(p.started_at_ms)
        .bind(p.finished_at_ms)
        .bind(p.error.clone())
        .bind(p.locked_until_ms)
        .execute_on(store)
        .await?;
    Ok(())
}

/// Cached (none included) for the list route's polling clients; every
/// write of an import forgets it.
pub(crate) async fn find(store: &SqlStore, instance_id: &str) -> Result<Option<ImportProgress>> {
    let cache = &store.caches.imports;
    if let Some(found) = cache.get(instance_id) {
        return Ok(found);
    }
    let generation = cache.generation();
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chatwoot_imports WHERE instance_id = $1"
    ))
    .bind(instance_id)
    .fetch_optional_on(store)
    .await?
    .as_ref()
    .map(progress)
    .transpose()?;
    cache.put(generation, instance_id.to_owned(), found.clone());
    Ok(found)
}

pub(crate) async fn stale(store: &SqlStore, now_ms: i64) -> Result<Vec<ImportProgress>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chatwoot_imports WHERE state = 'running' AND locked_until < $1 \
         ORDER BY started_at"
    ))
    .bind(now_ms)
    .fetch_all_on(store)
    .await?
    .iter()
    .map(progress)
    .collect()
}

pub(crate) async fn claim(
    store: &SqlStore,
    instance_id: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE chatwoot_imports SET locked_until = $1 \
         WHERE instance_id = $2 AND state = 'running' AND locked_until < $3",
    )
    .bind(until_ms)
    .bind(instance_id)
    .bind(now_ms)
    .execute_on(store)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn advance(store: &SqlStore, p: &ImportProgress) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE chatwoot_imports SET state = $1, chats = $2, last_chat = $3, \
         messages_done = $4, messages_total = $5, finished_at = $6, error = $7, \
         locked_until = $8 \
         WHERE instance_id = $9 AND integration_id = $10 AND state = 'running'",
    )
    .bind(p.state.as_str())
    .bind(to_i64(p.chats))
    .bind(p.last_chat.clone())
    .bind(to_i64(p.messages_done))
    .bind(to_i64(p.messages_total))
    .bind(p.finished_at_ms)
    .bind(p.error.clone())
    .bind(p.locked_until_ms)
    .bind(&p.instance_id)
    .bind(&p.integration_id)
    .execute_on(store)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(row: &AnyRow, column: &str) -> Result<u64> {
    u64::try_from(get::<i64>(row, column)?)
        .map_err(|_| Error::internal(format!("chatwoot_imports.{column} is negative")))
}

fn progress(row: &AnyRow) -> Result<ImportProgress> {
    let state: String = get(row, "state")?;
    Ok(ImportProgress {
        instance_id: get(row, "instance_id")?,
        integration_id: get(row, "integration_id")?,
        state: ImportState::parse(&state)
            .ok_or_else(|| Error::internal(format!("unknown import state {state}")))?,
        days: u32::try_from(get::<i64>(row, "days")?).map_err(Error::internal)?,
        contacts: get::<i64>(row, "contacts")? != 0,
        since_secs: get(row, "since_secs")?,
        until_secs: get(row, "until_secs")?,
        chats: count(row, "chats")?,
        last_chat: get(row, "last_chat")?,
        messages_done: count(row, "messages_done")?,
        messages_total: count(row, "messages_total")?,
        started_at_ms: get(row, "started_at")?,
        finished_at_ms: get(row, "finished_at")?,
        error: get(row, "error")?,
        locked_until_ms: get(row, "locked_until")?,
    })
}
