//! `ops-tools`: the tools the model sees. The typed [`registry`] (trait,
//! erased twin, sanitised schemas), target resolution for a call
//! ([`targets`]) and the [`builtin`] tools. Each tool declares its
//! [`Effect`] (`ops_model::Effect`; for `host_run_shell` the shell
//! classifier in `ops_model::shell` decides it).

pub mod builtin;
pub mod registry;
pub mod schema;
pub mod targets;

pub use ops_model::Effect;
pub use registry::{
    CallFacts, DynTool, Prepared, Registry, Tool, ToolContext, ToolError, ToolSpec,
};
pub use targets::{TargetRef, plan, resolve_targets};
