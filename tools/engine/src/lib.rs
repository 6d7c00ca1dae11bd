//! Running Tasks and Pipelines: target selection, fan-out with a
//! concurrency limit, steps in order with `when` / `allowfailure`, step and
//! run timeouts, results, run records written before anything starts, and
//! cancellation (local or requested through the store by another process).
//!
//! The engine never decides whether something may run: callers (CLI,
//! copilot gate, server) do that before calling it.

pub mod feed_observer;
pub mod heartbeat;
pub mod host_status;
pub mod inventory;
mod results;
mod run;
pub mod schedule;
pub mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ops_exec::local::LocalExecutor;
use ops_exec::ssh::{SshExecutor, SshPool, SshTarget};
use ops_exec::{ExecError, Executor, Stream};
use ops_model::template::VariableError;
use ops_model::{Host, Pipeline, Task};
use ops_store::{RunRecord, StepRecord, Store, StoreError};

pub use results::{RESULT_MARKER, parse_results};
pub use target::{TargetSpec, local_host};

/// Why a run could not start or be recorded. Failures *on* a target are not
/// errors: they are recorded in the run and its phase.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Variables fail their declarations.
    #[error("invalid variables:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Variables(Vec<VariableError>),
    /// The target expression matched nothing or cannot be served.
    #[error("{0}")]
    Target(String),
    /// The targets a run would use now are not all among those its
    /// approval names (the inventory changed since): nothing ran.
    #[error(
        "the call would now run on {} which its approval does not name (approved: {}); nothing ran",
        .outside.join(", "),
        .allowed.join(", ")
    )]
    NotApproved {
        /// Targets outside the approved set.
        outside: Vec<String>,
        /// The approved set.
        allowed: Vec<String>,
    },
    /// A pipeline refers to a Task that does not exist.
    #[error(
        "pipeline `{pipeline}`: task entry `{entry}` refers to Task `{task}`, which does not exist in namespace {namespace}"
    )]
    MissingTask {
        /// Pipeline.
        pipeline: String,
        /// Entry name.
        entry: String,
        /// Missing Task.
        task: String,
        /// Namespace.
        namespace: String,
    },
    /// A pipeline entry has no `taskRef`.
    #[error("pipeline `{pipeline}`: task entry `{entry}` has no taskRef")]
    NoTaskRef {
        /// Pipeline.
        pipeline: String,
        /// Entry.
        entry: String,
    },
    /// An executor could not be built for a target (bad credentials
    /// reference, ...).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that every one of `targets` is in `allowed` (by name, or as
/// `cluster/node` for a Kubernetes node): the gate's promise that a call
/// runs on exactly the targets it was approved for.
pub fn check_allowed(targets: &[Target], allowed: &[String]) -> Result<(), EngineError> {
    let outside: Vec<String> = targets
        .iter()
        .filter(|t| {
            let qualified = t.labels.get("cluster").map(|c| format!("{c}/{}", t.name));
            !allowed
                .iter()
                .any(|a| *a == t.name || Some(a) == qualified.as_ref())
        })
        .map(|t| t.name.clone())
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(EngineError::NotApproved {
            outside,
            allowed: allowed.to_vec(),
        })
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Targets run at once.
    pub forks: usize,
    /// SSH user when a Host names none.
    pub default_user: String,
    /// An empty target (or `localhost`) means the machine `ops` runs on
    /// even when no Host of that name is in the inventory. Only for a
    /// person's direct commands (`opscli shell`, `opscli run task`):
    /// everything the copilot, a hook or another door asks for reaches
    /// this machine only through a Host in the inventory, by name.
    pub implicit_local: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            forks: 50,
            default_user: "root".into(),
            implicit_local: false,
        }
    }
}

/// Hears about a run as it happens (live display, events). Every method
/// has a no-op default.
pub trait RunObserver: Send + Sync {
    /// The run was recorded and starts.
    fn run_started(&self, _run: &RunRecord) {}
    /// A step starts on a target.
    fn step_started(&self, _task: &str, _target: &str, _step: &str) {}
    /// Output arrived.
    fn output(&self, _task: &str, _target: &str, _stream: Stream, _data: &[u8]) {}
    /// A step ended (or was skipped).
    fn step_finished(&self, _step: &StepRecord) {}
    /// A target finished a task (`task` is empty for a TaskRun).
    fn target_finished(&self, _task: &str, _target: &str, _phase: ops_model::RunPhase) {}
    /// The run ended.
    fn run_finished(&self, _run: &RunRecord) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl RunObserver for NoopObserver {}

/// One place a run executes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name (Host name).
    pub name: String,
    /// Labels, visible as `${labels.KEY}`.
    pub labels: BTreeMap<String, String>,
    /// How to reach it.
    pub executor: Arc<dyn Executor>,
}

/// A Task to run.
#[derive(Debug, Clone)]
pub struct TaskRunRequest {
    /// The Task.
    pub task: Task,
    /// Run name (default: the task's name).
    pub name: Option<String>,
    /// Namespace of the run.
    pub namespace: String,
    /// Given variable values.
    pub variables: BTreeMap<String, String>,
    /// Where to run.
    pub targets: Vec<Target>,
    /// Limit for the whole run (default: the Task's `timeoutSeconds`).
    pub timeout: Option<Duration>,
    /// Run every step through sudo.
    pub sudo: bool,
    /// The scheduling run (cron parent), if any.
    pub parent_id: Option<String>,
}

/// A Pipeline to run.
#[derive(Debug, Clone)]
pub struct PipelineRunRequest {
    /// The Pipeline.
    pub pipeline: Pipeline,
    /// Run name (default: the pipeline's name).
    pub name: Option<String>,
    /// Namespace (its Tasks are looked up here).
    pub namespace: String,
    /// Given variable values, merged over the pipeline's declarations.
    pub variables: BTreeMap<String, String>,
    /// Target expression for every task, over each Task's `host`.
    pub host: Option<String>,
    /// When set, every target a Task resolves to must be one of these
    /// (a gated call runs only where it was approved to).
    pub allowed: Option<Vec<String>>,
    /// Limit for the whole run.
    pub timeout: Option<Duration>,
    /// Run every step through sudo.
    pub sudo: bool,
    /// The scheduling run (cron parent), if any.
    pub parent_id: Option<String>,
}

/// Runs Tasks and Pipelines.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    executors: Arc<dyn ExecutorFactory>,
    options: EngineOptions,
    feed: ops_events::feed::Feed,
}

/// Where the engine gets an executor for a target. [`Executors`] is the
/// real one (this machine, SSH through a pool, Kubernetes node pods);
/// tests give the engine their own.
#[async_trait::async_trait]
pub trait ExecutorFactory: Send + Sync + std::fmt::Debug {
    /// An executor for a Host.
    fn host(&self, host: &Host, default_user: &str) -> Result<Arc<dyn Executor>, ExecError>;

    /// Node targets on `cluster` for `expr` (`anymaster`, node names, a
    /// selector, ...), each run through a node pod built from `runtime`.
    async fn nodes(
        &self,
        cluster: &ops_model::Cluster,
        expr: &str,
        runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<Target>, EngineError>;
}

/// The real executors: local processes for a loopback Host, SSH through a
/// shared pool otherwise, node pods for Kubernetes nodes.
#[derive(Debug, Clone)]
pub struct Executors {
    pool: Arc<SshPool>,
}

impl Executors {
    /// Executors reaching hosts through `pool`.
    pub fn new(pool: Arc<SshPool>) -> Self {
        Executors { pool }
    }
}

#[async_trait::async_trait]
impl ExecutorFactory for Executors {
    fn host(&self, host: &Host, default_user: &str) -> Result<Arc<dyn Executor>, ExecError> {
        if host.spec.is_local() {
            let password = host
                .spec
                .password
                .as_deref()
                .map(ops_exec::secret::resolve)
                .transpose()
                .map_err(|source| ExecError::Secret {
                    target: host.metadata.name.clone(),
                    source,
                })?;
            return Ok(Arc::new(
                LocalExecutor::new(host.metadata.name.clone()).with_sudo_password(password),
            ));
        }
        let target = SshTarget::from_host(host, default_user)?;
        Ok(Arc::new(SshExecutor::new(target, Arc::clone(&self.pool))))
    }

    async fn nodes(
        &self,
        cluster: &ops_model::Cluster,
        expr: &str,
        runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<Target>, EngineError> {
        use ops_exec::kube::{NodeExecutor, OPS_NAMESPACE, client, select_nodes};
        let name = cluster.metadata.name.clone();
        let client = client(cluster).await?;
        let nodes = select_nodes(&client, &name, expr).await?;
        Ok(nodes
            .into_iter()
            .map(|n| Target {
                labels: BTreeMap::from([("cluster".to_owned(), name.clone())]),
                executor: Arc::new(NodeExecutor::new(
                    client.clone(),
                    &name,
                    &n,
                    OPS_NAMESPACE,
                    runtime.clone(),
                )),
                name: n,
            })
            .collect())
    }
}

impl Engine {
    /// An engine recording into `store` and reaching hosts through `pool`.
    /// Run events go to the store's embedded event log until
    /// [`Engine::with_feed`] says otherwise.
    pub fn new(store: Arc<dyn Store>, pool: Arc<SshPool>, options: EngineOptions) -> Self {
        Self::with_executors(store, Arc::new(Executors::new(pool)), options)
    }

    /// An engine whose executors come from `executors` (tests give fakes).
    pub fn with_executors(
        store: Arc<dyn Store>,
        executors: Arc<dyn ExecutorFactory>,
        options: EngineOptions,
    ) -> Self {
        Engine {
            feed: ops_events::feed::Feed::embedded(Arc::clone(&store)),
            store,
            executors,
            options,
        }
    }

    /// Publishes run events to `feed`.
    pub fn with_feed(mut self, feed: ops_events::feed::Feed) -> Self {
        self.feed = feed;
        self
    }

    /// Where run events are published.
    pub fn feed(&self) -> &ops_events::feed::Feed {
        &self.feed
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// An executor for a Host: local for an empty/loopback address, SSH
    /// otherwise.
    pub fn executor_for(&self, host: &Host) -> Result<Arc<dyn Executor>, ExecError> {
        self.executors.host(host, &self.options.default_user)
    }

    /// Targets for a target expression in `namespace`. The anchor's
    /// cluster keywords (`anymaster`, ...) select nodes of the namespace's
    /// only Cluster; with several, the caller must name one
    /// ([`Engine::cluster_targets`]).
    pub async fn targets(&self, namespace: &str, spec: &str) -> Result<Vec<Target>, EngineError> {
        self.targets_with(namespace, spec, &Default::default())
            .await
    }

    /// [`Engine::targets`], with node pods built from `runtime` (a Task's
    /// image and mounts: [`ops_exec::kube::PodRuntime::for_task`]).
    pub async fn targets_with(
        &self,
        namespace: &str,
        spec: &str,
        runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<Target>, EngineError> {
        let parsed = TargetSpec::parse(spec)?;
        if let TargetSpec::Cluster(keyword) = &parsed {
            use inventory::NoOnlyCluster;
            return match inventory::only_cluster(self.store.as_ref(), namespace).await? {
                Ok(c) => self.cluster_targets(&c, keyword, runtime).await,
                Err(NoOnlyCluster::None) => Err(EngineError::Target(format!(
                    "target `{keyword}` selects Kubernetes nodes, but namespace {namespace} has no Cluster (opscli create cluster -i KUBECONFIG --name NAME)"
                ))),
                Err(NoOnlyCluster::Many(n)) => Err(EngineError::Target(format!(
                    "target `{keyword}` selects Kubernetes nodes and namespace {namespace} has {n} Clusters; choose one with --cluster"
                ))),
            };
        }
        if parsed == TargetSpec::Local && !self.options.implicit_local {
            // This machine only by name: a Host called `localhost`.
            let key = ops_model::ObjectKey {
                kind: ops_model::Kind::Host,
                namespace: namespace.to_owned(),
                name: "localhost".into(),
            };
            return match self.store.get(&key).await?.map(|s| s.object) {
                Some(ops_model::Object::Host(h)) => self.targets_for_hosts(vec![h]),
                _ => Err(EngineError::Target(format!(
                    "no target given (or `{}`), and the machine ops runs on is a target only by name: name a Host, or add one called `localhost` to namespace {namespace}",
                    spec.trim()
                ))),
            };
        }
        let hosts = target::resolve(self.store.as_ref(), namespace, &parsed).await?;
        self.targets_for_hosts(hosts)
    }

    /// Node targets on `cluster` for `expr` (`anymaster`, `anyworker`,
    /// `anynode`, `allmasters`, `allworkers`, `all`, node names, a label
    /// selector), each run through a node pod built from `runtime`.
    pub async fn cluster_targets(
        &self,
        cluster: &ops_model::Cluster,
        expr: &str,
        runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<Target>, EngineError> {
        self.executors.nodes(cluster, expr, runtime).await
    }

    /// Targets for Host objects.
    pub fn targets_for_hosts(&self, hosts: Vec<Host>) -> Result<Vec<Target>, EngineError> {
        hosts
            .into_iter()
            .map(|h| {
                Ok(Target {
                    name: h.metadata.name.clone(),
                    labels: h.metadata.labels.clone().unwrap_or_default(),
                    executor: self.executor_for(&h)?,
                })
            })
            .collect()
    }

    /// Runs a Task on its targets; returns the finished run record.
    pub async fn run_task(
        &self,
        req: TaskRunRequest,
        observer: &dyn RunObserver,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<RunRecord, EngineError> {
        // Every event of the run is published before the run is reported.
        use tracing::Instrument;
        let span = tracing::info_span!("run", kind = "task", task = %req.task.metadata.name, namespace = %req.namespace);
        let tee = crate::feed_observer::Tee::to_feed(observer, self.feed.clone());
        let result = run::run_task(self, req, &tee, cancel)
            .instrument(span)
            .await;
        tee.finish().await;
        result
    }

    /// Runs a Pipeline; returns the finished run record.
    pub async fn run_pipeline(
        &self,
        req: PipelineRunRequest,
        observer: &dyn RunObserver,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<RunRecord, EngineError> {
        // Every event of the run is published before the run is reported.
        use tracing::Instrument;
        let span = tracing::info_span!("run", kind = "pipeline", pipeline = %req.pipeline.metadata.name, namespace = %req.namespace);
        let tee = crate::feed_observer::Tee::to_feed(observer, self.feed.clone());
        let result = run::run_pipeline(self, req, &tee, cancel)
            .instrument(span)
            .await;
        tee.finish().await;
        result
    }
}
