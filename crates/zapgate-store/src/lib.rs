//! zapgate storage: the `Store` trait of `zapgate-core` on SQLite or
//! PostgreSQL through one code path (sqlx's `Any` driver), migrations per
//! backend, and the secret box that encrypts secrets at rest.

mod accounts;
mod backend;
mod cache;
mod conn;
mod db_error;
mod event_writes;
mod events;
mod group;
mod idempotency;
mod imports;
mod instances;
mod integrations;
mod jobs;
mod links;
mod messages;
mod params;
mod rate_limit;
mod rekey;
mod rows;
pub mod secret_box;
mod sql_store;
mod store_impl;
mod wa_lease;
mod wa_session;
mod wal;

pub use backend::{Backend, redact_url};
pub use instances::PAIRED_PAGE;
pub use integrations::INTEGRATION_PAGE;
pub use secret_box::{KeyId, SecretBox};
pub use sql_store::SqlStore;
pub use wa_session::WaSessionStore;
