//! zapgate's WhatsApp providers behind the core `WhatsApp` trait. For now the
//! in-process sandbox, which lets people try integrations without a phone and
//! lets every test drive "WhatsApp" deterministically.

pub mod qr;
pub mod sandbox;

pub use sandbox::{OutboxEntry, OutboxMedia, SandboxInbound, SandboxProvider, SendFault};
