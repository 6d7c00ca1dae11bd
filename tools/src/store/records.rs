//! Records the store returns: stored objects and run records.

use serde::{Deserialize, Serialize};

use crate::model::{Object, ObjectKey, RunPhase};

/// What `apply` did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and was identical.
    Unchanged,
}

impl ApplyOutcome {
    /// kubectl's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

/// An object with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The object, with its namespace filled in.
    pub object: Object,
    /// Identity.
    pub key: ObjectKey,
    /// Incremented on every change.
    pub generation: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A TaskRun or PipelineRun execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id.
    pub id: String,
    /// `TaskRun` or `PipelineRun`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Run name.
    pub name: String,
    /// The Task or Pipeline it runs.
    pub ref_name: String,
    /// Current phase.
    pub phase: RunPhase,
    /// Why it ended as it did (failure reason, cancellation, ...).
    pub message: Option<String>,
    /// The resolved run object (JSON), secrets redacted by the caller.
    pub spec: serde_json::Value,
    /// The scheduling run this one was started by (cron children).
    pub parent_id: Option<String>,
    /// The process executing it, `machine:pid` (see `store::process_owner`).
    pub owner: Option<String>,
    /// Someone asked for it to stop.
    pub cancel_requested: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once running.
    pub started_at: Option<String>,
    /// RFC 3339, once terminal.
    pub finished_at: Option<String>,
    /// Steps (filled by `get_run`, empty in listings).
    pub steps: Vec<StepRecord>,
}

/// One step on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The run.
    pub run_id: String,
    /// Pipeline task name; empty for a TaskRun.
    pub task: String,
    /// Target (host or node) name.
    pub target: String,
    /// 0-based position in the task.
    pub index: u32,
    /// Step name.
    pub name: String,
    /// Phase.
    pub phase: RunPhase,
    /// Exit code, when the step ran to completion.
    pub exit_code: Option<i32>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Standard output (bounded by the executor).
    pub stdout: String,
    /// Standard error (bounded by the executor).
    pub stderr: String,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only runs of this Task / Pipeline.
    pub ref_name: Option<String>,
    /// Only runs in this phase.
    pub phase: Option<RunPhase>,
    /// Only runs started by this parent (a schedule key).
    pub parent_id: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}
