//! The SSH executor (russh): key (file, inline, agent), password and
//! keyboard-interactive authentication; host keys verified against
//! `$OPS_HOME/known_hosts`; one pooled connection per host reused across
//! steps, with a bound on concurrent channels; SFTP transfers checked by
//! SHA-256 and renamed into place; sudo answered from the credential;
//! timeouts and cancellation that stop the remote process group.

mod connect;
pub(crate) use ops_model::base64_decode;
pub mod known_hosts;
mod transfer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use russh::ChannelMsg;
use tokio::sync::{Mutex, OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use super::local::KILL_GRACE;

/// How long a kill and a channel close may take once a call is over its
/// limit or cancelled, before the connection is given up as dead.
const FORCED_CLOSE: Duration = Duration::from_secs(5);
use super::output::{Collector, classify};
use super::script::{Sudo, command_line_with, kill_line};
use super::{ExecError, ExecOutput, ExecRequest, Executor, ExitStatus, OutputSink, Transfer};
use crate::secret;
pub use known_hosts::HostKeyPolicy;
use ops_model::Host;

/// Settings shared by every SSH connection of a process.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// The known_hosts file (`$OPS_HOME/known_hosts`).
    pub known_hosts: PathBuf,
    /// Unknown-host policy.
    pub policy: HostKeyPolicy,
    /// TCP connect plus handshake limit (a Host's `timeoutSeconds` wins).
    pub connect_timeout: Duration,
    /// Concurrent channels per connection (sshd's MaxSessions is 10).
    pub channels_per_host: usize,
}

impl SshOptions {
    /// Defaults for an `$OPS_HOME`.
    pub fn new(ops_home: &Path) -> Self {
        SshOptions {
            known_hosts: known_hosts::default_path(ops_home),
            policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            channels_per_host: 8,
        }
    }
}

/// Where and as whom to connect, with credentials resolved.
#[derive(Clone)]
pub struct SshTarget {
    /// Target name used in messages and results.
    pub name: String,
    /// Address or DNS name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password (SSH and sudo), resolved.
    pub password: Option<String>,
    /// Private key file.
    pub key_path: Option<PathBuf>,
    /// Private key text (PEM/OpenSSH, or base64 of it), resolved.
    pub inline_key: Option<String>,
    /// Connect timeout override.
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTarget")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("key_path", &self.key_path)
            .field(
                "inline_key",
                &self.inline_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SshTarget {
    /// SHA-256 over the credentials, for pool keys (never printed).
    fn credential_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.password.as_deref().unwrap_or(""),
            &self
                .key_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            self.inline_key.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        super::hex(&h.finalize())
    }

    /// From a Host object; `default_user` when the Host names none.
    /// Secret references (`${env:..}`, `${file:..}`) are resolved here.
    pub fn from_host(host: &Host, default_user: &str) -> Result<Self, ExecError> {
        let name = host.metadata.name.clone();
        let resolve = |v: &Option<String>| -> Result<Option<String>, ExecError> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => secret::resolve(s)
                    .map(Some)
                    .map_err(|source| ExecError::Secret {
                        target: name.clone(),
                        source,
                    }),
            }
        };
        let s = &host.spec;
        Ok(SshTarget {
            host: s.address.clone().unwrap_or_default(),
            port: s.port.unwrap_or(22),
            user: s
                .username
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| default_user.to_owned()),
            password: resolve(&s.password)?,
            key_path: s
                .private_key_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(super::expand_home),
            inline_key: resolve(&s.private_key)?,
            connect_timeout: s
                .timeout_seconds
                .filter(|t| *t > 0)
                .map(|t| Duration::from_secs(t.unsigned_abs())),
            name,
        })
    }
}

pub(crate) struct Conn {
    handle: russh::client::Handle<connect::Client>,
    channels: Semaphore,
}

/// Host, port, user and a digest of the credentials: a connection made
/// with one password is never reused for a request carrying another.
type Key = (String, u16, String, String);
/// One connection slot, locked while (re)connecting.
type Slot = Arc<Mutex<Option<Arc<Conn>>>>;

/// Open connections, one per (host, port, user), shared by executors.
pub struct SshPool {
    options: SshOptions,
    slots: std::sync::Mutex<HashMap<Key, Slot>>,
    learn_lock: Arc<std::sync::Mutex<()>>,
}

impl std::fmt::Debug for SshPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshPool")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SshPool {
    /// An empty pool.
    pub fn new(options: SshOptions) -> Arc<Self> {
        Arc::new(SshPool {
            options,
            slots: std::sync::Mutex::new(HashMap::new()),
            learn_lock: Arc::new(std::sync::Mutex::new(())),
        })
    }

    /// The options.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    async fn get(&self, t: &SshTarget) -> Result<Arc<Conn>, ExecError> {
        let slot = {
            let mut slots = self.slots.lock().map_err(|_| ExecError::Protocol {
                target: t.name.clone(),
                detail: "ssh: connection pool lock poisoned".into(),
            })?;
            Arc::clone(
                slots
                    .entry((
                        t.host.clone(),
                        t.port,
                        t.user.clone(),
                        t.credential_digest(),
                    ))
                    .or_default(),
            )
        };
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.handle.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let handle = connect::open(t, &self.options, Arc::clone(&self.learn_lock)).await?;
        let conn = Arc::new(Conn {
            handle,
            channels: Semaphore::new(self.options.channels_per_host.max(1)),
        });
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Drops `conn` from the pool (when it is still the one there) and
    /// disconnects it without waiting on the peer: a connection whose peer
    /// stopped answering is never handed out again.
    async fn forget(&self, t: &SshTarget, conn: &Arc<Conn>) {
        let key = (
            t.host.clone(),
            t.port,
            t.user.clone(),
            t.credential_digest(),
        );
        let slot = match self.slots.lock() {
            Ok(s) => s.get(&key).cloned(),
            Err(_) => None,
        };
        if let Some(slot) = slot {
            let mut guard = slot.lock().await;
            if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                *guard = None;
            }
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            conn.handle
                .disconnect(russh::Disconnect::ByApplication, "timed out", "en"),
        )
        .await;
    }

    /// Disconnects everything.
    pub async fn close_all(&self) {
        let slots: Vec<_> = match self.slots.lock() {
            Ok(mut s) => s.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for slot in slots {
            if let Some(c) = slot.lock().await.take() {
                let _ = c
                    .handle
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
            }
        }
    }
}

/// Runs on one host over SSH.
#[derive(Debug)]
pub struct SshExecutor {
    target: SshTarget,
    pool: Arc<SshPool>,
    sudo_mode: OnceCell<Sudo>,
}

impl SshExecutor {
    /// An executor for `target` using `pool`'s connections.
    pub fn new(target: SshTarget, pool: Arc<SshPool>) -> Self {
        SshExecutor {
            target,
            pool,
            sudo_mode: OnceCell::new(),
        }
    }

    fn proto(&self, e: impl std::fmt::Display) -> ExecError {
        ExecError::Protocol {
            target: self.target.name.clone(),
            detail: format!("ssh: {e}"),
        }
    }

    /// Runs `line` to completion with `input` on stdin, without a sink;
    /// for probes, kills and transfer bookkeeping.
    async fn simple(
        &self,
        conn: &Conn,
        line: &str,
        input: &[u8],
        limit: Duration,
    ) -> Result<(Option<u32>, Vec<u8>), ExecError> {
        let _permit = conn.channels.acquire().await.map_err(|e| self.proto(e))?;
        let work = async {
            let mut ch = conn
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.proto(e))?;
            ch.exec(true, line).await.map_err(|e| self.proto(e))?;
            if !input.is_empty() {
                ch.data(input).await.map_err(|e| self.proto(e))?;
            }
            ch.eof().await.map_err(|e| self.proto(e))?;
            let (mut code, mut out) = (None, Vec::new());
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                    _ => {}
                }
            }
            Ok::<_, ExecError>((code, out))
        };
        tokio::time::timeout(limit, work).await.map_err(|_| {
            self.proto(format!(
                "`{}` did not finish in {}s",
                line.chars().take(40).collect::<String>(),
                limit.as_secs()
            ))
        })?
    }

    async fn sudo(&self, conn: &Conn, wanted: bool) -> Result<Sudo, ExecError> {
        if !wanted {
            return Ok(Sudo::No);
        }
        self.sudo_mode
            .get_or_try_init(|| async {
                if self.target.user == "root" {
                    return Ok(Sudo::No);
                }
                let (code, _) = self
                    .simple(
                        conn,
                        "sudo -n true 2>/dev/null",
                        b"",
                        Duration::from_secs(20),
                    )
                    .await?;
                Ok(if code == Some(0) || self.target.password.is_none() {
                    Sudo::NoPassword
                } else {
                    Sudo::WithPassword
                })
            })
            .await
            .copied()
    }

    fn password_line(&self, sudo: Sudo) -> Vec<u8> {
        match (&self.target.password, sudo) {
            (Some(p), Sudo::WithPassword) => format!("{p}\n").into_bytes(),
            _ => Vec::new(),
        }
    }

    /// The output of a call whose deadline passed before its command
    /// could even start (connecting, or opening the channel, hung).
    fn gave_up(&self, req: &ExecRequest, started: Instant) -> ExecOutput {
        let mut col = Collector::new(req.limits, None);
        col.stderr(
            format!(
                "ops: {} did not answer within the time limit; the connection was given up\n",
                self.target.name
            )
            .as_bytes(),
        );
        col.finish(ExitStatus::TimedOut, started.elapsed())
    }

    async fn kill(&self, conn: &Conn, pgid: Option<u32>, sudo: Sudo) {
        if let Some(line) = pgid.and_then(|g| kill_line(g, sudo)) {
            let input = self.password_line(sudo);
            // Best effort: if the kill itself fails, the remote `timeout`
            // still bounds the command, and closing the channel follows.
            let _ = self.simple(conn, &line, &input, FORCED_CLOSE).await;
        }
    }
}

#[async_trait]
impl Executor for SshExecutor {
    fn name(&self) -> &str {
        &self.target.name
    }

    async fn run(
        &self,
        req: &ExecRequest,
        sink: Option<OutputSink<'_>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        let started = Instant::now();
        // The client's own deadline: the remote `timeout` bounds the
        // command, this bounds everything else (connecting, opening the
        // channel, a peer that stops answering), so a frozen server cannot
        // hold a call past its limit.
        let deadline = req
            .timeout
            .map(|t| tokio::time::Instant::now() + t + KILL_GRACE);
        let until = |d: Option<tokio::time::Instant>| async move {
            match d {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let conn = tokio::select! {
            c = self.pool.get(&self.target) => c?,
            _ = cancel.cancelled() => return Err(ExecError::Cancelled { target: self.target.name.clone() }),
            _ = until(deadline) => return Ok(self.gave_up(req, started)),
        };
        // Setting up the channel against the same deadline.
        let setup = async {
            let sudo = self.sudo(&conn, req.sudo).await?;
            // With no input of its own, the command gets the hang-up
            // watch: it dies with this connection (see `script`).
            let watch = req.stdin.is_none();
            let line =
                command_line_with(req, sudo, watch).map_err(|detail| ExecError::Invalid {
                    target: self.target.name.clone(),
                    detail,
                })?;
            let permit = conn.channels.acquire().await.map_err(|e| self.proto(e))?;
            let ch = conn
                .handle
                .channel_open_session()
                .await
                .map_err(|e| self.proto(e))?;
            ch.exec(true, line.as_str())
                .await
                .map_err(|e| self.proto(e))?;
            let mut input = self.password_line(sudo);
            if let Some(s) = &req.stdin {
                input.extend_from_slice(s);
            }
            if !input.is_empty() {
                ch.data(&input[..]).await.map_err(|e| self.proto(e))?;
            }
            if !watch {
                ch.eof().await.map_err(|e| self.proto(e))?;
            }
            Ok::<_, ExecError>((sudo, permit, ch))
        };
        let (sudo, permit, mut ch) = tokio::select! {
            r = setup => r?,
            _ = until(deadline) => {
                self.pool.forget(&self.target, &conn).await;
                return Ok(self.gave_up(req, started));
            }
        };
        let mut col = Collector::new(req.limits, sink);
        let mut forced: Option<ExitStatus> = None;
        // Once a kill was sent, how long the channel may take to close
        // before the connection is given up as dead.
        let mut give_up: Option<tokio::time::Instant> = None;
        let (mut code, mut signal) = (None, None);
        loop {
            tokio::select! {
                msg = ch.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => col.stdout(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => col.stderr(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(format!("{signal_name:?}")),
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                _ = cancel.cancelled(), if forced.is_none() => {
                    forced = Some(ExitStatus::Cancelled);
                    give_up = Some(tokio::time::Instant::now() + FORCED_CLOSE);
                    let _ = tokio::time::timeout(FORCED_CLOSE, async {
                        self.kill(&conn, col.pgid(), sudo).await;
                        let _ = ch.close().await;
                    })
                    .await;
                }
                _ = until(deadline), if forced.is_none() => {
                    forced = Some(ExitStatus::TimedOut);
                    give_up = Some(tokio::time::Instant::now() + FORCED_CLOSE);
                    let _ = tokio::time::timeout(FORCED_CLOSE, async {
                        self.kill(&conn, col.pgid(), sudo).await;
                        let _ = ch.close().await;
                    })
                    .await;
                }
                _ = until(give_up), if give_up.is_some() => {
                    // The peer answers neither the kill nor the close: the
                    // connection is dead to us. Closing it makes the remote
                    // watch kill the command once the server notices.
                    self.pool.forget(&self.target, &conn).await;
                    break;
                }
            }
        }
        drop(permit);
        let elapsed = started.elapsed();
        let limit_passed = req.timeout.is_some_and(|t| elapsed >= t);
        let status = match (forced, code, signal) {
            (Some(s), _, _) => s,
            (None, Some(c), _) => classify(i32::try_from(c).unwrap_or(i32::MAX), limit_passed),
            (None, None, Some(sig)) => ExitStatus::Signal(sig),
            (None, None, None) => {
                return Err(
                    self.proto("the channel closed without an exit status (connection lost?)")
                );
            }
        };
        Ok(col.finish(status, elapsed))
    }

    async fn upload(
        &self,
        local: &Path,
        remote: &str,
        mode: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        let conn = self.pool.get(&self.target).await?;
        transfer::upload(self, &conn, local, remote, mode, cancel).await
    }

    async fn download(
        &self,
        remote: &str,
        local: &Path,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        let conn = self.pool.get(&self.target).await?;
        transfer::download(self, &conn, remote, local, cancel).await
    }
}
