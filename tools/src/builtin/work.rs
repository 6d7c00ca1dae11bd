//! `task_list`, `task_describe`, `task_run`, `pipeline_list`,
//! `pipeline_describe`, `pipeline_run`, `run_status`.
//!
//! Tasks and Pipelines change hosts in ways no parser can judge, so running
//! one is always `mutate` (it asks in `ask` mode; an `allow` rule naming it
//! lets it run in `auto` mode). SOPs labelled `ops/copilot: enabled` are
//! listed first.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::NoArgs;
use crate::registry::{CallFacts, Tool, ToolContext, ToolError, failed};
use ops_engine::{NoopObserver, PipelineRunRequest, TaskRunRequest};
use ops_model::Effect;
use ops_model::{Kind, LabelSelector, Object};
use ops_store::RunRecord;

/// The anchor's label marking SOPs meant for the copilot.
pub const COPILOT_LABEL: &str = "ops/copilot";

/// A Task or Pipeline in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Variables it takes (name -> description / default).
    pub variables: BTreeMap<String, String>,
    /// Labelled for the copilot.
    pub copilot: bool,
}

fn vars_summary(v: Option<&ops_model::Variables>) -> BTreeMap<String, String> {
    v.map(|vars| {
        vars.iter()
            .map(|(k, d)| {
                let mut text = d.desc.clone().or(d.display.clone()).unwrap_or_default();
                if let Some(def) = d.default.as_ref().or(d.value.as_ref()) {
                    text.push_str(&format!(" (default {def})"));
                }
                if d.required == Some(true) {
                    text.push_str(" (required)");
                }
                (k.clone(), text.trim().to_owned())
            })
            .collect()
    })
    .unwrap_or_default()
}

async fn list_kind(ctx: &ToolContext, kind: Kind) -> Result<Vec<Summary>, ToolError> {
    let mut out: Vec<Summary> = ctx
        .objects(kind, &LabelSelector::default())
        .await?
        .into_iter()
        .filter_map(|o| match o {
            Object::Task(t) => Some(Summary {
                copilot: t
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(COPILOT_LABEL))
                    .map(String::as_str)
                    == Some("enabled"),
                desc: t.spec.desc.clone().unwrap_or_default(),
                variables: vars_summary(t.spec.variables.as_ref()),
                name: t.metadata.name,
            }),
            Object::Pipeline(p) => Some(Summary {
                copilot: p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(COPILOT_LABEL))
                    .map(String::as_str)
                    == Some("enabled"),
                desc: p.spec.desc.clone().unwrap_or_default(),
                variables: vars_summary(p.spec.variables.as_ref()),
                name: p.metadata.name,
            }),
            _ => None,
        })
        .collect();
    // SOPs for the copilot first, then by name.
    out.sort_by(|a, b| b.copilot.cmp(&a.copilot).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// A name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    /// Name (from the matching *_list tool).
    pub name: String,
}

/// `task_list` / `pipeline_list`: the catalogue of one kind.
#[derive(Debug, Clone, Copy)]
pub struct CatalogList {
    kind: Kind,
    name: &'static str,
    description: &'static str,
}

/// `task_list`.
pub const TASK_LIST: CatalogList = CatalogList {
    kind: Kind::Task,
    name: "task_list",
    description: "List the Tasks (reusable scripted procedures) with their descriptions and variables; those labelled for the copilot come first.",
};

/// `pipeline_list`.
pub const PIPELINE_LIST: CatalogList = CatalogList {
    kind: Kind::Pipeline,
    name: "pipeline_list",
    description: "List the Pipelines (ordered Tasks, often standard operating procedures); those labelled `ops/copilot: enabled` come first.",
};

#[async_trait]
impl Tool for CatalogList {
    type Args = NoArgs;
    type Output = Vec<Summary>;
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, _: Self::Args) -> Result<Self::Output, ToolError> {
        list_kind(ctx, self.kind).await
    }
}

/// `task_describe` / `pipeline_describe`: one object in full.
#[derive(Debug, Clone, Copy)]
pub struct CatalogDescribe {
    kind: Kind,
    name: &'static str,
    description: &'static str,
}

/// `task_describe`.
pub const TASK_DESCRIBE: CatalogDescribe = CatalogDescribe {
    kind: Kind::Task,
    name: "task_describe",
    description: "A Task in full: variables, target, and every step's script or file transfer.",
};

/// `pipeline_describe`.
pub const PIPELINE_DESCRIBE: CatalogDescribe = CatalogDescribe {
    kind: Kind::Pipeline,
    name: "pipeline_describe",
    description: "A Pipeline in full: its variables and the Tasks it runs, in order.",
};

#[async_trait]
impl Tool for CatalogDescribe {
    type Args = NameArgs;
    type Output = serde_json::Value;
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        serde_json::to_value(ctx.object(self.kind, &a.name).await?.redacted()).map_err(failed)
    }
}

/// Arguments of `task_run`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRunArgs {
    /// Task name.
    pub name: String,
    /// Where, over the Task's own `host`: host names, a label selector,
    /// `all`, or a cluster keyword (anymaster, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Variable values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Why (shown to the approver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `web-1, web-2` -> `["web-1", "web-2"]`.
fn split_targets(hosts: Option<&str>) -> Vec<String> {
    hosts
        .into_iter()
        .flat_map(|h| h.split(','))
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect()
}

/// A finished run, for the model.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Run id (for run_status).
    pub id: String,
    /// Final phase.
    pub phase: String,
    /// Why it ended so.
    pub message: Option<String>,
    /// Per target, per step: status and output tail.
    pub steps: Vec<StepReport>,
}

/// One step on one target.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Pipeline task (empty for a task run).
    pub task: String,
    /// Target.
    pub target: String,
    /// Step.
    pub step: String,
    /// Phase.
    pub phase: String,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Output, bounded.
    pub output: String,
}

fn report(r: RunRecord) -> RunReport {
    RunReport {
        id: r.id,
        phase: r.phase.as_str().to_owned(),
        message: r.message,
        steps: r
            .steps
            .into_iter()
            .map(|s| StepReport {
                task: s.task,
                target: s.target,
                step: s.name,
                phase: s.phase.as_str().to_owned(),
                exit_code: s.exit_code,
                output: ops_model::clip(&format!("{}{}", s.stdout, s.stderr), 4096),
            })
            .collect(),
    }
}

/// `task_run`.
#[derive(Debug, Clone, Copy)]
pub struct TaskRun;

#[async_trait]
impl Tool for TaskRun {
    type Args = TaskRunArgs;
    type Output = RunReport;
    fn name(&self) -> &'static str {
        "task_run"
    }
    fn description(&self) -> &'static str {
        "Run a Task with variables on its hosts (or the given ones) and wait for the result. Needs approval."
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            effect: Some(Effect::Mutate),
            task: Some(a.name.clone()),
            targets: split_targets(a.hosts.as_deref()),
            ..CallFacts::default()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let Object::Task(task) = ctx.object(Kind::Task, &a.name).await? else {
            return Err(ToolError::NotFound(format!("no Task `{}`", a.name)));
        };
        let expr = a
            .hosts
            .clone()
            .unwrap_or_else(|| crate::targets::task_host(&task, &a.variables));
        let runtime = ops_exec::kube::PodRuntime::for_task(&task, &a.variables);
        let targets = ctx.targets(&expr, &runtime).await?;
        let run = ctx
            .engine
            .run_task(
                TaskRunRequest {
                    task,
                    name: None,
                    namespace: ctx.namespace.clone(),
                    variables: a.variables,
                    targets,
                    timeout: None,
                    sudo: false,
                    parent_id: None,
                },
                &NoopObserver,
                ctx.cancel.clone(),
            )
            .await
            .map_err(failed)?;
        Ok(report(run))
    }
}

/// Arguments of `pipeline_run`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRunArgs {
    /// Pipeline name.
    pub name: String,
    /// Where every task runs, over each Task's own `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
    /// Variable values (merged over the pipeline's defaults).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Why (shown to the approver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `pipeline_run`.
#[derive(Debug, Clone, Copy)]
pub struct PipelineRun;

#[async_trait]
impl Tool for PipelineRun {
    type Args = PipelineRunArgs;
    type Output = RunReport;
    fn name(&self) -> &'static str {
        "pipeline_run"
    }
    fn description(&self) -> &'static str {
        "Run a Pipeline with variables and wait for the result. Needs approval."
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            effect: Some(Effect::Mutate),
            pipeline: Some(a.name.clone()),
            targets: split_targets(a.hosts.as_deref()),
            ..CallFacts::default()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let Object::Pipeline(p) = ctx.object(Kind::Pipeline, &a.name).await? else {
            return Err(ToolError::NotFound(format!("no Pipeline `{}`", a.name)));
        };
        let run = ctx
            .engine
            .run_pipeline(
                PipelineRunRequest {
                    pipeline: p,
                    name: None,
                    namespace: ctx.namespace.clone(),
                    variables: a.variables,
                    host: a.hosts,
                    allowed: ctx.pinned.as_deref().map(<[String]>::to_vec),
                    timeout: None,
                    sudo: false,
                    parent_id: None,
                },
                &NoopObserver,
                ctx.cancel.clone(),
            )
            .await
            .map_err(failed)?;
        Ok(report(run))
    }
}

/// Arguments of `run_status`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStatusArgs {
    /// Run id (from task_run / pipeline_run); omit for the latest runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `run_status`.
#[derive(Debug, Clone, Copy)]
pub struct RunStatus;

#[async_trait]
impl Tool for RunStatus {
    type Args = RunStatusArgs;
    type Output = Vec<RunReport>;
    fn name(&self) -> &'static str {
        "run_status"
    }
    fn description(&self) -> &'static str {
        "A run's status with per-step results, or the ten latest runs without an id."
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let store = ctx.engine.store();
        // A run whose process died reads as Interrupted, not Running.
        store
            .mark_interrupted(&ops_store::owner_alive)
            .await
            .map_err(failed)?;
        match a.id {
            Some(id) => match store.get_run(&id).await.map_err(failed)? {
                Some(r) => Ok(vec![report(r)]),
                None => Err(ToolError::NotFound(format!("no run `{id}`"))),
            },
            None => {
                let filter = ops_store::RunFilter {
                    namespace: Some(ctx.namespace.clone()),
                    limit: Some(10),
                    ..Default::default()
                };
                Ok(store
                    .list_runs(&filter)
                    .await
                    .map_err(failed)?
                    .into_iter()
                    .map(report)
                    .collect())
            }
        }
    }
}
