//! `impl EventStore for SqlStore`: webhooks (their `Authorization` value and
//! signing secret sealed), the WebSocket setting, the event log with its
//! per-instance sequence, and the webhook delivery queue.

use async_trait::async_trait;
use sqlx::{Any, Transaction, any::AnyRow};
use zapgate_core::{
    Error, Result,
    error::Cause,
    event_log::{
        DEFAULT_WEBHOOK_LABEL, Delivery, DeliveryOutcome, DeliveryStatus, DeliveryWork, EventName,
        EventStore, MAX_ENABLED_WEBHOOKS, NewDelivery, NewEvent, StoredEvent, Webhook,
        WebhookSettings, WebsocketSettings, new_signing_secret,
    },
    instance::WebhookConfig,
    message_store::{MessageWrite, StatusChange, StoredMessage, StoredVote},
    time::now_ms,
    token::new_id,
};

use crate::{
    SqlStore,
    backend::Backend,
    conn::{AnyQuery, StoreQuery},
    event_writes::{Append, EventWrite, EventWrites},
    group,
    params::Params,
    rows::get,
};

const WEBHOOK_COLUMNS: &str = "w.id AS webhook_id, w.instance_id AS webhook_instance_id, \
     w.label, w.enabled, w.url, w.authorization_sealed, w.by_events, w.events AS webhook_events, \
     w.media_base64, w.signing_secret_sealed";
const EVENT_COLUMNS: &str = "e.id AS event_id, e.instance_id AS event_instance_id, e.sequence, \
     e.name AS event_name, e.data, e.created_at AS event_created_at";
const DELIVERY_COLUMNS: &str = "d.id AS delivery_id, d.status, d.attempts, d.run_at, \
     d.response_status, d.last_error, d.updated_at";

/// Serialises delivery claims across processes on PostgreSQL (a claim picks
/// per webhook with a window function, which cannot lock rows itself).
const CLAIM_LOCK: i64 = 0x7a61_7067_6174_6501;

pub(crate) fn authorization_aad(webhook_id: &str) -> String {
    format!("webhooks/{webhook_id}/authorization")
}

pub(crate) fn signing_secret_aad(webhook_id: &str) -> String {
    format!("webhooks/{webhook_id}/signing_secret")
}

fn to_bool(value: i64) -> bool {
    value != 0
}

fn events_json(events: &[EventName]) -> Result<String> {
    serde_json::to_string(events).map_err(Error::internal)
}

fn parse_events(raw: &str) -> Result<Vec<EventName>> {
    serde_json::from_str(raw).map_err(Error::internal)
}

impl SqlStore {
    fn webhook_row(&self, row: &AnyRow) -> Result<Webhook> {
        let id: String = get(row, "webhook_id")?;
        let authorization = get::<Option<Vec<u8>>>(row, "authorization_sealed")?
            .map(|sealed| self.open_text(&authorization_aad(&id), &sealed))
            .transpose()?;
        let sealed_secret: Vec<u8> = get(row, "signing_secret_sealed")?;
        Ok(Webhook {
            instance_id: get(row, "webhook_instance_id")?,
            settings: WebhookSettings {
                label: get(row, "label")?,
                enabled: to_bool(get(row, "enabled")?),
                url: get(row, "url")?,
                authorization,
                by_events: to_bool(get(row, "by_events")?),
                events: parse_events(&get::<String>(row, "webhook_events")?)?,
                media_base64: to_bool(get(row, "media_base64")?),
            },
            signing_secret: self.open_text(&signing_secret_aad(&id), &sealed_secret)?,
            id,
        })
    }

    fn open_text(&self, aad: &str, sealed: &[u8]) -> Result<String> {
        let plain = self.secrets.open(aad, sealed)?;
        String::from_utf8(plain).map_err(Error::internal)
    }
}

fn event_row(row: &AnyRow) -> Result<StoredEvent> {
    let name: String = get(row, "event_name")?;
    Ok(StoredEvent {
        id: get(row, "event_id")?,
        instance_id: get(row, "event_instance_id")?,
        sequence: get(row, "sequence")?,
        name: EventName::parse(&name)
            .ok_or_else(|| Error::internal(Cause(format!("unknown event name {name:?}"))))?,
        data: get(row, "data")?,
        created_at_ms: get(row, "event_created_at")?,
    })
}

fn delivery_row(row: &AnyRow) -> Result<Delivery> {
    let status: String = get(row, "status")?;
    let event_name: String = get(row, "event_name")?;
    Ok(Delivery {
        id: get(row, "delivery_id")?,
        webhook_id: get(row, "webhook_id")?,
        webhook_label: get(row, "label")?,
        event_id: get(row, "event_id")?,
        event_name: EventName::parse(&event_name)
            .ok_or_else(|| Error::internal(Cause(format!("unknown event name {event_name:?}"))))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| Error::internal(Cause(format!("unknown delivery status {status:?}"))))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        run_at_ms: get(row, "run_at")?,
        response_status: get::<Option<i64>>(row, "response_status")?
            .and_then(|s| u16::try_from(s).ok()),
        last_error: get(row, "last_error")?,
        updated_at_ms: get(row, "updated_at")?,
    })
}

/// Takes the instance's write lock for the rest of `tx`: PostgreSQL locks
/// the instance row, SQLite takes the database write lock with a no-op
/// write. Concurrent saves of one instance's webhooks then queue instead of
/// both counting the old number of enabled ones.
async fn lock_instance(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    instance_id: &str,
) -> Result<()> {
    let sql = match backend {
        Backend::Postgres => "SELECT id FROM instances WHERE id = $1 FOR UPDATE",
        Backend::Sqlite => "UPDATE instances SET name = name WHERE id = $1 RETURNING id",
    };
    sqlx::query(sql)
        .bind(instance_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(Error::internal)?
        .map(|_| ())
        .ok_or(Error::InstanceNotFound)
}

#[async_trait]
impl EventStore for SqlStore {
    async fn save_webhook(&self, instance_id: &str, settings: &WebhookSettings) -> Result<Webhook> {
        let mut tx = self.pool.begin().await.map_err(Error::internal)?;
        lock_instance(self.backend, &mut tx, instance_id).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM webhooks WHERE instance_id = $1 AND label = $2")
                .bind(instance_id)
                .bind(&settings.label)
                .fetch_optional(&mut *tx)
                .await
                .map_err(Error::internal)?;
        if settings.enabled {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhooks WHERE instance_id = $1 AND enabled = 1 AND label <> $2",
            )
            .bind(instance_id)
            .bind(&settings.label)
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::internal)?;
            if others >= MAX_ENABLED_WEBHOOKS as i64 {
                return Err(Error::conflict(format!(
                    "Webhook limit reached: an instance can have at most {MAX_ENABLED_WEBHOOKS} enabled webhooks"
                )));
            }
        }
        let now = now_ms();
        let id = existing.clone().unwrap_or_else(|| new_id("whk"));
        let authorization = settings
            .authorization
            .as_ref()
            .map(|a| self.secrets.seal(&authorization_aad(&id), a.as_bytes()));
        let events = events_json(&settings.events)?;
        if existing.is_some() {
            sqlx::query(
                "UPDATE webhooks SET enabled = $1, url = $2, authorization_sealed = $3, \
                 by_events = $4, events = $5, media_base64 = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(i64::from(settings.enabled))
            .bind(&settings.url)
            .bind(authorization)
            .bind(i64::from(settings.by_events))
            .bind(events)
            .bind(i64::from(settings.media_base64))
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
        } else {
            let secret = new_signing_secret();
            sqlx::query(
                "INSERT INTO webhooks (id, instance_id, label, enabled, url, authorization_sealed, \
                 by_events, events, media_base64, signing_secret_sealed, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
            )
            .bind(&id)
            .bind(instance_id)
            .bind(&settings.label)
            .bind(i64::from(settings.enabled))
            .bind(&settings.url)
            .bind(authorization)
            .bind(i64::from(settings.by_events))
            .bind(events)
            .bind(i64::from(settings.media_base64))
            .bind(
                self.secrets
                    .seal(&signing_secret_aad(&id), secret.as_bytes()),
            )
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
        }
        if settings.label == DEFAULT_WEBHOOK_LABEL {
            // The instance list shows the default webhook from the instance row.
            let shown = WebhookConfig {
                enabled: settings.enabled,
                url: settings.url.clone(),
                by_events: settings.by_events,
                events: settings
                    .events
                    .iter()
                    .map(|e| e.as_str().to_owned())
                    .collect(),
                media_base64: settings.media_base64,
            };
            sqlx::query("UPDATE instances SET webhook = $1 WHERE id = $2")
                .bind(serde_json::to_string(&shown).map_err(Error::internal)?)
                .bind(instance_id)
                .execute(&mut *tx)
                .await
                .map_err(Error::internal)?;
        }
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1"
        ))
        .bind(&id)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::internal)?;
        let webhook = self.webhook_row(&row)?;
        tx.commit().await.map_err(Error::internal)?;
        self.caches.forget_all();
        Ok(webhook)
    }

    async fn webhooks(&self, instance_id: &str) -> Result<Vec<Webhook>> {
        sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.instance_id = $1 ORDER BY w.label"
        ))
        .bind(instance_id)
        .fetch_all_on(self)
        .await?
        .iter()
        .map(|row| self.webhook_row(row))
        .collect()
    }

    async fn save_websocket(&self, instance_id: &str, settings: &WebsocketSettings) -> Result<()> {
        sqlx::query(
            "INSERT INTO websocket_configs (instance_id, enabled, events, media_base64, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_id) DO UPDATE SET \
             enabled = excluded.enabled, events = excluded.events, \
             media_base64 = excluded.media_base64, updated_at = excluded.updated_at",
        )
        .bind(instance_id)
        .bind(i64::from(settings.enabled))
        .bind(events_json(&settings.events)?)
        .bind(i64::from(settings.media_base64))
        .bind(now_ms())
        .execute_on(self)
        .await
        .map_err(|err| match err {
            // The instance went between the lookup and the save.
            Error::Internal { .. } => Error::InstanceNotFound,
            other => other,
        })?;
        Ok(())
    }

    async fn websocket(&self, instance_id: &str) -> Result<Option<WebsocketSettings>> {
        let row = sqlx::query(
            "SELECT enabled, events, media_base64 FROM websocket_configs WHERE instance_id = $1",
        )
        .bind(instance_id)
        .fetch_optional_on(self)
        .await?;
        row.map(|row| {
            Ok(WebsocketSettings {
                enabled: to_bool(get(&row, "enabled")?),
                events: parse_events(&get::<String>(&row, "events")?)?,
                media_base64: to_bool(get(&row, "media_base64")?),
            })
        })
        .transpose()
    }

    async fn record(
        &self,
        event: Option<&NewEvent>,
        deliveries: &[NewDelivery],
        message: Option<&MessageWrite>,
    ) -> Result<Option<(StoredEvent, Vec<i64>)>> {
        let append = Append {
            event: event.cloned(),
            deliveries: deliveries.to_vec(),
            message: message.cloned(),
        };
        group::submit::<EventWrites>(self, EventWrite::Append(append)).await?
    }

    async fn message(&self, instance_id: &str, id: &str) -> Result<Option<StoredMessage>> {
        self.stored_message(instance_id, id).await
    }

    async fn message_history(&self, instance_id: &str, id: &str) -> Result<Vec<StatusChange>> {
        self.status_history(instance_id, id).await
    }

    async fn poll_votes(&self, instance_id: &str, poll_id: &str) -> Result<Vec<StoredVote>> {
        self.votes(instance_id, poll_id).await
    }

    async fn store_history(&self, messages: &[StoredMessage]) -> Result<()> {
        self.store_history_messages(messages).await
    }

    async fn messages_between(
        &self,
        instance_id: &str,
        from_secs: i64,
        until_secs: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        self.stored_between(instance_id, from_secs, until_secs, limit)
            .await
    }

    async fn delete_message(&self, instance_id: &str, id: &str) -> Result<bool> {
        self.forget_message(instance_id, id).await
    }

    async fn prune_messages(&self, before_ms: i64) -> Result<u64> {
        self.prune_stored_messages(before_ms).await
    }

    async fn events_after(
        &self,
        instance_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM event_log e WHERE e.instance_id = $1 AND e.sequence > $2 \
             ORDER BY e.sequence LIMIT $3"
        ))
        .bind(instance_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all_on(self)
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn prune_events(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM event_log WHERE created_at < $1")
            .bind(before_ms)
            .execute_on(self)
            .await?;
        Ok(done.rows_affected())
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        per_webhook: u32,
        answered: &[i64],
    ) -> Result<Vec<DeliveryWork>> {
        // Due: queued and due, or running with a lease its worker let lapse
        // (it died). Per webhook, its oldest due ones, as many as its cap
        // leaves room for next to what runs; across webhooks, oldest first.
        // A claim reads only what it hands out: `hooks` skips along the
        // index from one webhook with unfinished deliveries to the next,
        // and each webhook's walk stops at its cap. (Numbering the whole
        // backlog made each claim slower the further delivery fell behind,
        // which held up the writer and made it fall further behind.) Every
        // `status IN` term repeats the partial index's predicate word for
        // word: SQLite uses a partial index only then.
        const DUE: &str = "q.status IN ('queued', 'running') \
             AND ((q.status = 'queued' AND q.run_at <= $1) \
              OR (q.status = 'running' AND q.locked_until <= $1))";
        const HOOKS: &str = "hooks (webhook_id) AS ( \
               SELECT (SELECT q.webhook_id FROM webhook_deliveries q \
                 WHERE q.status IN ('queued', 'running') ORDER BY q.webhook_id LIMIT 1) \
               UNION ALL \
               SELECT (SELECT q.webhook_id FROM webhook_deliveries q \
                 WHERE q.status IN ('queued', 'running') AND q.webhook_id > h.webhook_id \
                 ORDER BY q.webhook_id LIMIT 1) \
               FROM hooks h WHERE h.webhook_id IS NOT NULL)";
        // Answered ones hold no place: $5 on are their ids.
        let busy = format!(
            "(SELECT COUNT(*) FROM webhook_deliveries r \
             WHERE r.webhook_id = h.webhook_id AND r.status = 'running' AND r.locked_until > $1{})",
            if answered.is_empty() {
                String::new()
            } else {
                format!(
                    " AND r.id NOT IN ({})",
                    Params::numbered(5).list(answered.len())
                )
            }
        );
        const CLAIM: &str = "UPDATE webhook_deliveries SET status = 'running', \
             locked_until = $2, attempts = attempts + 1, updated_at = $1 WHERE id IN";
        let binds = |sql| -> AnyQuery<'_> {
            let query = sqlx::query(sql)
                .bind(now_ms)
                .bind(lease_until_ms)
                .bind(i64::from(limit))
                .bind(i64::from(per_webhook));
            answered.iter().fold(query, |query, id| query.bind(*id))
        };
        let rows = match self.backend {
            Backend::Sqlite => {
                // No LATERAL here: `cut` is each webhook's `per_webhook`-th
                // due delivery, which bounds the range numbered per webhook.
                // Two statements, both local: SQLite's RETURNING cannot join.
                // `cut` is materialized, or SQLite flattens it into the join
                // and runs its two subqueries again for every delivery it
                // numbers; and the bound is a plain `id <=`, which walks the
                // index range, where `IS NULL OR` filtered the webhook's
                // whole backlog. Together: 40 ms to 1 ms a claim with 200
                // queued per webhook.
                const NO_LAST_ID: i64 = i64::MAX;
                let sql = format!(
                    "{CLAIM} (WITH RECURSIVE {HOOKS}, \
                       cut AS MATERIALIZED (SELECT h.webhook_id, {busy} AS busy, \
                         (SELECT q.id FROM webhook_deliveries q \
                            WHERE q.webhook_id = h.webhook_id AND {DUE} \
                            ORDER BY q.id LIMIT 1 OFFSET $4 - 1) AS last_id \
                         FROM hooks h WHERE h.webhook_id IS NOT NULL) \
                     SELECT id FROM ( \
                       SELECT q.id, c.busy, \
                         ROW_NUMBER() OVER (PARTITION BY q.webhook_id ORDER BY q.id) AS turn \
                       FROM cut c JOIN webhook_deliveries q ON q.webhook_id = c.webhook_id \
                       WHERE {DUE} AND q.id <= IFNULL(c.last_id, {NO_LAST_ID})) due \
                     WHERE due.turn + due.busy <= $4 ORDER BY due.id LIMIT $3) \
                     RETURNING id"
                );
                let ids: Vec<i64> = self
                    .write_turn()
                    .await
                    .fetch_all(binds(&sql))
                    .await?
                    .iter()
                    .map(|row| get(row, "id"))
                    .collect::<Result<_>>()?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS}, {WEBHOOK_COLUMNS}, {EVENT_COLUMNS} \
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                     JOIN event_log e ON e.id = d.event_id WHERE d.id IN ({}) ORDER BY d.id",
                    Params::new(self.backend).list(ids.len())
                );
                let mut query = sqlx::query(&sql);
                for id in &ids {
                    query = query.bind(id);
                }
                query.fetch_all_on(self).await?
            }
            Backend::Postgres => {
                // One statement claims and reads what it claimed (the
                // updated rows come from RETURNING: the outer query sees
                // the table as it was before). Each webhook's walk is a
                // LATERAL index scan that stops at its room. The planner
                // cannot know the queue (it swings from empty to thousands
                // of rows within seconds), so this transaction leaves it
                // only index walks, without JIT, and the claim is not
                // prepared: a plan cached while the table was small, or a
                // hash join over the backlog, would read every delivery.
                let sql = format!(
                    "WITH d AS ({CLAIM} (WITH RECURSIVE {HOOKS}, \
                         room AS (SELECT h.webhook_id, $4 - {busy} AS free \
                           FROM hooks h WHERE h.webhook_id IS NOT NULL) \
                       SELECT t.id FROM room CROSS JOIN LATERAL ( \
                         SELECT q.id FROM webhook_deliveries q \
                         WHERE q.webhook_id = room.webhook_id AND {DUE} \
                         ORDER BY q.id LIMIT GREATEST(room.free, 0)) t \
                       ORDER BY t.id LIMIT $3) \
                       RETURNING id, webhook_id, event_id, status, attempts, \
                         run_at, response_status, last_error, updated_at) \
                     SELECT {DELIVERY_COLUMNS}, {WEBHOOK_COLUMNS}, {EVENT_COLUMNS} \
                     FROM d JOIN webhooks w ON w.id = d.webhook_id \
                     JOIN event_log e ON e.id = d.event_id ORDER BY d.id"
                );
                let mut tx = self.pool.begin().await.map_err(Error::internal)?;
                sqlx::query(
                    "SELECT pg_advisory_xact_lock($1), set_config('jit', 'off', true), \
                       set_config('enable_seqscan', 'off', true), \
                       set_config('enable_bitmapscan', 'off', true), \
                       set_config('enable_hashjoin', 'off', true), \
                       set_config('enable_mergejoin', 'off', true)",
                )
                .bind(CLAIM_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(Error::internal)?;
                let rows = binds(&sql)
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(Error::internal)?;
                tx.commit().await.map_err(Error::internal)?;
                rows
            }
        };
        rows.iter()
            .map(|row| {
                Ok(DeliveryWork {
                    delivery: delivery_row(row)?,
                    webhook: self.webhook_row(row)?,
                    event: event_row(row)?,
                })
            })
            .collect()
    }

    async fn finish_delivery(&self, delivery_id: i64, outcome: &DeliveryOutcome) -> Result<()> {
        group::submit::<EventWrites>(self, EventWrite::Finish(delivery_id, outcome.clone()))
            .await?
            .map(drop)
    }

    async fn deliveries(
        &self,
        instance_id: &str,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let filter = if status.is_some() {
            " AND d.status = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, w.id AS webhook_id, w.label, e.id AS event_id, \
             e.name AS event_name FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id JOIN event_log e ON e.id = d.event_id \
             WHERE d.instance_id = $1{filter} ORDER BY d.id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(instance_id).bind(i64::from(limit));
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        query
            .fetch_all_on(self)
            .await?
            .iter()
            .map(delivery_row)
            .collect()
    }

    async fn replay_deliveries(
        &self,
        instance_id: &str,
        delivery_id: Option<i64>,
        now_ms: i64,
    ) -> Result<u64> {
        let mut sql = String::from(
            "UPDATE webhook_deliveries SET status = 'queued', run_at = $1, attempts = 0, \
             updated_at = $1 WHERE instance_id = $2 AND status = 'dead'",
        );
        if delivery_id.is_some() {
            sql.push_str(" AND id = $3");
        }
        let mut query = sqlx::query(&sql).bind(now_ms).bind(instance_id);
        if let Some(id) = delivery_id {
            query = query.bind(id);
        }
        Ok(self
            .write_turn()
            .await
            .execute(query)
            .await?
            .rows_affected())
    }
}

impl SqlStore {
    /// Instances created before the events module kept their webhook block
    /// in the instance row only, where nothing delivered to it: each such
    /// enabled block becomes the instance's `default` webhook, once. Event
    /// names the module does not know are dropped; a block left with none of
    /// the names it listed is skipped (it would otherwise subscribe to all).
    pub async fn adopt_instance_webhooks(&self) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT i.id, i.webhook FROM instances i WHERE NOT EXISTS \
             (SELECT 1 FROM webhooks w WHERE w.instance_id = i.id AND w.label = $1)",
        )
        .bind(DEFAULT_WEBHOOK_LABEL)
        .fetch_all_on(self)
        .await?;
        let mut adopted = 0;
        for row in rows {
            let instance_id: String = get(&row, "id")?;
            let block: WebhookConfig =
                serde_json::from_str(&get::<String>(&row, "webhook")?).map_err(Error::internal)?;
            if !block.enabled {
                continue;
            }
            let events: Vec<EventName> = block
                .events
                .iter()
                .filter_map(|e| EventName::parse(e))
                .collect();
            if events.is_empty() && !block.events.is_empty() {
                tracing::warn!(%instance_id, events = ?block.events, "webhook block names no known event: not adopted");
                continue;
            }
            let settings = WebhookSettings {
                label: DEFAULT_WEBHOOK_LABEL.to_owned(),
                enabled: true,
                url: block.url,
                authorization: crate::instances::webhook_authorization(self, &instance_id).await?,
                by_events: block.by_events,
                events,
                media_base64: block.media_base64,
            };
            self.save_webhook(&instance_id, &settings).await?;
            adopted += 1;
        }
        Ok(adopted)
    }
}
