//! Running a command on a Kubernetes node the anchor's way: a pod pinned to
//! the node (`nodeName`), `hostPID` and `hostNetwork`, privileged, with
//! tolerations copied from the node's taints, whose command enters the
//! host's namespaces (`nsenter -t 1 -m -u -i -n`) and runs the same
//! wrapper as every other executor. Output comes from the pod's log (one
//! stream: Kubernetes does not keep stdout and stderr apart); the exit code
//! from the container status. The pod is deleted afterwards, and deleting it
//! is how a timeout or cancellation stops the command.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, SecurityContext, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::exec::output::Collector;
use crate::exec::script::{PGID_MARKER, Sudo, command_line};
use crate::exec::{ExecError, ExecOutput, ExecRequest, Executor, ExitStatus, OutputSink, Transfer};

/// Runs commands on one node through a short-lived privileged pod.
#[derive(Clone)]
pub struct NodeExecutor {
    client: kube::Client,
    cluster: String,
    node: String,
    namespace: String,
    image: String,
}

impl std::fmt::Debug for NodeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeExecutor")
            .field("cluster", &self.cluster)
            .field("node", &self.node)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl NodeExecutor {
    /// An executor for `node` of `cluster`, with pods in `namespace`
    /// running `image`.
    pub fn new(
        client: kube::Client,
        cluster: &str,
        node: &str,
        namespace: &str,
        image: &str,
    ) -> Self {
        NodeExecutor {
            client,
            cluster: cluster.into(),
            node: node.into(),
            namespace: namespace.into(),
            image: image.into(),
        }
    }

    fn err(&self, detail: impl std::fmt::Display) -> ExecError {
        ExecError::Protocol {
            target: self.node.clone(),
            detail: format!("kubernetes ({}): {detail}", self.cluster),
        }
    }

    fn pod_name(&self) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let node: String = self
            .node
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        format!(
            "ops-shell-{}-{:08x}",
            node.trim_matches('-'),
            nanos ^ std::process::id()
        )
    }

    async fn tolerations(&self) -> Result<Vec<Toleration>, ExecError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = nodes
            .get(&self.node)
            .await
            .map_err(|e| self.err(format!("node `{}`: {e}", self.node)))?;
        Ok(node
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .into_iter()
            .map(|t| Toleration {
                key: Some(t.key),
                operator: Some(if t.value.is_some() {
                    "Equal".into()
                } else {
                    "Exists".into()
                }),
                value: t.value,
                effect: Some(t.effect),
                ..Toleration::default()
            })
            .collect())
    }

    fn pod(&self, name: &str, line: &str, tolerations: Vec<Toleration>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(
                    [("app.kubernetes.io/managed-by".to_owned(), "ops".to_owned())].into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(self.node.clone()),
                host_pid: Some(true),
                host_network: Some(true),
                restart_policy: Some("Never".into()),
                tolerations: Some(tolerations),
                containers: vec![Container {
                    name: "shell".into(),
                    image: Some(self.image.clone()),
                    command: Some(
                        [
                            "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh", "-c", line,
                        ]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                    ),
                    security_context: Some(SecurityContext {
                        privileged: Some(true),
                        ..SecurityContext::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: None,
        }
    }
}

enum Ended {
    Exited(i32),
    Forced(ExitStatus),
}

#[async_trait]
impl Executor for NodeExecutor {
    fn name(&self) -> &str {
        &self.node
    }

    async fn run(
        &self,
        req: &ExecRequest,
        sink: Option<OutputSink<'_>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        if req.stdin.is_some() {
            return Err(ExecError::Invalid {
                target: self.node.clone(),
                detail: "standard input is not supported for node-shell pods".into(),
            });
        }
        // The pod runs as root on the host; sudo is not needed.
        let line = command_line(req, Sudo::No).map_err(|detail| ExecError::Invalid {
            target: self.node.clone(),
            detail,
        })?;
        let started = Instant::now();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = self.pod_name();
        let pod = self.pod(&name, &line, self.tolerations().await?);
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|e| self.err(format!("create pod {name}: {e}")))?;
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let ended = loop {
            tokio::select! {
                _ = cancel.cancelled() => break Ended::Forced(ExitStatus::Cancelled),
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break Ended::Forced(ExitStatus::TimedOut),
                _ = tokio::time::sleep(Duration::from_millis(300)) => {
                    let p = match pods.get(&name).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = pods.delete(&name, &DeleteParams::default().grace_period(0)).await;
                            return Err(self.err(format!("pod {name}: {e}")));
                        }
                    };
                    let terminated = p
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .and_then(|c| c.first())
                        .and_then(|c| c.state.as_ref())
                        .and_then(|s| s.terminated.as_ref())
                        .map(|t| t.exit_code);
                    let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
                    if let Some(code) = terminated {
                        break Ended::Exited(code);
                    }
                    if phase == "Succeeded" || phase == "Failed" {
                        break Ended::Exited(if phase == "Succeeded" { 0 } else { 1 });
                    }
                }
            }
        };
        // A log that cannot be read is reported in the output, not dropped.
        let logs = match pods.logs(&name, &LogParams::default()).await {
            Ok(l) => l,
            Err(e) => format!(
                "[ops: cannot read the log of pod {}/{name}: {e}]\n",
                self.namespace
            ),
        };
        // Deleting the pod stops whatever still runs in it.
        let _ = pods
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await;
        let mut col = Collector::new(req.limits, sink);
        let kept: String = logs
            .split_inclusive('\n')
            .filter(|l| !l.starts_with(PGID_MARKER))
            .collect();
        col.stdout(kept.as_bytes());
        let status = match ended {
            Ended::Exited(c) => crate::exec::output::classify(
                c,
                req.timeout.is_some_and(|t| started.elapsed() >= t),
            ),
            Ended::Forced(s) => s,
        };
        Ok(col.finish(status, started.elapsed()))
    }

    async fn upload(
        &self,
        _local: &Path,
        _remote: &str,
        _mode: Option<u32>,
        _cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        Err(ExecError::Invalid {
            target: self.node.clone(),
            detail: "file steps on Kubernetes nodes are not supported yet".into(),
        })
    }

    async fn download(
        &self,
        _remote: &str,
        _local: &Path,
        _cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        Err(ExecError::Invalid {
            target: self.node.clone(),
            detail: "file steps on Kubernetes nodes are not supported yet".into(),
        })
    }
}
