//! The local executor: this machine, for hosts whose address is empty,
//! `127.0.0.1` or `localhost` (as in the anchor), and for file steps'
//! local side.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::output::{Collector, classify};
use super::script::{Sudo, command_line};
use super::{ExecError, ExecOutput, ExecRequest, Executor, ExitStatus, OutputSink, Transfer, hex};

/// Extra time after a command's own timeout before the client kills it.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(10);

/// Runs on this machine.
#[derive(Debug)]
pub struct LocalExecutor {
    name: String,
    sudo_password: Option<String>,
    sudo_mode: OnceCell<Sudo>,
}

impl LocalExecutor {
    /// A local executor reported as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        LocalExecutor {
            name: name.into(),
            sudo_password: None,
            sudo_mode: OnceCell::new(),
        }
    }

    /// Answers sudo's prompt with `password`.
    pub fn with_sudo_password(mut self, password: Option<String>) -> Self {
        self.sudo_password = password;
        self
    }

    async fn sudo(&self, wanted: bool) -> Sudo {
        if !wanted || nix::unistd::geteuid().is_root() {
            return Sudo::No;
        }
        *self
            .sudo_mode
            .get_or_init(|| async {
                let passwordless = tokio::process::Command::new("sudo")
                    .args(["-n", "true"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await
                    .is_ok_and(|s| s.success());
                if passwordless || self.sudo_password.is_none() {
                    Sudo::NoPassword
                } else {
                    Sudo::WithPassword
                }
            })
            .await
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ExecError {
        ExecError::Spawn {
            target: self.name.clone(),
            what: what.into(),
            detail: e.to_string(),
        }
    }
}

/// Signals process groups, never 0 or 1 ("my group", "everything") and
/// never this process's own group.
fn kill_groups(groups: &[u32], signal: Signal) {
    let own = nix::unistd::getpgrp().as_raw();
    for &g in groups {
        match i32::try_from(g) {
            Ok(pid) if pid > 1 && pid != own => {
                // The group may already be gone; that is the goal.
                let _ = killpg(Pid::from_raw(pid), signal);
            }
            _ => {}
        }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        &self,
        req: &ExecRequest,
        sink: Option<OutputSink<'_>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        let sudo = self.sudo(req.sudo).await;
        let line = command_line(req, sudo).map_err(|detail| ExecError::Invalid {
            target: self.name.clone(),
            detail,
        })?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.err("/bin/sh", e))?;
        let Some(child_group) = child.id() else {
            return Err(self.err("/bin/sh", "the process exited before it could be tracked"));
        };
        let mut input = Vec::new();
        if sudo == Sudo::WithPassword {
            if let Some(p) = &self.sudo_password {
                input.extend_from_slice(p.as_bytes());
                input.push(b'\n');
            }
        }
        if let Some(s) = &req.stdin {
            input.extend_from_slice(s);
        }
        if let Some(mut stdin) = child.stdin.take() {
            tokio::spawn(async move {
                // A command that exits without reading its input closes the
                // pipe; that is not an error.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            });
        }
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| self.err("stdout", "not captured"))?;
        let mut err = child
            .stderr
            .take()
            .ok_or_else(|| self.err("stderr", "not captured"))?;
        let mut col = Collector::new(req.limits, sink);
        let (mut obuf, mut ebuf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let (mut out_open, mut err_open) = (true, true);
        let deadline = req
            .timeout
            .map(|t| tokio::time::Instant::now() + t + KILL_GRACE);
        let stop = |col: &Collector<'_>, signal| {
            let mut groups = vec![child_group];
            groups.extend(col.pgid());
            kill_groups(&groups, signal);
        };
        let mut forced: Option<ExitStatus> = None;
        let status = loop {
            tokio::select! {
                n = out.read(&mut obuf), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => col.stdout(&obuf[..n]),
                },
                n = err.read(&mut ebuf), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => col.stderr(&ebuf[..n]),
                },
                st = child.wait(), if !out_open && !err_open => {
                    break st.map_err(|e| self.err("wait", e))?;
                }
                _ = cancel.cancelled(), if forced.is_none() => {
                    stop(&col, Signal::SIGTERM);
                    forced = Some(ExitStatus::Cancelled);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    stop(&col, Signal::SIGKILL);
                }
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } }, if forced.is_none() => {
                    stop(&col, Signal::SIGKILL);
                    forced = Some(ExitStatus::TimedOut);
                }
            }
        };
        let elapsed = started.elapsed();
        let limit_passed = req.timeout.is_some_and(|t| elapsed >= t);
        let status = match forced {
            Some(s) => s,
            None => match status.code() {
                Some(c) => classify(c, limit_passed),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    ExitStatus::Signal(status.signal().map_or("unknown".into(), |s| s.to_string()))
                }
            },
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
        copy_verified(&self.name, local, &super::expand_home(remote), mode, cancel).await
    }

    async fn download(
        &self,
        remote: &str,
        local: &Path,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        copy_verified(&self.name, &super::expand_home(remote), local, None, cancel).await
    }
}

/// SHA-256 of a local file, streamed.
pub(crate) async fn sha256_file(target: &str, path: &Path) -> Result<(u64, String), ExecError> {
    let ferr = |e: std::io::Error| ExecError::File {
        target: target.into(),
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let mut f = tokio::fs::File::open(path).await.map_err(ferr)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).await.map_err(ferr)?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((n_total, hex(&h.finalize())))
}

/// A temporary name next to `dst`.
pub(crate) fn temp_name(dst: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{dst}.ops-tmp-{}-{nanos}", std::process::id())
}

/// Copies `src` to `dst` through a temporary file, verifying the checksum
/// before the rename.
async fn copy_verified(
    target: &str,
    src: &Path,
    dst: &Path,
    mode: Option<u32>,
    cancel: &CancellationToken,
) -> Result<Transfer, ExecError> {
    let ferr = |p: &Path, e: std::io::Error| ExecError::File {
        target: target.into(),
        path: p.display().to_string(),
        detail: e.to_string(),
    };
    let tmp = std::path::PathBuf::from(temp_name(&dst.display().to_string()));
    let mut input = tokio::fs::File::open(src).await.map_err(|e| ferr(src, e))?;
    let mut output = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| ferr(&tmp, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let result: Result<(), ExecError> = async {
        loop {
            if cancel.is_cancelled() {
                return Err(ExecError::Cancelled {
                    target: target.into(),
                });
            }
            let n = input.read(&mut buf).await.map_err(|e| ferr(src, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
            output
                .write_all(&buf[..n])
                .await
                .map_err(|e| ferr(&tmp, e))?;
        }
        output.sync_all().await.map_err(|e| ferr(&tmp, e))?;
        if let Some(m) = mode {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m))
                .await
                .map_err(|e| ferr(&tmp, e))?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let sent = hex(&h.finalize());
    let (_, written) = sha256_file(target, &tmp).await?;
    if written != sent {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ExecError::Checksum {
            target: target.into(),
            path: dst.display().to_string(),
            local: sent,
            remote: written,
        });
    }
    tokio::fs::rename(&tmp, dst)
        .await
        .map_err(|e| ferr(dst, e))?;
    Ok(Transfer {
        bytes: total,
        sha256: sent,
    })
}
