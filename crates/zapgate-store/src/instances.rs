//! Instances: creation under the account's quota and the uniqueness rules,
//! lookups that always filter by account, session state, and the sealed
//! secrets (instance token, webhook authorization).

use std::sync::Arc;

use sqlx::{Any, Transaction};
use zapgate_core::{
    Error, Result,
    account::Account,
    error::Cause,
    instance::{
        ConnectionState, Instance, InstanceSettings, NewInstance, Outage, SessionStatus,
        SettingsPatch,
    },
    messages,
    time::now_ms,
    token::{Token, new_id},
};

use crate::{
    SqlStore,
    backend::Backend,
    cache::InstanceKey,
    conn::StoreQuery,
    db_error,
    params::Params,
    rows::{self, INSTANCE_COLUMNS, get},
};

/// The associated data sealing an instance's token.
pub(crate) fn token_aad(instance_id: &str) -> String {
    format!("instances/{instance_id}/token")
}

/// The associated data sealing an instance's webhook `Authorization` value.
pub(crate) fn webhook_authorization_aad(instance_id: &str) -> String {
    format!("instances/{instance_id}/webhook_authorization")
}

pub(crate) async fn create_instance(
    store: &SqlStore,
    account: &Account,
    new: &NewInstance,
) -> Result<Instance> {
    let mut tx = store.pool.begin().await.map_err(Error::internal)?;
    let max_instances = lock_account(store.backend, &mut tx, &account.id).await?;

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE account_id = $1")
        .bind(&account.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::internal)?;
    if count >= max_instances {
        return Err(Error::Forbidden(messages::INSTANCE_QUOTA_EXCEEDED.into()));
    }

    let name_taken = sqlx::query("SELECT 1 FROM instances WHERE account_id = $1 AND name = $2")
        .bind(&account.id)
        .bind(new.name.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::internal)?;
    if name_taken.is_some() {
        return Err(Error::conflict(messages::INSTANCE_NAME_TAKEN));
    }

    let hash = new.token.hash();
    let token_taken = sqlx::query(
        "SELECT 1 FROM instances WHERE token_hash = $1 \
         UNION ALL SELECT 1 FROM accounts WHERE token_hash = $1",
    )
    .bind(&hash.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::internal)?;
    if token_taken.is_some() {
        return Err(Error::conflict(messages::TOKEN_IN_USE));
    }

    let instance = Instance {
        id: new_id("ins"),
        account_id: account.id.clone(),
        name: new.name.as_str().to_owned(),
        settings: new.settings.clone(),
        webhook: new.webhook.clone(),
        session: SessionStatus::disconnected(),
        created_at_ms: now_ms(),
    };
    let token_sealed = store
        .secrets
        .seal(&token_aad(&instance.id), new.token.expose().as_bytes());
    let authorization_sealed = new.webhook_authorization.as_ref().map(|value| {
        store
            .secrets
            .seal(&webhook_authorization_aad(&instance.id), value.as_bytes())
    });
    sqlx::query(
        "INSERT INTO instances (id, account_id, name, token_hash, token_sealed, settings, \
         webhook, webhook_authorization_sealed, connection_state, number_jid, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&instance.id)
    .bind(&instance.account_id)
    .bind(&instance.name)
    .bind(&hash.0)
    .bind(token_sealed)
    .bind(serde_json::to_string(&instance.settings).map_err(Error::internal)?)
    .bind(serde_json::to_string(&instance.webhook).map_err(Error::internal)?)
    .bind(authorization_sealed)
    .bind(instance.session.state.as_str())
    .bind(instance.session.number_jid.clone())
    .bind(instance.created_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_error::instance_write)?;
    tx.commit().await.map_err(db_error::instance_write)?;
    tracing::debug!(instance_id = %instance.id, account_id = %instance.account_id, "instance created");
    Ok(instance)
}

/// Serializes instance creation per account and returns its current quota.
/// PostgreSQL locks the account row; SQLite takes the database write lock by
/// writing first (a no-op update), so concurrent transactions queue behind
/// `busy_timeout` instead of both reading the old count.
async fn lock_account(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    account_id: &str,
) -> Result<i64> {
    if backend == Backend::Sqlite {
        sqlx::query("UPDATE accounts SET max_instances = max_instances WHERE id = $1")
            .bind(account_id)
            .execute(&mut **tx)
            .await
            .map_err(Error::internal)?;
    }
    let sql = match backend {
        Backend::Postgres => "SELECT max_instances FROM accounts WHERE id = $1 FOR UPDATE",
        Backend::Sqlite => "SELECT max_instances FROM accounts WHERE id = $1",
    };
    sqlx::query_scalar(sql)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found("Account not found"))
}

/// The account's instances, oldest first; the whole list is cached, a list
/// filtered by name is not.
pub(crate) async fn list_instances(
    store: &SqlStore,
    account_id: &str,
    names: Option<&[String]>,
) -> Result<Arc<[Instance]>> {
    let Some(names) = names else {
        let load = async {
            let all = select_instances(store, account_id, &[]).await?;
            Ok(Some(Arc::<[Instance]>::from(all)))
        };
        let all = store
            .caches
            .instance_lists
            .get_or_load(account_id.to_owned(), load)
            .await?;
        return Ok(all.unwrap_or_default());
    };
    if names.is_empty() {
        return Ok(Arc::default());
    }
    Ok(select_instances(store, account_id, names).await?.into())
}

/// The account's instances, only those named in `names` unless it is empty.
async fn select_instances(
    store: &SqlStore,
    account_id: &str,
    names: &[String],
) -> Result<Vec<Instance>> {
    let mut sql = format!(
        "SELECT {} FROM instances i WHERE i.account_id = $1",
        rows::instance_list(store.backend)
    );
    if !names.is_empty() {
        let names = Params::numbered(2).list(names.len());
        sql.push_str(&format!(" AND i.name IN ({names})"));
    }
    let mut query = sqlx::query(&sql).bind(account_id);
    for name in names {
        query = query.bind(name);
    }
    let row = query.fetch_one_on(store).await?;
    rows::instances_of_list(&row)
}

pub(crate) async fn find_instance(
    store: &SqlStore,
    account_id: &str,
    name: &str,
) -> Result<Option<Instance>> {
    let load = async {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances i WHERE i.account_id = $1 AND i.name = $2"
        );
        sqlx::query(&sql)
            .bind(account_id)
            .bind(name)
            .fetch_optional_on(store)
            .await?
            .as_ref()
            .map(rows::instance)
            .transpose()
    };
    let key = InstanceKey::Name {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
    };
    store.caches.instances.get_or_load(key, load).await
}

pub(crate) async fn find_instance_by_id(
    store: &SqlStore,
    instance_id: &str,
) -> Result<Option<Instance>> {
    let load = async {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances i WHERE i.id = $1");
        sqlx::query(&sql)
            .bind(instance_id)
            .fetch_optional_on(store)
            .await?
            .as_ref()
            .map(rows::instance)
            .transpose()
    };
    let key = InstanceKey::Id(instance_id.to_owned());
    store.caches.instances.get_or_load(key, load).await
}

pub(crate) async fn instance_token(store: &SqlStore, instance_id: &str) -> Result<Token> {
    let row = sqlx::query("SELECT token_sealed FROM instances WHERE id = $1")
        .bind(instance_id)
        .fetch_optional_on(store)
        .await?
        .ok_or(Error::InstanceNotFound)?;
    let sealed: Vec<u8> = get(&row, "token_sealed")?;
    let plain = store.secrets.open(&token_aad(instance_id), &sealed)?;
    String::from_utf8(plain)
        .map(Token::new)
        .map_err(|_| Error::internal(Cause(format!("instance {instance_id}: token is not UTF-8"))))
}

/// The plaintext `Authorization` value of the instance's default webhook.
pub(crate) async fn webhook_authorization(
    store: &SqlStore,
    instance_id: &str,
) -> Result<Option<String>> {
    let row = sqlx::query("SELECT webhook_authorization_sealed FROM instances WHERE id = $1")
        .bind(instance_id)
        .fetch_optional_on(store)
        .await?
        .ok_or(Error::InstanceNotFound)?;
    let Some(sealed) = get::<Option<Vec<u8>>>(&row, "webhook_authorization_sealed")? else {
        return Ok(None);
    };
    let plain = store
        .secrets
        .open(&webhook_authorization_aad(instance_id), &sealed)?;
    String::from_utf8(plain).map(Some).map_err(|_| {
        Error::internal(Cause(format!(
            "instance {instance_id}: webhook authorization is not UTF-8"
        )))
    })
}

pub(crate) async fn set_session_status(
    store: &SqlStore,
    instance_id: &str,
    status: &SessionStatus,
) -> Result<()> {
    // The outage: a paired session (its number known) that is not
    // connected, from the first such state (`disconnected`, or `connecting`:
    // the web provider reconnects by itself) until `connected` or a logout.
    let outage = match (status.state, &status.number_jid) {
        (ConnectionState::Disconnected | ConnectionState::Connecting, Some(_)) => {
            "offline_since = COALESCE(offline_since, $4)"
        }
        _ => "offline_since = NULL, offline_noted = NULL",
    };
    let sql = format!(
        "UPDATE instances SET connection_state = $1, number_jid = $2, {outage} WHERE id = $3"
    );
    let query = sqlx::query(&sql)
        .bind(status.state.as_str())
        .bind(status.number_jid.clone())
        .bind(instance_id);
    let query = if outage.contains("$4") {
        query.bind(now_ms())
    } else {
        query
    };
    // A write like the bridge's: on SQLite it takes its turn on the writer
    // instead of meeting the others on the lock, whose busy handler sleeps
    // (sessions resume side by side at start-up).
    store.write_turn().await.execute(query).await?;
    Ok(())
}

pub(crate) async fn outages(
    store: &SqlStore,
    started_before_ms: i64,
    limit: u32,
) -> Result<Vec<Outage>> {
    sqlx::query(
        "SELECT i.id, i.offline_since FROM instances i \
         WHERE i.offline_since IS NOT NULL AND i.offline_since < $1 \
           AND (i.offline_noted IS NULL OR i.offline_noted <> i.offline_since) \
           AND EXISTS (SELECT 1 FROM chatwoot_integrations c WHERE c.instance_id = i.id) \
         ORDER BY i.offline_since, i.id LIMIT $2",
    )
    .bind(started_before_ms)
    .bind(i64::from(limit))
    .fetch_all_on(store)
    .await?
    .iter()
    .map(|row| {
        Ok(Outage {
            instance_id: get(row, "id")?,
            since_ms: get(row, "offline_since")?,
        })
    })
    .collect()
}

pub(crate) async fn note_outage(store: &SqlStore, outage: &Outage) -> Result<bool> {
    let noted = sqlx::query(
        "UPDATE instances SET offline_noted = offline_since \
         WHERE id = $1 AND offline_since = $2 \
           AND (offline_noted IS NULL OR offline_noted <> offline_since)",
    )
    .bind(&outage.instance_id)
    .bind(outage.since_ms)
    .execute_on(store)
    .await?;
    Ok(noted.rows_affected() == 1)
}

/// Read, merge and write in one transaction. The first statement is a
/// no-op write, which takes the row's lock on PostgreSQL and the database
/// write lock on SQLite before anything is read, so a concurrent update
/// waits and then merges into this one's result instead of overwriting it.
pub(crate) async fn update_settings(
    store: &SqlStore,
    account_id: &str,
    instance_id: &str,
    patch: &SettingsPatch,
) -> Result<Option<InstanceSettings>> {
    let mut tx = store.pool.begin().await.map_err(Error::internal)?;
    let locked =
        sqlx::query("UPDATE instances SET settings = settings WHERE id = $1 AND account_id = $2")
            .bind(instance_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
    if locked.rows_affected() == 0 {
        return Ok(None);
    }
    let stored: String = sqlx::query_scalar("SELECT settings FROM instances WHERE id = $1")
        .bind(instance_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::internal)?;
    let current = rows::settings_of(&stored)?;
    let settings = patch.apply(&current)?;
    sqlx::query("UPDATE instances SET settings = $1 WHERE id = $2")
        .bind(serde_json::to_string(&settings).map_err(Error::internal)?)
        .bind(instance_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    tx.commit().await.map_err(Error::internal)?;
    Ok(Some(settings))
}

/// Paired instances read at a time by [`paired_instances`]: 10,000 rows
/// read at once at start-up made a 7.6 MB peak that the allocator kept as
/// idle RSS.
pub const PAIRED_PAGE: usize = 500;

pub(crate) async fn paired_instances(
    store: &SqlStore,
    after: Option<&Instance>,
) -> Result<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances i \
         WHERE (i.connection_state = $1 \
                OR (i.number_jid IS NOT NULL AND i.connection_state <> $2)) \
           AND (i.created_at > $3 OR (i.created_at = $3 AND i.id > $4)) \
         ORDER BY i.created_at, i.id LIMIT {PAIRED_PAGE}"
    );
    let (created_at, id) = after.map_or((i64::MIN, ""), |last| {
        (last.created_at_ms, last.id.as_str())
    });
    sqlx::query(&sql)
        .bind(ConnectionState::Connected.as_str())
        .bind(ConnectionState::LoggedOut.as_str())
        .bind(created_at)
        .bind(id)
        .fetch_all_on(store)
        .await?
        .iter()
        .map(rows::instance)
        .collect()
}

pub(crate) async fn delete_instance(
    store: &SqlStore,
    account_id: &str,
    instance_id: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM instances WHERE id = $1 AND account_id = $2")
        .bind(instance_id)
        .bind(account_id)
        .execute_on(store)
        .await?;
    Ok(done.rows_affected() > 0)
}
