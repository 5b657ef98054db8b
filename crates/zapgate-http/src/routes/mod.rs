pub mod admin;
pub mod chatwoot;
pub mod events;
pub mod instance;
pub mod message;
pub mod sandbox;
pub mod system;
pub mod webhook;
