//! What a call will really touch. A tool's [`CallFacts`] name targets the
//! way the model wrote them (`all`, `role=web`, nothing at all for a Task
//! that brings its own `host:`); the policy and the approval must see the
//! hosts those expressions select *now*, with their labels, or a rule
//! `forbid hosts: [db-*]` would not see `db-1` behind `all`.

use std::collections::BTreeMap;

use super::registry::{Prepared, ToolContext, ToolError};
use crate::model::{Kind, Object};
use crate::template::{Context, render, resolve_variables};

/// A resolved target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// Host (or `cluster/nodes`) name.
    pub name: String,
    /// Its labels (empty for cluster nodes).
    pub labels: BTreeMap<String, String>,
}

/// A Task's own `host:`, rendered with `given` over its defaults.
fn task_host(task: &crate::model::Task, given: &BTreeMap<String, String>) -> String {
    let declared = task.spec.variables.clone().unwrap_or_default();
    let vars = resolve_variables(&declared, given).unwrap_or_else(|_| given.clone());
    let mut c = Context::new();
    for (k, v) in vars.iter().chain(given) {
        c.set_var(k.clone(), v.clone());
    }
    render(task.spec.host.as_deref().unwrap_or(""), &c)
}

/// The target expressions of a call: its own, or those of the Task (or
/// each Task of the Pipeline) it runs.
async fn expressions(ctx: &ToolContext, p: &Prepared) -> Result<Vec<String>, ToolError> {
    if !p.facts.targets.is_empty() {
        return Ok(vec![p.facts.targets.join(",")]);
    }
    let given: BTreeMap<String, String> = p
        .args
        .get("variables")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if let Some(name) = &p.facts.task {
        if let Object::Task(t) = ctx.object(Kind::Task, name).await? {
            return Ok(vec![task_host(&t, &given)]);
        }
    }
    if let Some(name) = &p.facts.pipeline {
        if let Object::Pipeline(pl) = ctx.object(Kind::Pipeline, name).await? {
            let mut out = Vec::new();
            for entry in &pl.spec.tasks {
                let task_name = entry.task_ref.as_deref().unwrap_or(&entry.name);
                if let Object::Task(t) = ctx.object(Kind::Task, task_name).await? {
                    let mut vars = given.clone();
                    for (k, v) in entry.variables.iter().flatten() {
                        vars.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    out.push(task_host(&t, &vars));
                }
            }
            return Ok(out);
        }
    }
    Ok(Vec::new())
}

/// The hosts `p` will run on, resolved against the inventory, sorted and
/// without repeats. Cluster-node targets are kept as written
/// (`cluster/nodes`); the `clusters` criterion of a rule covers them. An
/// expression that cannot be resolved (an unknown host, a variable left
/// unset) is an error: the call must not run on hosts nobody checked.
pub async fn resolve_targets(ctx: &ToolContext, p: &Prepared) -> Result<Vec<TargetRef>, ToolError> {
    if p.facts.cluster.is_some() {
        return Ok(p
            .facts
            .targets
            .iter()
            .map(|t| TargetRef {
                name: t.clone(),
                labels: BTreeMap::new(),
            })
            .collect());
    }
    let mut out: Vec<TargetRef> = Vec::new();
    for expr in expressions(ctx, p).await? {
        if expr.contains("${") {
            return Err(ToolError::InvalidArgs {
                tool: p.tool.clone(),
                detail: format!("the target `{expr}` still holds a variable; give its value"),
            });
        }
        let targets = ctx
            .engine
            .targets(&ctx.namespace, &expr)
            .await
            .map_err(|e| ToolError::NotFound(format!("targets `{expr}`: {e}")))?;
        for t in targets {
            if !out.iter().any(|o| o.name == t.name) {
                out.push(TargetRef {
                    name: t.name,
                    labels: t.labels,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
