//! The model-facing tools: the [`Effect`] every call declares, the shell
//! classifier behind `host_run_shell`'s effect, the typed [`registry`]
//! (trait, erased twin, sanitised schemas), and the [`builtin`] tools.

pub mod builtin;
mod effect;
pub mod registry;
pub mod schema;
pub mod shell;
pub mod targets;

pub use effect::Effect;
pub use registry::{
    CallFacts, DynTool, Prepared, Registry, Tool, ToolContext, ToolError, ToolSpec,
};
pub use targets::{TargetRef, resolve_targets};
