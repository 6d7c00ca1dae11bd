//! Pipeline: ordered references to Tasks, with shared variables.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{EmptyStatus, Manifest};
use super::serde_util::{opt_bool, opt_text, opt_text_map, text};
use super::variable::Variables;

/// A Pipeline object.
pub type Pipeline = Manifest<PipelineSpec, EmptyStatus>;

/// A pipeline's definition.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    /// What the pipeline does. Pipelines labelled `ops/copilot: enabled`
    /// are offered to the copilot as SOPs, with this text as their summary.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// Variables shared by every task; a run's values are merged over these
    /// defaults, never replacing the declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Variables>,
    /// Tasks, run in order.
    #[serde(default)]
    pub tasks: Vec<TaskRef>,
    /// Default container image for cluster targets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub runtime_image: Option<String>,
    /// Seconds a finished run record is kept.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs_signed"
    )]
    pub ttl_seconds_after_finished: Option<i64>,
    /// Timeout for a whole run, in seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs"
    )]
    pub timeout_seconds: Option<u64>,
    /// Cron schedule (older anchor versions kept it on the Pipeline).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub crontab: Option<String>,
    /// Older anchor field: how many PipelineRuns to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_history_limit: Option<i64>,
}

/// One task of a pipeline.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    /// Name of this entry, referenced as `${tasks.NAME.results.KEY}`.
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// What this entry does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// Name of the Task to run (same namespace).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub task_ref: Option<String>,
    /// Variable values for this task, over the pipeline's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub variables: Option<BTreeMap<String, String>>,
    /// Container image override.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub runtime_image: Option<String>,
    /// A failure of this task does not stop the pipeline.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_bool"
    )]
    pub allow_failure: Option<bool>,
    /// Run this task even after an earlier task failed (clean-up).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_bool"
    )]
    pub run_always: Option<bool>,
    /// Named results exported by this task: `name: template`, rendered
    /// after the task with its step outputs (`${steps.S.output}`) and
    /// reported results in scope. Every `OPS_RESULT:` marker is a result
    /// too; this map adds derived ones.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub results: Option<BTreeMap<String, String>>,
}
