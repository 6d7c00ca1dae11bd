//! `-i INVENTORY` as in the anchor: an IP, `IP,IP`, a file of addresses,
//! or — ours — Host names, a label selector or `all` from the store.
//! Addresses not in the store become ad-hoc Hosts with the given SSH
//! settings. Also the one place the rule "the namespace's only Cluster"
//! is written ([`only_cluster`]).

use std::path::{Path, PathBuf};

use ops_model::{
    API_VERSION, Cluster, ClusterSpec, Host, HostSpec, Kind, LabelSelector, Object, ObjectKey,
    ObjectMeta,
};

use crate::{Engine, EngineError, Target};

/// Where a person's direct command runs: the anchor's `-i`, `--cluster`
/// and `--nodename`, and the SSH settings for addresses not in the store.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// `-i`: addresses, Host names, a selector, `all`, a file of
    /// addresses, or a kubeconfig file.
    pub inventory: Option<String>,
    /// A stored Cluster whose nodes to run on.
    pub cluster: Option<String>,
    /// Kubernetes node(s) to run on.
    pub nodename: Option<String>,
    /// SSH user for addresses not in the store.
    pub username: Option<String>,
    /// SSH password for addresses not in the store.
    pub password: Option<String>,
    /// Private key for addresses not in the store.
    pub private_key_path: Option<PathBuf>,
    /// SSH port for addresses not in the store.
    pub port: Option<u16>,
}

/// Why "the namespace's only Cluster" names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOnlyCluster {
    /// The namespace has no Cluster.
    None,
    /// It has this many.
    Many(usize),
}

/// The namespace's only Cluster: what the anchor's node keywords and a
/// bare `--nodename` run on.
pub async fn only_cluster(
    store: &dyn ops_store::Store,
    namespace: &str,
) -> Result<Result<Cluster, NoOnlyCluster>, EngineError> {
    let all = store
        .list(Kind::Cluster, Some(namespace), &LabelSelector::default())
        .await?;
    Ok(match all.as_slice() {
        [one] => match &one.object {
            Object::Cluster(c) => Ok(c.clone()),
            _ => Err(NoOnlyCluster::None),
        },
        [] => Err(NoOnlyCluster::None),
        many => Err(NoOnlyCluster::Many(many.len())),
    })
}

fn io(what: &str, e: std::io::Error) -> EngineError {
    EngineError::Target(format!("{what}: {e}"))
}

fn ad_hoc(address: &str, args: &Inventory) -> Host {
    Host {
        api_version: API_VERSION.into(),
        kind: "Host".into(),
        metadata: ObjectMeta {
            name: address.to_owned(),
            ..ObjectMeta::default()
        },
        spec: HostSpec {
            address: Some(address.to_owned()),
            port: args.port,
            username: args.username.clone(),
            password: args.password.clone(),
            private_key_path: args
                .private_key_path
                .as_ref()
                .map(|p| p.display().to_string()),
            ..HostSpec::default()
        },
        status: None,
    }
}

fn is_kubeconfig(text: &str) -> bool {
    text.contains("clusters:") && text.contains("contexts:")
}

/// The Cluster to run on: `--cluster NAME`, `-i KUBECONFIG`, or (for
/// `--nodename` alone) the namespace's only Cluster.
async fn cluster(
    engine: &Engine,
    namespace: &str,
    args: &Inventory,
) -> Result<Option<Cluster>, EngineError> {
    select_cluster(
        engine.store().as_ref(),
        namespace,
        args.cluster.as_deref(),
        args.inventory.as_deref(),
        args.nodename.is_some(),
    )
    .await
}

/// A Cluster by name, from a kubeconfig file (`inventory`, used only if
/// it is one), or, when `fallback`, the namespace's only Cluster.
pub async fn select_cluster(
    store: &dyn ops_store::Store,
    namespace: &str,
    name: Option<&str>,
    inventory: Option<&str>,
    fallback: bool,
) -> Result<Option<Cluster>, EngineError> {
    if let Some(name) = name {
        let key = ObjectKey {
            kind: Kind::Cluster,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        return match store.get(&key).await?.map(|s| s.object) {
            Some(Object::Cluster(c)) => Ok(Some(c)),
            _ => Err(EngineError::Target(format!(
                "no Cluster named `{name}` in namespace {namespace}"
            ))),
        };
    }
    if let Some(inv) = inventory.filter(|i| Path::new(i).is_file()) {
        if is_kubeconfig(&std::fs::read_to_string(inv).map_err(|e| io(inv, e))?) {
            let path = std::fs::canonicalize(inv)
                .map_err(|e| io(inv, e))?
                .display()
                .to_string();
            return Ok(Some(Cluster {
                api_version: API_VERSION.into(),
                kind: "Cluster".into(),
                metadata: ObjectMeta {
                    name: "kubeconfig".into(),
                    ..ObjectMeta::default()
                },
                spec: ClusterSpec {
                    kubeconfig_path: Some(path),
                    ..ClusterSpec::default()
                },
                status: None,
            }));
        }
    }
    if fallback {
        return match only_cluster(store, namespace).await? {
            Ok(c) => Ok(Some(c)),
            Err(NoOnlyCluster::None) => Err(EngineError::Target(format!(
                "no Cluster in namespace {namespace}: give --cluster NAME or a kubeconfig, or add one with `opscli create cluster`"
            ))),
            Err(NoOnlyCluster::Many(n)) => Err(EngineError::Target(format!(
                "namespace {namespace} has {n} Clusters; choose one with --cluster"
            ))),
        };
    }
    Ok(None)
}

/// The targets for `args`, or for `default_expr` (a Task's `host`) when
/// no inventory is given. `runtime` builds node pods (a Task's image and
/// mounts).
pub async fn targets(
    engine: &Engine,
    namespace: &str,
    args: &Inventory,
    default_expr: Option<&str>,
    runtime: &ops_exec::kube::PodRuntime,
) -> Result<Vec<Target>, EngineError> {
    if let Some(c) = cluster(engine, namespace, args).await? {
        let expr = args
            .nodename
            .as_deref()
            .or(default_expr)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                EngineError::Target(
                    "which nodes? give --nodename NODE|anymaster|anyworker|all".into(),
                )
            })?;
        return engine.cluster_targets(&c, expr, runtime).await;
    }
    let Some(inv) = args
        .inventory
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return engine
            .targets_with(namespace, default_expr.unwrap_or(""), runtime)
            .await;
    };
    let tokens: Vec<String> = if Path::new(inv).is_file() {
        let text = std::fs::read_to_string(inv).map_err(|e| io(inv, e))?;
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        if inv == "all" || (LabelSelector::looks_like_selector(inv) && inv.contains('=')) {
            return engine.targets_with(namespace, inv, runtime).await;
        }
        inv.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut hosts = Vec::new();
    for t in tokens {
        let key = ObjectKey {
            kind: Kind::Host,
            namespace: namespace.to_owned(),
            name: t.clone(),
        };
        match engine.store().get(&key).await?.map(|s| s.object) {
            Some(Object::Host(h)) => hosts.push(h),
            _ => hosts.push(ad_hoc(&t, args)),
        }
    }
    if hosts.is_empty() {
        return Err(EngineError::Target(format!(
            "inventory `{inv}` names no host"
        )));
    }
    engine.targets_for_hosts(hosts)
}
