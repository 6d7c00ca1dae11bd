//! TaskRun and PipelineRun: requests to run a Task or Pipeline, once or on a
//! cron schedule, and the status shapes the anchor records for them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::Manifest;
use super::serde_util::{opt_bool, opt_text, opt_text_map};

/// A TaskRun object.
pub type TaskRun = Manifest<TaskRunSpec, TaskRunStatus>;
/// A PipelineRun object.
pub type PipelineRun = Manifest<PipelineRunSpec, PipelineRunStatus>;

/// The lifecycle of a run, a target or a step.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunPhase {
    /// Recorded, not started.
    Pending,
    /// In progress.
    Running,
    /// Finished without a failure that counts.
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Found `Running` after a crash; partial output kept.
    Interrupted,
    /// Not run (`when` false, or an earlier failure).
    Skipped,
}

impl RunPhase {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::Cancelled => "Cancelled",
            RunPhase::Interrupted => "Interrupted",
            RunPhase::Skipped => "Skipped",
        }
    }

    /// Whether nothing more will happen to it.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunPhase::Pending | RunPhase::Running)
    }
}

impl fmt::Display for RunPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunPhase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "Pending" => RunPhase::Pending,
            "Running" => RunPhase::Running,
            // The anchor writes "Successed".
            "Succeeded" | "Successed" => RunPhase::Succeeded,
            "Failed" => RunPhase::Failed,
            "Cancelled" | "Aborted" => RunPhase::Cancelled,
            "Interrupted" => RunPhase::Interrupted,
            "Skipped" => RunPhase::Skipped,
            other => return Err(format!("unknown run phase `{other}`")),
        })
    }
}

/// What to run and where.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRunSpec {
    /// Name of the Task to run (same namespace).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub task_ref: Option<String>,
    /// Free-form description.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// Variable values, over the Task's declarations.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub variables: Option<BTreeMap<String, String>>,
    /// Cron schedule (5 fields); absent means run once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub crontab: Option<String>,
    /// Target override, same forms as Task `host`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub host: Option<String>,
    /// Anchor field: `host` or `cluster`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub type_ref: Option<String>,
    /// Anchor field: the Host or Cluster name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name_ref: Option<String>,
    /// Anchor field: node name on the cluster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub node_name: Option<String>,
    /// Anchor field: labels selecting targets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub selector: Option<BTreeMap<String, String>>,
    /// Anchor field: run on every target.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_bool"
    )]
    pub all: Option<bool>,
    /// Container image override.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub runtime_image: Option<String>,
}

/// The anchor's TaskRun status: per target ("node"), per step.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRunStatus {
    /// Per target, keyed by target name.
    #[serde(
        default,
        rename = "taskrunNodeStatus",
        skip_serializing_if = "Option::is_none"
    )]
    pub taskrun_node_status: Option<BTreeMap<String, TaskRunNodeStatus>>,
    /// Overall phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_status: Option<String>,
    /// RFC 3339 start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 finish time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
}

/// One target's progress.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRunNodeStatus {
    /// Target name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Steps in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_step: Option<Vec<TaskRunStep>>,
    /// Target phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_status: Option<String>,
    /// RFC 3339 start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
}

/// One step's outcome.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRunStep {
    /// Step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_name: Option<String>,
    /// Combined output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_output: Option<String>,
    /// Step phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_status: Option<String>,
}

/// Which pipeline to run.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRunSpec {
    /// Name of the Pipeline to run (same namespace).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub pipeline_ref: Option<String>,
    /// Free-form description.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// Variable values, merged over the Pipeline's declarations.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub variables: Option<BTreeMap<String, String>>,
    /// Cron schedule (5 fields); absent means run once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub crontab: Option<String>,
    /// Target override for every task, same forms as Task `host`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub host: Option<String>,
    /// Anchor field: `host` or `cluster`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub type_ref: Option<String>,
    /// Anchor field: the Host or Cluster name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name_ref: Option<String>,
    /// Anchor field: node name on the cluster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub node_name: Option<String>,
}

/// A PipelineRun's progress.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRunStatus {
    /// Per task, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_run_status: Option<Vec<PipelineRunTaskStatus>>,
    /// Overall phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_status: Option<String>,
    /// RFC 3339 start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 finish time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
}

/// One pipeline task's progress.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRunTaskStatus {
    /// The pipeline entry's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// The Task it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ref: Option<String>,
    /// That task's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_status: Option<TaskRunStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_accept_anchor_spellings() {
        for p in [
            RunPhase::Pending,
            RunPhase::Running,
            RunPhase::Succeeded,
            RunPhase::Failed,
            RunPhase::Cancelled,
            RunPhase::Interrupted,
            RunPhase::Skipped,
        ] {
            assert_eq!(p.as_str().parse::<RunPhase>(), Ok(p));
        }
        assert_eq!("Successed".parse::<RunPhase>(), Ok(RunPhase::Succeeded));
        assert!("Weird".parse::<RunPhase>().is_err());
    }
}
