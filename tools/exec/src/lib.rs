//! Running commands and moving files on a target.
//!
//! [`Executor`] is the one interface the engine, the copilot's tools and
//! the CLI use: run a command (argv or script, env, cwd, stdin, sudo,
//! timeout, cancellation) with stdout and stderr kept apart, streamed as
//! they arrive and bounded in memory; upload and download files with a
//! checksum. Implementations: [`local`] (this machine) and [`ssh`]
//! (russh). Every command runs under the same small POSIX `sh` wrapper
//! ([`script`]) so that a timeout or a cancellation stops the whole
//! process group on the target, not just the channel.

pub mod kube;
pub mod local;
mod output;
pub mod script;
pub mod secret;
pub mod ssh;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use output::{Captured, OutputLimits};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// A script; the interpreter comes from its first line (a `python`
    /// shebang runs python3, another shebang runs that interpreter,
    /// otherwise bash, or sh where bash is missing).
    Script(String),
    /// A program and its arguments, no shell involved.
    Argv(Vec<String>),
}

/// One command execution.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// What to run.
    pub command: CommandSpec,
    /// Extra environment variables (names: letters, digits, `_`).
    pub env: BTreeMap<String, String>,
    /// Working directory on the target.
    pub cwd: Option<String>,
    /// Bytes fed to standard input (then end-of-file).
    pub stdin: Option<Vec<u8>>,
    /// Run as root through `sudo` (answering its prompt from the target's
    /// password; the password is never echoed or logged).
    pub sudo: bool,
    /// Stop the command (its whole process group) after this long.
    pub timeout: Option<Duration>,
    /// How much of each stream to keep.
    pub limits: OutputLimits,
    /// Run inside the read-only sandbox (see [`script::SANDBOX`]): every
    /// mount read-only in a private mount namespace, block devices hidden,
    /// capabilities down to reading, `no_new_privs`, a fixed `PATH`. A
    /// target that cannot provide it fails the command with
    /// [`script::NO_SANDBOX`] on stderr and exit code 125; nothing runs.
    pub sandbox: bool,
}

impl ExecRequest {
    /// A script with default settings.
    pub fn script(text: impl Into<String>) -> Self {
        ExecRequest {
            command: CommandSpec::Script(text.into()),
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            sudo: false,
            timeout: None,
            limits: OutputLimits::default(),
            sandbox: false,
        }
    }

    /// An argv with default settings.
    pub fn argv<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            command: CommandSpec::Argv(args.into_iter().map(Into::into).collect()),
            ..ExecRequest::script("")
        }
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives output as it arrives (for live display). Called from the
/// executor's task; keep it cheap.
pub type OutputSink<'a> = &'a (dyn Fn(Stream, &[u8]) + Send + Sync);

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(String),
    /// Stopped because its timeout passed.
    TimedOut,
    /// Stopped on request.
    Cancelled,
}

impl ExitStatus {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    /// The exit code, when it exited normally.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::TimedOut => f.write_str("timed out"),
            ExitStatus::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// What a command produced.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output (bounded).
    pub stdout: Captured,
    /// Standard error (bounded, wrapper markers removed).
    pub stderr: Captured,
    /// Wall time.
    pub duration: Duration,
}

/// A finished file transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes moved.
    pub bytes: u64,
    /// SHA-256 of the content, hex, verified on both ends.
    pub sha256: String,
}

/// Why an execution could not happen. Every variant names the target. For
/// the copilot these are "tell the model" errors: the run failed on that
/// target, nothing else is affected.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The host name does not resolve.
    #[error("{target}: cannot resolve host `{host}`: {detail}")]
    Resolve {
        /// Target name.
        target: String,
        /// Host.
        host: String,
        /// Resolver message.
        detail: String,
    },
    /// The TCP connection failed (refused, unreachable).
    #[error("{target}: cannot connect to {addr}: {detail}")]
    Connect {
        /// Target name.
        target: String,
        /// Address tried.
        addr: String,
        /// OS message.
        detail: String,
    },
    /// Connecting or the SSH handshake took too long.
    #[error("{target}: connection to {addr} timed out after {}s", after.as_secs())]
    ConnectTimeout {
        /// Target name.
        target: String,
        /// Address tried.
        addr: String,
        /// Limit.
        after: Duration,
    },
    /// No authentication method was accepted.
    #[error("{target}: authentication as `{user}` failed (tried: {})", if tried.is_empty() { "nothing: no key, agent or password available".to_string() } else { tried.join(", ") })]
    Auth {
        /// Target name.
        target: String,
        /// User.
        user: String,
        /// Methods tried, in order.
        tried: Vec<String>,
    },
    /// The host's key is not in known_hosts and the policy is strict.
    #[error(
        "{target}: host key of {host} is not known ({fingerprint}); verify it and add it to {known_hosts}, or connect once with --known-hosts accept-new"
    )]
    HostKeyUnknown {
        /// Target name.
        target: String,
        /// `host` or `[host]:port`.
        host: String,
        /// SHA-256 fingerprint offered.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
    },
    /// The host offered a different key than the recorded one: refused,
    /// whatever the policy.
    #[error(
        "{target}: HOST KEY CHANGED for {host}: known_hosts has {expected}, the server offered {offered}; refusing to connect (if the change is legitimate, remove the old line from {known_hosts})"
    )]
    HostKeyChanged {
        /// Target name.
        target: String,
        /// `host` or `[host]:port`.
        host: String,
        /// Fingerprint(s) recorded.
        expected: String,
        /// Fingerprint offered.
        offered: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
    },
    /// A credential reference could not be read.
    #[error("{target}: {source}")]
    Secret {
        /// Target name.
        target: String,
        /// Why.
        #[source]
        source: crate::secret::SecretError,
    },
    /// A private key could not be read or decoded.
    #[error("{target}: private key {what}: {detail}")]
    Key {
        /// Target name.
        target: String,
        /// Which key (path or "inline").
        what: String,
        /// Why.
        detail: String,
    },
    /// The session failed after connecting (SSH channel, Kubernetes API).
    #[error("{target}: {detail}")]
    Protocol {
        /// Target name.
        target: String,
        /// What failed.
        detail: String,
    },
    /// The local process could not be started.
    #[error("{target}: cannot start {what}: {detail}")]
    Spawn {
        /// Target name.
        target: String,
        /// What.
        what: String,
        /// OS message.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{target}: {path}: {detail}")]
    File {
        /// Target name.
        target: String,
        /// Path (local or remote).
        path: String,
        /// Why.
        detail: String,
    },
    /// A transfer's content differs on the two ends.
    #[error("{target}: checksum mismatch for {path}: local {local}, remote {remote}")]
    Checksum {
        /// Target name.
        target: String,
        /// Remote path.
        path: String,
        /// Local SHA-256.
        local: String,
        /// Remote SHA-256.
        remote: String,
    },
    /// A request that cannot be run as given.
    #[error("{target}: {detail}")]
    Invalid {
        /// Target name.
        target: String,
        /// Why.
        detail: String,
    },
    /// The operation was cancelled before it finished.
    #[error("{target}: cancelled")]
    Cancelled {
        /// Target name.
        target: String,
    },
}

/// Runs commands and moves files on one target.
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// The target's name (host name, or `local`).
    fn name(&self) -> &str;

    /// Runs a command. `sink` sees output as it arrives; `cancel` stops it
    /// (and its process group on the target), returning
    /// [`ExitStatus::Cancelled`].
    async fn run(
        &self,
        req: &ExecRequest,
        sink: Option<OutputSink<'_>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError>;

    /// Copies a local file to the target: written to a temporary name,
    /// given `mode`, checked by SHA-256, then renamed into place.
    async fn upload(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError>;

    /// Copies a file from the target: written to a temporary name, checked
    /// by SHA-256, then renamed into place.
    async fn download(
        &self,
        remote: &str,
        local: &Path,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError>;
}

pub(crate) use ops_model::hex;

/// `path` with a leading `~/` expanded against `$HOME`.
pub fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(path), |h| PathBuf::from(h).join(rest)),
        None => PathBuf::from(path),
    }
}
