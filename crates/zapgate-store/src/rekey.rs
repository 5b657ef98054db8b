//! Key rotation: re-seals every secret column that is not under the secret
//! box's current key, so a retired key can later be dropped.

use sqlx::Row as _;
use zapgate_core::{Error, Result};

use crate::{
    SqlStore, events,
    instances::{token_aad, webhook_authorization_aad},
    integrations,
    rows::get,
};

/// A sealed column and how its associated data is named from the row id.
struct SealedColumn {
    table: &'static str,
    id_column: &'static str,
    column: &'static str,
    aad: fn(id: &str, column: &str) -> String,
}

fn sealed_columns() -> Vec<SealedColumn> {
    let mut columns = vec![
        SealedColumn {
            table: "instances",
            id_column: "id",
            column: "token_sealed",
            aad: |id, _| token_aad(id),
        },
        SealedColumn {
            table: "instances",
            id_column: "id",
            column: "webhook_authorization_sealed",
            aad: |id, _| webhook_authorization_aad(id),
        },
        SealedColumn {
            table: "webhooks",
            id_column: "id",
            column: "authorization_sealed",
            aad: |id, _| events::authorization_aad(id),
        },
        SealedColumn {
            table: "webhooks",
            id_column: "id",
            column: "signing_secret_sealed",
            aad: |id, _| events::signing_secret_aad(id),
        },
    ];
    columns.extend(
        integrations::SEALED_COLUMNS
            .iter()
            .map(|column| SealedColumn {
                table: "chatwoot_integrations",
                id_column: "bridge_integration_id",
                column,
                aad: integrations::aad,
            }),
    );
    columns
}

pub(crate) async fn rekey_secrets(store: &SqlStore) -> Result<u64> {
    let mut rewritten = 0u64;
    for sealed in sealed_columns() {
        let (t, k, c) = (sealed.table, sealed.id_column, sealed.column);
        let select = format!("SELECT {k} AS id, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY {k}");
        // Compare-and-set, so a value rewritten meanwhile is left alone.
        let update = format!("UPDATE {t} SET {c} = $1 WHERE {k} = $2 AND {c} = $3");
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
            let aad = (sealed.aad)(&id, c);
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
    rewritten += crate::wa_session::rekey(store).await?;
    if rewritten > 0 {
        tracing::info!(rewritten, "secrets re-sealed under the current key");
    }
    Ok(rewritten)
}
