//! The events module's hot writes, group-committed (see [`crate::group`]):
//! appended events with their queued deliveries and their message-store
//! writes, and finished deliveries, in one queue.
//! Under load one transaction stores many events and one statement in it
//! records many outcomes; an event alone costs what it did before. One
//! queue rather than two: on SQLite both took turns on the one writer
//! connection, each busy all the time at 2,000 events/s, and an outcome
//! rewrites the pages the append of its delivery just wrote, so a shared
//! commit writes them once. A caller still hears back only once its own
//! write is committed, so a provider acknowledges WhatsApp only after its
//! event is stored.

use std::collections::{BTreeMap, HashMap, HashSet};

use zapgate_core::{
    Error, Result,
    error::Cause,
    event_log::{DeliveryOutcome, NewDelivery, NewEvent, StoredEvent},
    message_store::MessageWrite,
    time::now_ms,
    token::new_id,
};

use sqlx::{Any, Transaction};

use crate::{
    SqlStore,
    backend::Backend,
    group::{Batch, GroupCommit},
    messages,
    params::{Params, bucket, padded},
    rows::get,
};

/// An event to append (if any), its deliveries, and what it does to the
/// message store.
pub(crate) struct Append {
    pub event: Option<NewEvent>,
    pub deliveries: Vec<NewDelivery>,
    pub message: Option<MessageWrite>,
}

/// An appended event and the ids of its deliveries, in their order.
pub(crate) type Appended = (StoredEvent, Vec<i64>);

/// A write of the events module.
pub(crate) enum EventWrite {
    Append(Append),
    /// A delivery's outcome.
    Finish(i64, DeliveryOutcome),
}

/// The events module's writes, batched: one transaction for the batch, its
/// sequences taken per instance in one statement, its outcomes recorded in
/// another.
pub(crate) struct EventWrites;

impl Batch for EventWrites {
    type Item = EventWrite;
    /// Each item's own outcome (`None` for a finish and for a duplicate
    /// event): one event the store refuses (its instance was just deleted)
    /// fails only itself.
    type Outcome = Result<Option<Appended>>;

    fn queue(store: &SqlStore) -> &GroupCommit<Self> {
        &store.event_writes
    }

    async fn store(store: &SqlStore, items: &[EventWrite]) -> Result<Vec<Self::Outcome>> {
        let mut appends = Vec::new();
        let mut finishes = Vec::new();
        for item in items {
            match item {
                EventWrite::Append(append) => appends.push(append),
                EventWrite::Finish(id, outcome) => finishes.push((*id, outcome)),
            }
        }
        let (appended, recorded) = match store_batch(store, &appends, &finishes).await {
            Ok(stored) => (stored.into_iter().map(Ok).collect(), Ok(())),
            Err(err) if appends.is_empty() => (Vec::new(), Err(err)),
            Err(err) if appends.len() == 1 && finishes.is_empty() => (vec![Err(err)], Ok(())),
            // Find the culprit: each append alone, then the outcomes.
            Err(_) => {
                let mut appended = Vec::with_capacity(appends.len());
                for append in &appends {
                    appended.push(
                        store_batch(store, std::slice::from_ref(append), &[])
                            .await
                            .map(|mut one| one.pop().flatten()),
                    );
                }
                let recorded = if finishes.is_empty() {
                    Ok(())
                } else {
                    store_batch(store, &[], &finishes).await.map(drop)
                };
                (appended, recorded)
            }
        };
        // Appends' outcomes in order; a finish's is `None`, or why the
        // batch's outcomes could not be recorded.
        let mut appended = appended.into_iter();
        Ok(items
            .iter()
            .map(|item| match (item, &recorded) {
                (EventWrite::Append(_), _) => appended.next().expect("one outcome per append"),
                (EventWrite::Finish(..), Ok(())) => Ok(None),
                (EventWrite::Finish(..), Err(err)) => Err(Error::internal(Cause(err.to_string()))),
            })
            .collect())
    }
}

/// Stores `items` and records `finishes` in one transaction, in order: per
/// instance, sequences follow the items' order, and the deliveries' ids too
/// (each webhook's deliveries run in id order). An event whose dedupe key is
/// stored (or comes earlier in the batch) is `None` and takes no sequence.
async fn store_batch(
    store: &SqlStore,
    items: &[&Append],
    finishes: &[(i64, &DeliveryOutcome)],
) -> Result<Vec<Option<Appended>>> {
    let mut seen = HashSet::new();
    let mut skip: Vec<bool> = items
        .iter()
        .map(|item| {
            item.event
                .as_ref()
                .is_none_or(|e| !seen.insert((e.instance_id.as_str(), e.dedupe_key.as_str())))
        })
        .collect();
    // A key stored meanwhile by another process (its sequence would leave
    // a gap): undone, and the batch is stored again without it.
    for _ in 0..3 {
        let mut turn = store.write_turn().await;
        let mut tx = turn.begin().await?;
        let live: Vec<usize> = (0..items.len()).filter(|&i| !skip[i]).collect();
        let stored = if live.is_empty() {
            vec![None; items.len()]
        } else {
            match append_events(&mut tx, store.backend, items, &live).await? {
                Ok(stored) => stored,
                Err(new) => {
                    tx.rollback().await.map_err(Error::internal)?;
                    for &i in &live {
                        let event = items[i].event.as_ref().expect("live events exist");
                        if !new.contains(&(event.instance_id.clone(), event.dedupe_key.clone())) {
                            skip[i] = true;
                        }
                    }
                    continue;
                }
            }
        };
        messages::apply(
            &mut tx,
            store.backend,
            items.iter().filter_map(|i| i.message.as_ref()),
        )
        .await?;
        // After the appends: their counter rows are locked first, in
        // instance order, by every batch of every process.
        record_outcomes(&mut tx, store.backend, finishes).await?;
        tx.commit().await.map_err(Error::internal)?;
        return Ok(stored);
    }
    Err(Error::internal(Cause(
        "events kept colliding with events stored by another process".into(),
    )))
}

/// Appends the events `live` of `items` with their deliveries in `tx`; the
/// keys it could insert when some key was stored meanwhile (the caller
/// rolls back and stores the batch again without the others).
async fn append_events(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    items: &[&Append],
    live: &[usize],
) -> Result<std::result::Result<Vec<Option<Appended>>, HashSet<(String, String)>>> {
    // Counter rows in instance order, so two processes' batches lock
    // them in the same order and never deadlock.
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for &i in live {
        *counts
            .entry(
                items[i]
                    .event
                    .as_ref()
                    .expect("live events exist")
                    .instance_id
                    .as_str(),
            )
            .or_default() += 1;
    }
    let sql = format!(
        "INSERT INTO event_sequences (instance_id, last_sequence) VALUES {} \
         ON CONFLICT (instance_id) DO UPDATE SET \
         last_sequence = event_sequences.last_sequence + excluded.last_sequence \
         RETURNING instance_id, last_sequence",
        Params::new(backend).rows(counts.len(), 2)
    );
    let mut query = sqlx::query(&sql);
    for (instance_id, n) in &counts {
        query = query.bind(*instance_id).bind(*n);
    }
    let rows = query.fetch_all(&mut **tx).await.map_err(Error::internal)?;
    // The next sequence of each instance in this batch.
    let mut next: HashMap<String, i64> = HashMap::new();
    for row in &rows {
        let instance_id: String = get(row, "instance_id")?;
        let last: i64 = get(row, "last_sequence")?;
        let n = counts.get(instance_id.as_str()).copied().unwrap_or(0);
        next.insert(instance_id, last - n + 1);
    }
    let created_at_ms = now_ms();
    let mut stored: Vec<Option<StoredEvent>> = vec![None; items.len()];
    for &i in live {
        let event = items[i].event.as_ref().expect("live events exist");
        let sequence = next
            .get_mut(&event.instance_id)
            .ok_or_else(|| Error::internal(Cause("no sequence".into())))?;
        stored[i] = Some(StoredEvent {
            id: new_id("evt"),
            instance_id: event.instance_id.clone(),
            sequence: *sequence,
            name: event.name,
            data: event.data.clone(),
            created_at_ms,
        });
        *sequence += 1;
    }
    // Padded (see `padded`): a repeated event, under an id of its own, is a
    // conflict on its dedupe key, so it is skipped and not returned.
    let sql = format!(
        "INSERT INTO event_log (id, instance_id, sequence, name, dedupe_key, data, created_at) \
         VALUES {} ON CONFLICT (instance_id, dedupe_key) DO NOTHING RETURNING instance_id, dedupe_key",
        Params::new(backend).rows(bucket(live.len()), 7)
    );
    let mut query = sqlx::query(&sql);
    for (n, &i) in padded(live).enumerate() {
        let event = stored[i].as_ref().expect("assigned above");
        let id = if n < live.len() {
            event.id.clone()
        } else {
            new_id("evt")
        };
        query = query
            .bind(id)
            .bind(&event.instance_id)
            .bind(event.sequence)
            .bind(event.name.as_str())
            .bind(
                &items[i]
                    .event
                    .as_ref()
                    .expect("live events exist")
                    .dedupe_key,
            )
            .bind(&event.data)
            .bind(event.created_at_ms);
    }
    let inserted = query.fetch_all(&mut **tx).await.map_err(Error::internal)?;
    if inserted.len() < live.len() {
        return inserted
            .iter()
            .map(|row| Ok((get(row, "instance_id")?, get(row, "dedupe_key")?)))
            .collect::<Result<_>>()
            .map(Err);
    }
    let queued: Vec<(&NewDelivery, &StoredEvent)> = live
        .iter()
        .flat_map(|&i| {
            let event = stored[i].as_ref().expect("assigned above");
            items[i].deliveries.iter().map(move |d| (d, event))
        })
        .collect();
    // Each delivery's id, by (event id, webhook id): one of each pair.
    let mut ids: HashMap<(String, String), i64> = HashMap::new();
    if !queued.is_empty() {
        // A leased delivery is running (its first attempt starts at once);
        // the others wait for a claim. `updated_at` is bound twice, as
        // `run_at` and again, since each argument is used once.
        let mut params = Params::new(backend);
        let sql = format!(
            "INSERT INTO webhook_deliveries (webhook_id, instance_id, event_id, status, \
             attempts, run_at, locked_until, response_status, last_error, updated_at) VALUES {} \
             RETURNING id, webhook_id, event_id",
            (0..queued.len())
                .map(|_| {
                    let row = params.list(6);
                    let lease = params.typed("BIGINT");
                    let updated_at = params.one();
                    format!("({row}, {lease}, NULL, '', {updated_at})")
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (delivery, event) in &queued {
            let (status, attempts) = match delivery.lease_until_ms {
                Some(_) => ("running", 1_i64),
                None => ("queued", 0),
            };
            query = query
                .bind(delivery.webhook_id.as_str())
                .bind(&event.instance_id)
                .bind(&event.id)
                .bind(status)
                .bind(attempts)
                .bind(event.created_at_ms)
                .bind(delivery.lease_until_ms)
                .bind(event.created_at_ms);
        }
        for row in query.fetch_all(&mut **tx).await.map_err(Error::internal)? {
            ids.insert(
                (get(&row, "event_id")?, get(&row, "webhook_id")?),
                get(&row, "id")?,
            );
        }
    }
    stored
        .into_iter()
        .zip(items)
        .map(|(event, item)| {
            let Some(event) = event else {
                return Ok(None);
            };
            let ids = item
                .deliveries
                .iter()
                .map(|d| {
                    ids.get(&(event.id.clone(), d.webhook_id.clone()))
                        .copied()
                        .ok_or_else(|| Error::internal(Cause("a delivery has no id".into())))
                })
                .collect::<Result<_>>()?;
            Ok(Some((event, ids)))
        })
        .collect::<Result<_>>()
        .map(Ok)
}

/// Records `finishes` in `tx` with one statement.
async fn record_outcomes(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    finishes: &[(i64, &DeliveryOutcome)],
) -> Result<()> {
    if finishes.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut params = Params::new(backend);
    // Padded (see `padded`): a repeated outcome writes the same values again.
    let values = params.typed_rows(
        bucket(finishes.len()),
        &["BIGINT", "TEXT", "BIGINT", "BIGINT", "TEXT", "BIGINT"],
    );
    let updated_at = params.one();
    // A released delivery made no attempt: its count goes back down and
    // its last answer stays.
    let sql = format!(
        "WITH outcome (id, status, run_at, response_status, last_error, released) AS (VALUES {values}) \
         UPDATE webhook_deliveries SET status = outcome.status, run_at = outcome.run_at, \
         locked_until = NULL, attempts = webhook_deliveries.attempts - outcome.released, \
         response_status = CASE WHEN outcome.released = 1 \
           THEN webhook_deliveries.response_status ELSE outcome.response_status END, \
         last_error = CASE WHEN outcome.released = 1 \
           THEN webhook_deliveries.last_error ELSE outcome.last_error END, \
         updated_at = {updated_at} \
         FROM outcome WHERE webhook_deliveries.id = outcome.id"
    );
    let mut query = sqlx::query(&sql);
    for (delivery_id, outcome) in padded(finishes) {
        let (status, run_at, response, error, released) = match outcome {
            DeliveryOutcome::Delivered { status } => ("delivered", now, Some(*status), "", 0_i64),
            DeliveryOutcome::Retry {
                run_at_ms,
                status,
                error,
            } => ("queued", *run_at_ms, *status, error.as_str(), 0),
            DeliveryOutcome::Dead { status, error } => ("dead", now, *status, error.as_str(), 0),
            DeliveryOutcome::Released => ("queued", now, None, "", 1),
        };
        query = query
            .bind(*delivery_id)
            .bind(status)
            .bind(run_at)
            .bind(response.map(i64::from))
            .bind(error.to_owned())
            .bind(released);
    }
    query = query.bind(now);
    query.execute(&mut **tx).await.map_err(Error::internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use zapgate_core::{
        account::NewAccount,
        event_log::{EventName, EventStore as _, WebhookSettings},
        instance::{InstanceName, InstanceSettings, NewInstance, WebhookConfig},
        store::Store as _,
        token::Token,
    };

    use super::*;
    use crate::SecretBox;

    /// Three appends and three outcomes, one batch each: both statements
    /// are written for four rows, the last one repeated.
    #[tokio::test]
    async fn a_batch_padded_with_its_last_row_stores_and_records_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("z.db").display());
        let store = SqlStore::open(&url, SecretBox::new([1; 32], vec![]))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let new = NewAccount::parse("Padded", 5, None).unwrap();
        let account = store
            .create_account(&new, &Token::generate_account())
            .await
            .unwrap();
        let instance = store
            .create_instance(
                &account,
                &NewInstance {
                    name: InstanceName::parse("padded").unwrap(),
                    token: Token::generate_instance(),
                    settings: InstanceSettings::default(),
                    webhook: WebhookConfig::default(),
                    webhook_authorization: None,
                },
            )
            .await
            .unwrap();
        let hook = WebhookSettings {
            label: "a".into(),
            enabled: true,
            url: "https://hooks.example.test/a".into(),
            authorization: None,
            by_events: false,
            events: vec![EventName::MessageExchange],
            media_base64: false,
        };
        let webhook = store.save_webhook(&instance.id, &hook).await.unwrap();
        let append = |key: &str| {
            EventWrite::Append(Append {
                event: Some(NewEvent {
                    instance_id: instance.id.clone(),
                    name: EventName::MessageExchange,
                    dedupe_key: key.into(),
                    data: "{}".into(),
                }),
                deliveries: vec![NewDelivery {
                    webhook_id: webhook.id.clone(),
                    lease_until_ms: Some(now_ms() + 60_000),
                }],
                message: None,
            })
        };
        let appended = EventWrites::store(&store, &[append("a"), append("b"), append("c")])
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for (n, outcome) in appended.into_iter().enumerate() {
            let (event, ids) = outcome.unwrap().expect("a new event");
            assert_eq!(event.sequence, n as i64 + 1);
            deliveries.push(ids[0]);
        }
        let raw = &store.pool;
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_log")
            .fetch_one(raw)
            .await
            .unwrap();
        assert_eq!(events, 3);

        // The last outcome, repeated, must not give its attempt back twice.
        let finishes = [
            EventWrite::Finish(deliveries[0], DeliveryOutcome::Delivered { status: 200 }),
            EventWrite::Finish(deliveries[1], DeliveryOutcome::Delivered { status: 204 }),
            EventWrite::Finish(deliveries[2], DeliveryOutcome::Released),
        ];
        EventWrites::store(&store, &finishes).await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, attempts FROM webhook_deliveries ORDER BY id")
                .fetch_all(raw)
                .await
                .unwrap();
        let expected = [("delivered", 1), ("delivered", 1), ("queued", 0)];
        let expected: Vec<_> = expected.iter().map(|(s, a)| (s.to_string(), *a)).collect();
        assert_eq!(rows, expected);
    }
}
