//! The `zapgate` binary's library half: configuration, command line and
//! wiring, shared with the integration tests.

pub mod allocator;
pub mod app;
pub mod cli;
pub mod config;
pub mod logging;
