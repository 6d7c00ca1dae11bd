//! `host_list`, `host_describe`, `host_status`, `host_run_shell`,
//! `host_read_file`.

use std::collections::BTreeMap;

use ops_engine::host_status::{HostStatusReport, STATUS_SCRIPT, parse_status};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TOOL_OUTPUT;
use crate::registry::{CallFacts, Tool, ToolContext, ToolError, failed};
use ops_exec::{ExecRequest, ExitStatus};
use ops_model::shell;
use ops_model::{Kind, LabelSelector, Object};

/// Arguments of `host_list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostListArgs {
    /// Only hosts with these labels, as a selector: `role=web,env=prod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// A host in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct HostSummary {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// `host_list`.
#[derive(Debug, Clone, Copy)]
pub struct HostList;

#[async_trait]
impl Tool for HostList {
    type Args = HostListArgs;
    type Output = Vec<HostSummary>;
    fn name(&self) -> &'static str {
        "host_list"
    }
    fn description(&self) -> &'static str {
        "List the inventory's hosts (name, address, labels), optionally filtered by a label selector."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if let Some(s) = &a.selector {
            s.parse::<LabelSelector>().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let sel: LabelSelector = a
            .selector
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(failed)?;
        Ok(ctx
            .objects(Kind::Host, &sel)
            .await?
            .into_iter()
            .filter_map(|o| match o {
                Object::Host(h) => Some(HostSummary {
                    address: h.spec.address.clone().unwrap_or_default(),
                    labels: h.metadata.labels.clone().unwrap_or_default(),
                    name: h.metadata.name,
                }),
                _ => None,
            })
            .collect())
    }
}

/// Arguments naming one host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostArgs {
    /// Host name (from host_list).
    pub host: String,
}

async fn host(ctx: &ToolContext, name: &str) -> Result<ops_model::Host, ToolError> {
    match ctx.object(Kind::Host, name).await? {
        Object::Host(h) => Ok(h),
        _ => Err(ToolError::NotFound(format!("`{name}` is not a host"))),
    }
}

/// `host_describe`.
#[derive(Debug, Clone, Copy)]
pub struct HostDescribe;

#[async_trait]
impl Tool for HostDescribe {
    type Args = HostArgs;
    type Output = serde_json::Value;
    fn name(&self) -> &'static str {
        "host_describe"
    }
    fn description(&self) -> &'static str {
        "A host's full inventory record (address, port, user, labels, last known status); credentials are redacted."
    }
    fn facts(&self, _: &Self::Args) -> CallFacts {
        CallFacts::read()
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let h = host(ctx, &a.host).await?;
        serde_json::to_value(Object::Host(h).redacted()).map_err(failed)
    }
}

/// `host_status`.
#[derive(Debug, Clone, Copy)]
pub struct HostStatus;

#[async_trait]
impl Tool for HostStatus {
    type Args = HostArgs;
    type Output = HostStatusReport;
    fn name(&self) -> &'static str {
        "host_status"
    }
    fn description(&self) -> &'static str {
        "Health of one host, measured now: hostname, kernel, OS, uptime, load, CPUs, memory, disk and inode use per filesystem, failed systemd units."
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        CallFacts {
            targets: vec![a.host.clone()],
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let h = host(ctx, &a.host).await?;
        let exec = ctx.engine.executor_for(&h).map_err(failed)?;
        let mut req =
            ExecRequest::script(STATUS_SCRIPT).with_timeout(std::time::Duration::from_secs(30));
        req.limits = TOOL_OUTPUT;
        req.sandbox = ctx.sandbox;
        let out = exec.run(&req, None, &ctx.cancel).await.map_err(failed)?;
        if let Some(reason) = no_sandbox(&out.stderr.text()).filter(|_| req.sandbox) {
            return Err(ToolError::Unsandboxed {
                hosts: vec![a.host.clone()],
                reason,
            });
        }
        if !out.status.success() {
            return Err(ToolError::Failed(format!(
                "status probe on {} ended {:?}: {}",
                a.host,
                out.status,
                out.stderr.text()
            )));
        }
        Ok(parse_status(&out.stdout.text()))
    }
}

/// Arguments of `host_run_shell`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRunShellArgs {
    /// Where: a host name, several (`web-1,web-2`), a label selector
    /// (`role=web`), or `all`.
    pub hosts: String,
    /// The shell command line.
    pub command: String,
    /// Run through sudo.
    #[serde(default)]
    pub sudo: bool,
    /// Stop it after this many seconds (1..=3600, default 60).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Why this command (shown to the approver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn default_timeout() -> u64 {
    60
}

/// One target's result.
#[derive(Debug, Clone, Serialize)]
pub struct ShellResult {
    /// Target.
    pub host: String,
    /// Exit code, or what stopped it.
    pub status: String,
    /// Standard output (head and tail kept).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// `host_run_shell`.
#[derive(Debug, Clone, Copy)]
pub struct HostRunShell;

fn status_text(s: &ExitStatus) -> String {
    match s {
        ExitStatus::Code(c) => format!("exit {c}"),
        ExitStatus::Signal(sig) => format!("killed by {sig}"),
        ExitStatus::TimedOut => "timed out".into(),
        ExitStatus::Cancelled => "cancelled".into(),
    }
}

#[async_trait]
impl Tool for HostRunShell {
    type Args = HostRunShellArgs;
    type Output = Vec<ShellResult>;
    fn name(&self) -> &'static str {
        "host_run_shell"
    }
    fn description(&self) -> &'static str {
        "Run a shell command on one or more hosts. Read-only commands (df, ps, journalctl, systemctl status, ...) run at once; anything that can change the host needs a human's approval first."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if a.command.trim().is_empty() {
            return Err("command is empty".into());
        }
        if a.hosts.trim().is_empty() {
            return Err("hosts is empty: give a host name, a selector or `all`".into());
        }
        if !(1..=3600).contains(&a.timeout_seconds) {
            return Err(format!(
                "timeout_seconds must be 1..=3600, not {}",
                a.timeout_seconds
            ));
        }
        Ok(())
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        let c = shell::classify(&a.command);
        CallFacts {
            effect: Some(c.effect),
            reads_secret: c.reads_secret,
            shell: Some(a.command.clone()),
            targets: a.hosts.split(',').map(|h| h.trim().to_owned()).collect(),
            ..CallFacts::default()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let targets = ctx.targets(&a.hosts, &Default::default()).await?;
        let mut req = ExecRequest::script(a.command.clone())
            .with_timeout(std::time::Duration::from_secs(a.timeout_seconds));
        req.sudo = a.sudo;
        req.limits = TOOL_OUTPUT;
        run_gated(ctx, &targets, req).await
    }
}

/// Runs `req` on every target at once; one result each, errors included.
/// [`run_on`] for a tool call: sandboxed when the gate asked for it, and
/// an [`ToolError::Unsandboxed`] naming the targets that cannot be.
pub(super) async fn run_gated(
    ctx: &ToolContext,
    targets: &[ops_engine::Target],
    mut req: ExecRequest,
) -> Result<Vec<ShellResult>, ToolError> {
    req.sandbox = ctx.sandbox;
    let results = run_on(targets, &req, &ctx.cancel).await;
    if req.sandbox {
        let without: Vec<(&ShellResult, String)> = results
            .iter()
            .filter_map(|r| no_sandbox(&r.stderr).map(|why| (r, why)))
            .collect();
        if let Some((_, reason)) = without.first() {
            return Err(ToolError::Unsandboxed {
                hosts: without.iter().map(|(r, _)| r.host.clone()).collect(),
                reason: reason.clone(),
            });
        }
    }
    Ok(results)
}

/// Why a target could not make the read-only sandbox, from what the
/// command wrote on stderr; `None` when it ran inside one.
fn no_sandbox(stderr: &str) -> Option<String> {
    let marker = ops_exec::script::NO_SANDBOX;
    stderr
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, why)| why.trim().to_owned()))
}

pub(super) async fn run_on(
    targets: &[ops_engine::Target],
    req: &ExecRequest,
    cancel: &tokio_util::sync::CancellationToken,
) -> Vec<ShellResult> {
    let runs = targets.iter().map(|t| async move {
        match t.executor.run(req, None, cancel).await {
            Ok(out) => ShellResult {
                host: t.name.clone(),
                status: status_text(&out.status),
                stdout: out.stdout.text(),
                stderr: out.stderr.text(),
            },
            Err(e) => ShellResult {
                host: t.name.clone(),
                status: "error".into(),
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    });
    futures::future::join_all(runs).await
}

/// Arguments of `host_read_file`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostReadFileArgs {
    /// Host name.
    pub host: String,
    /// Absolute path of the file.
    pub path: String,
    /// Read only the last lines (like tail -n), instead of the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_lines: Option<u32>,
    /// At most this many bytes (default 16384, at most 262144).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u32,
}

fn default_max_bytes() -> u32 {
    16 * 1024
}

/// A file's content.
#[derive(Debug, Clone, Serialize)]
pub struct FileContent {
    /// Path.
    pub path: String,
    /// Content (UTF-8, invalid bytes replaced), at most `max_bytes`.
    pub content: String,
    /// Whether the file is longer than what is shown.
    pub truncated: bool,
}

/// `host_read_file`.
#[derive(Debug, Clone, Copy)]
pub struct HostReadFile;

#[async_trait]
impl Tool for HostReadFile {
    type Args = HostReadFileArgs;
    type Output = FileContent;
    fn name(&self) -> &'static str {
        "host_read_file"
    }
    fn description(&self) -> &'static str {
        "Read a file on a host, bounded: the start (max_bytes) or the last tail_lines lines. Secret files (keys, /etc/shadow, kubeconfigs) need approval."
    }
    fn validate(&self, a: &Self::Args) -> Result<(), String> {
        if !a.path.starts_with('/') {
            return Err(format!("path must be absolute, not `{}`", a.path));
        }
        if a.max_bytes == 0 || a.max_bytes > 256 * 1024 {
            return Err(format!("max_bytes must be 1..=262144, not {}", a.max_bytes));
        }
        Ok(())
    }
    fn facts(&self, a: &Self::Args) -> CallFacts {
        let c = shell::classify(&format!("cat {}", ops_exec::script::quote(&a.path)));
        CallFacts {
            targets: vec![a.host.clone()],
            reads_secret: c.reads_secret,
            ..CallFacts::read()
        }
    }
    async fn call(&self, ctx: &ToolContext, a: Self::Args) -> Result<Self::Output, ToolError> {
        let h = host(ctx, &a.host).await?;
        let exec = ctx.engine.executor_for(&h).map_err(failed)?;
        let p = ops_exec::script::quote(&a.path);
        let max = a.max_bytes;
        let reader = match a.tail_lines {
            Some(n) => format!("tail -n {n} -- {p} | head -c {}", max + 1),
            None => format!("head -c {} -- {p}", max + 1),
        };
        let script = format!("[ -f {p} ] || {{ echo 'no such file' >&2; exit 2; }}; {reader}");
        let mut req = ExecRequest::script(script).with_timeout(std::time::Duration::from_secs(30));
        req.limits = ops_exec::OutputLimits {
            head: (max as usize) + 1,
            tail: 0,
        };
        req.sandbox = ctx.sandbox;
        let out = exec.run(&req, None, &ctx.cancel).await.map_err(failed)?;
        if let Some(reason) = no_sandbox(&out.stderr.text()).filter(|_| req.sandbox) {
            return Err(ToolError::Unsandboxed {
                hosts: vec![a.host.clone()],
                reason,
            });
        }
        if !out.status.success() {
            return Err(ToolError::Failed(format!(
                "{}: {}",
                a.path,
                out.stderr.text().trim()
            )));
        }
        let bytes = out.stdout.bytes();
        let truncated = bytes.len() > max as usize;
        let shown = &bytes[..bytes.len().min(max as usize)];
        Ok(FileContent {
            path: a.path,
            content: String::from_utf8_lossy(shown).into_owned(),
            truncated,
        })
    }
}
