//! Key rotation: re-seals every secret column that is not under the secret
//! box's current key, so a retired key can later be dropped.

use sqlx::Row as _;
use zapgate_core::{Error, Result};

use crate::{
    SqlStore,
    instances::{token_aad, webhook_authorization_aad},
    rows::get,
};

/// A sealed column of `instances` and how its associated data is named.
struct SealedColumn {
    column: &'static str,
    aad: fn(&str) -> String,
}

const SEALED_COLUMNS: [SealedColumn; 2] = [
    SealedColumn {
        column: "token_sealed",
        aad: token_aad,
    },
    SealedColumn {
        column: "webhook_authorization_sealed",
        aad: webhook_authorization_aad,
    },
];

pub(crate) async fn rekey_secrets(store: &SqlStore) -> Result<u64> {
    let mut rewritten = 0u64;
    for sealed in &SEALED_COLUMNS {
        let select = format!(
            "SELECT id, {c} FROM instances WHERE {c} IS NOT NULL ORDER BY id",
            c = sealed.column
        );
        // Compare-and-set, so a value rewritten meanwhile is left alone.
        let update = format!(
            "UPDATE instances SET {c} = $1 WHERE id = $2 AND {c} = $3",
            c = sealed.column
        );
        let rows = sqlx::query(&select)
            .fetch_all(&store.pool)
            .await
            .map_err(Error::internal)?;
        for row in rows {
            let id: String = get(&row, "id")?;
            let old: Vec<u8> = row.try_get(1).map_err(Error::internal)?;
            if store.secrets.is_current(&old) {
                continue;
            }
            let aad = (sealed.aad)(&id);
            let plain = store.secrets.open(&aad, &old)?;
            let new = store.secrets.seal(&aad, &plain);
            let done = sqlx::query(&update)
                .bind(new)
                .bind(&id)
                .bind(old)
                .execute(&store.pool)
                .await
                .map_err(Error::internal)?;
            rewritten += done.rows_affected();
        }
    }
    if rewritten > 0 {
        tracing::info!(rewritten, "secrets re-sealed under the current key");
    }
    Ok(rewritten)
}
