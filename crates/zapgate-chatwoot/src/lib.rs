//! zapgate's Chatwoot side: the typed REST client, the address guard for
//! customer URLs, and the integration's management (activate, info,
//! deactivate). No HTTP routing here.

pub mod client;
pub mod guard;
pub mod integration;

pub use client::{ChatwootClient, ChatwootError, ChatwootHttp};
pub use guard::AddressPolicy;
pub use integration::{ActivateRequest, ChatwootService, ChatwootTimeouts, IntegrationInfo};
