//! What every storage suite shares: a fresh PostgreSQL database per test.

use std::{future::Future, time::Duration};

use sqlx::{AnyConnection, Connection as _, Executor as _};
use zapgate_core::token::random_hex;
use zapgate_store::redact_url;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs `test` against the URL of a new database `<prefix>_<random>` on the
/// PostgreSQL of `ZAPGATE_TEST_POSTGRES_URL`, dropped afterwards even when the
/// test fails. Unreachable PostgreSQL fails the test when
/// `ZAPGATE_TEST_REQUIRE_POSTGRES=1`, and is a loud skip otherwise.
pub async fn with_postgres_database<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("ZAPGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let required = std::env::var("ZAPGATE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1");
    sqlx::any::install_default_drivers();
    let connected =
        tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(&admin_url)).await;
    let mut admin = match connected {
        Ok(Ok(conn)) => conn,
        failed => {
            let reason = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "connection timed out".to_owned(),
            };
            let shown = redact_url(&admin_url);
            if required {
                panic!("PostgreSQL required but not reachable at {shown}: {reason}");
            }
            eprintln!(
                "\n!!!!! SKIPPED: PostgreSQL not reachable at {shown} ({reason}); \
                 set ZAPGATE_TEST_REQUIRE_POSTGRES=1 to fail instead !!!!!\n"
            );
            return;
        }
    };
    let name = format!("{prefix}_{}", random_hex(8));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("postgres URL");
    url.set_path(&name);
    // On a task, so a failing test still gets its database dropped.
    let outcome = tokio::spawn(test(url.to_string())).await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop test database");
    admin.close().await.ok();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
