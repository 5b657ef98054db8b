//! End-to-end tests of the HTTP API: a real server on a loopback port, a real
//! SQLite file (or PostgreSQL database), a real HTTP client. One test binary,
//! one module per area, so the suite links once.

mod admin;
mod auth;
mod bridge;
mod bridge_faults;
mod bridge_import;
mod bridge_inbound;
mod bridge_outbound;
mod bridge_wave;
mod bridge_wave2;
mod chat_state;
mod chatwoot;
mod console;
mod events;
mod fairness;
mod groups;
mod hardening;
mod harness;
mod hygiene;
mod inbound_media;
mod instance;
mod media_sends;
mod message_link_preview;
mod message_status;
mod message_store;
mod profile;
mod rate_limit;
mod sandbox;
mod secrets;
mod sends;
mod settings;
mod smoke;
mod web;
