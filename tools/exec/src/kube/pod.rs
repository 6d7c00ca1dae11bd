//! [`PodExecutor`]: commands and files in a container of an existing pod,
//! through the API's `exec` subresource. Same wrapper as every other
//! executor, stdout and stderr apart, stdin supported; a timeout or
//! cancellation kills the command's process group through a second exec.
//!
//! Processes started by exec are not process-group leaders, so a command
//! without a time limit is given one of a day: `timeout` then makes itself
//! the leader and killing the group stops everything the command started.

use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use super::attach::{Ended, exec};
use crate::output::{Collector, classify};
use crate::script::{
    Sudo, UploadOutcome, command_line, finish_upload_line, kill_line, quote, sha256_line,
    upload_outcome,
};
use crate::{
    ExecError, ExecOutput, ExecRequest, Executor, ExitStatus, OutputLimits, OutputSink, Transfer,
};

/// The longest a command without its own limit may run in a pod.
const DEFAULT_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The longest a file transfer (or its checksum) may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Runs commands in one container of one pod.
#[derive(Clone)]
pub struct PodExecutor {
    client: kube::Client,
    cluster: String,
    namespace: String,
    pod: String,
    container: Option<String>,
    /// Argv prefix for every command (`nsenter ...` for node transfers).
    prefix: Vec<String>,
    name: String,
}

impl std::fmt::Debug for PodExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodExecutor")
            .field("cluster", &self.cluster)
            .field("pod", &self.name)
            .finish_non_exhaustive()
    }
}

impl PodExecutor {
    /// An executor for `namespace/pod` (container `container`, or the
    /// pod's only one) on `cluster`.
    pub fn new(
        client: kube::Client,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Self {
        PodExecutor {
            client,
            cluster: cluster.into(),
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.map(str::to_owned),
            prefix: Vec::new(),
            name: format!("{namespace}/{pod}"),
        }
    }

    /// Every command runs under `prefix` (e.g. `nsenter -t 1 -m`), and
    /// the executor reports itself as `name`.
    pub(super) fn with_prefix(mut self, prefix: &[&str], name: &str) -> Self {
        self.prefix = prefix.iter().map(|s| (*s).to_owned()).collect();
        self.name = name.to_owned();
        self
    }

    fn err(&self, detail: impl std::fmt::Display) -> ExecError {
        ExecError::Protocol {
            target: self.name.clone(),
            detail: format!("kubernetes ({}): {detail}", self.cluster),
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn argv(&self, line: &str) -> Vec<String> {
        let mut a = self.prefix.clone();
        a.extend(["sh".to_owned(), "-c".to_owned(), line.to_owned()]);
        a
    }

    /// Runs `line` (under the prefix) with the given input and output;
    /// a cancel or the deadline kills the command's process group.
    async fn exec_line(
        &self,
        line: &str,
        stdin: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin + '_>>,
        stdout_to: Option<&mut (dyn tokio::io::AsyncWrite + Send + Unpin)>,
        col: &mut Collector<'_>,
        cancel: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Ended, String> {
        exec(
            &self.pods(),
            &self.pod,
            self.container.as_deref(),
            self.argv(line),
            stdin,
            stdout_to,
            col,
            cancel,
            deadline,
            |g| self.kill(g),
        )
        .await
    }

    /// Kills a process group in the container (best effort).
    async fn kill(&self, pgid: Option<u32>) {
        let Some(line) = pgid.and_then(|g| kill_line(g, Sudo::No)) else {
            return;
        };
        let mut col = Collector::new(OutputLimits::default(), None);
        let never = CancellationToken::new();
        let deadline = Some(tokio::time::Instant::now() + Duration::from_secs(15));
        let _ = exec(
            &self.pods(),
            &self.pod,
            self.container.as_deref(),
            self.argv(&line),
            None,
            None,
            &mut col,
            &never,
            deadline,
            |_| async {},
        )
        .await;
    }

    /// Runs `line` with `input` to completion; stdout and the exit code.
    async fn simple(
        &self,
        line: &str,
        input: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin + '_>>,
        cancel: &CancellationToken,
    ) -> Result<(i32, String, String), ExecError> {
        let mut col = Collector::new(OutputLimits::default(), None);
        let ended = self
            .exec_line(
                line,
                input,
                None,
                &mut col,
                cancel,
                Some(tokio::time::Instant::now() + TRANSFER_LIMIT),
            )
            .await
            .map_err(|e| self.err(e))?;
        let out = col.finish(ExitStatus::Code(0), Duration::ZERO);
        match ended {
            Ended::Exited(c) => Ok((c, out.stdout.text(), out.stderr.text())),
            Ended::Cancelled => Err(ExecError::Cancelled {
                target: self.name.clone(),
            }),
            Ended::TimedOut => Err(self.err(format!(
                "`{line}` did not finish within {}s",
                TRANSFER_LIMIT.as_secs()
            ))),
        }
    }
}

#[async_trait]
impl Executor for PodExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        &self,
        req: &ExecRequest,
        sink: Option<OutputSink<'_>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutput, ExecError> {
        if req.sudo {
            return Err(ExecError::Invalid {
                target: self.name.clone(),
                detail:
                    "sudo is not available through pod exec; the container's user runs the command"
                        .into(),
            });
        }
        let mut limited = req.clone();
        limited.timeout = Some(req.timeout.unwrap_or(DEFAULT_LIMIT));
        let line = command_line(&limited, Sudo::No).map_err(|detail| ExecError::Invalid {
            target: self.name.clone(),
            detail,
        })?;
        let started = Instant::now();
        let mut col = Collector::new(req.limits, sink);
        // The target's `timeout` stops the command at the limit; this
        // deadline (a grace period later) covers a target where it could
        // not.
        let deadline = req
            .timeout
            .map(|t| tokio::time::Instant::now() + t + crate::local::KILL_GRACE);
        let input: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin + '_>> = req
            .stdin
            .as_deref()
            .map(|b| Box::new(b) as Box<dyn tokio::io::AsyncRead + Send + Unpin + '_>);
        let ended = self
            .exec_line(&line, input, None, &mut col, cancel, deadline)
            .await
            .map_err(|e| self.err(e))?;
        let elapsed = started.elapsed();
        let status = match ended {
            Ended::Exited(c) => classify(c, req.timeout.is_some_and(|t| elapsed >= t)),
            Ended::Cancelled => ExitStatus::Cancelled,
            Ended::TimedOut => ExitStatus::TimedOut,
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
        let (bytes, sent) = crate::local::sha256_file(&self.name, local).await?;
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|e| ExecError::File {
                target: self.name.clone(),
                path: local.display().to_string(),
                detail: e.to_string(),
            })?;
        let tmp = crate::local::temp_name(remote);
        // Stream into a temp name, then the shared check-and-rename.
        let line = format!(
            "umask 077; cat > {} || exit 3; {}",
            quote(&tmp),
            finish_upload_line(&tmp, remote, &sent, mode)
        );
        let (code, out, err) = self.simple(&line, Some(Box::new(file)), cancel).await?;
        match upload_outcome(&out) {
            UploadOutcome::Done if code == 0 => {}
            UploadOutcome::Mismatch(h) => {
                return Err(ExecError::Checksum {
                    target: self.name.clone(),
                    path: remote.to_owned(),
                    local: sent,
                    remote: h,
                });
            }
            _ => {
                return Err(ExecError::File {
                    target: self.name.clone(),
                    path: remote.to_owned(),
                    detail: format!("upload failed (exit {code}): {}", err.trim()),
                });
            }
        }
        Ok(Transfer {
            bytes,
            sha256: sent,
        })
    }

    async fn download(
        &self,
        remote: &str,
        local: &Path,
        cancel: &CancellationToken,
    ) -> Result<Transfer, ExecError> {
        let r = quote(remote);
        let (code, sum, err) = self.simple(&sha256_line(remote), None, cancel).await?;
        let expected = sum.trim().to_owned();
        if code != 0 || expected.len() != 64 {
            return Err(ExecError::File {
                target: self.name.clone(),
                path: remote.to_owned(),
                detail: format!("cannot read it (exit {code}): {}", err.trim()),
            });
        }
        let tmp = std::path::PathBuf::from(crate::local::temp_name(&local.display().to_string()));
        let lerr = |e: std::io::Error| ExecError::File {
            target: self.name.clone(),
            path: local.display().to_string(),
            detail: e.to_string(),
        };
        let mut file = tokio::fs::File::create(&tmp).await.map_err(lerr)?;
        let result = self
            .stream_to(&format!("cat -- {r}"), &mut file, cancel)
            .await;
        drop(file);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let (bytes, got) = crate::local::sha256_file(&self.name, &tmp).await?;
        if got != expected {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ExecError::Checksum {
                target: self.name.clone(),
                path: remote.to_owned(),
                local: got,
                remote: expected,
            });
        }
        tokio::fs::rename(&tmp, local).await.map_err(lerr)?;
        Ok(Transfer {
            bytes,
            sha256: expected,
        })
    }
}

impl PodExecutor {
    /// Runs `line` and writes its stdout into `file` as it arrives.
    async fn stream_to(
        &self,
        line: &str,
        file: &mut tokio::fs::File,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        use tokio::io::AsyncWriteExt;
        let mut col = Collector::new(OutputLimits::default(), None);
        let ended = self
            .exec_line(
                line,
                None,
                Some(file as &mut (dyn tokio::io::AsyncWrite + Send + Unpin)),
                &mut col,
                cancel,
                Some(tokio::time::Instant::now() + TRANSFER_LIMIT),
            )
            .await
            .map_err(|e| self.err(e))?;
        file.flush().await.map_err(|e| ExecError::File {
            target: self.name.clone(),
            path: line.to_owned(),
            detail: e.to_string(),
        })?;
        match ended {
            Ended::Exited(0) => Ok(()),
            Ended::Exited(c) => {
                let err = col
                    .finish(ExitStatus::Code(c), Duration::ZERO)
                    .stderr
                    .text();
                Err(self.err(format!("`{line}` exited {c}: {}", err.trim())))
            }
            Ended::Cancelled => Err(ExecError::Cancelled {
                target: self.name.clone(),
            }),
            Ended::TimedOut => Err(self.err(format!(
                "`{line}` did not finish within {}s",
                TRANSFER_LIMIT.as_secs()
            ))),
        }
    }
}
