//! zapgate's WhatsApp providers behind the core `WhatsApp` trait: `web`, a
//! linked device of a real phone over the WhatsApp Web multi-device protocol,
//! and the in-process sandbox, which lets people try integrations without a
//! phone and lets every test drive "WhatsApp" deterministically.

pub mod media;
pub mod qr;
pub mod sandbox;
pub mod web;

pub use sandbox::{
    Accepted, CallEntry, ChatFlags, ChatPresenceEntry, ChatStateView, DirectoryEntry, OutboxEntry,
    OutboxMedia, OutboxPoll, ReadEntry, RemoteMedia, SandboxInbound, SandboxProvider, SendFault,
};
