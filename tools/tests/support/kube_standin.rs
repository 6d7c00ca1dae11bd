//! A STAND-IN for a Kubernetes API server (no real one can run on these
//! machines): an axum server over plain HTTP on loopback that speaks the
//! real API paths and JSON (k8s-openapi types) for what the executor uses:
//! nodes (list, get), pods (create, get, log, delete). A created pod is
//! *run*: its command, after the `nsenter ...` prefix, runs as a local
//! process whose combined output is the pod log and whose exit code is the
//! container's; deleting the pod kills that process group. Requests must
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
}

#[derive(Clone)]
struct AppState {
    token: String,
    nodes: Arc<Vec<Node>>,
    pods: Arc<Mutex<BTreeMap<(String, String), PodRun>>>,
    created: Arc<Mutex<Vec<Pod>>>,
}

pub struct KubeStandIn {
    pub url: String,
    pub token: String,
    created: Arc<Mutex<Vec<Pod>>>,
    pods: Arc<Mutex<BTreeMap<(String, String), PodRun>>>,
    task: tokio::task::JoinHandle<()>,
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
    let run = PodRun {
        pod: pod.clone(),
        ..PodRun::default()
    };
    let (logs, exit, pgid) = (
        Arc::clone(&run.logs),
        Arc::clone(&run.exit),
        Arc::clone(&run.pgid),
    );
    st.pods.lock().unwrap().insert((ns, name), run);
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
) -> Response {
    if !authorized(&st, &h) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    match st.pods.lock().unwrap().get(&(ns, name.clone())) {
        Some(r) => r.logs.lock().unwrap().clone().into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
        ),
    }
}

impl KubeStandIn {
    pub async fn start(nodes: Vec<Node>) -> KubeStandIn {
        let token = "stand-in-token".to_owned();
        let st = AppState {
            token: token.clone(),
            nodes: Arc::new(nodes),
            pods: Arc::default(),
            created: Arc::default(),
        };
        let app = Router::new()
            .route("/api/v1/nodes", get(list_nodes))
            .route("/api/v1/nodes/{name}", get(get_node))
            .route(
                "/api/v1/namespaces/{ns}/pods",
                axum::routing::post(create_pod),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                get(get_pod).delete(delete_pod),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .fallback(|| async {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the stand-in does not serve this path",
                )
            })
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

    /// Pods created so far (as submitted).
    pub fn created(&self) -> Vec<Pod> {
        self.created.lock().unwrap().clone()
    }

    /// Pods that still exist.
    pub fn live_pods(&self) -> usize {
        self.pods.lock().unwrap().len()
    }
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
