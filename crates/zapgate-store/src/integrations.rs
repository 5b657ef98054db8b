//! Chatwoot integrations: one row per instance, the API token, our webhook
//! secret, Chatwoot's signing secret and the registered webhook URL sealed
//! (the URL embeds our secret).

use std::sync::Arc;

use sqlx::any::AnyRow;
use zapgate_core::{
    Error, Result,
    chatwoot::{
        ChatwootFlags, ChatwootOptions, Integration, IntegrationStatus, IntegrationSummary,
    },
    error::Cause,
    time::now_ms,
    token::Token,
};

use crate::{
    SqlStore,
    conn::StoreQuery,
    jobs,
    rows::{self, get},
};

const COLUMNS: &str = "bridge_integration_id, instance_id, chatwoot_base_url, \
    chatwoot_account_id, api_token_sealed, chatwoot_inbox_id, chatwoot_inbox_name, \
    inbox_identifier, webhook_secret_sealed, inbox_secret_sealed, webhook_url_sealed, status, \
    last_error, sign_messages, ignore_groups, start_as_pending, reopen_resolved, created_at, \
    options";

/// Associated data for a sealed column of an integration row.
pub(crate) fn aad(integration_id: &str, column: &str) -> String {
    format!("chatwoot_integrations/{integration_id}/{column}")
}

/// The sealed columns, for key rotation.
pub(crate) const SEALED_COLUMNS: [&str; 4] = [
    "api_token_sealed",
    "webhook_secret_sealed",
    "inbox_secret_sealed",
    "webhook_url_sealed",
];

pub(crate) async fn save(
    store: &SqlStore,
    i: &Integration,
    move_direction: Option<&str>,
) -> Result<u64> {
    let seal =
        |column: &str, value: &str| store.secrets.seal(&aad(&i.id, column), value.as_bytes());
    let mut tx = store.pool.begin().await.map_err(Error::internal)?;
    // Replacing, not upserting: a new activation may bring a new id. A write
    // first, so SQLite takes the write lock at once.
    let replaced: Vec<String> = sqlx::query_scalar(
        "DELETE FROM chatwoot_integrations WHERE instance_id = $1 \
         RETURNING bridge_integration_id",
    )
    .bind(&i.instance_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::internal)?;
    sqlx::query(&format!(
        "INSERT INTO chatwoot_integrations ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(&i.id)
    .bind(&i.instance_id)
    .bind(&i.base_url)
    .bind(i.account_id)
    .bind(seal("api_token_sealed", i.api_token.expose()))
    .bind(i.inbox_id)
    .bind(&i.inbox_name)
    .bind(i.inbox_identifier.clone())
    .bind(seal("webhook_secret_sealed", i.webhook_secret.expose()))
    .bind(
        i.inbox_secret
            .as_ref()
            .map(|s| seal("inbox_secret_sealed", s.expose())),
    )
    .bind(seal("webhook_url_sealed", &i.webhook_url))
    .bind(i.status.as_str())
    .bind(&i.last_error)
    .bind(i64::from(i.flags.sign_messages))
    .bind(i64::from(i.flags.ignore_groups))
    .bind(i64::from(i.flags.start_as_pending))
    .bind(i64::from(i.flags.reopen_resolved))
    .bind(i.created_at_ms)
    .bind(serde_json::to_string(&i.options).map_err(Error::internal)?)
    .execute(&mut *tx)
    .await
    .map_err(Error::internal)?;
    let mut moved = 0;
    if let Some(direction) = move_direction {
        for old in replaced.iter().filter(|old| **old != i.id) {
            moved += jobs::move_to(&mut tx, old, &i.id, direction, now_ms()).await?;
        }
    }
    tx.commit().await.map_err(Error::internal)?;
    Ok(moved)
}

pub(crate) async fn find_by(
    store: &SqlStore,
    column: &'static str,
    value: &str,
) -> Result<Option<Integration>> {
    let load = async {
        let sql = format!("SELECT {COLUMNS} FROM chatwoot_integrations WHERE {column} = $1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional_on(store)
            .await?;
        row.map(|r| integration(store, &r).map_err(unreadable))
            .transpose()
    };
    let key = (column, value.to_owned());
    let missing = &store.caches.missing_integrations;
    if missing.get(&key).is_some() {
        return Ok(None);
    }
    let generation = missing.generation();
    let found = store
        .caches
        .integrations
        .get_or_load(key.clone(), load)
        .await?;
    if found.is_none() {
        missing.put(generation, key, ());
    }
    Ok(found)
}

/// Rows read at a time by [`list`]: rows as sqlx holds them take several
/// times the memory of the integrations made of them, and 10,000 read at
/// once at start-up (the webhook URL refresh) made a ~23 MB peak that the
/// allocator kept as idle RSS.
pub const INTEGRATION_PAGE: usize = 500;

pub(crate) async fn list(store: &SqlStore) -> Result<Vec<Integration>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM chatwoot_integrations \
         WHERE created_at > $1 OR (created_at = $1 AND bridge_integration_id > $2) \
         ORDER BY created_at, bridge_integration_id LIMIT {INTEGRATION_PAGE}"
    );
    let mut all = Vec::new();
    // The last row read (keyset), before every row at first.
    let (mut created_at, mut id) = (i64::MIN, String::new());
    loop {
        let rows = sqlx::query(&sql)
            .bind(created_at)
            .bind(id.as_str())
            .fetch_all_on(store)
            .await?;
        // One row that does not open (sealed under a key this server lacks)
        // must not stop the maintenance of every other integration.
        for row in &rows {
            match integration(store, row) {
                Ok(integration) => all.push(integration),
                Err(err) => {
                    let id = get::<String>(row, "bridge_integration_id").unwrap_or_default();
                    tracing::warn!(integration_id = %id, error = %err, "skipping a Chatwoot integration that cannot be read");
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() == INTEGRATION_PAGE => {
                created_at = get(last, "created_at")?;
                id = get(last, "bridge_integration_id")?;
            }
            _ => return Ok(all),
        }
    }
}

/// The public face of an integration row that does not open.
fn unreadable(err: Error) -> Error {
    match err {
        Error::Internal { cause, .. } => Error::internal_with(UNREADABLE, cause),
        other => other,
    }
}

/// What a tenant sees for an integration whose secrets do not decrypt.
const UNREADABLE: &str = "The Chatwoot integration cannot be read with this server's encryption key; \
     the operator must restore the key it was saved with";

pub(crate) async fn summaries(
    store: &SqlStore,
    account_id: &str,
) -> Result<Arc<[IntegrationSummary]>> {
    let load = async {
        let list = rows::json_list(
            store.backend,
            "c.instance_id, c.status, c.chatwoot_inbox_id",
            "",
        );
        let row = sqlx::query(&format!(
            "SELECT {list} FROM chatwoot_integrations c \
             JOIN instances i ON i.id = c.instance_id WHERE i.account_id = $1"
        ))
        .bind(account_id)
        .fetch_one_on(store)
        .await?;
        let all = rows::list_of::<(String, String, i64)>(&row)?
            .into_iter()
            .map(|(instance_id, stored, inbox_id)| {
                Ok(IntegrationSummary {
                    instance_id,
                    status: status(&stored)?,
                    inbox_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::<[IntegrationSummary]>::from(all)))
    };
    let all = store
        .caches
        .summaries
        .get_or_load(account_id.to_owned(), load)
        .await?;
    Ok(all.unwrap_or_default())
}

pub(crate) async fn set_status(
    store: &SqlStore,
    integration_id: &str,
    status: IntegrationStatus,
    last_error: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE chatwoot_integrations SET status = $1, last_error = $2 \
         WHERE bridge_integration_id = $3",
    )
    .bind(status.as_str())
    .bind(last_error)
    .bind(integration_id)
    .execute_on(store)
    .await?;
    Ok(())
}

pub(crate) async fn set_webhook_url(
    store: &SqlStore,
    integration_id: &str,
    url: &str,
) -> Result<()> {
    let sealed = store
        .secrets
        .seal(&aad(integration_id, "webhook_url_sealed"), url.as_bytes());
    sqlx::query(
        "UPDATE chatwoot_integrations SET webhook_url_sealed = $1 WHERE bridge_integration_id = $2",
    )
    .bind(sealed)
    .bind(integration_id)
    .execute_on(store)
    .await?;
    Ok(())
}

/// Deletes the integration with its chat and message links, in one
/// transaction. Its jobs stay: the bridge takes them first (`take_jobs`);
/// one stored meanwhile is parked by the worker, never lost silently.
/// Every statement writes, so SQLite takes the write lock at the first one
/// instead of failing to upgrade a read.
pub(crate) async fn delete(store: &SqlStore, instance_id: &str) -> Result<bool> {
    let mut tx = store.pool.begin().await.map_err(Error::internal)?;
    for links in ["chat_links", "message_links", "chatwoot_avatars"] {
        sqlx::query(&format!(
            "DELETE FROM {links} WHERE integration_id IN \
             (SELECT bridge_integration_id FROM chatwoot_integrations WHERE instance_id = $1)"
        ))
        .bind(instance_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    }
    // Its import goes with it (a running one stops at its next chat).
    sqlx::query("DELETE FROM chatwoot_imports WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    let done = sqlx::query("DELETE FROM chatwoot_integrations WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    tx.commit().await.map_err(Error::internal)?;
    Ok(done.rows_affected() > 0)
}

fn status(raw: &str) -> Result<IntegrationStatus> {
    IntegrationStatus::parse(raw)
        .ok_or_else(|| Error::internal(Cause(format!("unknown integration status {raw:?}"))))
}

/// Options are ours (written by `save`); a field missing reads as its default.
fn options(raw: &str) -> Result<ChatwootOptions> {
    serde_json::from_str(raw).map_err(Error::internal)
}

fn integration(store: &SqlStore, row: &AnyRow) -> Result<Integration> {
    let id: String = get(row, "bridge_integration_id")?;
    let open = |column: &str| -> Result<String> {
        let sealed: Vec<u8> = get(row, column)?;
        let plain = store.secrets.open(&aad(&id, column), &sealed)?;
        String::from_utf8(plain).map_err(Error::internal)
    };
    let inbox_secret = match get::<Option<Vec<u8>>>(row, "inbox_secret_sealed")? {
        Some(_) => Some(Token::new(open("inbox_secret_sealed")?)),
        None => None,
    };
    let flag = |column: &str| -> Result<bool> { Ok(get::<i64>(row, column)? != 0) };
    Ok(Integration {
        instance_id: get(row, "instance_id")?,
        base_url: get(row, "chatwoot_base_url")?,
        account_id: get(row, "chatwoot_account_id")?,
        api_token: Token::new(open("api_token_sealed")?),
        inbox_id: get(row, "chatwoot_inbox_id")?,
        inbox_name: get(row, "chatwoot_inbox_name")?,
        inbox_identifier: get(row, "inbox_identifier")?,
        webhook_secret: Token::new(open("webhook_secret_sealed")?),
        inbox_secret,
        webhook_url: open("webhook_url_sealed")?,
        status: status(&get::<String>(row, "status")?)?,
        last_error: get(row, "last_error")?,
        flags: ChatwootFlags {
            sign_messages: flag("sign_messages")?,
            ignore_groups: flag("ignore_groups")?,
            start_as_pending: flag("start_as_pending")?,
            reopen_resolved: flag("reopen_resolved")?,
        },
        options: options(&get::<String>(row, "options")?)?,
        created_at_ms: get(row, "created_at")?,
        id,
    })
}
