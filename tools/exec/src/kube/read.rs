//! Read-only cluster operations, for `opscli cluster ...` and the
//! copilot's `cluster_*` tools: resolve any resource name the way kubectl
//! does (plural, singular, kind, short name, `name.group`), get and list
//! any resource, describe (the object plus its events), pod logs with tail
//! and since, and events for an object.
//!
//! Secrets never leave this module with their values: `data` and
//! `stringData` are replaced by `<redacted: N bytes>` and the
//! last-applied annotation (which holds the values too) is dropped.
//! `managedFields` is dropped from every object (noise for people and
//! models alike).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::{describe_error, err};
use crate::ExecError;

/// A resource type found by discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Group, version, kind and plural.
    pub api: ApiResource,
    /// Namespaced (pods) or cluster-wide (nodes).
    pub namespaced: bool,
    /// Short names (`po`, `deploy`).
    pub short_names: Vec<String>,
}

impl Resource {
    /// `deployments.apps`, `pods`.
    pub fn display_name(&self) -> String {
        if self.api.group.is_empty() {
            self.api.plural.clone()
        } else {
            format!("{}.{}", self.api.plural, self.api.group)
        }
    }
}

fn matches(r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource, want: &str) -> bool {
    if r.name.contains('/') {
        return false; // subresources (pods/log) are not types
    }
    let want = want.to_ascii_lowercase();
    r.name == want
        || r.singular_name.to_ascii_lowercase() == want
        || r.kind.to_ascii_lowercase() == want
        || r.short_names.as_ref().is_some_and(|s| s.contains(&want))
}

fn pick(list: &APIResourceList, want: &str) -> Option<Resource> {
    let (group, version) = match list.group_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), list.group_version.clone()),
    };
    list.resources.iter().find(|r| matches(r, want)).map(|r| {
        let gvk = GroupVersionKind::gvk(&group, &version, &r.kind);
        Resource {
            api: ApiResource::from_gvk_with_plural(&gvk, &r.name),
            namespaced: r.namespaced,
            short_names: r.short_names.clone().unwrap_or_default(),
        }
    })
}

/// Finds a resource type by any of its names: `pods`, `pod`, `Pod`, `po`,
/// `deployments.apps`, `deploy`. The core group is searched first, then
/// the preferred version of every other group, in the server's order.
pub async fn resolve(
    client: &kube::Client,
    cluster: &str,
    name: &str,
) -> Result<Resource, ExecError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(err(
            cluster,
            "which resource type? (pods, deployments, nodes, ...)",
        ));
    }
    let (want, group) = match name.split_once('.') {
        Some((w, g)) => (w, Some(g)),
        None => (name, None),
    };
    if group.is_none() || group == Some("") || group == Some("core") {
        let core = client.list_core_api_resources("v1").await.map_err(|e| {
            err(
                cluster,
                format!("discovery (/api/v1): {}", describe_error(&e)),
            )
        })?;
        if let Some(r) = pick(&core, want) {
            return Ok(r);
        }
    }
    let groups = client.list_api_groups().await.map_err(|e| {
        err(
            cluster,
            format!("discovery (/apis): {}", describe_error(&e)),
        )
    })?;
    for g in &groups.groups {
        if group.is_some_and(|want_group| want_group != g.name) {
            continue;
        }
        let Some(gv) = g
            .preferred_version
            .as_ref()
            .map(|v| v.group_version.clone())
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()))
        else {
            continue;
        };
        // A broken aggregated API (metrics-server down) must not hide the rest.
        let Ok(list) = client.list_api_group_resources(&gv).await else {
            continue;
        };
        if let Some(r) = pick(&list, want) {
            return Ok(r);
        }
    }
    Err(err(
        cluster,
        format!("the server has no resource type `{name}`"),
    ))
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Namespace; `None` lists across all namespaces.
    pub namespace: Option<String>,
    /// Label selector (`app=web,tier!=db`).
    pub labels: Option<String>,
    /// Field selector (`status.phase=Running`).
    pub fields: Option<String>,
    /// At most this many (server-side `limit`).
    pub limit: Option<u32>,
}

fn api_for(client: &kube::Client, r: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
    match (r.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &r.api),
        _ => Api::all_with(client.clone(), &r.api),
    }
}

/// Lists objects of a resource type, redacted, sorted by namespace and
/// name.
pub async fn list(
    client: &kube::Client,
    cluster: &str,
    r: &Resource,
    q: &ListQuery,
) -> Result<Vec<DynamicObject>, ExecError> {
    let api = api_for(client, r, q.namespace.as_deref());
    let mut lp = ListParams::default();
    if let Some(l) = q.labels.as_deref().filter(|l| !l.is_empty()) {
        lp = lp.labels(l);
    }
    if let Some(f) = q.fields.as_deref().filter(|f| !f.is_empty()) {
        lp = lp.fields(f);
    }
    if let Some(n) = q.limit {
        lp = lp.limit(n);
    }
    let mut items = api
        .list(&lp)
        .await
        .map_err(|e| {
            err(
                cluster,
                format!("list {}: {}", r.display_name(), describe_error(&e)),
            )
        })?
        .items;
    for o in &mut items {
        redact(&r.api.kind, o);
    }
    items.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(items)
}

/// One object, redacted.
pub async fn get(
    client: &kube::Client,
    cluster: &str,
    r: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<DynamicObject, ExecError> {
    if r.namespaced && namespace.is_none() {
        return Err(err(
            cluster,
            format!("{} are namespaced: give a namespace", r.display_name()),
        ));
    }
    let api = api_for(client, r, namespace);
    let mut o = api.get(name).await.map_err(|e| {
        err(
            cluster,
            format!(
                "get {} {name}{}: {}",
                r.display_name(),
                namespace
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default(),
                describe_error(&e)
            ),
        )
    })?;
    redact(&r.api.kind, &mut o);
    Ok(o)
}

/// Removes what must never be shown: Secret values (and the last-applied
/// annotation that repeats them), and `managedFields` everywhere.
pub fn redact(kind: &str, o: &mut DynamicObject) {
    o.metadata.managed_fields = None;
    if kind != "Secret" {
        return;
    }
    if let Some(a) = o.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Value::Object(m) = &mut o.data {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(entries)) = m.get_mut(field) {
                for v in entries.values_mut() {
                    let len = v.as_str().map_or(0, |s| {
                        if field == "data" {
                            // base64: 4 characters carry 3 bytes
                            s.trim_end_matches('=').len() * 3 / 4
                        } else {
                            s.len()
                        }
                    });
                    *v = Value::String(format!("<redacted: {len} bytes>"));
                }
            }
        }
    }
}

/// An event, flattened for display.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventLine {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `BackOff`, `Scheduled`, ...
    pub reason: String,
    /// `Pod/web-1`.
    pub object: String,
    /// Namespace of the object.
    pub namespace: String,
    /// What happened.
    pub message: String,
    /// How many times.
    pub count: i32,
    /// Last seen (RFC 3339), when known.
    pub last_seen: Option<String>,
}

fn event_line(e: Event) -> EventLine {
    let last = e
        .last_timestamp
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.map(|t| t.0.to_string()));
    EventLine {
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object.kind.unwrap_or_default(),
            e.involved_object.name.unwrap_or_default()
        ),
        namespace: e
            .involved_object
            .namespace
            .or(e.metadata.namespace)
            .unwrap_or_default(),
        message: e.message.unwrap_or_default().trim_end().to_owned(),
        count: e.count.unwrap_or(1),
        last_seen: last,
    }
}

/// Events in `namespace` (all namespaces when `None`), only those about
/// `object` (`(kind, name)`) when given; oldest first.
pub async fn events(
    client: &kube::Client,
    cluster: &str,
    namespace: Option<&str>,
    object: Option<(&str, &str)>,
) -> Result<Vec<EventLine>, ExecError> {
    let api: Api<Event> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut lp = ListParams::default();
    if let Some((kind, name)) = object {
        lp = lp.fields(&format!(
            "involvedObject.kind={kind},involvedObject.name={name}"
        ));
    }
    let mut items: Vec<EventLine> = api
        .list(&lp)
        .await
        .map_err(|e| err(cluster, format!("list events: {}", describe_error(&e))))?
        .items
        .into_iter()
        .map(event_line)
        // The field selector is honoured by real servers; filtering again
        // keeps the answer right where it is not.
        .filter(|l| object.is_none_or(|(k, n)| l.object == format!("{k}/{n}")))
        .collect();
    items.sort_by(|a, b| a.last_seen.cmp(&b.last_seen));
    Ok(items)
}

/// Which part of a pod's log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Container (needed when the pod has several).
    pub container: Option<String>,
    /// Last N lines.
    pub tail: Option<i64>,
    /// Only lines newer than this.
    pub since: Option<Duration>,
    /// The previous (crashed) container's log.
    pub previous: bool,
    /// At most this many bytes from the server.
    pub limit_bytes: Option<i64>,
}

/// A pod's log.
pub async fn logs(
    client: &kube::Client,
    cluster: &str,
    namespace: &str,
    pod: &str,
    q: &LogQuery,
) -> Result<String, ExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = LogParams {
        container: q.container.clone(),
        tail_lines: q.tail,
        since_seconds: q
            .since
            .map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)),
        previous: q.previous,
        limit_bytes: q.limit_bytes,
        timestamps: false,
        ..LogParams::default()
    };
    api.logs(pod, &lp).await.map_err(|e| {
        err(
            cluster,
            format!("log of pod {namespace}/{pod}: {}", describe_error(&e)),
        )
    })
}

/// A readable description: the object as YAML (redacted, without
/// `managedFields`) followed by its events.
pub async fn describe(
    client: &kube::Client,
    cluster: &str,
    r: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<String, ExecError> {
    let o = get(client, cluster, r, namespace, name).await?;
    let mut out = serde_yaml::to_string(&o).map_err(|e| err(cluster, e))?;
    let ns = o.metadata.namespace.as_deref().or(namespace);
    let evs = events(client, cluster, ns, Some((&r.api.kind, name))).await?;
    out.push_str("\nEvents:\n");
    if evs.is_empty() {
        out.push_str("  <none>\n");
    }
    for e in evs {
        out.push_str(&format!(
            "  {:<8} {:<20} x{:<3} {}  {}\n",
            e.type_,
            e.reason,
            e.count,
            e.last_seen.unwrap_or_default(),
            e.message
        ));
    }
    Ok(out)
}

/// A short status for list views: pod phase and readiness, deployment
/// replicas, node readiness, or the `Ready` condition where there is one.
pub fn status_of(kind: &str, o: &DynamicObject) -> String {
    let s = o.data.get("status");
    let get = |path: &[&str]| -> Option<&Value> {
        let mut v = s?;
        for p in path {
            v = v.get(p)?;
        }
        Some(v)
    };
    match kind {
        "Pod" => {
            let phase = get(&["phase"]).and_then(Value::as_str).unwrap_or("Unknown");
            let statuses = get(&["containerStatuses"]).and_then(Value::as_array);
            let waiting = statuses.and_then(|cs| {
                cs.iter().find_map(|c| {
                    c.pointer("/state/waiting/reason")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
            });
            let (ready, total) = statuses.map_or((0, 0), |cs| {
                (
                    cs.iter()
                        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                        .count(),
                    cs.len(),
                )
            });
            let restarts: i64 = statuses.map_or(0, |cs| {
                cs.iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .sum()
            });
            format!(
                "{} {ready}/{total} restarts={restarts}",
                waiting.unwrap_or_else(|| phase.to_owned())
            )
        }
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let want = o
                .data
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = get(&["readyReplicas"]).and_then(Value::as_i64).unwrap_or(0);
            format!("{ready}/{want} ready")
        }
        _ => {
            let conds = get(&["conditions"]).and_then(Value::as_array);
            let ready = conds.and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            });
            match ready.and_then(|c| c.get("status")).and_then(Value::as_str) {
                Some("True") => "Ready".into(),
                Some(_) => "NotReady".into(),
                None => get(&["phase"])
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            }
        }
    }
}

/// `name -> value` of a label map, `k=v,k2=v2`.
pub fn labels_text(l: Option<&BTreeMap<String, String>>) -> String {
    l.map(|l| {
        l.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
    .unwrap_or_default()
}
