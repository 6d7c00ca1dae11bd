//! What a call will really touch. A tool's [`CallFacts`] name targets the
//! way the model wrote them (`all`, `role=web`, nothing at all for a Task
//! that brings its own `host:`); the policy and the approval must see the
//! hosts those expressions select *now*, with their labels, or a rule
//! `forbid hosts: [db-*]` would not see `db-1` behind `all`.

use std::collections::BTreeMap;

use super::registry::{Prepared, ToolContext, ToolError};
use ops_model::template::{Context, render, resolve_variables};
use ops_model::{Kind, Object};

/// A resolved target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// Host (or `cluster/nodes`) name.
    pub name: String,
    /// Its labels (empty for cluster nodes).
    pub labels: BTreeMap<String, String>,
}

/// A Task's variables: `given` over its declared defaults, as a render
/// context and as values.
fn task_vars(
    task: &ops_model::Task,
    given: &BTreeMap<String, String>,
) -> (Context, BTreeMap<String, String>) {
    let declared = task.spec.variables.clone().unwrap_or_default();
    let mut vars = resolve_variables(&declared, given).unwrap_or_else(|_| given.clone());
    for (k, v) in given {
        vars.insert(k.clone(), v.clone());
    }
    let mut c = Context::new();
    for (k, v) in &vars {
        c.set_var(k.clone(), v.clone());
    }
    (c, vars)
}

/// Where a Task runs when the call names no hosts: its own `host:`, else
/// its `host` variable (as in the anchor), rendered with `given` over its
/// defaults.
pub fn task_host(task: &ops_model::Task, given: &BTreeMap<String, String>) -> String {
    let (c, vars) = task_vars(task, given);
    render(task.spec.target(&vars).unwrap_or(""), &c)
}

/// A Task's steps with `given` over its defaults, as an approver reads
/// them. `${steps.*}` and `${results.*}` stay as written: they are known
/// only while the run goes.
fn task_plan(
    out: &mut String,
    task: &ops_model::Task,
    given: &BTreeMap<String, String>,
    indent: &str,
) {
    use std::fmt::Write;
    let (c, vars) = task_vars(task, given);
    let name = task.metadata.name.as_str();
    let host = render(task.spec.target(&vars).unwrap_or(""), &c);
    let _ = writeln!(
        out,
        "{indent}Task {name}{}",
        if host.is_empty() {
            String::new()
        } else {
            format!(" (host: {host})")
        }
    );
    if !vars.is_empty() {
        let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "{indent}  variables: {}", shown.join(", "));
    }
    for (i, step) in task.spec.steps.iter().flatten().enumerate() {
        let title = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", i + 1));
        let when = step
            .when
            .as_ref()
            .map(|w| format!(" [when {}]", render(w, &c)))
            .unwrap_or_default();
        let _ = writeln!(out, "{indent}  {}. {title}{when}", i + 1);
        if let Some(script) = &step.content {
            for line in render(script, &c).lines() {
                let _ = writeln!(out, "{indent}     | {line}");
            }
        } else {
            let _ = writeln!(
                out,
                "{indent}     copy {} {} {}",
                render(step.localfile.as_deref().unwrap_or(""), &c),
                match step.direction {
                    Some(ops_model::Direction::Download) => "<-",
                    _ => "->",
                },
                render(step.remotefile.as_deref().unwrap_or(""), &c),
            );
        }
    }
}

/// The Tasks a `task_run` / `pipeline_run` call runs, each with its
/// given variables (a Pipeline entry's own variables under the call's),
/// and the Pipeline's name; `None` for other calls.
async fn work_of(
    ctx: &ToolContext,
    p: &Prepared,
) -> Result<
    Option<(
        Option<String>,
        Vec<(ops_model::Task, BTreeMap<String, String>)>,
    )>,
    ToolError,
> {
    let given: BTreeMap<String, String> = p
        .args
        .get("variables")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if let Some(name) = &p.facts.task {
        if let Object::Task(t) = ctx.object(Kind::Task, name).await? {
            return Ok(Some((None, vec![(t, given)])));
        }
    }
    if let Some(name) = &p.facts.pipeline {
        if let Object::Pipeline(pl) = ctx.object(Kind::Pipeline, name).await? {
            let mut tasks = Vec::new();
            for entry in &pl.spec.tasks {
                let task_name = entry.task_ref.as_deref().unwrap_or(&entry.name);
                if let Object::Task(t) = ctx.object(Kind::Task, task_name).await? {
                    let mut vars = given.clone();
                    for (k, v) in entry.variables.iter().flatten() {
                        vars.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    tasks.push((t, vars));
                }
            }
            return Ok(Some((Some(name.clone()), tasks)));
        }
    }
    Ok(None)
}

/// What a `task_run` or `pipeline_run` call will run, step by step, with
/// its variables resolved, for the approver; `None` for other calls.
pub async fn plan(ctx: &ToolContext, p: &Prepared) -> Result<Option<String>, ToolError> {
    let Some((pipeline, tasks)) = work_of(ctx, p).await? else {
        return Ok(None);
    };
    let mut out = String::new();
    let indent = match &pipeline {
        Some(name) => {
            out.push_str(&format!("Pipeline {name}\n"));
            "  "
        }
        None => "",
    };
    for (t, vars) in &tasks {
        task_plan(&mut out, t, vars, indent);
    }
    Ok(Some(out))
}

/// The target expressions of a call: its own, or those of the Task (or
/// each Task of the Pipeline) it runs.
async fn expressions(ctx: &ToolContext, p: &Prepared) -> Result<Vec<String>, ToolError> {
    if !p.facts.targets.is_empty() {
        return Ok(vec![p.facts.targets.join(",")]);
    }
    Ok(work_of(ctx, p)
        .await?
        .map(|(_, tasks)| tasks.iter().map(|(t, vars)| task_host(t, vars)).collect())
        .unwrap_or_default())
}

/// The hosts `p` will run on, resolved against the inventory, sorted and
/// without repeats. Kubernetes node targets (`cluster/nodes`) are resolved
/// against the cluster's API the way the run will select them
/// (`anynode` becomes the node it picks), named `cluster/node` and
/// labelled `cluster=NAME`. An expression that cannot be resolved (an
/// unknown host or node, a variable left unset, a cluster that does not
/// answer) is an error: the call must not run on targets nobody checked.
pub async fn resolve_targets(ctx: &ToolContext, p: &Prepared) -> Result<Vec<TargetRef>, ToolError> {
    if let Some(cluster) = &p.facts.cluster {
        return cluster_nodes(ctx, cluster, p).await;
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

/// The nodes behind a cluster call's `cluster/expr` targets.
async fn cluster_nodes(
    ctx: &ToolContext,
    cluster: &str,
    p: &Prepared,
) -> Result<Vec<TargetRef>, ToolError> {
    if p.facts.targets.is_empty() {
        return Ok(Vec::new());
    }
    let Object::Cluster(c) = ctx.object(Kind::Cluster, cluster).await? else {
        return Err(ToolError::NotFound(format!("no cluster named `{cluster}`")));
    };
    let client = ops_exec::kube::client(&c)
        .await
        .map_err(|e| ToolError::NotFound(format!("cluster `{cluster}`: {e}")))?;
    let mut out: Vec<TargetRef> = Vec::new();
    for t in &p.facts.targets {
        let expr = t
            .strip_prefix(cluster)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(t);
        let nodes = ops_exec::kube::select_nodes(&client, cluster, expr)
            .await
            .map_err(|e| ToolError::NotFound(format!("nodes `{expr}`: {e}")))?;
        for n in nodes {
            let name = format!("{cluster}/{n}");
            if !out.iter().any(|o| o.name == name) {
                out.push(TargetRef {
                    name,
                    labels: BTreeMap::from([("cluster".to_owned(), cluster.to_owned())]),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
