//! `SqlStore`: the connection pool, its per-connection setup and the embedded
//! migrations. The queries live in the sibling modules, one concern each.

use std::{
    fmt,
    path::Path,
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use sqlx::{
    AnyPool, Executor as _,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};
use zapgate_core::{Error, Result, error::Cause};

use crate::{
    backend::{Backend, redact_url},
    cache::ReadCaches,
    conn::{Conns, WriteTurn},
    event_writes::EventWrites,
    group::GroupCommit,
    jobs::{Completions, Enqueues},
    secret_box::SecretBox,
    wal::{self, Checkpoints},
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

const SQLITE_POOL_SIZE: u32 = 8;
const POSTGRES_POOL_SIZE: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Store` on SQLite or PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) secrets: Arc<SecretBox>,
    /// Rows read recently (see [`crate::cache`]).
    pub(crate) caches: Arc<ReadCaches>,
    /// Jobs waiting to be stored together (see [`crate::group`]).
    pub(crate) enqueues: Arc<GroupCommit<Enqueues>>,
    /// Finished jobs waiting to be stored together.
    pub(crate) completions: Arc<GroupCommit<Completions>>,
    /// Events with their deliveries, and delivery outcomes, waiting to be
    /// stored together.
    pub(crate) event_writes: Arc<GroupCommit<EventWrites>>,
    /// Connections kept out of the pool between queries (see [`crate::conn`]).
    pub(crate) conns: Arc<Conns>,
    /// When idempotency keys past their window were last deleted (ms).
    pub(crate) idempotency_pruned_at: Arc<AtomicI64>,
    /// SQLite file: the task that checkpoints the WAL (see [`crate::wal`]).
    /// The task's own clone has none.
    checkpoints: Option<Arc<Checkpoints>>,
    redacted_url: Arc<str>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .field("url", &self.redacted_url)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens a pool on `url` (`sqlite:<path>` or `postgres://...`). For
    /// SQLite, creates the file and its folder when missing and switches the
    /// database to WAL. Does not migrate: call [`SqlStore::migrate`].
    pub async fn connect(url: &str, secrets: SecretBox) -> Result<Self> {
        let mut store = Self::open(url, secrets).await?;
        if store.backend == Backend::Sqlite && !is_in_memory(url) {
            store.checkpoints = Some(Arc::new(wal::start(store.clone())));
        }
        Ok(store)
    }

    /// [`SqlStore::connect`] without SQLite's checkpoint task: the WAL is
    /// copied to the database file only by [`wal::checkpoint`] and when the
    /// last connection closes.
    pub(crate) async fn open(url: &str, secrets: SecretBox) -> Result<Self> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let redacted_url: Arc<str> = redact_url(url).into();
        let pool = match backend {
            Backend::Sqlite => connect_sqlite(url).await?,
            Backend::Postgres => pool_options()
                .max_connections(POSTGRES_POOL_SIZE)
                .connect(url)
                .await
                .map_err(|e| connect_error(&redacted_url, e))?,
        };
        tracing::info!(backend = backend.name(), url = %redacted_url, "database connected");
        Ok(Self {
            pool,
            backend,
            secrets: Arc::new(secrets),
            caches: Arc::new(ReadCaches::new()),
            enqueues: Arc::default(),
            completions: Arc::default(),
            event_writes: Arc::default(),
            conns: Arc::new(Conns::new(match backend {
                // Its pool has only one connection, which must go back.
                Backend::Sqlite if is_in_memory(url) => 0,
                Backend::Sqlite => SQLITE_POOL_SIZE as usize / 2,
                Backend::Postgres => POSTGRES_POOL_SIZE as usize / 2,
            })),
            idempotency_pruned_at: Arc::default(),
            checkpoints: None,
            redacted_url,
        })
    }

    /// Runs the backend's embedded migrations not yet applied (forward only).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(Error::internal)
    }

    /// Held while a hot write runs (see [`WriteTurn`]).
    pub(crate) async fn write_turn(&self) -> WriteTurn<'_> {
        WriteTurn::take(self).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database holds anything sealed (see [`crate::rekey`]).
    pub async fn holds_secrets(&self) -> Result<bool> {
        crate::rekey::holds_secrets(self).await
    }

    /// Closes every pooled connection; later calls fail.
    pub async fn close(&self) {
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.stop().await;
        }
        // The pool waits for every connection to come back.
        self.conns.release_all().await;
        self.pool.close().await;
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Pool options of both backends. sqlx pings a connection as it leaves the
/// idle queue unless told not to (and again as it comes back): a round trip
/// per query for nothing, since a broken connection fails its query anyway.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
}

async fn connect_sqlite(url: &str) -> Result<AnyPool> {
    let url = prepare_sqlite_url(url)?;
    let in_memory = is_in_memory(&url);
    let pool = pool_options()
        // Each in-memory connection would be a database of its own.
        .max_connections(if in_memory { 1 } else { SQLITE_POOL_SIZE })
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // No commit checkpoints the WAL: a task does (crate::wal).
                conn.execute(
                    "PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; \
                     PRAGMA busy_timeout = 5000; \
                     PRAGMA wal_autocheckpoint = 0;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| connect_error(&url, e))?;
    // Persistent in the file: readers no longer block the writer.
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&pool)
        .await
        .map_err(Error::internal)?;
    Ok(pool)
}

/// Creates the database's folder and adds `mode=rwc` (create the file if
/// missing) unless the URL chose a mode.
fn prepare_sqlite_url(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let in_memory = path.is_empty() || path == ":memory:";
    let parent = Path::new(path)
        .parent()
        .filter(|p| !in_memory && !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::internal(Cause(format!(
                "cannot create the database folder {}: {e}",
                parent.display()
            )))
        })?;
    }
    let has_mode = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode=")));
    Ok(match (has_mode || in_memory, query) {
        (true, _) => url.to_owned(),
        (false, Some(_)) => format!("{url}&mode=rwc"),
        (false, None) => format!("{url}?mode=rwc"),
    })
}

fn connect_error(redacted_url: &str, e: sqlx::Error) -> Error {
    Error::internal(Cause(format!(
        "cannot connect to the database at {}: {e}",
        redact_url(redacted_url)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/z.db");
        let url = format!("sqlite:{}", path.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            prepare_sqlite_url(&format!("{url}?mode=ro")).unwrap(),
            format!("{url}?mode=ro")
        );
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:").unwrap(),
            "sqlite::memory:"
        );
    }

    #[tokio::test]
    async fn sqlite_connections_are_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("new/z.db").display());
        let store = SqlStore::connect(&url, SecretBox::new([1; 32], vec![]))
            .await
            .unwrap();
        assert!(dir.path().join("new/z.db").is_file());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        for (pragma, expected) in [
            ("foreign_keys", 1),
            ("busy_timeout", 5000),
            ("synchronous", 1), // NORMAL
            ("wal_autocheckpoint", 0),
        ] {
            let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(value, expected, "{pragma}");
        }
        assert!(format!("{store:?}").contains("Sqlite"));
    }

    #[tokio::test]
    async fn errors_and_debug_hide_the_password() {
        let err = SqlStore::connect("ftp://u:hunter2@h/x", SecretBox::new([1; 32], vec![]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("`ftp`"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        // Nothing listens on port 1: the connect error must not echo it.
        let err = SqlStore::connect(
            "postgres://u:hunter2@127.0.0.1:1/x",
            SecretBox::new([1; 32], vec![]),
        )
        .await
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        // Trust authentication ignores the password, so the store opens when
        // the local test server is up.
        let url = "postgres://postgres:hunter2@127.0.0.1:5432/test";
        if let Ok(store) = SqlStore::connect(url, SecretBox::new([1; 32], vec![])).await {
            let shown = format!("{store:?}");
            assert!(shown.contains("postgres:***@127.0.0.1"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            store.close().await;
        }
    }
}
