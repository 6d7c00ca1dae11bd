//! `-i INVENTORY` as in the anchor: an IP, `IP,IP`, a file of addresses,
//! or — ours — Host names, a label selector or `all` from the store.
//! Addresses not in the store become ad-hoc Hosts with the SSH flags.

use std::path::Path;

use anyhow::{Result, bail};
use ops_engine::{Engine, Target};
use ops_model::{
    API_VERSION, Cluster, ClusterSpec, Host, HostSpec, Kind, LabelSelector, Object, ObjectKey,
    ObjectMeta,
};

use crate::args::TargetArgs;

fn ad_hoc(address: &str, args: &TargetArgs) -> Host {
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
async fn cluster(engine: &Engine, namespace: &str, args: &TargetArgs) -> Result<Option<Cluster>> {
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
) -> Result<Option<Cluster>> {
    if let Some(name) = name {
        let key = ObjectKey {
            kind: Kind::Cluster,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        return match store.get(&key).await?.map(|s| s.object) {
            Some(Object::Cluster(c)) => Ok(Some(c)),
            _ => bail!("no Cluster named `{name}` in namespace {namespace}"),
        };
    }
    if let Some(inv) = inventory.filter(|i| Path::new(i).is_file()) {
        if is_kubeconfig(&std::fs::read_to_string(inv)?) {
            let path = std::fs::canonicalize(inv)?.display().to_string();
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
        let all = store
            .list(Kind::Cluster, Some(namespace), &LabelSelector::default())
            .await?;
        return match all.as_slice() {
            [one] => match &one.object {
                Object::Cluster(c) => Ok(Some(c.clone())),
                _ => Ok(None),
            },
            [] => bail!(
                "no Cluster in namespace {namespace}: give --cluster NAME or a kubeconfig, or add one with `opscli create cluster`"
            ),
            many => bail!(
                "namespace {namespace} has {} Clusters; choose one with --cluster",
                many.len()
            ),
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
    args: &TargetArgs,
    default_expr: Option<&str>,
    runtime: &ops_exec::kube::PodRuntime,
) -> Result<Vec<Target>> {
    if let Some(c) = cluster(engine, namespace, args).await? {
        let expr = args
            .nodename
            .as_deref()
            .or(default_expr)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("which nodes? give --nodename NODE|anymaster|anyworker|all")
            })?;
        return Ok(engine.cluster_targets(&c, expr, runtime).await?);
    }
    let Some(inv) = args
        .inventory
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(engine
            .targets_with(namespace, default_expr.unwrap_or(""), runtime)
            .await?);
    };
    let tokens: Vec<String> = if Path::new(inv).is_file() {
        let text = std::fs::read_to_string(inv)?;
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        if inv == "all" || (LabelSelector::looks_like_selector(inv) && inv.contains('=')) {
            return Ok(engine.targets_with(namespace, inv, runtime).await?);
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
        bail!("inventory `{inv}` names no host");
    }
    Ok(engine.targets_for_hosts(hosts)?)
}
