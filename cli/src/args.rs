//! Command-line syntax (clap). Parsing only: no I/O, no defaults that
//! depend on the environment (those are resolved in `config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ops: an LLM-first operations copilot for hosts and clusters.
#[derive(Debug, Parser)]
#[command(name = "opscli", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// State and config directory [env: OPS_HOME] [default: ~/.ops]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Store file [env: OPS_STORE] [default: $OPS_HOME/ops.db]
    #[arg(long, global = true, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Namespace [env: OPS_NAMESPACE] [default: ops-system]
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// SSH unknown-host policy: strict or accept-new [env: OPS_KNOWN_HOSTS]
    /// [default: strict]. A changed host key is always refused.
    #[arg(long = "known-hosts", global = true, value_name = "POLICY")]
    pub known_hosts: Option<String>,
    /// Targets worked on at once [env: OPS_FORKS] [default: 50]
    #[arg(long, global = true)]
    pub forks: Option<usize>,
    /// NATS server(s) of the event feed [env: OPS_NATS_URL] [default: none:
    /// the store's event log]
    #[arg(long, global = true, value_name = "URL")]
    pub nats: Option<String>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Wider table with more columns.
    Wide,
    /// YAML documents (secrets redacted).
    Yaml,
    /// JSON (secrets redacted).
    Json,
    /// `kind/name` per line.
    Name,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update objects from YAML files or directories.
    Apply(ApplyArgs),
    /// List objects or show some as table, YAML or JSON.
    Get(GetArgs),
    /// Show one object in detail.
    Describe(DescribeArgs),
    /// Delete objects by name or by the files that define them.
    Delete(DeleteArgs),
    /// Create a Host or Cluster from flags.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Read and change settings (flags > env > config file > default).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a shell command or script on hosts.
    Shell(ShellArgs),
    /// Copy a file to or from hosts.
    File(FileArgs),
    /// Run a Task (from a file or the store) on hosts.
    Task(TaskArgs),
    /// Run Pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Inspect and cancel recorded runs.
    #[command(subcommand)]
    Run(RunCommand),
    /// Start runs for TaskRun/PipelineRun objects: cron ones on schedule,
    /// the others once.
    Scheduler(SchedulerArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Read a Kubernetes cluster (get, describe, logs, events) and run
    /// commands in pods (exec).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The append-only, hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Talk to the copilot: it investigates with read-only tools and asks
    /// before anything changes a system.
    Copilot(CopilotArgs),
    /// The team's runbooks: add, list, show, remove, search (by words and
    /// by meaning, with citations).
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// The event feed (CloudEvents on the anchor's subjects): publish,
    /// query, tail. Embedded: the store's event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Approvals waiting for a person (hook-started runs and sessions):
    /// list, approve, deny. The session that asked checks the decision
    /// against the exact call before anything runs.
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Heartbeats: probe every Host and Cluster, write their status and
    /// publish it (every 5 minutes, or once).
    Heartbeat(HeartbeatArgs),
    /// EventHooks: run them (durable consumers), test one against an
    /// event, list them with their last delivery, show deliveries.
    #[command(subcommand)]
    Hook(HookCommand),
    /// The lab: real sshd hosts in network namespaces on this machine,
    /// registered as Hosts, with faults to inject: for evals and for
    /// trying the copilot safely.
    #[command(subcommand)]
    Lab(LabCommand),
    /// The eval suite: run cases against the scripted or a live model,
    /// score them (unsafe actions fail), report markdown and JSON.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab hosts (web-1..3, db-1) and register them as Hosts.
    Up(LabUpArgs),
    /// Each host: reachable, appd healthy, faults present.
    Status(LabStatusArgs),
    /// Stop everything the lab made and unregister its Hosts.
    Down(LabDownArgs),
    /// The faults that can be injected.
    Faults,
    /// Set up a fault on a host.
    Inject(LabInjectArgs),
    /// Put hosts back to their healthy baseline (all when none named).
    Reset(LabResetArgs),
}

#[derive(Debug, Args)]
pub struct LabStatusArgs {
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct LabDownArgs {
    /// Also remove lab namespaces another OPS_HOME brought up.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// auto (namespaces where permitted, else the loopback fallback),
    /// namespaces (each host in its own network, mount, PID and UTS
    /// namespaces), or loopback (one sshd per 127.0.0.N, per-host
    /// directories; fewer faults).
    #[arg(long, env = "OPS_LAB_MODE", default_value = "auto")]
    pub mode: String,
}

#[derive(Debug, Args)]
pub struct LabInjectArgs {
    /// Lab host.
    pub host: String,
    /// Fault (see `opscli lab faults`).
    pub fault: String,
}

#[derive(Debug, Args)]
pub struct LabResetArgs {
    /// Lab hosts.
    pub hosts: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run cases and score them.
    Run(EvalRunArgs),
    /// List the cases with their tags and tiers.
    List(EvalListArgs),
}

#[derive(Debug, Args)]
pub struct EvalListArgs {
    /// Case directory.
    #[arg(long, default_value = "evals/cases")]
    pub dir: std::path::PathBuf,
    /// Only cases whose file name matches (`*` matches any run; comma-separated).
    #[arg(long)]
    pub cases: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalRunArgs {
    /// scripted (a scripted server replays each case's trajectory) or live
    /// (the configured model endpoint, else the built-in local model).
    #[arg(long, default_value = "scripted")]
    pub tier: String,
    /// Only cases whose file name matches (`*` matches any run; comma-separated);
    /// then also cases not tagged for the tier (the scripted tier still
    /// needs a script). Default: the cases tagged for the tier.
    #[arg(long)]
    pub cases: Option<String>,
    /// Case directory.
    #[arg(long, default_value = "evals/cases")]
    pub dir: std::path::PathBuf,
    /// Where `setup.objects` paths start [default: the current directory].
    #[arg(long)]
    pub root: Option<std::path::PathBuf>,
    /// Live tier: model name at the configured endpoint.
    #[arg(long)]
    pub model: Option<String>,
    /// Trials per case (pass@1 and pass^k over them).
    #[arg(short = 'k', long, default_value_t = 1)]
    pub k: u32,
    /// Seconds one trial's session may take.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Write report.json and report.md here [default: $OPS_HOME/evals/TIER].
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Fail when the pass rate is more than 10 points below this baseline
    /// (JSON written by --write-baseline).
    #[arg(long)]
    pub baseline: Option<std::path::PathBuf>,
    /// Record this run's pass rate as the baseline.
    #[arg(long)]
    pub write_baseline: Option<std::path::PathBuf>,
    /// Leave the lab up afterwards (it is torn down when this run
    /// brought it up).
    #[arg(long)]
    pub keep_lab: bool,
    /// markdown (default) or json on standard output.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Pending approvals (every approval with --all), newest first.
    List(ApprovalListArgs),
    /// Approve one call (once; --session: identical calls of that session too).
    Approve(ApprovalDecideArgs),
    /// Deny it, with a reason the session is told.
    Deny(ApprovalDecideArgs),
}

#[derive(Debug, Args)]
pub struct ApprovalListArgs {
    /// Decided ones too.
    #[arg(long)]
    pub all: bool,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct ApprovalDecideArgs {
    /// Approval id (`ap-...`).
    pub id: String,
    /// Approve for the rest of that session (approve only).
    #[arg(long)]
    pub session: bool,
    /// Why (a denial's reason goes back to the session).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// One round, print the results, exit 1 if anything was unreachable.
    #[arg(long)]
    pub once: bool,
    /// Seconds between rounds (each started at a random offset of up to a
    /// tenth of this).
    #[arg(long, default_value_t = 300)]
    pub interval: u64,
    /// Every namespace's Hosts and Clusters.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// The namespace's hooks (all with -A) and how their last delivery went.
    List(HookListArgs),
    /// Match one event against a hook and deliver it for real (unless
    /// --dry-run); exit 1 when it does not match or the delivery fails.
    Test(HookTestArgs),
    /// Deliver events to hooks until Ctrl-C. Each hook is a durable
    /// consumer: a restart resumes after the last event it handled.
    Run(HookRunArgs),
    /// Recent deliveries, oldest first.
    Deliveries(HookDeliveriesArgs),
}

#[derive(Debug, Args)]
pub struct HookListArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct HookTestArgs {
    /// The EventHooks' name.
    pub name: String,
    /// The event: a CloudEvent JSON file (`-` reads standard input);
    /// missing id, time and source are filled in.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// Show whether it matches and what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HookRunArgs {
    /// Only these hooks [default: every hook of the namespace].
    pub names: Vec<String>,
    /// Every namespace's hooks.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Seconds between checks for applied, changed or deleted hooks.
    #[arg(long, default_value_t = 10)]
    pub reload: u64,
}

#[derive(Debug, Args)]
pub struct HookDeliveriesArgs {
    /// Only this hook.
    pub name: Option<String>,
    /// Only requests that carried this event id (a batch's record names
    /// every event it carried).
    #[arg(long, value_name = "ID")]
    pub event: Option<String>,
    /// At most this many (the newest).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish one event (what an inspection task posts as a finding).
    Publish(EventsPublishArgs),
    /// Events on subjects matching a pattern (`*` one token, `>` the rest).
    Query(EventsQueryArgs),
    /// Follow new events (Ctrl-C stops).
    Tail(EventsTailArgs),
    /// Send what waits in the outbox (events kept while NATS was down) and
    /// say how many remain.
    Flush,
    /// Remove events of the embedded log and hook delivery records older
    /// than an age (JetStream keeps its own retention: nats-retention).
    Prune(EventsPruneArgs),
}

#[derive(Debug, Args)]
pub struct EventsPruneArgs {
    /// Age: `30d`, `12h`, ...
    #[arg(long, value_name = "AGE")]
    pub older_than: String,
}

#[derive(Debug, Args)]
pub struct EventsPublishArgs {
    /// Subject, e.g. ops.clusters.c1.namespaces.ops-system.hosts.web-1.findings
    pub subject: String,
    /// The event's data: JSON (`-` reads standard input).
    #[arg(short = 'd', long, default_value = "{}")]
    pub data: String,
    /// Event type.
    #[arg(long = "type", default_value = "dev.ops.event")]
    pub kind: String,
    /// Event source [default: opscli/HOSTNAME].
    #[arg(long)]
    pub source: Option<String>,
    /// Cluster extension attribute.
    #[arg(long)]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsQueryArgs {
    /// Subject pattern.
    #[arg(default_value = "ops.>")]
    pub subject: String,
    /// Only newer events: `30s`, `10m`, `2h`, `1d`.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// table or json (one event per line).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct EventsTailArgs {
    /// Subject pattern.
    #[arg(default_value = "ops.>")]
    pub subject: String,
    /// Print this many recent events first.
    #[arg(long, default_value_t = 10)]
    pub last: usize,
    /// Stop after this many events (0: never).
    #[arg(long, default_value_t = 0)]
    pub count: usize,
    /// table or json (one event per line).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// Add (or update) Markdown / text runbooks from files or directories.
    /// Unchanged files do no work; a changed file replaces only its
    /// changed sections.
    Add(RunbookAddArgs),
    /// Runbooks, with their sections and front matter.
    List(RunbookListArgs),
    /// One runbook's sections with their lines.
    Show(RunbookShowArgs),
    /// Remove runbooks.
    Rm(RunbookRmArgs),
    /// Search: BM25 and vectors fused, boosted by front-matter matches.
    Search(RunbookSearchArgs),
}

#[derive(Debug, Args)]
pub struct RunbookAddArgs {
    /// Files or directories (.md, .markdown, .txt).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct RunbookListArgs {
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct RunbookShowArgs {
    /// Runbook name (as `list` shows it).
    pub name: String,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct RunbookRmArgs {
    /// Runbook names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunbookSearchArgs {
    /// What to look for (may be empty with --alert).
    #[arg(default_value = "")]
    pub query: String,
    /// Hits wanted.
    #[arg(short = 'k', long, default_value_t = 5)]
    pub k: usize,
    /// An alert's label (repeat): matched against front matter.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// An Alertmanager webhook payload (JSON file, `-` for stdin): its
    /// first alert's labels and annotations become the query.
    #[arg(long, value_name = "FILE")]
    pub alert: Option<PathBuf>,
    /// hybrid (default), bm25 or vector.
    #[arg(long, default_value = "hybrid")]
    pub method: String,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct CopilotArgs {
    /// One question, then exit (without it: a chat on standard input).
    #[arg(short = 'p', long)]
    pub prompt: Option<String>,
    /// read-only (nothing that changes anything), ask (default: changes
    /// ask first) or auto (what the rules allow runs unasked).
    #[arg(long, default_value = "ask")]
    pub mode: String,
    /// Policy rules file [default: $OPS_HOME/rules.yaml when present].
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Session id (for the audit log and approvals) [default: new].
    #[arg(long)]
    pub session: Option<String>,
    /// Model calls per question at most.
    #[arg(long, default_value_t = 12)]
    pub max_steps: u32,
    /// table (readable) or json (one event per line).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Records in order (secrets were redacted before they were written).
    Show(AuditShowArgs),
    /// Walk the hash chain; exit 1 and name the first bad record if any
    /// record was edited, removed or reordered.
    Verify,
}

#[derive(Debug, Args)]
pub struct AuditShowArgs {
    /// Only this copilot session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only records after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

/// Which cluster, and which Kubernetes namespace.
#[derive(Debug, Args, Clone, Default)]
pub struct KubeArgs {
    /// A stored Cluster [default: the namespace's only Cluster].
    #[arg(long)]
    pub cluster: Option<String>,
    /// A kubeconfig file instead of a stored Cluster.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes namespace [default: default]. (`-n` is the ops
    /// namespace the Cluster object lives in.)
    #[arg(short = 'N', long = "kube-namespace", value_name = "NS")]
    pub kube_namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List objects of any resource type, or get some by name: `pods`,
    /// `po`, `deploy`, `deployments.apps`, `nodes`, `events`, ...
    Get(ClusterGetArgs),
    /// An object (secrets redacted) and its events.
    Describe(ClusterDescribeArgs),
    /// A pod's log.
    Logs(ClusterLogsArgs),
    /// Events, all or for one object (`KIND/NAME`).
    Events(ClusterEventsArgs),
    /// Run a command in a pod's container.
    Exec(ClusterExecArgs),
}

#[derive(Debug, Args)]
pub struct ClusterGetArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Resource type.
    pub resource: String,
    /// Names (none: list).
    pub names: Vec<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Field selector (`status.phase=Running`).
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// At most this many objects.
    #[arg(long)]
    pub limit: Option<u32>,
    /// table, wide (with labels), yaml or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct ClusterDescribeArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Resource type.
    pub resource: String,
    /// Name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ClusterLogsArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Pod name.
    pub pod: String,
    /// Container (needed when the pod has several).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Only newer lines: `30s`, `10m`, `2h`, `1d`, `1h30m`.
    #[arg(long)]
    pub since: Option<String>,
    /// The previous (crashed) container's log.
    #[arg(short = 'p', long)]
    pub previous: bool,
}

#[derive(Debug, Args)]
pub struct ClusterEventsArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Only events about this object: `KIND/NAME` (`pod/web-1`,
    /// `deployment/web`).
    pub object: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct ClusterExecArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Pod name.
    pub pod: String,
    /// Container (needed when the pod has several).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass this process's standard input to the command.
    #[arg(long)]
    pub stdin: bool,
    /// Stop the command after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Where and how to connect, as in the anchor.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Inventory: IP, IP,IP, a file of addresses, Host names, a label
    /// selector (`role=web`) or `all`; empty means this machine.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Option<String>,
    /// SSH user for addresses not in the store.
    #[arg(long)]
    pub username: Option<String>,
    /// SSH / sudo password for addresses not in the store (prefer a key).
    #[arg(long)]
    pub password: Option<String>,
    /// Private key for addresses not in the store.
    #[arg(
        long = "privatekeypath",
        visible_alias = "key-file",
        value_name = "PATH"
    )]
    pub private_key_path: Option<std::path::PathBuf>,
    /// SSH port for addresses not in the store.
    #[arg(long)]
    pub port: Option<u16>,
    /// Run through sudo (answered from the Host's password).
    #[arg(long)]
    pub sudo: bool,
    /// Kubernetes node(s) to run on: a node name, `anymaster`,
    /// `anyworker`, `anynode`, `allmasters`, `allworkers`, `all` or a
    /// label selector. Needs a cluster: --cluster, `-i KUBECONFIG`, or
    /// the namespace's only Cluster.
    #[arg(long)]
    pub nodename: Option<String>,
    /// A stored Cluster whose nodes to run on.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Limit for the whole run, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Output: table (live blocks and a summary) or json (the run record).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The command or script; or a file holding it.
    #[arg(long, short = 'c', value_name = "TEXT|FILE")]
    pub content: String,
}

/// File copy direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Local file to the hosts.
    Upload,
    /// From the hosts to a local file.
    Download,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// upload or download.
    #[arg(long, value_enum)]
    pub direction: DirectionArg,
    /// Path on this machine.
    #[arg(long)]
    pub localfile: String,
    /// Path on the hosts.
    #[arg(long)]
    pub remotefile: String,
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A Task YAML file, or the name of a stored Task.
    #[arg(short = 'f', long = "filename", value_name = "FILE|NAME")]
    pub task: String,
    /// Variable `k=v`; repeatable. The anchor's `--k v` style works too.
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Run name (default: the Task's name).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// One pass: start what is due, wait for it, print every schedule.
    #[arg(long)]
    pub once: bool,
    /// Seconds between passes.
    #[arg(long, default_value_t = 15)]
    pub interval: u64,
    /// Spread fire times by up to this many seconds (a fixed offset per
    /// schedule).
    #[arg(long, default_value_t = 30)]
    pub jitter: u64,
    /// Seconds between heartbeats of every Host and Cluster (0: none).
    #[arg(long, default_value_t = 300)]
    pub heartbeat: u64,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run a stored Pipeline.
    Run(PipelineRunArgs),
}

#[derive(Debug, Args)]
pub struct PipelineRunArgs {
    /// Pipeline name.
    pub name: String,
    /// Variable `k=v`; repeatable.
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// Target expression for every task, over each Task's `host`.
    #[arg(long)]
    pub host: Option<String>,
    /// Run through sudo.
    #[arg(long)]
    pub sudo: bool,
    /// Limit for the whole run, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Output: table or json.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Recent runs, newest first.
    List {
        /// Only runs in this phase (Running, Failed, ...).
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this Task or Pipeline.
        #[arg(long = "ref")]
        ref_name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// table, yaml or json.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Format>,
    },
    /// One run with its steps.
    Get {
        /// Run id.
        id: String,
        /// table, yaml or json.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Format>,
    },
    /// The output of a run's steps.
    Logs {
        /// Run id.
        id: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Ask a running run to stop (works across processes).
    Cancel {
        /// Run id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// File or directory (recursive) to apply; `-` reads standard input.
    /// Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// Parse and validate only; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format for the result lines.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind: host(s)/ho, cluster(s)/cl, task(s)/tk, pipeline(s)/pl,
    /// taskrun(s)/tr, pipelinerun(s)/pr, eventhooks/eh.
    pub kind: String,
    /// Names (all objects when omitted).
    pub names: Vec<String>,
    /// Label selector, e.g. `role=web,env!=dev`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format [env: OPS_OUTPUT] [default: table]
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Kind (as for `get`).
    pub kind: String,
    /// Name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind (as for `get`); omit with `-f`.
    pub kind: Option<String>,
    /// Names.
    pub names: Vec<String>,
    /// Delete the objects defined in these files or directories.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Not finding an object is not an error.
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create Hosts from addresses: `-i IP`, `-i IP,IP`, or `-i FILE`
    /// (one address per line).
    Host(CreateHostArgs),
    /// Create a Cluster from a kubeconfig file.
    Cluster(CreateClusterArgs),
}

#[derive(Debug, Args)]
pub struct CreateHostArgs {
    /// Address, comma-separated addresses, or a file of addresses.
    #[arg(short = 'i', long = "inventory", value_name = "IP|IP,IP|FILE")]
    pub inventory: String,
    /// Host name (with several addresses: NAME-1, NAME-2, ...). Default:
    /// the address with `.` and `:` replaced by `-`.
    #[arg(long)]
    pub name: Option<String>,
    /// SSH user.
    #[arg(long)]
    pub username: Option<String>,
    /// SSH port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Private key file (stored as a path reference, not its content).
    #[arg(
        long = "key-file",
        visible_alias = "privatekeypath",
        value_name = "PATH"
    )]
    pub key_file: Option<PathBuf>,
    /// Inline password (stored in the 0600 store, never printed). Prefer
    /// --key-file or --password-env; --password-stdin keeps it out of shell
    /// history.
    #[arg(long, conflicts_with_all = ["password_stdin", "password_env"])]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password_env")]
    pub password_stdin: bool,
    /// Store a reference `${env:NAME}` instead of a password: the value is
    /// read from that environment variable when connecting.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
    /// Connection timeout in seconds.
    #[arg(long)]
    pub timeout: Option<i64>,
    /// Label `k=v`; repeatable.
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Description.
    #[arg(long)]
    pub desc: Option<String>,
    /// Print the objects instead of storing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format (with --dry-run: yaml by default).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Args)]
pub struct CreateClusterArgs {
    /// Kubeconfig file.
    #[arg(short = 'i', long = "inventory", value_name = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Cluster name.
    #[arg(long)]
    pub name: String,
    /// Embed the kubeconfig's content (as the anchor does) instead of
    /// storing a reference to its path.
    #[arg(long)]
    pub embed: bool,
    /// Label `k=v`; repeatable.
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Description.
    #[arg(long)]
    pub desc: Option<String>,
    /// Print the object instead of storing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format (with --dry-run: yaml by default).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one setting's resolved value.
    Get {
        /// Setting name (see `config list`).
        key: String,
    },
    /// Write a setting to the config file.
    Set {
        /// Setting name.
        key: String,
        /// Value.
        value: String,
    },
    /// Remove a setting from the config file.
    Unset {
        /// Setting name.
        key: String,
    },
    /// Every setting with its value and where it came from.
    List {
        /// Output format (table, yaml or json).
        #[arg(short = 'o', long, value_enum)]
        output: Option<Format>,
    },
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl TargetArgs {
    /// The engine's view of these flags.
    pub fn inventory(&self) -> ops_engine::inventory::Inventory {
        ops_engine::inventory::Inventory {
            inventory: self.inventory.clone(),
            cluster: self.cluster.clone(),
            nodename: self.nodename.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            private_key_path: self.private_key_path.clone(),
            port: self.port,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every command's flags are consistent (no short option used twice
    /// across global and local flags): clap checks this only when a
    /// command is parsed, so a clash would otherwise panic for users.
    #[test]
    fn every_command_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
