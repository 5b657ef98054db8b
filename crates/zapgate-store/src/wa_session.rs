//! `WaSessionStore`: the storage backend of the `whatsapp-rust` client for
//! one instance, on zapgate's own database (SQLite or PostgreSQL).
//!
//! Everything lives in one key/value table, `wa_session`, keyed by
//! `(instance_id, ns, scope, key)`: `ns` names the kind of row (see
//! [`Ns`]), `scope` groups rows that are listed or cleared together, `key`
//! is the address, JID or id. Keys are plain text, because the client lists
//! some of them back (`get_all_tc_token_jids`, sender-key devices, signed
//! pre-keys); every value is sealed by the secret box with associated data
//! naming its row, so a value copied to another row, kind or instance does
//! not open. The few numbers that queries compare (pre-key ids, timestamps
//! and deadlines, the pre-key uploaded flag) sit in the clear in `n1`/`n2`.
//!
//! Read-modify-write operations (LID mappings, trusted-contact tokens) are
//! serialised by a per-store lock: one process owns an instance's session at
//! a time (the session lease), so the lock is enough to make them atomic.
//!
//! The trait implementations live in the submodules, one trait each.

mod app_sync;
mod device;
mod msg_secret;
mod protocol;
mod signal;

use std::{fmt, sync::Arc};

use sqlx::{AnyConnection, Row as _};
use whatsapp_rust::wacore::store::error::{Result, StoreError};

use crate::SqlStore;

/// The kinds of rows, each a namespace of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    Identity,
    Session,
    PreKey,
    SignedPreKey,
    SenderKey,
    SyncKey,
    LatestSyncKey,
    Version,
    MutationMac,
    SenderKeyDevice,
    LidMapping,
    PnToLid,
    BaseKey,
    DeviceList,
    GroupMetadata,
    TcToken,
    SentMessage,
    PendingInbound,
    MsgSecret,
    Device,
}

impl Ns {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Session => "session",
            Self::PreKey => "prekey",
            Self::SignedPreKey => "signed_prekey",
            Self::SenderKey => "sender_key",
            Self::SyncKey => "sync_key",
            Self::LatestSyncKey => "latest_sync_key",
            Self::Version => "version",
            Self::MutationMac => "mutation_mac",
            Self::SenderKeyDevice => "sender_key_device",
            Self::LidMapping => "lid_mapping",
            Self::PnToLid => "pn_to_lid",
            Self::BaseKey => "base_key",
            Self::DeviceList => "device_list",
            Self::GroupMetadata => "group_metadata",
            Self::TcToken => "tc_token",
            Self::SentMessage => "sent_message",
            Self::PendingInbound => "pending_inbound",
            Self::MsgSecret => "msg_secret",
            Self::Device => "device",
        }
    }
}

/// One row to write: where, the plaintext value, and the clear numbers.
pub(crate) struct Put<'a> {
    pub ns: Ns,
    pub scope: &'a str,
    pub key: &'a str,
    pub value: &'a [u8],
    pub n1: Option<i64>,
    pub n2: Option<i64>,
}

impl<'a> Put<'a> {
    pub(crate) fn new(ns: Ns, scope: &'a str, key: &'a str, value: &'a [u8]) -> Self {
        Self {
            ns,
            scope,
            key,
            value,
            n1: None,
            n2: None,
        }
    }

    pub(crate) fn nums(self, n1: Option<i64>, n2: Option<i64>) -> Self {
        Self { n1, n2, ..self }
    }
}

/// A stored row, opened: its key, plaintext value and second number.
pub(crate) struct Got {
    pub key: String,
    pub value: Vec<u8>,
    pub n2: Option<i64>,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

const UPSERT: &str = "INSERT INTO wa_session (instance_id, ns, scope, key, value, n1, n2) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (instance_id, ns, scope, key) \
     DO UPDATE SET value = excluded.value, n1 = excluded.n1, n2 = excluded.n2";

/// The `whatsapp-rust` storage backend of one instance. Cheap to clone.
#[derive(Clone)]
pub struct WaSessionStore {
    store: SqlStore,
    instance_id: Arc<str>,
    rmw: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for WaSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaSessionStore")
            .field("instance_id", &self.instance_id)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl WaSessionStore {
    /// The session of `instance_id`, which must exist in `instances` before
    /// anything is written (the rows reference it).
    pub fn new(store: SqlStore, instance_id: impl Into<Arc<str>>) -> Self {
        Self {
            store,
            instance_id: instance_id.into(),
            rmw: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Deletes every row of this instance's session (logout). Returns how
    /// many rows went.
    pub async fn wipe(&self) -> zapgate_core::Result<u64> {
        self.store.wipe_wa_session(&self.instance_id).await
    }

    /// The associated data of a row. The scope carries its length, so no
    /// choice of scope and key can name another row.
    fn aad(&self, ns: Ns, scope: &str, key: &str) -> String {
        aad(&self.instance_id, ns.name(), scope, key)
    }

    fn seal(&self, ns: Ns, scope: &str, key: &str, value: &[u8]) -> Vec<u8> {
        self.store.secrets.seal(&self.aad(ns, scope, key), value)
    }

    fn open(&self, ns: Ns, scope: &str, key: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.store
            .secrets
            .open(&self.aad(ns, scope, key), sealed)
            .map_err(|e| StoreError::Database(Box::new(e)))
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.store
            .pool
            .acquire()
            .await
            .map_err(|e| StoreError::Connection(Box::new(e)))
    }

    async fn upsert(&self, conn: &mut AnyConnection, row: &Put<'_>) -> Result<()> {
        sqlx::query(UPSERT)
            .bind(&*self.instance_id)
            .bind(row.ns.name())
            .bind(row.scope)
            .bind(row.key)
            .bind(self.seal(row.ns, row.scope, row.key, row.value))
            .bind(row.n1)
            .bind(row.n2)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Writes (inserts or replaces) one row.
    pub(crate) async fn put(&self, row: Put<'_>) -> Result<()> {
        let mut conn = self.conn().await?;
        self.upsert(&mut conn, &row).await
    }

    /// Writes many rows in one transaction.
    /// Takes a `Vec` so no lazy iterator is held across an await (the
    /// trait's futures must be `Send` for every lifetime).
    pub(crate) async fn put_all(&self, rows: Vec<Put<'_>>) -> Result<()> {
        let mut tx = self.store.pool.begin().await.map_err(db)?;
        for row in rows {
            self.upsert(&mut tx, &row).await?;
        }
        tx.commit().await.map_err(db)
    }

    /// One row, opened, with its numbers.
    pub(crate) async fn get_row(&self, ns: Ns, scope: &str, key: &str) -> Result<Option<Got>> {
        let row = sqlx::query(
            "SELECT value, n2 FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND scope = $3 AND key = $4",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.try_get(0).map_err(db)?;
        Ok(Some(Got {
            key: key.to_owned(),
            value: self.open(ns, scope, key, &sealed)?,
            n2: row.try_get(1).map_err(db)?,
        }))
    }

    /// One row's plaintext value.
    pub(crate) async fn get(&self, ns: Ns, scope: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_row(ns, scope, key).await?.map(|got| got.value))
    }

    /// Whether the row exists (nothing is decrypted).
    pub(crate) async fn exists(&self, ns: Ns, scope: &str, key: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND scope = $3 AND key = $4",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(db)?;
        Ok(found.is_some())
    }

    /// Every row of a kind (of one scope when given), opened, in key order.
    pub(crate) async fn list(&self, ns: Ns, scope: Option<&str>) -> Result<Vec<Got>> {
        let rows = sqlx::query(
            "SELECT scope, key, value, n2 FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND ($3 = 0 OR scope = $4) \
             ORDER BY scope, key",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(i64::from(scope.is_some()))
        .bind(scope.unwrap_or(""))
        .fetch_all(&self.store.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let scope: String = row.try_get(0).map_err(db)?;
                let key: String = row.try_get(1).map_err(db)?;
                let sealed: Vec<u8> = row.try_get(2).map_err(db)?;
                let value = self.open(ns, &scope, &key, &sealed)?;
                Ok(Got {
                    value,
                    n2: row.try_get(3).map_err(db)?,
                    key,
                })
            })
            .collect()
    }

    /// The keys of a kind starting with `prefix`, across scopes (nothing is
    /// decrypted). The match is exact: SQLite's `LIKE` ignores ASCII case,
    /// so the candidates are filtered again here.
    pub(crate) async fn keys_with_prefix(&self, ns: Ns, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{}%", escape_like(prefix));
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND key LIKE $3 ESCAPE '\\'",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(pattern)
        .fetch_all(&self.store.pool)
        .await
        .map_err(db)?;
        Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    /// Deletes one row.
    pub(crate) async fn delete(&self, ns: Ns, scope: &str, key: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        self.delete_on(&mut conn, ns, scope, key).await
    }

    async fn delete_on(
        &self,
        conn: &mut AnyConnection,
        ns: Ns,
        scope: &str,
        key: &str,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND scope = $3 AND key = $4",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Deletes many rows of one kind in one transaction.
    pub(crate) async fn delete_all(&self, ns: Ns, rows: Vec<(&str, &str)>) -> Result<()> {
        let mut tx = self.store.pool.begin().await.map_err(db)?;
        for (scope, key) in rows {
            self.delete_on(&mut tx, ns, scope, key).await?;
        }
        tx.commit().await.map_err(db)
    }

    /// Deletes every row of a kind, of one scope when given.
    pub(crate) async fn delete_scope(&self, ns: Ns, scope: Option<&str>) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND ($3 = 0 OR scope = $4)",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(i64::from(scope.is_some()))
        .bind(scope.unwrap_or(""))
        .execute(&self.store.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    /// Deletes the rows of a kind whose key is one of `keys`, in any scope.
    pub(crate) async fn delete_keys_any_scope(&self, ns: Ns, keys: &[&str]) -> Result<()> {
        let mut tx = self.store.pool.begin().await.map_err(db)?;
        for key in keys {
            sqlx::query("DELETE FROM wa_session WHERE instance_id = $1 AND ns = $2 AND key = $3")
                .bind(&*self.instance_id)
                .bind(ns.name())
                .bind(*key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Deletes the rows of a kind matching `condition` (SQL over `n1`/`n2`
    /// with parameters from `$3`), returning how many went.
    pub(crate) async fn delete_where(
        &self,
        ns: Ns,
        condition: &str,
        params: &[i64],
    ) -> Result<u32> {
        let sql =
            format!("DELETE FROM wa_session WHERE instance_id = $1 AND ns = $2 AND ({condition})");
        let mut query = sqlx::query(&sql).bind(&*self.instance_id).bind(ns.name());
        for p in params {
            query = query.bind(*p);
        }
        let done = query.execute(&self.store.pool).await.map_err(db)?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }

    /// Deletes a row and returns its value, atomically.
    pub(crate) async fn take(&self, ns: Ns, scope: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM wa_session \
             WHERE instance_id = $1 AND ns = $2 AND scope = $3 AND key = $4 \
             RETURNING value",
        )
        .bind(&*self.instance_id)
        .bind(ns.name())
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(db)?;
        sealed
            .map(|sealed| self.open(ns, scope, key, &sealed))
            .transpose()
    }

    /// The largest `n1` of a kind, if any row has one.
    pub(crate) async fn max_n1(&self, ns: Ns) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT MAX(n1) FROM wa_session WHERE instance_id = $1 AND ns = $2")
            .bind(&*self.instance_id)
            .bind(ns.name())
            .fetch_one(&self.store.pool)
            .await
            .map_err(db)
    }

    /// Runs `sql` (an `UPDATE` or upsert with `$1` = instance, `$2` = ns)
    /// once per parameter row, in one transaction. The caller binds the
    /// rest through `bind`.
    pub(crate) async fn execute_each<'q, T: Send + 'q>(
        &'q self,
        sql: &'q str,
        ns: Ns,
        items: Vec<T>,
        bind: impl Fn(AnyQuery<'q>, T) -> AnyQuery<'q> + Send,
    ) -> Result<()> {
        let mut tx = self.store.pool.begin().await.map_err(db)?;
        for item in items {
            let query = sqlx::query(sql).bind(&*self.instance_id).bind(ns.name());
            bind(query, item).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Seals a value for an explicit row (for callers writing their own SQL).
    pub(crate) fn seal_for(&self, ns: Ns, scope: &str, key: &str, value: &[u8]) -> Vec<u8> {
        self.seal(ns, scope, key, value)
    }

    /// Serialises read-modify-write sequences of this store.
    pub(crate) async fn rmw_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.rmw.lock().await
    }
}

impl SqlStore {
    /// Deletes the whole WhatsApp session of an instance (logout). Deleting
    /// the instance does the same through the foreign key.
    pub async fn wipe_wa_session(&self, instance_id: &str) -> zapgate_core::Result<u64> {
        let done = sqlx::query("DELETE FROM wa_session WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&self.pool)
            .await
            .map_err(zapgate_core::Error::internal)?;
        Ok(done.rows_affected())
    }
}

/// Re-seals every session value not under the secret box's current key
/// (compare-and-set, so a value rewritten meanwhile is left alone). Part of
/// the store's key rotation.
pub(crate) async fn rekey(store: &SqlStore) -> zapgate_core::Result<u64> {
    use zapgate_core::Error;
    let rows = sqlx::query(
        "SELECT instance_id, ns, scope, key, value FROM wa_session \
         ORDER BY instance_id, ns, scope, key",
    )
    .fetch_all(&store.pool)
    .await
    .map_err(Error::internal)?;
    let mut rewritten = 0;
    for row in rows {
        let old: Vec<u8> = row.try_get(4).map_err(Error::internal)?;
        if store.secrets.is_current(&old) {
            continue;
        }
        let text = |i: usize| row.try_get::<String, _>(i).map_err(Error::internal);
        let (instance_id, ns, scope, key) = (text(0)?, text(1)?, text(2)?, text(3)?);
        let aad = aad(&instance_id, &ns, &scope, &key);
        let plain = store.secrets.open(&aad, &old)?;
        let done = sqlx::query(
            "UPDATE wa_session SET value = $1 WHERE instance_id = $2 AND ns = $3 \
             AND scope = $4 AND key = $5 AND value = $6",
        )
        .bind(store.secrets.seal(&aad, &plain))
        .bind(instance_id)
        .bind(ns)
        .bind(scope)
        .bind(key)
        .bind(old)
        .execute(&store.pool)
        .await
        .map_err(Error::internal)?;
        rewritten += done.rows_affected();
    }
    Ok(rewritten)
}

/// The associated data of a row: `wa_session/<instance>/<ns>/<scope
/// length>:<scope>/<key>`.
fn aad(instance_id: &str, ns: &str, scope: &str, key: &str) -> String {
    format!(
        "wa_session/{instance_id}/{ns}/{}:{scope}/{key}",
        scope.len()
    )
}

/// A key made of two parts, unambiguous whatever they hold.
pub(crate) fn pair_key(a: &str, b: &str) -> String {
    format!("{}:{a}{b}", a.len())
}

/// Lowercase hex of a binary key.
pub(crate) fn hex_key(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Serialization(Box::new(e)))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Serialization(Box::new(e)))
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_keys_are_unambiguous() {
        assert_ne!(pair_key("a:1", "b"), pair_key("a", ":1b"));
        assert_eq!(pair_key("ab", "c"), "2:abc");
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
