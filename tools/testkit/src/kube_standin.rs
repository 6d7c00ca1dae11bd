//! A STAND-IN for a Kubernetes API server (no real one can run on these
//! machines): an axum server over plain HTTP on loopback that speaks the
//! real API paths and JSON (k8s-openapi types) for what ops uses:
//! - discovery (`/api/v1`, `/apis`, `/apis/apps/v1`, with short names and
//!   subresources, as a real server lists them);
//! - `/version`;
//! - nodes (list, get), pods (create, get, list, log, delete, exec);
//! - any seeded object (configmaps, secrets, deployments, events, ...):
//!   get, list per namespace or across all, label selectors (equality) and
//!   the events field selector (`involvedObject.kind/name`);
//! - pod logs with `tailLines`, `sinceSeconds` and `previous`;
//! - `exec` over a WebSocket, channel protocol v5 (or v4): stdin, stdout
//!   and stderr frames, and the final `Status` with the exit code.
//!
//! A created pod is *run*: its command, after the `nsenter ...` prefix,
//! runs as a local process whose combined output is the pod log and whose
//! exit code is the container's; deleting the pod kills that process
//! group. An exec runs its argv (after an `nsenter ...` prefix) as a local
//! process too and, as on a real kubelet, is **not** made a process-group
//! leader and is **not** killed when the client goes away. Requests must
//! carry the bearer token. Every created pod is kept for assertions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

#[derive(Default)]
struct PodRun {
    pod: Pod,
    logs: Arc<Mutex<String>>,
    exit: Arc<Mutex<Option<i32>>>,
    pgid: Arc<Mutex<Option<u32>>>,
    /// The image cannot be pulled (an image named `...no-such-image...`):
    /// the pod stays Pending with `ErrImagePull`, as on a real node.
    pull_fails: bool,
}

/// A seeded pod log: lines with their age in seconds, and the previous
/// container's log if it crashed.
#[derive(Clone, Default)]
pub struct SeededLog {
    pub lines: Vec<(u64, String)>,
    pub previous: Option<String>,
}

type ObjectKey = (String, String, String); // plural, namespace ("" = cluster), name

#[derive(Clone)]
struct AppState {
    token: String,
    nodes: Arc<Vec<Node>>,
    pods: Arc<Mutex<BTreeMap<(String, String), PodRun>>>,
    created: Arc<Mutex<Vec<Pod>>>,
    objects: Arc<Mutex<BTreeMap<ObjectKey, serde_json::Value>>>,
    logs: Arc<Mutex<BTreeMap<(String, String), SeededLog>>>,
    execs: Arc<Mutex<Vec<Vec<String>>>>,
}

pub struct KubeStandIn {
    pub url: String,
    pub token: String,
    created: Arc<Mutex<Vec<Pod>>>,
    pods: Arc<Mutex<BTreeMap<(String, String), PodRun>>>,
    objects: Arc<Mutex<BTreeMap<ObjectKey, serde_json::Value>>>,
    logs: Arc<Mutex<BTreeMap<(String, String), SeededLog>>>,
    execs: Arc<Mutex<Vec<Vec<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// (group, version, plural, kind, namespaced, short names).
type ResourceRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
);

/// The resource types served.
const RESOURCES: &[ResourceRow] = &[
    ("", "v1", "pods", "Pod", true, &["po"]),
    ("", "v1", "nodes", "Node", false, &["no"]),
    ("", "v1", "events", "Event", true, &["ev"]),
    ("", "v1", "secrets", "Secret", true, &[]),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
    ("", "v1", "namespaces", "Namespace", false, &["ns"]),
    ("", "v1", "services", "Service", true, &["svc"]),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
];

fn plural_of(kind: &str) -> Option<&'static str> {
    RESOURCES.iter().find(|r| r.3 == kind).map(|r| r.2)
}

fn resource_list(group: &str, version: &str) -> serde_json::Value {
    let mut resources: Vec<serde_json::Value> = RESOURCES
        .iter()
        .filter(|r| r.0 == group && r.1 == version)
        .map(|r| {
            serde_json::json!({
                "name": r.2, "singularName": r.3.to_lowercase(), "namespaced": r.4,
                "kind": r.3, "verbs": ["get", "list"], "shortNames": r.5,
            })
        })
        .collect();
    if group.is_empty() {
        // Subresources are listed too; clients must skip them.
        for sub in ["pods/log", "pods/exec"] {
            resources.push(serde_json::json!({"name": sub, "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn query_get(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Equality label selectors (`a=b,c!=d`, `a==b`).
fn labels_match(obj: &serde_json::Value, selector: &str) -> bool {
    let labels = obj.pointer("/metadata/labels");
    selector
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .all(|term| {
            let term = term.trim();
            if let Some((k, v)) = term.split_once("!=") {
                labels
                    .and_then(|l| l.get(k.trim()))
                    .and_then(|x| x.as_str())
                    != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                let v = v.trim_start_matches('=');
                labels
                    .and_then(|l| l.get(k.trim()))
                    .and_then(|x| x.as_str())
                    == Some(v.trim())
            } else {
                labels.and_then(|l| l.get(term)).is_some()
            }
        })
}

/// The field selectors a server supports for events (and `metadata.name`).
fn fields_match(obj: &serde_json::Value, selector: &str) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let Some((k, v)) = term.split_once('=') else {
            return false;
        };
        let path = match k {
            "involvedObject.kind" => "/involvedObject/kind",
            "involvedObject.name" => "/involvedObject/name",
            "involvedObject.namespace" => "/involvedObject/namespace",
            "metadata.name" => "/metadata/name",
            "metadata.namespace" => "/metadata/namespace",
            "status.phase" => "/status/phase",
            _ => return false,
        };
        obj.pointer(path).and_then(|x| x.as_str()) == Some(v)
    })
}

/// A node with labels and taints.
pub fn node(
    name: &str,
    labels: &[(&str, &str)],
    taints: &[(&str, Option<&str>, &str)],
    ready: bool,
) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, v, e)| Taint {
                        key: k.to_string(),
                        value: v.map(str::to_owned),
                        effect: e.to_string(),
                        ..Taint::default()
                    })
                    .collect(),
            ),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True".into() } else { "False".into() },
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    (code, axum::Json(body)).into_response()
}

fn authorized(st: &AppState, h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {}", st.token))
}

fn with_status(run: &PodRun) -> Pod {
    let mut p = run.pod.clone();
    if run.pull_fails {
        p.status = Some(
            serde_json::from_value(serde_json::json!({
                "phase": "Pending",
                "containerStatuses": [{"name": "shell", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ErrImagePull", "message": "failed to pull image: not found"}}}]
            }))
            .unwrap(),
        );
        return p;
    }
    let exit = *run.exit.lock().unwrap();
    let state = match exit {
        None => serde_json::json!({"running": {}}),
        Some(c) => serde_json::json!({"terminated": {"exitCode": c}}),
    };
    let phase = match exit {
        None => "Running",
        Some(0) => "Succeeded",
        Some(_) => "Failed",
    };
    p.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": phase,
            "containerStatuses": [{"name": "shell", "image": "x", "imageID": "", "ready": exit.is_none(), "restartCount": 0, "state": state}]
        }))
        .unwrap(),
    );
    p
}

async fn list_nodes(State(st): State<AppState>, h: HeaderMap) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    axum::Json(serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"}, "items": *st.nodes})).into_response()
}

async fn get_node(State(st): State<AppState>, h: HeaderMap, Path(name): Path<String>) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    match st
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(&name))
    {
        Some(n) => axum::Json(n.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("nodes \"{name}\" not found"),
        ),
    }
}

async fn create_pod(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(ns): Path<String>,
    axum::Json(mut pod): axum::Json<Pod>,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    if !st
        .nodes
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some(&node))
    {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            &format!("node \"{node}\" not found"),
        );
    }
    pod.metadata.namespace = Some(ns.clone());
    st.created.lock().unwrap().push(pod.clone());
    let cmd = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.command.clone())
        .unwrap_or_default();
    // Run what the node would run: drop the `nsenter ... ` prefix.
    let start = cmd.iter().position(|a| a == "sh").unwrap_or(0);
    let argv: Vec<String> = cmd[start..].to_vec();
    let pull_fails = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .is_some_and(|i| i.contains("no-such-image"));
    let run = PodRun {
        pod: pod.clone(),
        pull_fails,
        ..PodRun::default()
    };
    let (logs, exit, pgid) = (
        Arc::clone(&run.logs),
        Arc::clone(&run.exit),
        Arc::clone(&run.pgid),
    );
    st.pods.lock().unwrap().insert((ns, name), run);
    if pull_fails {
        return (StatusCode::CREATED, axum::Json(pod)).into_response();
    }
    tokio::spawn(async move {
        use std::process::Stdio;
        let Some((prog, args)) = argv.split_first() else {
            *exit.lock().unwrap() = Some(127);
            return;
        };
        let child = tokio::process::Command::new(prog)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(child) = child else {
            *exit.lock().unwrap() = Some(127);
            return;
        };
        *pgid.lock().unwrap() = child.id();
        let out = child.wait_with_output().await.unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        *logs.lock().unwrap() = text;
        *exit.lock().unwrap() = Some(out.status.code().unwrap_or(137));
    });
    (StatusCode::CREATED, axum::Json(pod)).into_response()
}

async fn get_pod(
    State(st): State<AppState>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if let Some(o) = st
        .objects
        .lock()
        .unwrap()
        .get(&("pods".to_owned(), ns.clone(), name.clone()))
    {
        return axum::Json(o.clone()).into_response();
    }
    match st.pods.lock().unwrap().get(&(ns, name.clone())) {
        Some(r) => axum::Json(with_status(r)).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        ),
    }
}

async fn delete_pod(
    State(st): State<AppState>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    match st.pods.lock().unwrap().remove(&(ns, name.clone())) {
        Some(r) => {
            // Never through `/usr/bin/kill -9 -PGID`: procps mis-parses it
            // (it became kill(-1, SIGKILL) once, killing every process).
            if let Some(pgid) = *r.pgid.lock().unwrap() {
                let own = nix::unistd::getpgrp().as_raw();
                if let Ok(g) = i32::try_from(pgid) {
                    if g > 1 && g != own {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(g),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            axum::Json(with_status(&r)).into_response()
        }
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        ),
    }
}

async fn pod_log(
    State(st): State<AppState>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let pairs = query_pairs(q.as_deref());
    let tail: Option<usize> = query_get(&pairs, "tailLines").and_then(|v| v.parse().ok());
    let since: Option<u64> = query_get(&pairs, "sinceSeconds").and_then(|v| v.parse().ok());
    let previous = query_get(&pairs, "previous").as_deref() == Some("true");
    let lines: Vec<String> =
        if let Some(r) = st.pods.lock().unwrap().get(&(ns.clone(), name.clone())) {
            r.logs
                .lock()
                .unwrap()
                .split_inclusive('\n')
                .map(str::to_owned)
                .collect()
        } else if let Some(l) = st.logs.lock().unwrap().get(&(ns.clone(), name.clone())) {
            if previous {
                match &l.previous {
                    Some(p) => p.split_inclusive('\n').map(str::to_owned).collect(),
                    None => {
                        return status(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            &format!(
                                "previous terminated container \"app\" in pod \"{name}\" not found"
                            ),
                        );
                    }
                }
            } else {
                l.lines
                    .iter()
                    .filter(|(age, _)| since.is_none_or(|s| *age <= s))
                    .map(|(_, t)| format!("{t}\n"))
                    .collect()
            }
        } else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("pods \"{name}\" not found"),
            );
        };
    let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
    lines[skip..].concat().into_response()
}

fn object_list(items: Vec<serde_json::Value>, kind: &str) -> Response {
    axum::Json(serde_json::json!({
        "apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items
    }))
    .into_response()
}

fn all_pods(st: &AppState, ns: Option<&str>) -> Vec<serde_json::Value> {
    let mut items: Vec<serde_json::Value> = st
        .pods
        .lock()
        .unwrap()
        .iter()
        .filter(|((n, _), _)| ns.is_none_or(|w| w == n))
        .map(|(_, r)| serde_json::to_value(with_status(r)).unwrap())
        .collect();
    items.extend(
        st.objects
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, n, _), _)| p == "pods" && ns.is_none_or(|w| w == n))
            .map(|(_, v)| v.clone()),
    );
    items
}

async fn list_ns_pods(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(ns): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let pairs = query_pairs(q.as_deref());
    let items = all_pods(&st, Some(&ns))
        .into_iter()
        .filter(|o| query_get(&pairs, "labelSelector").is_none_or(|s| labels_match(o, &s)))
        .filter(|o| query_get(&pairs, "fieldSelector").is_none_or(|s| fields_match(o, &s)))
        .collect();
    object_list(items, "Pod")
}

/// Discovery and every seeded object (GET only).
async fn generic(
    State(st): State<AppState>,
    method: axum::http::Method,
    h: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if method != axum::http::Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the stand-in only reads here",
        );
    }
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Discovery.
    match segs.as_slice() {
        ["api"] => return axum::Json(serde_json::json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})).into_response(),
        ["api", "v1"] => return axum::Json(resource_list("", "v1")).into_response(),
        ["apis"] => return axum::Json(serde_json::json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}], "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]
        })).into_response(),
        ["apis", g, v] => return axum::Json(resource_list(g, v)).into_response(),
        _ => {}
    }
    // Objects: /api/v1/[namespaces/NS/]PLURAL[/NAME], /apis/G/V/[namespaces/NS/]PLURAL[/NAME]
    let rest: &[&str] = match segs.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => &[],
    };
    let (ns, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the stand-in does not serve this path",
            );
        }
    };
    let Some(res) = RESOURCES.iter().find(|r| r.2 == plural) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({plural})"),
        );
    };
    let pairs = query_pairs(uri.query());
    let objects = st.objects.lock().unwrap().clone();
    match name {
        Some(name) => {
            let key = (
                plural.to_owned(),
                ns.unwrap_or("").to_owned(),
                name.to_owned(),
            );
            match objects.get(&key) {
                Some(o) => axum::Json(o.clone()).into_response(),
                None => {
                    let what = if res.0.is_empty() {
                        plural.to_owned()
                    } else {
                        format!("{plural}.{}", res.0)
                    };
                    status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        &format!("{what} \"{name}\" not found"),
                    )
                }
            }
        }
        None => {
            let mut items: Vec<serde_json::Value> = if plural == "pods" {
                all_pods(&st, ns)
            } else {
                objects
                    .iter()
                    .filter(|((p, n, _), _)| p == plural && ns.is_none_or(|w| w == n))
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            items
                .retain(|o| query_get(&pairs, "labelSelector").is_none_or(|s| labels_match(o, &s)));
            items
                .retain(|o| query_get(&pairs, "fieldSelector").is_none_or(|s| fields_match(o, &s)));
            object_list(items, res.3)
        }
    }
}

/// Pod exec over a WebSocket (v5/v4 channel protocol).
async fn exec_pod(
    State(st): State<AppState>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let exists = st
        .pods
        .lock()
        .unwrap()
        .contains_key(&(ns.clone(), name.clone()))
        || st
            .objects
            .lock()
            .unwrap()
            .contains_key(&("pods".to_owned(), ns.clone(), name.clone()));
    if !exists {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        );
    }
    let pairs = query_pairs(q.as_deref());
    let argv: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let with_stdin = query_get(&pairs, "stdin").as_deref() == Some("true");
    st.execs.lock().unwrap().push(argv.clone());
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    ws.on_upgrade(move |socket| run_exec(socket, argv, with_stdin))
}

async fn run_exec(socket: axum::extract::ws::WebSocket, argv: Vec<String>, with_stdin: bool) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut tx, mut rx) = socket.split();
    let argv: Vec<String> = if argv.first().map(String::as_str) == Some("nsenter") {
        let start = argv.iter().position(|a| a == "sh").unwrap_or(argv.len());
        argv[start..].to_vec()
    } else {
        argv
    };
    let Some((prog, args)) = argv.split_first() else {
        let _ = tx.send(Message::Binary(status_frame(127).into())).await;
        return;
    };
    let child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        let _ = tx.send(Message::Binary(status_frame(127).into())).await;
        return;
    };
    let mut stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (ftx, mut frx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let (otx, etx) = (ftx.clone(), ftx.clone());
    let pump_out = tokio::spawn(async move {
        let mut b = vec![0u8; 16 * 1024];
        loop {
            match out.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut f = vec![1u8];
                    f.extend_from_slice(&b[..n]);
                    if otx.send(f).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let pump_err = tokio::spawn(async move {
        let mut b = vec![0u8; 16 * 1024];
        loop {
            match err.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut f = vec![2u8];
                    f.extend_from_slice(&b[..n]);
                    if etx.send(f).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    drop(ftx);
    // Client -> process (stdin), until close; the process is NOT killed
    // when the client goes away (as on a real kubelet).
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Binary(b) if b.first() == Some(&0) => {
                    if let Some(s) = stdin.as_mut() {
                        if s.write_all(&b[1..]).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Message::Binary(b) if b.as_ref() == [255u8, 0] => {
                    stdin = None;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        drop(stdin);
    });
    let mut client_gone = false;
    while let Some(f) = frx.recv().await {
        if !client_gone && tx.send(Message::Binary(f.into())).await.is_err() {
            client_gone = true;
        }
    }
    let _ = pump_out.await;
    let _ = pump_err.await;
    let code = child
        .wait()
        .await
        .ok()
        .and_then(|s| s.code())
        .unwrap_or(137);
    if !client_gone {
        let _ = tx.send(Message::Binary(status_frame(code).into())).await;
        let _ = tx.close().await;
    }
    reader.abort();
}

fn status_frame(code: i32) -> Vec<u8> {
    let st = if code == 0 {
        serde_json::json!({"metadata": {}, "status": "Success"})
    } else {
        serde_json::json!({
            "metadata": {}, "status": "Failure", "message": format!("command terminated with non-zero exit code: {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        })
    };
    let mut f = vec![3u8];
    f.extend_from_slice(&serde_json::to_vec(&st).unwrap());
    f
}

impl KubeStandIn {
    pub async fn start(nodes: Vec<Node>) -> KubeStandIn {
        let token = "stand-in-token".to_owned();
        let st = AppState {
            token: token.clone(),
            nodes: Arc::new(nodes),
            pods: Arc::default(),
            created: Arc::default(),
            objects: Arc::default(),
            logs: Arc::default(),
            execs: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/version",
                get(|| async {
                    axum::Json(serde_json::json!({
                        "major": "1", "minor": "31", "gitVersion": "v1.31.0-standin",
                        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                        "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"
                    }))
                }),
            )
            .route("/api/v1/nodes", get(list_nodes))
            .route("/api/v1/nodes/{name}", get(get_node))
            .route(
                "/api/v1/namespaces/{ns}/pods",
                axum::routing::post(create_pod).get(list_ns_pods),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/exec", get(exec_pod))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                get(get_pod).delete(delete_pod),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .fallback(generic)
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KubeStandIn {
            url,
            token,
            created: st.created,
            pods: st.pods,
            objects: st.objects,
            logs: st.logs,
            execs: st.execs,
            task,
        }
    }

    /// A kubeconfig pointing at it.
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\nclusters:\n- name: standin\n  cluster: {{server: \"{}\"}}\nusers:\n- name: u\n  user: {{token: {token}}}\ncontexts:\n- name: standin\n  context: {{cluster: standin, user: u}}\n",
            self.url
        )
    }

    /// A Cluster object named `lab` reaching the stand-in with `token`
    /// (its kubeconfig written into `dir`).
    pub fn cluster_object(&self, dir: &std::path::Path, token: &str) -> ops_model::Cluster {
        let path = dir.join(format!("kubeconfig-{token}"));
        std::fs::write(&path, self.kubeconfig(token)).unwrap();
        let yaml = format!(
            "apiVersion: ops.dev/v1\nkind: Cluster\nmetadata: {{name: lab}}\nspec:\n  kubeconfigPath: {}\n",
            path.display()
        );
        match ops_model::parse_documents(&yaml).unwrap().remove(0).object {
            ops_model::Object::Cluster(c) => c,
            _ => unreachable!(),
        }
    }

    /// Pods created so far (as submitted).
    pub fn created(&self) -> Vec<Pod> {
        self.created.lock().unwrap().clone()
    }

    /// Pods that still exist.
    pub fn live_pods(&self) -> usize {
        self.pods.lock().unwrap().len()
    }

    /// Adds an object (JSON with apiVersion, kind, metadata); it can then
    /// be read, listed and selected.
    pub fn seed(&self, obj: serde_json::Value) {
        let kind = obj["kind"].as_str().unwrap().to_owned();
        let plural = plural_of(&kind).unwrap_or_else(|| panic!("stand-in does not serve {kind}"));
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let name = obj
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap()
            .to_owned();
        self.objects
            .lock()
            .unwrap()
            .insert((plural.to_owned(), ns, name), obj);
    }

    /// A log for a seeded pod.
    pub fn seed_log(&self, ns: &str, pod: &str, log: SeededLog) {
        self.logs
            .lock()
            .unwrap()
            .insert((ns.into(), pod.into()), log);
    }

    /// Every exec argv received, in order.
    pub fn execs(&self) -> Vec<Vec<String>> {
        self.execs.lock().unwrap().clone()
    }
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
