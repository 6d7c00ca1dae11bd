//! `cluster_list`, `cluster_get`, `cluster_describe`, `cluster_logs`,
//! `cluster_events`, `cluster_node_shell`. Reads go through
//! `exec::kube::read`, which removes Secret values before anything leaves
//! it.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::NoArgs;
use super::TOOL_OUTPUT;
use crate::registry::{CallFacts, Tool, ToolContext, ToolError, failed};
use ops_exec::ExecRequest;
use ops_exec::kube::read::{self, ListQuery, LogQuery};
use ops_model::shell;
use ops_model::{Cluster, Kind, LabelSelector, Object};

async fn cluster(ctx: &ToolContext, name: &str) -> Result<(Cluster, kube::Client), ToolError> {
    let Object::Cluster(c) = ctx.object(Kind::Cluster, name).await? else {
        return Err(ToolError::NotFound(format!("`{name}` is not a cluster")));
    };
    let client = ops_exec::kube::client(&c).await.map_err(failed)?;
    Ok((c, client))
}

/// The cluster, a client, and a resource type resolved on it.
async fn resource_in(
    ctx: &ToolContext,
    cluster_name: &str,
    resource: &str,
) -> Result<(Cluster, kube::Client, read::Resource), ToolError> {
    let (c, client) = cluster(ctx, cluster_name).await?;
    let r = read::resolve(&client, &c.metadata.name, resource)
        .await
        .map_err(failed)?;
    Ok((c, client, r))
}

/// A stored cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// Name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// API server, when known.
    pub server: String,
}

/// `cluster_list`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterList;

#[async_trait]
impl Tool for ClusterList {
    type Args = NoArgs;
    type Output = Vec<ClusterSummary>;
    fn name(&self) -> &'static str {
        "cluster_list"
    }
    fn description(&self) -> &'static str {
        "List the Kubernetes clusters in the inventory."
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, _: Self::Args) -> Result<Self::Output, ToolError> {
        let found = ctx
            .objects(Kind::Cluster, &LabelSelector::default())
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|o| match o {
                Object::Cluster(c) => Some(ClusterSummary {
                    desc: c.spec.desc.clone().unwrap_or_default(),
                    server: c.spec.server.clone().unwrap_or_default(),
                    name: c.metadata.name,
                }),
                _ => None,
            })
            .collect())
    }
}

/// Arguments of `cluster_get`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterGetArgs {
    /// Cluster name (from cluster_list).
    pub cluster: String,
    /// Resource type, any kubectl name: pods, po, deploy, nodes, events, ...
    pub resource: String,
    /// One object's name; omit to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kubernetes namespace; omit for all namespaces (lists) or `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Label selector for lists (`app=web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// An object in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectLine {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Short status.
    pub status: String,
}

/// `cluster_get`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterGet;

#[async_trait]
impl Tool for ClusterGet {
    type Args = ClusterGetArgs;
    type Output = serde_json::Value;
    fn name(&self) -> &'static str {
        "cluster_get"
    }
    fn description(&self) -> &'static str {
        "Get one Kubernetes object (full, Secret values redacted) or list objects of a type with a short status each (at most 200)."
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            cluster: Some(a.cluster.clone()),
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let (c, client, r) = resource_in(ctx, &a.cluster, &a.resource).await?;
        let name = c.metadata.name.as_str();
        if let Some(obj) = &a.name {
            let ns = a.namespace.clone().unwrap_or_else(|| "default".into());
            let o = read::get(&client, name, &r, r.namespaced.then_some(ns.as_str()), obj)
                .await
                .map_err(failed)?;
            return serde_json::to_value(o).map_err(failed);
        }
        let q = ListQuery {
            namespace: a.namespace.clone().filter(|_| r.namespaced),
            labels: a.selector.clone(),
            fields: None,
            limit: Some(200),
        };
        let items = read::list(&client, name, &r, &q).await.map_err(failed)?;
        let lines: Vec<ObjectLine> = items
            .iter()
            .map(|o| ObjectLine {
                namespace: o.metadata.namespace.clone().unwrap_or_default(),
                name: o.metadata.name.clone().unwrap_or_default(),
                status: read::status_of(&r.api.kind, o),
            })
            .collect();
        serde_json::to_value(lines).map_err(failed)
    }
}

/// Arguments of `cluster_describe`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterDescribeArgs {
    /// Cluster name.
    pub cluster: String,
    /// Resource type.
    pub resource: String,
    /// Object name.
    pub name: String,
    /// Kubernetes namespace (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `cluster_describe`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterDescribe;

#[async_trait]
impl Tool for ClusterDescribe {
    type Args = ClusterDescribeArgs;
    type Output = String;
    fn name(&self) -> &'static str {
        "cluster_describe"
    }
    fn description(&self) -> &'static str {
        "Describe a Kubernetes object: its YAML (Secret values redacted) and its recent events."
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            cluster: Some(a.cluster.clone()),
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let (c, client, r) = resource_in(ctx, &a.cluster, &a.resource).await?;
        let name = c.metadata.name.as_str();
        let ns = a.namespace.unwrap_or_else(|| "default".into());
        read::describe(
            &client,
            name,
            &r,
            r.namespaced.then_some(ns.as_str()),
            &a.name,
        )
        .await
        .map_err(failed)
    }
}

/// Arguments of `cluster_logs`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterLogsArgs {
    /// Cluster name.
    pub cluster: String,
    /// Pod name.
    pub pod: String,
    /// Kubernetes namespace (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Container, when the pod has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Last N lines (default 200, at most 5000).
    #[serde(default = "default_tail")]
    pub tail_lines: i64,
    /// Only lines from the last N seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
    /// The previous (crashed) container's log.
    #[serde(default)]
    pub previous: bool,
}

fn default_tail() -> i64 {
    200
}

/// `cluster_logs`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterLogs;

#[async_trait]
impl Tool for ClusterLogs {
    type Args = ClusterLogsArgs;
    type Output = String;
    fn name(&self) -> &'static str {
        "cluster_logs"
    }
    fn description(&self) -> &'static str {
        "A pod's log: the last lines, optionally only recent ones, or the previous container's after a crash."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if !(1..=5000).contains(&a.tail_lines) {
            return Err(format!("tail_lines must be 1..=5000, not {}", a.tail_lines));
        }
        Ok(())
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            cluster: Some(a.cluster.clone()),
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let (c, client) = cluster(ctx, &a.cluster).await?;
        let ns = a.namespace.unwrap_or_else(|| "default".into());
        let q = LogQuery {
            container: a.container,
            tail: Some(a.tail_lines),
            since: a.since_seconds.map(Duration::from_secs),
            previous: a.previous,
            limit_bytes: Some(256 * 1024),
        };
        read::logs(&client, &c.metadata.name, &ns, &a.pod, &q)
            .await
            .map_err(failed)
    }
}

/// Arguments of `cluster_events`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterEventsArgs {
    /// Cluster name.
    pub cluster: String,
    /// Kubernetes namespace; omit for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only events about this object: its kind (Pod, Deployment, Node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only events about this object: its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `cluster_events`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterEvents;

#[async_trait]
impl Tool for ClusterEvents {
    type Args = ClusterEventsArgs;
    type Output = Vec<read::EventLine>;
    fn name(&self) -> &'static str {
        "cluster_events"
    }
    fn description(&self) -> &'static str {
        "Kubernetes events (Warning and Normal), oldest first, optionally only those about one object."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if a.kind.is_some() != a.name.is_some() {
            return Err("give both kind and name, or neither".into());
        }
        Ok(())
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            cluster: Some(a.cluster.clone()),
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let (c, client) = cluster(ctx, &a.cluster).await?;
        let object = match (&a.kind, &a.name) {
            (Some(k), Some(n)) => {
                let r = read::resolve(&client, &c.metadata.name, k)
                    .await
                    .map_err(failed)?;
                Some((r.api.kind, n.clone()))
            }
            _ => None,
        };
        let mut list = read::events(
            &client,
            &c.metadata.name,
            a.namespace.as_deref(),
            object.as_ref().map(|(k, n)| (k.as_str(), n.as_str())),
        )
        .await
        .map_err(failed)?;
        // The newest 200 are enough for any diagnosis.
        if list.len() > 200 {
            list.drain(..list.len() - 200);
        }
        Ok(list)
    }
}

/// Arguments of `cluster_node_shell`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterNodeShellArgs {
    /// Cluster name.
    pub cluster: String,
    /// Node(s): a node name, anymaster, anyworker, anynode, allmasters,
    /// allworkers, all, or a node label selector.
    pub nodes: String,
    /// The shell command line, run on the node itself (as root).
    pub command: String,
    /// Stop it after this many seconds (1..=3600, default 60).
    #[serde(default = "default_node_timeout")]
    pub timeout_seconds: u64,
    /// Why (shown to the approver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn default_node_timeout() -> u64 {
    60
}

/// `cluster_node_shell`.
#[derive(Debug, Clone, Copy)]
pub struct ClusterNodeShell;

#[async_trait]
impl Tool for ClusterNodeShell {
    type Args = ClusterNodeShellArgs;
    type Output = Vec<super::hosts::ShellResult>;
    fn name(&self) -> &'static str {
        "cluster_node_shell"
    }
    fn description(&self) -> &'static str {
        "Run a shell command on Kubernetes nodes themselves (through a privileged pod that enters the host). Read-only commands run at once; anything else needs approval."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if a.command.trim().is_empty() {
            return Err("command is empty".into());
        }
        if !(1..=3600).contains(&a.timeout_seconds) {
            return Err(format!(
                "timeout_seconds must be 1..=3600, not {}",
                a.timeout_seconds
            ));
        }
        Ok(())
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        let c = shell::classify(&a.command);
        CallFacts {
            effect: Some(c.effect),
            reads_secret: c.reads_secret,
            shell: Some(a.command.clone()),
            targets: vec![format!("{}/{}", a.cluster, a.nodes)],
            cluster: Some(a.cluster.clone()),
            ..CallFacts::default()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let (c, _) = cluster(ctx, &a.cluster).await?;
        let targets = ctx
            .engine
            .cluster_targets(&c, &a.nodes, &Default::default())
            .await
            .map_err(failed)?;
        ctx.check_pinned(&targets)?;
        let mut req = ExecRequest::script(a.command.clone())
            .with_timeout(Duration::from_secs(a.timeout_seconds));
        req.limits = TOOL_OUTPUT;
        super::hosts::run_gated(ctx, &targets, req).await
    }
}
