//! `-i INVENTORY` as in the anchor: an IP, `IP,IP`, a file of addresses,
//! or — ours — Host names, a label selector or `all` from the store.
//! Addresses not in the store become ad-hoc Hosts with the SSH flags.

use std::path::Path;

use anyhow::{Result, bail};
use ops_tools::engine::{Engine, Target};
use ops_tools::model::{
    API_VERSION, Host, HostSpec, Kind, LabelSelector, Object, ObjectKey, ObjectMeta,
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

/// The targets for `args`, or for `default_expr` (a Task's `host`) when
/// no inventory is given.
pub async fn targets(
    engine: &Engine,
    namespace: &str,
    args: &TargetArgs,
    default_expr: Option<&str>,
) -> Result<Vec<Target>> {
    if let Some(node) = &args.nodename {
        bail!(
            "--nodename {node} targets a Kubernetes node; the Kubernetes executor is not available yet"
        );
    }
    let Some(inv) = args
        .inventory
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(engine
            .targets(namespace, default_expr.unwrap_or(""))
            .await?);
    };
    let tokens: Vec<String> = if Path::new(inv).is_file() {
        let text = std::fs::read_to_string(inv)?;
        if text.contains("clusters:") && text.contains("contexts:") {
            bail!(
                "{inv} is a kubeconfig: cluster inventories need the Kubernetes executor, not available yet"
            );
        }
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        if inv == "all" || (LabelSelector::looks_like_selector(inv) && inv.contains('=')) {
            return Ok(engine.targets(namespace, inv).await?);
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
