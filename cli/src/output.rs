//! How objects are shown: table columns per kind, YAML, JSON and names.
//! Everything printed passes through `Object::redacted` first.

use anyhow::Result;
use ops_model::{Kind, Object};
use ops_store::StoredObject;

use crate::args::Format;
use crate::table::{Table, cell};

const DESC_WIDTH: usize = 60;

/// Seconds between two RFC 3339 times, when both are set and valid.
pub fn seconds_between(start: Option<&str>, end: Option<&str>) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(start?).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(end?).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

fn headers(kind: Kind, wide: bool) -> Vec<&'static str> {
    let mut h = match kind {
        Kind::Host => vec![
            "NAME", "ADDRESS", "PORT", "USER", "AUTH", "HOSTNAME", "HEART",
        ],
        Kind::Cluster => vec!["NAME", "SERVER", "AUTH", "VERSION", "NODES", "HEART"],
        Kind::Task => vec!["NAME", "HOST", "STEPS", "VARIABLES", "DESC"],
        Kind::Pipeline => vec!["NAME", "TASKS", "COPILOT", "DESC"],
        Kind::TaskRun => vec!["NAME", "TASKREF", "CRONTAB", "STATUS", "DESC"],
        Kind::PipelineRun => vec!["NAME", "PIPELINEREF", "CRONTAB", "STATUS", "DESC"],
        Kind::EventHooks => vec!["NAME", "TYPE", "SUBJECT", "URL"],
    };
    if wide {
        h.push("LABELS");
    }
    h
}

fn or_dash(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".to_owned(),
    }
}

/// How a host authenticates, without revealing anything.
pub fn host_auth(spec: &ops_model::HostSpec) -> &'static str {
    if spec.is_local() {
        "local"
    } else if spec
        .private_key_path
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        "key-file"
    } else if spec.private_key.as_deref().is_some_and(|p| !p.is_empty()) {
        "key"
    } else if spec.password.as_deref().is_some_and(|p| !p.is_empty()) {
        "password"
    } else if spec.secret_ref.as_deref().is_some_and(|p| !p.is_empty()) {
        "secret-ref"
    } else {
        "agent"
    }
}

fn row(o: &Object, wide: bool) -> Vec<String> {
    let desc = |d: &Option<String>| cell(d.as_deref().unwrap_or(""), DESC_WIDTH);
    let mut r = match o {
        Object::Host(h) => {
            let st = h.status.clone().unwrap_or_default();
            vec![
                h.metadata.name.clone(),
                or_dash(h.spec.address.as_deref()),
                h.spec.port.map_or("22".into(), |p| p.to_string()),
                or_dash(h.spec.username.as_deref()),
                host_auth(&h.spec).into(),
                or_dash(st.hostname.as_deref()),
                or_dash(st.heart_status.as_deref()),
            ]
        }
        Object::Cluster(c) => {
            let st = c.status.clone().unwrap_or_default();
            let auth = if c.spec.kubeconfig_path.is_some() {
                "kubeconfig-file"
            } else if c.spec.config.is_some() {
                "kubeconfig"
            } else if c.spec.token.is_some() {
                "token"
            } else {
                "in-cluster"
            };
            vec![
                c.metadata.name.clone(),
                or_dash(c.spec.server.as_deref()),
                auth.into(),
                or_dash(st.version.as_deref()),
                st.node_number.map_or("-".into(), |n| n.to_string()),
                or_dash(st.last_heart_status.as_deref()),
            ]
        }
        Object::Task(t) => vec![
            t.metadata.name.clone(),
            or_dash(t.spec.host.as_deref()),
            t.spec.steps().len().to_string(),
            t.spec.variables.as_ref().map_or(0, |v| v.len()).to_string(),
            desc(&t.spec.desc),
        ],
        Object::Pipeline(p) => vec![
            p.metadata.name.clone(),
            p.spec.tasks.len().to_string(),
            if p.metadata.label("ops/copilot") == Some("enabled") {
                "yes"
            } else {
                "-"
            }
            .into(),
            desc(&p.spec.desc),
        ],
        Object::TaskRun(r) => vec![
            r.metadata.name.clone(),
            or_dash(r.spec.task_ref.as_deref()),
            or_dash(r.spec.crontab.as_deref()),
            or_dash(r.status.as_ref().and_then(|s| s.run_status.as_deref())),
            desc(&r.spec.desc),
        ],
        Object::PipelineRun(r) => vec![
            r.metadata.name.clone(),
            or_dash(r.spec.pipeline_ref.as_deref()),
            or_dash(r.spec.crontab.as_deref()),
            or_dash(r.status.as_ref().and_then(|s| s.run_status.as_deref())),
            desc(&r.spec.desc),
        ],
        Object::EventHooks(e) => vec![
            e.metadata.name.clone(),
            or_dash(e.spec.type_.as_deref()),
            or_dash(e.spec.subject.as_deref()),
            cell(e.spec.url.as_deref().unwrap_or("-"), DESC_WIDTH),
        ],
    };
    if wide {
        let labels: Vec<String> = o.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
        r.push(if labels.is_empty() {
            "-".into()
        } else {
            labels.join(",")
        });
    }
    r
}

/// A table of objects of one kind.
pub fn table(kind: Kind, objects: &[StoredObject], all_namespaces: bool, wide: bool) -> String {
    let mut h = headers(kind, wide);
    if all_namespaces {
        h.insert(0, "NAMESPACE");
    }
    let mut t = Table::new(h);
    for s in objects {
        let mut r = row(&s.object, wide);
        if all_namespaces {
            r.insert(0, s.key.namespace.clone());
        }
        t.row(r);
    }
    t.to_string()
}

/// Redacted YAML: one document, or `---`-separated documents.
pub fn yaml(objects: &[Object]) -> Result<String> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(&o.redacted())?);
    }
    Ok(out)
}

/// Redacted JSON: one object, or a kubectl-style `List` when `list`.
pub fn json(objects: &[Object], list: bool) -> Result<String> {
    let redacted: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| o.redacted().to_json())
        .collect::<Result<_, _>>()?;
    let value = match (list, redacted.len()) {
        (false, 1) => redacted.into_iter().next().unwrap_or_default(),
        _ => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": redacted}),
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
}

/// Objects in `format`; `list` says whether the caller asked for a list
/// (no names) rather than specific objects.
pub fn render(
    kind: Kind,
    objects: &[StoredObject],
    format: Format,
    all_namespaces: bool,
    list: bool,
) -> Result<String> {
    let plain: Vec<Object> = objects.iter().map(|s| s.object.clone()).collect();
    Ok(match format {
        Format::Table => table(kind, objects, all_namespaces, false),
        Format::Wide => table(kind, objects, all_namespaces, true),
        Format::Yaml => yaml(&plain)?,
        Format::Json => json(&plain, list)?,
        Format::Name => objects
            .iter()
            .map(|s| format!("{}/{}\n", kind.as_str().to_ascii_lowercase(), s.key.name))
            .collect(),
    })
}
