//! Which targets a run goes to: a Host name (or several, comma
//! separated), a label selector (`k=v,k2=v2`), `all`, or nothing (this
//! machine). The anchor's cluster keywords (`anymaster`, `anyworker`,
//! `anynode`, `allmasters`, `allworkers`) and node names select nodes of a
//! Cluster (see `Engine::targets`). No target matched is an error, never a silent
//! success.

use ops_model::{Kind, LabelSelector, Object, ObjectKey};
use ops_store::Store;

use super::EngineError;

/// A parsed target expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// This machine.
    Local,
    /// Hosts by name.
    Names(Vec<String>),
    /// Hosts whose labels match.
    Selector(LabelSelector),
    /// Every Host in the namespace.
    All,
    /// A cluster keyword (`anymaster`, ...).
    Cluster(String),
}

/// The anchor's cluster keywords.
pub const CLUSTER_KEYWORDS: [&str; 5] = [
    "anymaster",
    "anyworker",
    "anynode",
    "allmasters",
    "allworkers",
];

impl TargetSpec {
    /// Parses a Task `host:` value or a `--host` flag.
    pub fn parse(s: &str) -> Result<TargetSpec, EngineError> {
        let s = s.trim();
        if s.is_empty() || s == "localhost" || s == "127.0.0.1" || s == "local" {
            return Ok(TargetSpec::Local);
        }
        if s == "all" {
            return Ok(TargetSpec::All);
        }
        if CLUSTER_KEYWORDS.contains(&s) {
            return Ok(TargetSpec::Cluster(s.to_owned()));
        }
        if LabelSelector::looks_like_selector(s) && s.contains('=') {
            return s
                .parse()
                .map(TargetSpec::Selector)
                .map_err(|e| EngineError::Target(e.to_string()));
        }
        Ok(TargetSpec::Names(
            s.split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        ))
    }
}

/// A synthetic Host for this machine.
pub fn local_host() -> ops_model::Host {
    ops_model::Host {
        api_version: ops_model::API_VERSION.into(),
        kind: "Host".into(),
        metadata: ops_model::ObjectMeta {
            name: "localhost".into(),
            ..Default::default()
        },
        spec: ops_model::HostSpec {
            address: Some("127.0.0.1".into()),
            ..Default::default()
        },
        status: None,
    }
}

/// Resolves `spec` against the Hosts in `namespace`.
pub async fn resolve(
    store: &dyn Store,
    namespace: &str,
    spec: &TargetSpec,
) -> Result<Vec<ops_model::Host>, EngineError> {
    let hosts = |objs: Vec<ops_store::StoredObject>| -> Vec<ops_model::Host> {
        objs.into_iter()
            .filter_map(|s| match s.object {
                Object::Host(h) => Some(h),
                _ => None,
            })
            .collect()
    };
    let found = match spec {
        TargetSpec::Local => vec![local_host()],
        TargetSpec::All => hosts(
            store
                .list(Kind::Host, Some(namespace), &LabelSelector::default())
                .await?,
        ),
        TargetSpec::Selector(sel) => hosts(store.list(Kind::Host, Some(namespace), sel).await?),
        TargetSpec::Names(names) => {
            let mut out = Vec::new();
            for n in names {
                let key = ObjectKey {
                    kind: Kind::Host,
                    namespace: namespace.to_owned(),
                    name: n.clone(),
                };
                match store.get(&key).await? {
                    Some(s) => out.extend(hosts(vec![s])),
                    None => {
                        return Err(EngineError::Target(format!(
                            "no Host named `{n}` in namespace {namespace} (for a Kubernetes node, name the cluster: --cluster)"
                        )));
                    }
                }
            }
            out
        }
        TargetSpec::Cluster(k) => {
            return Err(EngineError::Target(format!(
                "target `{k}` selects Kubernetes nodes; resolve it against a Cluster (Engine::targets does)"
            )));
        }
    };
    if found.is_empty() {
        let what = match spec {
            TargetSpec::Selector(s) => format!("no Host in namespace {namespace} matches `{s}`"),
            _ => format!("no Host in namespace {namespace}"),
        };
        return Err(EngineError::Target(format!("{what}: nothing to run on")));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(TargetSpec::parse("").unwrap(), TargetSpec::Local);
        assert_eq!(TargetSpec::parse("all").unwrap(), TargetSpec::All);
        assert_eq!(
            TargetSpec::parse("anymaster").unwrap(),
            TargetSpec::Cluster("anymaster".into())
        );
        assert!(matches!(
            TargetSpec::parse("alert-card=gpu").unwrap(),
            TargetSpec::Selector(_)
        ));
        assert_eq!(
            TargetSpec::parse("a, b").unwrap(),
            TargetSpec::Names(vec!["a".into(), "b".into()])
        );
        assert!(TargetSpec::parse("=x").is_err());
    }
}
