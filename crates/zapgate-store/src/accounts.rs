//! Accounts and token resolution. An account's token is stored only as its
//! SHA-256 hash; resolving a token means finding that hash among accounts and
//! instances, and is cached for a moment (every request does it), a token
//! found nowhere a little longer.

use zapgate_core::{
    Error, Result,
    account::{Account, NewAccount},
    messages,
    store::Principal,
    time::now_ms,
    token::{Token, TokenHash, new_id},
};

use crate::{
    SqlStore,
    conn::StoreQuery,
    db_error,
    rows::{self, ACCOUNT_COLUMNS, from_u32},
};

pub(crate) async fn create_account(
    store: &SqlStore,
    new: &NewAccount,
    token: &Token,
) -> Result<Account> {
    let account = Account {
        id: new_id("acc"),
        name: new.name.clone(),
        max_instances: new.max_instances,
        rate_limit_per_minute: new.rate_limit_per_minute,
        created_at_ms: now_ms(),
    };
    let hash = token.hash();
    let mut tx = store.pool.begin().await.map_err(Error::internal)?;
    sqlx::query(
        "INSERT INTO accounts \
         (id, name, token_hash, max_instances, rate_limit_per_minute, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&account.id)
    .bind(&account.name)
    .bind(&hash.0)
    .bind(from_u32(account.max_instances))
    .bind(account.rate_limit_per_minute.map(from_u32))
    .bind(account.created_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_error::account_write)?;
    // A token must name one principal: refuse one an instance already uses.
    // Checked after the insert so that, on SQLite, the transaction holds the
    // write lock before it reads (no stale-snapshot upgrade failure).
    let used = sqlx::query("SELECT 1 FROM instances WHERE token_hash = $1")
        .bind(&hash.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::internal)?;
    if used.is_some() {
        // Dropping the transaction rolls the insert back.
        return Err(Error::conflict(messages::TOKEN_IN_USE));
    }
    tx.commit().await.map_err(Error::internal)?;
    Ok(account)
}

pub(crate) async fn list_accounts(store: &SqlStore) -> Result<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY a.created_at, a.id");
    sqlx::query(&sql)
        .fetch_all_on(store)
        .await?
        .iter()
        .map(rows::account)
        .collect()
}

/// The instances go with it through `ON DELETE CASCADE`.
pub(crate) async fn delete_account(store: &SqlStore, account_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
        .bind(account_id)
        .execute_on(store)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One query for both kinds of token. Tokens are unique across accounts and
/// instances; should two rows still match, the account's comes first.
pub(crate) async fn find_principal(
    store: &SqlStore,
    token: &TokenHash,
) -> Result<Option<Principal>> {
    let load = async {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, NULL AS instance_id, 0 AS kind \
             FROM accounts a WHERE a.token_hash = $1 \
             UNION ALL \
             SELECT {ACCOUNT_COLUMNS}, i.id AS instance_id, 1 AS kind \
             FROM instances i JOIN accounts a ON a.id = i.account_id WHERE i.token_hash = $1 \
             ORDER BY kind LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(&token.0)
            .fetch_optional_on(store)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let account = rows::account(&row)?;
        Ok(Some(
            match rows::get::<Option<String>>(&row, "instance_id")? {
                Some(instance_id) => Principal::Instance {
                    account,
                    instance_id,
                },
                None => Principal::Account(account),
            },
        ))
    };
    let caches = &store.caches;
    if caches.unknown_tokens.get(&token.0).is_some() {
        return Ok(None);
    }
    let generation = caches.unknown_tokens.generation();
    let found = caches.principals.get_or_load(token.0.clone(), load).await?;
    if found.is_none() {
        caches.unknown_tokens.put(generation, token.0.clone(), ());
    }
    Ok(found)
}
