//! zapgate's Chatwoot side: the typed REST client, the address guard for
//! customer URLs, and the integration's management (activate, info,
//! deactivate). No HTTP routing here.

pub mod bridge;
pub mod client;
pub mod download;
pub mod guard;
pub mod integration;
pub mod lifecycle;

pub use bridge::{Bridge, BridgeConfig, BridgeSink};
pub use client::{ChatwootClient, ChatwootError, ChatwootHttp};
pub use guard::AddressPolicy;
pub use integration::{ActivateRequest, ChatwootService, ChatwootTimeouts, IntegrationInfo};
pub use lifecycle::ChatwootLifecycle;
