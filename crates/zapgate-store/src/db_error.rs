//! Translating database errors: constraint violations that a concurrent
//! writer can raise become the contract's conflicts; everything else is an
//! internal error whose cause goes to the log only.

use zapgate_core::{Error, messages};

/// Which unique constraint a violation hit, when it is one we name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unique {
    TokenHash,
    InstanceName,
    Other,
}

/// The unique constraint `e` violated, if it is a unique violation.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<Unique> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    // PostgreSQL names the constraint; SQLite names the columns in the
    // message ("UNIQUE constraint failed: instances.token_hash").
    let names = |needle: &str| {
        db.constraint().is_some_and(|c| c.contains(needle)) || db.message().contains(needle)
    };
    Some(if names("token_hash") {
        Unique::TokenHash
    } else if names("account_id_name") || names("instances.name") {
        Unique::InstanceName
    } else {
        Unique::Other
    })
}

/// A write error on `instances`: a unique violation becomes its conflict.
pub(crate) fn instance_write(e: sqlx::Error) -> Error {
    match unique_violation(&e) {
        Some(Unique::TokenHash) => Error::conflict(messages::TOKEN_IN_USE),
        Some(Unique::InstanceName) => Error::conflict(messages::INSTANCE_NAME_TAKEN),
        Some(Unique::Other) | None => Error::internal(e),
    }
}

/// A write error on `accounts`: only the token hash is unique there.
pub(crate) fn account_write(e: sqlx::Error) -> Error {
    match unique_violation(&e) {
        Some(Unique::TokenHash) => Error::conflict(messages::TOKEN_IN_USE),
        _ => Error::internal(e),
    }
}

#[cfg(test)]
mod tests {
    //! The race path: what the constraints themselves report when a
    //! concurrent insert slipped past the checks, on both backends.

    use sqlx::{AnyPool, Executor as _, any::AnyPoolOptions};

    use super::*;

    const INSERT: &str = "INSERT INTO instances (id, account_id, name, token_hash, token_sealed, \
         settings, webhook, connection_state, created_at) \
         VALUES ($1, 'acc', $2, $3, $4, '{}', '{}', 'disconnected', 0)";

    async fn insert(pool: &AnyPool, id: &str, name: &str, hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query(INSERT)
            .bind(id)
            .bind(name)
            .bind(hash)
            .bind(vec![1u8, 2, 3])
            .execute(pool)
            .await
            .map(|_| ())
    }

    async fn check(pool: &AnyPool) {
        pool.execute("INSERT INTO accounts VALUES ('acc', 'n', 'h0', 5, NULL, 0)")
            .await
            .unwrap();
        insert(pool, "i1", "one", "h1").await.unwrap();

        let same_name = insert(pool, "i2", "one", "h2").await.unwrap_err();
        assert_eq!(unique_violation(&same_name), Some(Unique::InstanceName));
        assert_eq!(
            instance_write(same_name).public_message(),
            messages::INSTANCE_NAME_TAKEN
        );

        let same_token = insert(pool, "i3", "three", "h1").await.unwrap_err();
        assert_eq!(unique_violation(&same_token), Some(Unique::TokenHash));
        assert_eq!(
            instance_write(same_token).public_message(),
            messages::TOKEN_IN_USE
        );

        let same_id = insert(pool, "i1", "four", "h4").await.unwrap_err();
        assert_eq!(unique_violation(&same_id), Some(Unique::Other));

        let account = pool
            .execute("INSERT INTO accounts VALUES ('acc2', 'n', 'h0', 5, NULL, 0)")
            .await
            .unwrap_err();
        assert_eq!(
            account_write(account).public_message(),
            messages::TOKEN_IN_USE
        );
    }

    #[tokio::test]
    async fn sqlite_unique_violations_map_to_conflicts() {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        pool.execute(include_str!("../migrations/sqlite/0001_initial.sql"))
            .await
            .unwrap();
        check(&pool).await;
    }

    /// On temporary tables, so nothing outlives the connection.
    #[tokio::test]
    async fn postgres_unique_violations_map_to_conflicts() {
        sqlx::any::install_default_drivers();
        let url = std::env::var("ZAPGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pool = match AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
        {
            Ok(pool) => pool,
            Err(e) => {
                assert!(
                    std::env::var("ZAPGATE_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "PostgreSQL required but not reachable: {e}"
                );
                eprintln!(
                    "SKIPPED: PostgreSQL not reachable at {}: {e}",
                    crate::redact_url(&url)
                );
                return;
            }
        };
        let schema = include_str!("../migrations/postgres/0001_initial.sql")
            .replace("CREATE TABLE", "CREATE TEMP TABLE");
        pool.execute(schema.as_str()).await.unwrap();
        check(&pool).await;
    }
}
