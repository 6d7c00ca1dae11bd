//! Kubernetes (kube-rs): a client from a Cluster object, node selection by
//! the anchor's keywords (`anymaster`, `anyworker`, `anynode`,
//! `allmasters`, `allworkers`, `all`, node names, label selectors),
//! [`NodeExecutor`] (commands on a node the anchor's way, or inside a
//! runtime image with mounts), [`PodExecutor`] (commands and files in a
//! pod's container through exec), and [`read`] (get, list, describe, logs
//! and events for any resource).
//!
//! Tested against a stand-in API server (no real one can run here); see
//! `tools/tests/support/kube_standin.rs`.

mod attach;
mod node;
mod pod;
pub mod read;

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ExecError;
pub use node::{NodeExecutor, PodRuntime};
use ops_model::{Cluster, LabelSelector};
pub use pod::PodExecutor;

/// The default image of node-shell pods (any image with `nsenter`).
pub const DEFAULT_RUNTIME_IMAGE: &str = "debian:12-slim";
/// Where node-shell pods are created.
pub const OPS_NAMESPACE: &str = "ops-system";

/// A kube error in words: for API errors the server's message and
/// reason (`pods "x" not found (NotFound)`), otherwise the error itself.
pub fn describe_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            if s.reason.is_empty() {
                s.message.clone()
            } else {
                format!("{} ({})", s.message, s.reason)
            }
        }
        other => other.to_string(),
    }
}

fn err(cluster: &str, detail: impl std::fmt::Display) -> ExecError {
    ExecError::Protocol {
        target: cluster.to_owned(),
        detail: format!("kubernetes: {detail}"),
    }
}

/// A client for a Cluster: its kubeconfig file, inline kubeconfig (plain
/// or base64, as the anchor stores it), or server URL and token.
pub async fn client(cluster: &Cluster) -> Result<kube::Client, ExecError> {
    let config = config(cluster).await?;
    kube::Client::try_from(config).map_err(|e| err(&cluster.metadata.name, e))
}

/// The client configuration [`client`] uses (with its timeouts).
pub async fn config(cluster: &Cluster) -> Result<kube::Config, ExecError> {
    let name = cluster.metadata.name.as_str();
    let s = &cluster.spec;
    let resolve = |v: &str| {
        crate::secret::resolve(v).map_err(|source| ExecError::Secret {
            target: name.to_owned(),
            source,
        })
    };
    let kubeconfig = if let Some(path) = s.kubeconfig_path.as_deref().filter(|p| !p.is_empty()) {
        Some(
            Kubeconfig::read_from(super::expand_home(path))
                .map_err(|e| err(name, format!("kubeconfig {path}: {e}")))?,
        )
    } else if let Some(text) = s.config.as_deref().filter(|c| !c.trim().is_empty()) {
        let text = resolve(text)?;
        let parsed = Kubeconfig::from_yaml(&text).or_else(|first| {
            let compact: String = text.split_whitespace().collect();
            super::ssh::base64_decode(&compact)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(first)
                .and_then(|d| Kubeconfig::from_yaml(&d))
        });
        Some(parsed.map_err(|e| err(name, format!("inline config: {e}")))?)
    } else {
        None
    };
    let mut config = match kubeconfig {
        Some(kc) => kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| err(name, e))?,
        None => {
            let server = s
                .server
                .as_deref()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(name, "cluster has no kubeconfigPath, config or server"))?;
            let mut c = kube::Config::new(
                server
                    .parse()
                    .map_err(|e| err(name, format!("server `{server}`: {e}")))?,
            );
            if let Some(t) = s.token.as_deref().filter(|t| !t.is_empty()) {
                c.auth_info.token = Some(resolve(t)?.into());
            }
            c
        }
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    config.write_timeout = Some(Duration::from_secs(60));
    Ok(config)
}

fn is_master(n: &Node) -> bool {
    n.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key("node-role.kubernetes.io/control-plane")
            || l.contains_key("node-role.kubernetes.io/master")
    })
}

fn ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Node names for a target expression on a cluster. `any*` picks one
/// Ready node (by name); nothing matched is an error.
pub async fn select_nodes(
    client: &kube::Client,
    cluster: &str,
    expr: &str,
) -> Result<Vec<String>, ExecError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut nodes = api
        .list(&ListParams::default())
        .await
        .map_err(|e| err(cluster, e))?
        .items;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let name = |n: &Node| n.metadata.name.clone().unwrap_or_default();
    let pick_one = |candidates: Vec<&Node>| -> Vec<String> {
        candidates
            .iter()
            .find(|n| ready(n))
            .or(candidates.first())
            .map(|n| vec![name(n)])
            .unwrap_or_default()
    };
    let expr = expr.trim();
    let chosen: Vec<String> = match expr {
        "anymaster" => pick_one(nodes.iter().filter(|n| is_master(n)).collect()),
        "anyworker" => pick_one(nodes.iter().filter(|n| !is_master(n)).collect()),
        "anynode" => pick_one(nodes.iter().collect()),
        "allmasters" => nodes.iter().filter(|n| is_master(n)).map(name).collect(),
        "allworkers" => nodes.iter().filter(|n| !is_master(n)).map(name).collect(),
        "all" | "" => nodes.iter().map(name).collect(),
        sel if sel.contains('=') => {
            let s: LabelSelector = sel
                .parse()
                .map_err(|e: ops_model::SelectorError| err(cluster, e))?;
            nodes
                .iter()
                .filter(|n| s.matches(&n.metadata.labels.clone().unwrap_or_default()))
                .map(name)
                .collect()
        }
        names => {
            let wanted: Vec<&str> = names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            for w in &wanted {
                if !nodes.iter().any(|n| n.metadata.name.as_deref() == Some(*w)) {
                    return Err(err(cluster, format!("no node named `{w}`")));
                }
            }
            wanted.into_iter().map(str::to_owned).collect()
        }
    };
    if chosen.is_empty() {
        return Err(err(
            cluster,
            format!(
                "no node matches `{expr}` ({} nodes in the cluster)",
                nodes.len()
            ),
        ));
    }
    Ok(chosen)
}
