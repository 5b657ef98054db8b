pub mod admin;
pub mod instance;
pub mod sandbox;
pub mod system;
