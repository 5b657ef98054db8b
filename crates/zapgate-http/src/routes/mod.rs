pub mod admin;
pub mod chatwoot;
pub mod instance;
pub mod sandbox;
pub mod system;
