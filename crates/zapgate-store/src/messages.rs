//! The message store's rows: written inside the event log's transaction
//! ([`apply`], called by [`crate::event_writes`]), read by the chat module.

use sqlx::{Any, Transaction, any::AnyRow};
use zapgate_core::{
    Error, Result,
    message_store::{MessageChange, MessageStatus, MessageWrite, StatusChange, StoredMessage},
    time::now_ms,
};

use crate::{SqlStore, conn::StoreQuery, rows::get};

const COLUMNS: &str = "instance_id, id, chat, sender, from_me, kind, body, media, extra, \
     quoted_id, source, status, sent_at, edited_at, revoked_at, created_at";

/// `CASE` giving a stored status its rank, so a receipt never moves it back.
fn rank_sql() -> String {
    let ranks = [
        MessageStatus::Pending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Played,
        MessageStatus::Error,
    ]
    .map(|s| format!("WHEN '{}' THEN {}", s.as_str(), s.rank()))
    .join(" ");
    format!("CASE status {ranks} ELSE 0 END")
}

fn json<T: serde::Serialize>(value: Option<&T>) -> Result<Option<String>> {
    value
        .map(|v| serde_json::to_string(v).map_err(Error::internal))
        .transpose()
}

/// Applies `writes` in `tx`: new messages in one statement (a redelivered
/// id keeps its first row), then edits, revocations and receipts in order.
pub(crate) async fn apply<'a>(
    tx: &mut Transaction<'_, Any>,
    writes: impl Iterator<Item = &'a MessageWrite>,
) -> Result<()> {
    let writes: Vec<&MessageWrite> = writes.collect();
    let now = now_ms();
    let inserts: Vec<&StoredMessage> = writes
        .iter()
        .filter_map(|w| match &w.change {
            MessageChange::Insert(m) => Some(m.as_ref()),
            _ => None,
        })
        .collect();
    if !inserts.is_empty() {
        let rows = (0..inserts.len())
            .map(|k| {
                let p = k * 16;
                format!(
                    "({})",
                    (1..=16)
                        .map(|n| format!("${}", p + n))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}) VALUES {rows} \
             ON CONFLICT (instance_id, id) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for m in &inserts {
            query = query
                .bind(&m.instance_id)
                .bind(&m.id)
                .bind(&m.chat)
                .bind(&m.sender)
                .bind(i64::from(m.from_me))
                .bind(&m.kind)
                .bind(m.text.clone())
                .bind(json(m.media.as_ref())?)
                .bind(json(m.extra.as_ref())?)
                .bind(m.quoted_id.clone())
                .bind(m.source.clone())
                .bind(m.status.as_str())
                .bind(m.timestamp)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(now);
        }
        query.execute(&mut **tx).await.map_err(Error::internal)?;
        let sql = format!(
            "INSERT INTO message_statuses (instance_id, message_id, status, at) VALUES {} \
             ON CONFLICT (instance_id, message_id, status) DO NOTHING",
            (0..inserts.len())
                .map(|k| format!(
                    "(${}, ${}, ${}, ${})",
                    k * 4 + 1,
                    k * 4 + 2,
                    k * 4 + 3,
                    k * 4 + 4
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query(&sql);
        for m in &inserts {
            query = query
                .bind(&m.instance_id)
                .bind(&m.id)
                .bind(m.status.as_str())
                .bind(now);
        }
        query.execute(&mut **tx).await.map_err(Error::internal)?;
    }
    for write in writes {
        let instance_id = write.instance_id.as_str();
        match &write.change {
            MessageChange::Insert(_) => {}
            MessageChange::Edit { id, text } => {
                sqlx::query(
                    "UPDATE messages SET body = $1, edited_at = $2 \
                     WHERE instance_id = $3 AND id = $4 AND revoked_at IS NULL",
                )
                .bind(text)
                .bind(now)
                .bind(instance_id)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(Error::internal)?;
            }
            MessageChange::Revoke { id } => {
                sqlx::query(
                    "UPDATE messages SET body = NULL, media = NULL, extra = NULL, revoked_at = $1 \
                     WHERE instance_id = $2 AND id = $3",
                )
                .bind(now)
                .bind(instance_id)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(Error::internal)?;
            }
            MessageChange::Status { id, status } => {
                // Only for a stored message (one sent before the store
                // existed, or pruned, has no row to hang it on).
                sqlx::query(
                    "INSERT INTO message_statuses (instance_id, message_id, status, at) \
                     SELECT instance_id, id, $1, $2 FROM messages \
                     WHERE instance_id = $3 AND id = $4 \
                     ON CONFLICT (instance_id, message_id, status) DO NOTHING",
                )
                .bind(status.as_str())
                .bind(now)
                .bind(instance_id)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(Error::internal)?;
                sqlx::query(&format!(
                    "UPDATE messages SET status = $1 \
                     WHERE instance_id = $2 AND id = $3 AND {} < $4",
                    rank_sql()
                ))
                .bind(status.as_str())
                .bind(instance_id)
                .bind(id)
                .bind(status.rank())
                .execute(&mut **tx)
                .await
                .map_err(Error::internal)?;
            }
        }
    }
    Ok(())
}

fn message_row(row: &AnyRow) -> Result<StoredMessage> {
    let parse = |column: &str| -> Result<Option<String>> { get(row, column) };
    let status: String = get(row, "status")?;
    Ok(StoredMessage {
        instance_id: get(row, "instance_id")?,
        id: get(row, "id")?,
        chat: get(row, "chat")?,
        sender: get(row, "sender")?,
        from_me: get::<i64>(row, "from_me")? != 0,
        kind: get(row, "kind")?,
        text: parse("body")?,
        media: parse("media")?
            .map(|j| serde_json::from_str(&j).map_err(Error::internal))
            .transpose()?,
        extra: parse("extra")?
            .map(|j| serde_json::from_str(&j).map_err(Error::internal))
            .transpose()?,
        quoted_id: parse("quoted_id")?,
        source: parse("source")?,
        status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Pending),
        timestamp: get(row, "sent_at")?,
        edited_at_ms: get(row, "edited_at")?,
        revoked_at_ms: get(row, "revoked_at")?,
        created_at_ms: get(row, "created_at")?,
    })
}

impl SqlStore {
    pub(crate) async fn stored_message(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Option<StoredMessage>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE instance_id = $1 AND id = $2"
        ))
        .bind(instance_id)
        .bind(id)
        .fetch_optional_on(self)
        .await?
        .as_ref()
        .map(message_row)
        .transpose()
    }

    /// In one transaction, a bounded number of rows per statement.
    pub(crate) async fn store_history_messages(&self, messages: &[StoredMessage]) -> Result<()> {
        const ROWS_PER_INSERT: usize = 500;
        let mut tx = self.pool.begin().await.map_err(Error::internal)?;
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let writes: Vec<MessageWrite> = chunk
                .iter()
                .map(|m| MessageWrite {
                    instance_id: m.instance_id.clone(),
                    change: MessageChange::Insert(Box::new(m.clone())),
                })
                .collect();
            apply(&mut tx, writes.iter()).await?;
        }
        tx.commit().await.map_err(Error::internal)
    }

    pub(crate) async fn stored_between(
        &self,
        instance_id: &str,
        from_secs: i64,
        until_secs: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages \
             WHERE instance_id = $1 AND sent_at >= $2 AND sent_at < $3 \
             ORDER BY chat, sent_at, id LIMIT $4"
        ))
        .bind(instance_id)
        .bind(from_secs)
        .bind(until_secs)
        .bind(i64::from(limit))
        .fetch_all_on(self)
        .await?
        .iter()
        .map(message_row)
        .collect()
    }

    pub(crate) async fn status_history(
        &self,
        instance_id: &str,
        id: &str,
    ) -> Result<Vec<StatusChange>> {
        sqlx::query(
            "SELECT status, at FROM message_statuses WHERE instance_id = $1 AND message_id = $2 \
             ORDER BY at, status",
        )
        .bind(instance_id)
        .bind(id)
        .fetch_all_on(self)
        .await?
        .iter()
        .filter_map(|row| {
            let status: String = match get(row, "status") {
                Ok(s) => s,
                Err(err) => return Some(Err(err)),
            };
            let status = MessageStatus::parse(&status)?;
            Some(get(row, "at").map(|at_ms| StatusChange { status, at_ms }))
        })
        .collect()
    }

    pub(crate) async fn forget_message(&self, instance_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM messages WHERE instance_id = $1 AND id = $2")
            .bind(instance_id)
            .bind(id)
            .execute_on(self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn prune_stored_messages(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM messages WHERE created_at < $1")
            .bind(before_ms)
            .execute_on(self)
            .await?;
        Ok(done.rows_affected())
    }
}
