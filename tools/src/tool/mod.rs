//! What the model-facing tools share: the [`Effect`] every call declares,
//! and the shell classifier that gives `host_run_shell` (and any step
//! shown to an approver) its effect. The typed tools themselves and their
//! registry arrive with the copilot.

mod effect;
pub mod shell;

pub use effect::Effect;
