//! The message store's rows: written inside the event log's transaction
//! ([`apply`], called by [`crate::event_writes`]), read by the chat module.

use sqlx::{Any, Transaction, any::AnyRow};
use zapgate_core::{
    Error, Result,
    message_store::{
        MessageChange, MessageStatus, MessageWrite, StatusChange, StoredMessage, StoredVote,
    },
    time::now_ms,
};

use crate::{
    SqlStore,
    backend::Backend,
    conn::StoreQuery,
    params::{Params, bucket, padded},
    rows::get,
};

const COLUMNS: &str = "instance_id, id, chat, sender, from_me, kind, body, media, extra, \
     quoted_id, source, status, sent_at, edited_at, revoked_at, created_at";

/// `CASE` giving the status in `column` its rank, so a receipt never moves
/// it back.
fn rank_sql(column: &str) -> String {
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
    format!("CASE {column} {ranks} ELSE 0 END")
}

fn json<T: serde::Serialize>(value: Option<&T>) -> Result<Option<String>> {
    value
        .map(|v| serde_json::to_string(v).map_err(Error::internal))
        .transpose()
}

/// The status each message of `receipts` ends at: the highest one (a
/// status only moves forward, so their order within a batch does not
/// matter), in first-seen order.
fn highest<'a>(
    receipts: impl Iterator<Item = (&'a str, &'a str, MessageStatus)>,
) -> Vec<(&'a str, &'a str, MessageStatus)> {
    let mut out: Vec<(&str, &str, MessageStatus)> = Vec::new();
    for (instance_id, id, status) in receipts {
        match out
            .iter_mut()
            .find(|(i, m, _)| *i == instance_id && *m == id)
        {
            Some(seen) => seen.2 = seen.2.max(status),
            None => out.push((instance_id, id, status)),
        }
    }
    out
}

/// Applies `writes` in `tx`: new messages with their first status in one
/// round trip (a redelivered id keeps its first row), then edits and
/// revocations in order, then the receipts: every status reached in one
/// statement, and the messages moved forward in one more.
pub(crate) async fn apply<'a>(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
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
        // Padded (see `padded`): a repeated message keeps its first row.
        let rows_of = bucket(inserts.len());
        let mut params = Params::new(backend);
        let rows = params.rows(rows_of, 16);
        let insert = format!(
            "INSERT INTO messages ({COLUMNS}) VALUES {rows} \
             ON CONFLICT (instance_id, id) DO NOTHING"
        );
        // The first status of each new message (a redelivered one has its
        // row already), without a second statement's round trip: SQLite
        // runs both statements of one query with one argument list (the
        // second's arguments follow the first's), PostgreSQL takes the rows
        // the insert returns.
        let sql = match backend {
            Backend::Sqlite => format!(
                "{insert}; INSERT INTO message_statuses (instance_id, message_id, status, at) \
                 VALUES {} ON CONFLICT (instance_id, message_id, status) DO NOTHING",
                params.rows(rows_of, 4)
            ),
            Backend::Postgres => format!(
                "WITH inserted AS ({insert} RETURNING instance_id, id, status, created_at) \
                 INSERT INTO message_statuses (instance_id, message_id, status, at) \
                 SELECT instance_id, id, status, created_at FROM inserted \
                 ON CONFLICT (instance_id, message_id, status) DO NOTHING"
            ),
        };
        let mut query = sqlx::query(&sql);
        for m in padded(&inserts) {
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
        if backend == Backend::Sqlite {
            for m in padded(&inserts) {
                query = query
                    .bind(&m.instance_id)
                    .bind(&m.id)
                    .bind(m.status.as_str())
                    .bind(now);
            }
        }
        query.execute(&mut **tx).await.map_err(Error::internal)?;
    }
    for write in &writes {
        let instance_id = write.instance_id.as_str();
        match &write.change {
            MessageChange::Insert(_) | MessageChange::Status { .. } => {}
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
            MessageChange::PollVote {
                poll_id,
                voter,
                options,
                at_ms,
            } => {
                // Only on a stored poll; a vote older than the one kept
                // (a redelivery) changes nothing.
                sqlx::query(
                    "INSERT INTO poll_votes (instance_id, poll_id, voter, options, voted_at) \
                     SELECT instance_id, id, $1, $2, $3 FROM messages \
                     WHERE instance_id = $4 AND id = $5 \
                     ON CONFLICT (instance_id, poll_id, voter) DO UPDATE \
                     SET options = excluded.options, voted_at = excluded.voted_at \
                     WHERE excluded.voted_at >= poll_votes.voted_at",
                )
                .bind(voter)
                .bind(serde_json::to_string(options).map_err(Error::internal)?)
                .bind(*at_ms)
                .bind(instance_id)
                .bind(poll_id)
                .execute(&mut **tx)
                .await
                .map_err(Error::internal)?;
            }
        }
    }
    let receipts = || {
        writes.iter().filter_map(|w| match &w.change {
            MessageChange::Status { id, status } => {
                Some((w.instance_id.as_str(), id.as_str(), *status))
            }
            _ => None,
        })
    };
    let reached: Vec<(&str, &str, MessageStatus)> = receipts().collect();
    if !reached.is_empty() {
        // Only for a stored message (one sent before the store existed, or
        // pruned, has no row to hang a receipt on). `WHERE true` tells
        // SQLite's parser the upsert's `ON CONFLICT` from a join's `ON`.
        let mut params = Params::new(backend);
        let values = params.typed_rows(reached.len(), &["TEXT", "TEXT", "TEXT"]);
        let at = params.typed("BIGINT");
        let sql = format!(
            "WITH reached (instance_id, id, status) AS (VALUES {values}) \
             INSERT INTO message_statuses (instance_id, message_id, status, at) \
             SELECT m.instance_id, m.id, reached.status, {at} FROM reached \
             JOIN messages m ON m.instance_id = reached.instance_id AND m.id = reached.id \
             WHERE true ON CONFLICT (instance_id, message_id, status) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for (instance_id, id, status) in &reached {
            query = query.bind(*instance_id).bind(*id).bind(status.as_str());
        }
        query = query.bind(now);
        query.execute(&mut **tx).await.map_err(Error::internal)?;
    }
    let moved = highest(receipts());
    if !moved.is_empty() {
        let sql = format!(
            "WITH receipt (instance_id, id, status, rank) AS (VALUES {}) \
             UPDATE messages SET status = receipt.status FROM receipt \
             WHERE messages.instance_id = receipt.instance_id AND messages.id = receipt.id \
             AND {} < receipt.rank",
            Params::new(backend).typed_rows(moved.len(), &["TEXT", "TEXT", "TEXT", "BIGINT"]),
            rank_sql("messages.status")
        );
        let mut query = sqlx::query(&sql);
        for (instance_id, id, status) in &moved {
            query = query
                .bind(*instance_id)
                .bind(*id)
                .bind(status.as_str())
                .bind(status.rank());
        }
        query.execute(&mut **tx).await.map_err(Error::internal)?;
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
            apply(&mut tx, self.backend, writes.iter()).await?;
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

    pub(crate) async fn votes(&self, instance_id: &str, poll_id: &str) -> Result<Vec<StoredVote>> {
        sqlx::query(
            "SELECT voter, options, voted_at FROM poll_votes \
             WHERE instance_id = $1 AND poll_id = $2 ORDER BY voted_at, voter",
        )
        .bind(instance_id)
        .bind(poll_id)
        .fetch_all_on(self)
        .await?
        .iter()
        .map(|row| {
            let options: String = get(row, "options")?;
            Ok(StoredVote {
                voter: get(row, "voter")?,
                options: serde_json::from_str(&options).map_err(Error::internal)?,
                at_ms: get(row, "voted_at")?,
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_of_a_message_end_at_the_highest_in_any_order() {
        use MessageStatus::{Delivered, Read};
        let receipts = [
            ("ins_1", "A", Read),
            ("ins_1", "B", Delivered),
            ("ins_1", "A", Delivered),
            ("ins_2", "A", Delivered),
            ("ins_1", "B", Read),
        ];
        assert_eq!(
            highest(receipts.into_iter()),
            vec![
                ("ins_1", "A", Read),
                ("ins_1", "B", Read),
                ("ins_2", "A", Delivered)
            ]
        );
    }
}
