//! Connections kept out of sqlx's pool between queries. sqlx pings a
//! connection each time it goes back to its pool (one more round trip, in a
//! task of its own), which costs about as much as the short queries of the
//! hot paths; those run on connections kept here instead:
//!
//! - a few spare connections any query may take and give back
//!   ([`StoreQuery`]), and
//! - on SQLite, the one connection the hot writes take turns on
//!   ([`WriteTurn`]), and
//! - on PostgreSQL, the connection job claims run on ([`Conns::claim`]).
//!
//! A connection whose query failed for another reason than the statement
//! itself, or whose query was dropped half-way, goes back to the pool
//! instead, which checks it.

use std::sync::Mutex as SyncMutex;

use sqlx::{
    Any, AnyConnection, Connection as _, Executor as _, Transaction,
    any::{AnyArguments, AnyQueryResult, AnyRow},
    pool::PoolConnection,
    query::Query,
};
use tokio::sync::{Mutex, MutexGuard};
use zapgate_core::{Error, Result};

use crate::{SqlStore, backend::Backend};

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

pub(crate) struct Conns {
    spare: SyncMutex<Vec<PoolConnection<Any>>>,
    /// How many spare connections are kept (the rest of the pool stays with
    /// the code that uses it directly).
    max_spare: usize,
    /// SQLite: the bridge's hot writes take turns on this connection instead
    /// of colliding on the database's write lock, whose busy handler sleeps
    /// (1, 2, 5 ms ...) before trying again. Other processes still meet the
    /// busy timeout.
    writer: Mutex<Option<PoolConnection<Any>>>,
    /// PostgreSQL: the connection job claims run on, with [`QUEUE_PLANNER`].
    /// Detached from the pool, so those settings never reach another query.
    claimer: Mutex<Option<AnyConnection>>,
}

/// The job queue swings from empty to thousands of rows within a second, so
/// its statistics never describe it: planned from them, a claim may sort or
/// bitmap-scan every unfinished job and check each against all the others,
/// which grows with the backlog until the queue collapses under load. The
/// right plan walks the unfinished jobs' index in id order, probes the chat
/// index per candidate and stops at the limit. These settings leave the
/// planner no other walk. The claim is prepared and planned once (a generic
/// plan): planning it per claim cost as much as running it, and its
/// statement is written so that the plan holds whatever the statistics
/// said when it was made (see `jobs::claim_sql`).
/// JIT is off because the claim's small sorts (the per-integration turns)
/// still cost the "disabled" penalty, which crosses `jit_above_cost`: every
/// claim then compiled itself for ~200 ms and the bridge fell to ~60 msg/s.
const QUEUE_PLANNER: &str = "SET enable_seqscan = off; SET enable_bitmapscan = off; \
    SET enable_sort = off; SET enable_hashjoin = off; SET enable_mergejoin = off; SET jit = off; \
    SET plan_cache_mode = force_generic_plan";

impl Conns {
    /// `max_spare` 0 keeps no connection out of the pool, not even the writer.
    pub(crate) fn new(max_spare: usize) -> Self {
        Self {
            spare: SyncMutex::new(Vec::new()),
            max_spare,
            writer: Mutex::new(None),
            claimer: Mutex::new(None),
        }
    }

    /// Runs a job claim on the claim connection (PostgreSQL), one at a time.
    pub(crate) async fn claim(&self, store: &SqlStore, query: AnyQuery<'_>) -> Result<Vec<AnyRow>> {
        let mut slot = self.claimer.lock().await;
        let conn = match slot.take() {
            Some(conn) => conn,
            None => {
                let pooled = store.pool.acquire().await.map_err(Error::internal)?;
                let mut conn = pooled.detach();
                conn.execute(QUEUE_PLANNER).await.map_err(Error::internal)?;
                conn
            }
        };
        let conn = slot.insert(conn);
        let done = query.fetch_all(&mut *conn).await;
        if !sound(&done) {
            // Dropped, it closes; the next claim opens another.
            slot.take();
        }
        done.map_err(Error::internal)
    }

    async fn take(&self, store: &SqlStore) -> Result<PoolConnection<Any>> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(conn) => Ok(conn),
            None => store.pool.acquire().await.map_err(Error::internal),
        }
    }

    /// Keeps `conn` unless its query failed outside the statement.
    fn give_back<T>(&self, conn: PoolConnection<Any>, done: sqlx::Result<T>) -> Result<T> {
        if sound(&done) {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < self.max_spare {
                spare.push(conn);
            }
        }
        done.map_err(Error::internal)
    }

    /// Before the pool closes: it waits for every connection to come back.
    pub(crate) async fn release_all(&self) {
        self.writer.lock().await.take();
        if let Some(claimer) = self.claimer.lock().await.take() {
            let _ = claimer.close().await;
        }
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A failure of the statement itself (a constraint, a syntax error) leaves
/// the connection as good as it was.
fn sound<T>(done: &sqlx::Result<T>) -> bool {
    matches!(done, Ok(_) | Err(sqlx::Error::Database(_)))
}

/// `query.fetch_optional(&pool)` and friends, on a spare connection.
pub(crate) trait StoreQuery {
    async fn execute_on(self, store: &SqlStore) -> Result<AnyQueryResult>;
    async fn fetch_one_on(self, store: &SqlStore) -> Result<AnyRow>;
    async fn fetch_optional_on(self, store: &SqlStore) -> Result<Option<AnyRow>>;
    async fn fetch_all_on(self, store: &SqlStore) -> Result<Vec<AnyRow>>;
}

impl StoreQuery for AnyQuery<'_> {
    async fn execute_on(self, store: &SqlStore) -> Result<AnyQueryResult> {
        let mut conn = store.conns.take(store).await?;
        let done = self.execute(&mut *conn).await;
        store.conns.give_back(conn, done)
    }

    async fn fetch_one_on(self, store: &SqlStore) -> Result<AnyRow> {
        let mut conn = store.conns.take(store).await?;
        let done = self.fetch_one(&mut *conn).await;
        store.conns.give_back(conn, done)
    }

    async fn fetch_optional_on(self, store: &SqlStore) -> Result<Option<AnyRow>> {
        let mut conn = store.conns.take(store).await?;
        let done = self.fetch_optional(&mut *conn).await;
        store.conns.give_back(conn, done)
    }

    async fn fetch_all_on(self, store: &SqlStore) -> Result<Vec<AnyRow>> {
        let mut conn = store.conns.take(store).await?;
        let done = self.fetch_all(&mut *conn).await;
        store.conns.give_back(conn, done)
    }
}

/// The turn of a hot write. On SQLite its statements run one turn at a time
/// on the writer connection; PostgreSQL locks rows, so its writes run side by
/// side on spare connections.
pub(crate) struct WriteTurn<'a> {
    store: &'a SqlStore,
    /// SQLite: the writer's slot, filled at the first write.
    writer: Option<MutexGuard<'a, Option<PoolConnection<Any>>>>,
}

impl<'a> WriteTurn<'a> {
    pub(crate) async fn take(store: &'a SqlStore) -> Self {
        let writer = match store.backend {
            Backend::Sqlite => Some(store.conns.writer.lock().await),
            Backend::Postgres => None,
        };
        Self { store, writer }
    }

    pub(crate) async fn execute(&mut self, query: AnyQuery<'_>) -> Result<AnyQueryResult> {
        match self.writer.as_deref_mut() {
            Some(slot) => {
                let done = query.execute(&mut **writer(slot, self.store).await?).await;
                checked(slot, done)
            }
            None => query.execute_on(self.store).await,
        }
    }

    pub(crate) async fn fetch_all(&mut self, query: AnyQuery<'_>) -> Result<Vec<AnyRow>> {
        match self.writer.as_deref_mut() {
            Some(slot) => {
                let done = query
                    .fetch_all(&mut **writer(slot, self.store).await?)
                    .await;
                checked(slot, done)
            }
            None => query.fetch_all_on(self.store).await,
        }
    }

    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Any>> {
        match self.writer.as_deref_mut() {
            Some(slot) => writer(slot, self.store).await?.begin().await,
            None => self.store.pool.begin().await,
        }
        .map_err(Error::internal)
    }
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        // Without spare connections the writer goes back to the pool too.
        if self.store.conns.max_spare == 0
            && let Some(slot) = self.writer.as_deref_mut()
        {
            slot.take();
        }
    }
}

async fn writer<'s>(
    slot: &'s mut Option<PoolConnection<Any>>,
    store: &SqlStore,
) -> Result<&'s mut PoolConnection<Any>> {
    let conn = match slot.take() {
        Some(conn) => conn,
        None => store.pool.acquire().await.map_err(Error::internal)?,
    };
    Ok(slot.insert(conn))
}

/// A writer whose query failed outside the statement goes back to the pool;
/// the next turn takes a fresh one.
fn checked<T>(slot: &mut Option<PoolConnection<Any>>, done: sqlx::Result<T>) -> Result<T> {
    if !sound(&done) {
        slot.take();
    }
    done.map_err(Error::internal)
}
