//! zapgate's domain: types, validation, services, the error enum, and the
//! `Store` and `WhatsApp` traits. No HTTP, no SQL, no sockets.

pub mod account;
pub mod chat_state;
pub mod chatwoot;
pub mod chatwoot_import;
pub mod error;
pub mod event_log;
pub mod events;
pub mod groups;
pub mod idempotency;
pub mod instance;
pub mod jid;
pub mod jobs;
pub mod message_ops;
pub mod message_store;
pub mod messages;
pub mod service;
pub mod store;
pub mod time;
pub mod token;
pub mod whatsapp;

pub use error::{Error, Result};
