//! `ops-app`: the one composition root. Settings without clap
//! ([`settings`]), the real adapters opened from them ([`services`]), the
//! copilot's model ([`model`]), the Agent assembled in one place with the
//! rules and the approval TTL read in one place ([`agent`]), and what
//! EventHooks actions start ([`hooks`]). `opscli` maps its flags onto
//! these; the eval runner and the coming server, controller and workers
//! build on them too, never on each other.

pub mod agent;
pub mod daemon;
pub mod hooks;
pub mod model;
pub mod services;
pub mod settings;

pub use settings::{Overrides, Settings};
