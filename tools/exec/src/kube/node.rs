//! Running a command on a Kubernetes node the anchor's way: a pod pinned to
//! the node (`nodeName`), `hostPID` and `hostNetwork`, privileged, with
//! tolerations copied from the node's taints, whose command enters the
//! host's namespaces (`nsenter -t 1 -m -u -i -n`) and runs the same
//! wrapper as every other executor. Output comes from the pod's log (one
//! stream: Kubernetes does not keep stdout and stderr apart); the exit code
//! from the container status. The pod is deleted afterwards, and deleting it
//! is how a timeout or cancellation stops the command.
//!
//! **Container mode**: a Task with `mounts` runs its steps *inside* its
//! `runtimeImage` instead (no `nsenter`), with the mounts as `hostPath` and
//! `secret` volumes, still pinned to the node with the host's network; this
//! is what a step like `nerdctl push` with the containerd socket and a
//! registry secret mounted needs. Without mounts, `runtimeImage` only
//! supplies the image that holds `nsenter`.
//!
//! File steps go to the node's filesystem in both modes: a short-lived
//! helper pod (`sleep`) is created, the file is streamed through pod exec
//! into `nsenter -t 1 -m` (temp name, SHA-256 checked, renamed), and the
//! pod is deleted.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, Node, Pod, PodSpec, SecretVolumeSource, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::PodExecutor;
use crate::output::Collector;
use crate::script::{PGID_MARKER, Sudo, command_line};
use crate::{ExecError, ExecOutput, ExecRequest, Executor, ExitStatus, OutputSink, Transfer};

/// How node pods are built: the image, and the mounts that switch on
/// container mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRuntime {
    /// The pod image (`None`: [`super::DEFAULT_RUNTIME_IMAGE`]).
    pub image: Option<String>,
    /// Volumes; any at all means container mode.
    pub mounts: Vec<ops_model::Mount>,
}

impl PodRuntime {
    /// A runtime with just an image (node-shell mode).
    pub fn image(image: Option<&str>) -> Self {
        PodRuntime {
            image: image.filter(|i| !i.is_empty()).map(str::to_owned),
            mounts: Vec::new(),
        }
    }

    /// The runtime a Task asks for (`runtimeImage`, `mounts`), with
    /// `${var}` references rendered from `given` over the Task's defaults
    /// (a secret name is often a variable).
    pub fn for_task(
        task: &ops_model::Task,
        given: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        use ops_model::template::{Context, render};
        let declared = task.spec.variables.clone().unwrap_or_default();
        let vars = ops_model::template::resolve_variables(&declared, given)
            .unwrap_or_else(|_| given.clone());
        let mut ctx = Context::new();
        for (k, v) in vars.iter().chain(given.iter()) {
            ctx.set_var(k.clone(), v.clone());
        }
        let r = |v: &Option<String>| v.as_deref().map(|s| render(s, &ctx));
        PodRuntime {
            image: r(&task.spec.runtime_image).filter(|i| !i.is_empty()),
            mounts: task
                .spec
                .mounts
                .iter()
                .flatten()
                .map(|m| ops_model::Mount {
                    name: r(&m.name),
                    host_path: r(&m.host_path),
                    mount_path: r(&m.mount_path),
                    secret: m.secret.as_ref().map(|s| ops_model::SecretMount {
                        name: r(&s.name),
                        mount_path: r(&s.mount_path),
                    }),
                })
                .collect(),
        }
    }

    /// Whether steps run inside the image rather than on the host.
    pub fn container_mode(&self) -> bool {
        !self.mounts.is_empty()
    }

    fn image_or_default(&self) -> String {
        self.image
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| super::DEFAULT_RUNTIME_IMAGE.to_owned())
    }

    /// Volumes and mounts for the pod; a mount that is neither a hostPath
    /// nor a secret, or has no mountPath, is an error naming it.
    pub fn volumes(&self) -> Result<(Vec<Volume>, Vec<VolumeMount>), String> {
        let mut vols = Vec::new();
        let mut mounts = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let vol_name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("ops-mount-{i}"));
            let (source, path) = match (&m.host_path, &m.secret) {
                (Some(hp), None) if !hp.is_empty() => (
                    Volume {
                        name: vol_name.clone(),
                        host_path: Some(HostPathVolumeSource {
                            path: hp.clone(),
                            type_: None,
                        }),
                        ..Volume::default()
                    },
                    m.mount_path.clone().unwrap_or_else(|| hp.clone()),
                ),
                (None, Some(s)) => {
                    let secret = s
                        .name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| format!("mount {i}: a secret mount needs a name"))?;
                    let path = s
                        .mount_path
                        .clone()
                        .or_else(|| m.mount_path.clone())
                        .ok_or_else(|| format!("mount {i} (secret {secret}): no mountPath"))?;
                    (
                        Volume {
                            name: vol_name.clone(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(secret),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        path,
                    )
                }
                _ => {
                    return Err(format!("mount {i}: give exactly one of hostPath or secret"));
                }
            };
            if path.is_empty() {
                return Err(format!("mount {i}: empty mountPath"));
            }
            vols.push(source);
            mounts.push(VolumeMount {
                name: vol_name,
                mount_path: path,
                ..VolumeMount::default()
            });
        }
        Ok((vols, mounts))
    }
}

/// Runs commands on one node through a short-lived privileged pod.
#[derive(Clone)]
pub struct NodeExecutor {
    client: kube::Client,
    cluster: String,
    node: String,
    namespace: String,
    runtime: PodRuntime,
}

impl std::fmt::Debug for NodeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeExecutor")
            .field("cluster", &self.cluster)
            .field("node", &self.node)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl NodeExecutor {
    /// An executor for `node` of `cluster`, with pods in `namespace`
    /// built from `runtime`.
    pub fn new(
        client: kube::Client,
        cluster: &str,
        node: &str,
        namespace: &str,
        runtime: PodRuntime,
    ) -> Self {
        NodeExecutor {
            client,
            cluster: cluster.into(),
            node: node.into(),
            namespace: namespace.into(),
            runtime,
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

    /// The pod for one command: `nsenter` into the host, or (container
    /// mode) the command itself inside the image with the mounts.
    /// `helper` pods only sleep, for exec (file transfers; host mode).
    fn pod(
        &self,
        name: &str,
        line: &str,
        tolerations: Vec<Toleration>,
        helper: bool,
    ) -> Result<Pod, ExecError> {
        let container_mode = self.runtime.container_mode() && !helper;
        let command: Vec<String> = if helper {
            vec!["sleep".into(), "3600".into()]
        } else if container_mode {
            vec!["sh".into(), "-c".into(), line.into()]
        } else {
            [
                "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh", "-c", line,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
        };
        let (volumes, mounts) = if container_mode {
            self.runtime
                .volumes()
                .map_err(|detail| ExecError::Invalid {
                    target: self.node.clone(),
                    detail,
                })?
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Pod {
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
                host_pid: Some(!container_mode),
                host_network: Some(true),
                volumes: (!volumes.is_empty()).then_some(volumes),
                restart_policy: Some("Never".into()),
                tolerations: Some(tolerations),
                containers: vec![Container {
                    name: "shell".into(),
                    image: Some(self.runtime.image_or_default()),
                    command: Some(command),
                    volume_mounts: (!mounts.is_empty()).then_some(mounts),
                    security_context: Some(SecurityContext {
                        privileged: Some(true),
                        ..SecurityContext::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: None,
        })
    }
}

/// How long a node pod may take to start (image pulls included).
const START_LIMIT: Duration = Duration::from_secs(180);

/// Why a pod that is not running yet never will, or has taken too long:
/// a waiting reason Kubernetes does not recover from by itself
/// (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
/// `CreateContainerConfigError`, `CreateContainerError`), or still no
/// container running after [`START_LIMIT`].
fn start_problem(p: &Pod, since: Instant) -> Option<String> {
    let status = p.status.as_ref();
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    if let Some(w) = waiting {
        let reason = w.reason.as_deref().unwrap_or("");
        if matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
        ) {
            return Some(format!(
                "cannot start: {reason}: {}",
                w.message.as_deref().unwrap_or("")
            ));
        }
    }
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    (phase.is_empty() || phase == "Pending")
        .then_some(())
        .filter(|()| since.elapsed() >= START_LIMIT)
        .map(|()| format!("still `Pending` after {}s", START_LIMIT.as_secs()))
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
        let pod = self.pod(&name, &line, self.tolerations().await?, false)?;
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
                    if let Some(problem) = start_problem(&p, started) {
                        let _ = pods.delete(&name, &DeleteParams::default().grace_period(0)).await;
                        return Err(self.err(format!("pod {name} (image {}) {problem}", self.runtime.image_or_default())));
                    }
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
            Ended::Exited(c) => {
                crate::output::classify(c, req.timeout.is_some_and(|t| started.elapsed() >= t))
            }
            Ended::Forced(s) => s,
        };
        Ok(col.finish(status, started.elapsed()))
    }

    async fn upload(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        let (helper, name) = self.helper(cancel).await?;
        let r = helper.upload(local, remote, mode, cancel).await;
        self.delete_pod(&name).await;
        r
    }

    async fn download(
        &self,
        remote: &str,
        local: &Path,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        let (helper, name) = self.helper(cancel).await?;
        let r = helper.download(remote, local, cancel).await;
        self.delete_pod(&name).await;
        r
    }
}

impl NodeExecutor {
    fn helper_name(&self) -> String {
        format!("{}-xfer", self.pod_name())
    }

    /// Starts a helper pod on the node and waits until it runs (up to two
    /// minutes: image pulls take time); an executor whose commands enter
    /// the host's mount namespace.
    async fn helper(&self, cancel: &CancellationToken) -> Result<(PodExecutor, String), ExecError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = self.helper_name();
        let pod = self.pod(&name, "", self.tolerations().await?, true)?;
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|e| self.err(format!("create pod {name}: {e}")))?;
        let since = Instant::now();
        loop {
            let p = pods.get(&name).await.ok();
            let phase = p
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let problem = p.as_ref().and_then(|p| start_problem(p, since));
            match phase.as_str() {
                "Running" => break,
                "Succeeded" | "Failed" => {
                    self.delete_pod(&name).await;
                    return Err(self.err(format!("helper pod {name} ended before use ({phase})")));
                }
                _ => {
                    if let Some(problem) = problem {
                        self.delete_pod(&name).await;
                        return Err(self.err(format!("helper pod {name} {problem}")));
                    }
                    if p.is_none() && since.elapsed() >= START_LIMIT {
                        self.delete_pod(&name).await;
                        return Err(self.err(format!(
                            "helper pod {name} cannot be read after {}s",
                            START_LIMIT.as_secs()
                        )));
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.delete_pod(&name).await;
                    return Err(ExecError::Cancelled { target: self.node.clone() });
                }
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
        let exec = PodExecutor::new(
            self.client.clone(),
            &self.cluster,
            &self.namespace,
            &name,
            None,
        )
        .with_prefix(&["nsenter", "-t", "1", "-m", "-u", "-i", "-n"], &self.node);
        Ok((exec, name))
    }

    async fn delete_pod(&self, name: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let _ = pods
            .delete(name, &DeleteParams::default().grace_period(0))
            .await;
    }
}
