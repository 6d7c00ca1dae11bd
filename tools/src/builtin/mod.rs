//! The tools the copilot registers: hosts, tasks and pipelines, runs, and
//! clusters. Read tools run freely; the others declare `mutate` (or what
//! the shell classifier says for their command) and go through the gate.

mod cluster;
pub(crate) mod hosts;
mod work;

use std::sync::Arc;

use super::registry::Registry;
use ops_exec::OutputLimits;

pub use cluster::{
    ClusterDescribe, ClusterEvents, ClusterGet, ClusterList, ClusterLogs, ClusterNodeShell,
};
pub use hosts::{HostDescribe, HostList, HostReadFile, HostRunShell, HostStatus};
pub use work::{
    CatalogDescribe, CatalogList, PIPELINE_DESCRIBE, PIPELINE_LIST, PipelineRun, RunStatus,
    TASK_DESCRIBE, TASK_LIST, TaskRun,
};

/// No arguments.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// How much of a command's output a tool hands back (head and tail).
pub const TOOL_OUTPUT: OutputLimits = OutputLimits {
    head: 8 * 1024,
    tail: 8 * 1024,
};

/// Every built-in tool.
pub fn registry() -> Result<Registry, String> {
    let mut r = Registry::new();
    r.register(Arc::new(HostList))?;
    r.register(Arc::new(HostDescribe))?;
    r.register(Arc::new(HostStatus))?;
    r.register(Arc::new(HostRunShell))?;
    r.register(Arc::new(HostReadFile))?;
    r.register(Arc::new(TASK_LIST))?;
    r.register(Arc::new(TASK_DESCRIBE))?;
    r.register(Arc::new(TaskRun))?;
    r.register(Arc::new(PIPELINE_LIST))?;
    r.register(Arc::new(PIPELINE_DESCRIBE))?;
    r.register(Arc::new(PipelineRun))?;
    r.register(Arc::new(RunStatus))?;
    r.register(Arc::new(ClusterList))?;
    r.register(Arc::new(ClusterGet))?;
    r.register(Arc::new(ClusterDescribe))?;
    r.register(Arc::new(ClusterLogs))?;
    r.register(Arc::new(ClusterEvents))?;
    r.register(Arc::new(ClusterNodeShell))?;
    Ok(r)
}
