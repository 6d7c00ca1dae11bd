//! SFTP transfers with a temporary name, a SHA-256 check on both ends, and
//! an atomic rename into place (done with `mv -f`, which is `rename(2)`,
//! since SFTP v3's rename refuses to replace).

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{Conn, SshExecutor};
use crate::local::{sha256_file, temp_name};
use crate::script::{UploadOutcome, finish_upload_line, quote, sha256_line, upload_outcome};
use crate::{ExecError, Executor, Transfer, hex};

async fn sftp(
    exec: &SshExecutor,
    conn: &Conn,
) -> Result<russh_sftp::client::SftpSession, ExecError> {
    let ch = conn
        .handle
        .channel_open_session()
        .await
        .map_err(|e| exec.proto(e))?;
    ch.request_subsystem(true, "sftp")
        .await
        .map_err(|e| exec.proto(e))?;
    russh_sftp::client::SftpSession::new(ch.into_stream())
        .await
        .map_err(|e| exec.proto(format!("sftp: {e}")))
}

fn ferr(exec: &SshExecutor, path: &str, e: impl std::fmt::Display) -> ExecError {
    ExecError::File {
        target: exec.name().to_owned(),
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// `sha256sum` of a remote file, hex.
async fn remote_sha(exec: &SshExecutor, conn: &Conn, path: &str) -> Result<String, ExecError> {
    let line = sha256_line(path);
    let (code, out) = exec
        .simple(conn, &line, b"", std::time::Duration::from_secs(600))
        .await?;
    let sum = String::from_utf8_lossy(&out).trim().to_owned();
    if code != Some(0) || sum.len() != 64 {
        return Err(ferr(
            exec,
            path,
            "cannot checksum on the target (is sha256sum installed and the file readable?)",
        ));
    }
    Ok(sum)
}

pub(super) async fn upload(
    exec: &SshExecutor,
    conn: &Conn,
    local: &Path,
    remote: &str,
    mode: Option<u32>,
    cancel: &CancellationToken,
) -> Result<Transfer, ExecError> {
    let shown = local.display().to_string();
    let mut input = tokio::fs::File::open(local)
        .await
        .map_err(|e| ferr(exec, &shown, e))?;
    let tmp = temp_name(remote);
    let session = sftp(exec, conn).await?;
    let mut file = session
        .create(tmp.clone())
        .await
        .map_err(|e| ferr(exec, &tmp, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let copied: Result<(), ExecError> = async {
        loop {
            if cancel.is_cancelled() {
                return Err(ExecError::Cancelled {
                    target: exec.name().to_owned(),
                });
            }
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| ferr(exec, &shown, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
            file.write_all(&buf[..n])
                .await
                .map_err(|e| ferr(exec, &tmp, e))?;
        }
        file.shutdown().await.map_err(|e| ferr(exec, &tmp, e))?;
        Ok(())
    }
    .await;
    drop(file);
    let _ = session.close().await;
    let sent = hex(&h.finalize());
    let finish = match copied {
        Ok(()) => finish_upload_line(&tmp, remote, &sent, mode),
        Err(e) => {
            let _ = exec
                .simple(
                    conn,
                    &format!("rm -f -- {}", quote(&tmp)),
                    b"",
                    std::time::Duration::from_secs(30),
                )
                .await;
            return Err(e);
        }
    };
    let (_, out) = exec
        .simple(conn, &finish, b"", std::time::Duration::from_secs(600))
        .await?;
    match upload_outcome(&String::from_utf8_lossy(&out)) {
        UploadOutcome::Done => Ok(Transfer {
            bytes: total,
            sha256: sent,
        }),
        UploadOutcome::Mismatch(got) => Err(ExecError::Checksum {
            target: exec.name().to_owned(),
            path: remote.to_owned(),
            local: sent,
            remote: got,
        }),
        UploadOutcome::Failed(other) => Err(ferr(
            exec,
            remote,
            format!("could not move the upload into place: {other}"),
        )),
    }
}

pub(super) async fn download(
    exec: &SshExecutor,
    conn: &Conn,
    remote: &str,
    local: &Path,
    cancel: &CancellationToken,
) -> Result<Transfer, ExecError> {
    let expected = remote_sha(exec, conn, remote).await?;
    let session = sftp(exec, conn).await?;
    let mut file = session
        .open(remote.to_owned())
        .await
        .map_err(|e| ferr(exec, remote, e))?;
    let tmp = std::path::PathBuf::from(temp_name(&local.display().to_string()));
    let tmp_shown = tmp.display().to_string();
    let mut out = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| ferr(exec, &tmp_shown, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let copied: Result<(), ExecError> = async {
        loop {
            if cancel.is_cancelled() {
                return Err(ExecError::Cancelled {
                    target: exec.name().to_owned(),
                });
            }
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| ferr(exec, remote, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
            out.write_all(&buf[..n])
                .await
                .map_err(|e| ferr(exec, &tmp_shown, e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| ferr(exec, &tmp_shown, e))?;
        Ok(())
    }
    .await;
    drop(file);
    let _ = session.close().await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let got = hex(&h.finalize());
    let (_, written) = sha256_file(exec.name(), &tmp).await?;
    if got != expected || written != expected {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ExecError::Checksum {
            target: exec.name().to_owned(),
            path: remote.to_owned(),
            local: written,
            remote: expected,
        });
    }
    tokio::fs::rename(&tmp, local)
        .await
        .map_err(|e| ferr(exec, &local.display().to_string(), e))?;
    Ok(Transfer {
        bytes: total,
        sha256: expected,
    })
}
