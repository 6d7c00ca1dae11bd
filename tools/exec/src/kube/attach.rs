//! Pod exec (the API's `exec` subresource over a WebSocket, channel
//! protocol v5 or v4): run an argv in a container with stdin fed from a
//! reader, stdout and stderr streamed apart into a [`Collector`], and the
//! exit code taken from the final `Status` message. Used by
//! [`super::PodExecutor`] and for file transfers on nodes.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::output::Collector;

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// The process exited with this code.
    Exited(i32),
    /// The cancel token fired; the caller's `stop` ran.
    Cancelled,
    /// The deadline passed; the caller's `stop` ran.
    TimedOut,
}

/// Exit code from the exec's final Status: `Success` is 0, a
/// `NonZeroExitCode` failure carries the code in its `ExitCode` cause;
/// any other failure (no such container, exec refused) is an error.
pub(super) fn exit_code(status: &Status) -> Result<i32, String> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
                    .and_then(|c| c.message.as_deref())
                    .and_then(|m| m.trim().parse::<i32>().ok())
            });
        return code.ok_or_else(|| "exec failed with a non-zero exit code it did not name".into());
    }
    Err(status
        .message
        .clone()
        .unwrap_or_else(|| format!("exec failed: {:?}", status.reason)))
}

/// How long the kill of a stopped call, and the stream's close, may take
/// before the call returns anyway.
const FORCED_STOP: Duration = Duration::from_secs(5);

/// Runs `argv` in `pod` (container `container`, or the only one), its
/// stdout into `stdout_to` when given (a download), else into `col`. On
/// cancellation or at `deadline`, `stop` is awaited (at most
/// [`FORCED_STOP`]; it should kill the remote process group) and the
/// stream is abandoned.
#[allow(clippy::too_many_arguments)]
pub(super) async fn exec<F, Fut>(
    pods: &Api<Pod>,
    pod: &str,
    container: Option<&str>,
    argv: Vec<String>,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin + '_>>,
    mut stdout_to: Option<&mut (dyn AsyncWrite + Send + Unpin)>,
    col: &mut Collector<'_>,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    stop: F,
) -> Result<Ended, String>
where
    F: Fn(Option<u32>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut params = AttachParams::default()
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    if let Some(c) = container {
        params = params.container(c);
    }
    // Opening the stream answers within 30 s, and within the call's own
    // deadline: an API server that stops answering cannot hold the call.
    let open_by = {
        let limit = tokio::time::Instant::now() + Duration::from_secs(30);
        deadline.map_or(limit, |d| d.min(limit))
    };
    let mut ap = match tokio::time::timeout_at(open_by, pods.exec(pod, argv, &params)).await {
        Ok(r) => r.map_err(|e| format!("exec in pod {pod}: {}", super::describe_error(&e)))?,
        Err(_) if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) => {
            return Ok(Ended::TimedOut);
        }
        Err(_) => return Err("exec: no answer from the API server in 30s".to_owned()),
    };
    let mut out = ap.stdout().ok_or("exec: no stdout stream")?;
    let mut err = ap.stderr().ok_or("exec: no stderr stream")?;
    let status = ap.take_status().ok_or("exec: no status channel")?;
    let writer = ap.stdin();
    let feed = async move {
        if let (Some(mut r), Some(mut w)) = (stdin, writer) {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).await.is_err() {
                            return Err("exec: the stream closed while sending input".to_owned());
                        }
                    }
                    Err(e) => return Err(format!("reading input: {e}")),
                }
            }
            let _ = w.shutdown().await;
        }
        Ok(())
    };
    tokio::pin!(feed);
    tokio::pin!(status);
    let (mut fed, mut out_open, mut err_open) = (false, true, true);
    let (mut ob, mut eb) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    let mut code: Option<Result<i32, String>> = None;
    loop {
        if code.is_some() && !out_open && !err_open {
            break;
        }
        tokio::select! {
            r = &mut feed, if !fed => {
                fed = true;
                r?;
            }
            n = out.read(&mut ob), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => match stdout_to.as_mut() {
                    Some(w) => w.write_all(&ob[..n]).await.map_err(|e| format!("writing the output: {e}"))?,
                    None => col.stdout(&ob[..n]),
                },
            },
            n = err.read(&mut eb), if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => col.stderr(&eb[..n]),
            },
            s = &mut status, if code.is_none() => {
                code = Some(match s {
                    Some(s) => exit_code(&s),
                    None => Err("exec: the stream ended without an exit status".into()),
                });
            }
            _ = cancel.cancelled() => {
                let _ = tokio::time::timeout(FORCED_STOP, stop(col.pgid())).await;
                ap.abort();
                return Ok(Ended::Cancelled);
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                let _ = tokio::time::timeout(FORCED_STOP, stop(col.pgid())).await;
                ap.abort();
                return Ok(Ended::TimedOut);
            }
        }
    }
    let _ = tokio::time::timeout(FORCED_STOP, ap.join()).await;
    code.unwrap_or_else(|| Err("exec: no exit status".into()))
        .map(Ended::Exited)
}
