//! Task: declared variables plus ordered steps, each a shell/python script
//! or a file copy, run on the hosts or cluster nodes the task targets.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{EmptyStatus, Manifest};
use super::serde_util::{opt_bool, opt_text, opt_text_map};
use super::variable::Variables;

/// A Task object.
pub type Task = Manifest<TaskSpec, EmptyStatus>;

/// A task's definition.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    /// What the task does (shown to people and to the model).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub desc: Option<String>,
    /// Default target: a Host name, a label selector (`k=v,k2=v2`), or one of
    /// `anymaster`, `anyworker`, `anynode`, `all`, `allmasters`,
    /// `allworkers`, or a node name on a cluster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub host: Option<String>,
    /// Declared variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Variables>,
    /// Steps, run in order on each target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// Container image for steps run in a pod (cluster targets).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub runtime_image: Option<String>,
    /// Seconds a finished run record is kept (0 or absent: forever).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs_signed"
    )]
    pub ttl_seconds_after_finished: Option<i64>,
    /// Volumes mounted into the runtime pod (cluster targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// Timeout for a whole run of this task on one target, in seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs"
    )]
    pub timeout_seconds: Option<u64>,
    /// Cron schedule (older anchor versions kept it on the Task).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub crontab: Option<String>,
    /// Older anchor field: `host` or `cluster`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub type_ref: Option<String>,
    /// Older anchor field: the Host or Cluster name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name_ref: Option<String>,
    /// Older anchor field: a node name on the cluster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub node_name: Option<String>,
    /// Older anchor field: labels selecting targets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text_map"
    )]
    pub selector: Option<BTreeMap<String, String>>,
    /// Older anchor field: run on every target.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_bool"
    )]
    pub all: Option<bool>,
    /// Older anchor field: how many TaskRuns to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_history_limit: Option<i64>,
}

impl TaskSpec {
    /// The steps, empty when none are declared.
    pub fn steps(&self) -> &[Step] {
        self.steps.as_deref().unwrap_or_default()
    }
}

/// File copy direction for a file step.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the machine running `ops` (`localfile`) to the target (`remotefile`).
    #[serde(alias = "Upload", alias = "UPLOAD")]
    Upload,
    /// From the target (`remotefile`) to the machine running `ops` (`localfile`).
    #[serde(alias = "Download", alias = "DOWNLOAD")]
    Download,
}

/// One step: a script (`content`) or a file copy (`localfile`,
/// `remotefile`, `direction`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Step name, referenced as `${steps.NAME.output}`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name: Option<String>,
    /// Expression; the step runs only when it is true (see
    /// `template::eval_condition`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub when: Option<String>,
    /// Shell script, or Python when the first line is a python shebang.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub content: Option<String>,
    /// Local path of a file step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub localfile: Option<String>,
    /// Remote path of a file step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub remotefile: Option<String>,
    /// Copy direction of a file step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Expression; when true a failure of this step does not fail the run.
    /// The anchor spells it in lower case; `allowFailure` is accepted too.
    #[serde(
        default,
        rename = "allowfailure",
        alias = "allowFailure",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub allow_failure: Option<String>,
    /// Step timeout in seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::serde_util::opt_secs"
    )]
    pub timeout_seconds: Option<u64>,
    /// Container image for this step (cluster targets).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub runtime_image: Option<String>,
}

impl Step {
    /// Whether this step copies a file rather than running a script.
    pub fn is_file_step(&self) -> bool {
        self.content.as_deref().is_none_or(|c| c.trim().is_empty())
            && (self.localfile.is_some() || self.remotefile.is_some())
    }
}

/// A volume mounted into a runtime pod.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    /// Optional volume name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name: Option<String>,
    /// Path on the node (hostPath volume).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub host_path: Option<String>,
    /// Path in the container.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub mount_path: Option<String>,
    /// A Kubernetes Secret mounted as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretMount>,
}

/// A Secret volume.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretMount {
    /// Secret name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub name: Option<String>,
    /// Path in the container.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub mount_path: Option<String>,
}

impl TaskSpec {
    /// The target expression of a run of this Task, unrendered: its own
    /// `host`, else the run's `host` variable (the anchor's TaskRun
    /// `variables.host`, `--var host=...`), else none.
    pub fn target<'a>(
        &'a self,
        variables: &'a std::collections::BTreeMap<String, String>,
    ) -> Option<&'a str> {
        self.host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .or_else(|| {
                variables
                    .get("host")
                    .map(|h| h.trim())
                    .filter(|h| !h.is_empty())
            })
    }
}
