//! zapgate's events module (RyzeAPI's webhooks and WebSocket): the event log
//! subscriber of the bus, signed webhook deliveries through a durable queue,
//! the WebSocket hub, and the service the HTTP handlers call. No SQL (the
//! store implements `EventStore`), no Chatwoot, no WhatsApp internals.

pub mod delivery;
pub mod hub;
pub mod payload;
pub mod recorder;
pub mod service;
pub mod signing;

pub use delivery::{Deliveries, DeliverySettings};
pub use hub::Hub;
pub use recorder::EventRecorder;
pub use service::EventsService;
