//! Opening one authenticated SSH connection, with an error for each way it
//! can fail: name resolution, TCP (refused / unreachable / timeout), host
//! key, authentication.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use super::known_hosts::{self, HostKeyProblem};
use super::{SshOptions, SshTarget};
use crate::ExecError;

/// The russh handler: verifies the host key, remembers why it refused.
pub(crate) struct Client {
    host: String,
    port: u16,
    options: SshOptions,
    learn_lock: Arc<Mutex<()>>,
    problem: Arc<Mutex<Option<HostKeyProblem>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => known_hosts::verify(
                &self.host,
                self.port,
                key,
                &self.options.known_hosts,
                self.options.policy,
                &self.learn_lock,
            ),
            PublicKeyOrCertificate::Certificate(_) => Err(HostKeyProblem::Certificate),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(p) => {
                if let Ok(mut slot) = self.problem.lock() {
                    *slot = Some(p);
                }
                Ok(false)
            }
        }
    }
}

fn host_key_error(t: &SshTarget, o: &SshOptions, p: HostKeyProblem) -> ExecError {
    let host = known_hosts::host_label(&t.host, t.port);
    match p {
        HostKeyProblem::Unknown { offered } => ExecError::HostKeyUnknown {
            target: t.name.clone(),
            host,
            fingerprint: offered,
            known_hosts: o.known_hosts.clone(),
        },
        HostKeyProblem::Changed { expected, offered } => ExecError::HostKeyChanged {
            target: t.name.clone(),
            host,
            expected,
            offered,
            known_hosts: o.known_hosts.clone(),
        },
        HostKeyProblem::Certificate => ExecError::Protocol {
            target: t.name.clone(),
            detail: format!(
                "ssh: {host} presented a host certificate; certificates are not supported, refusing"
            ),
        },
        HostKeyProblem::Revoked { offered, line } => ExecError::Protocol {
            target: t.name.clone(),
            detail: format!(
                "ssh: {host} offered key {offered}, which {}:{line} marks @revoked; refusing",
                o.known_hosts.display()
            ),
        },
        HostKeyProblem::File(detail) => ExecError::Protocol {
            target: t.name.clone(),
            detail: format!("ssh: known_hosts: {detail}"),
        },
    }
}

fn decode_inline(t: &SshTarget, text: &str) -> Result<PrivateKey, ExecError> {
    let direct = russh::keys::decode_secret_key(text, None);
    if let Ok(k) = direct {
        return Ok(k);
    }
    // The anchor stores keys base64-encoded.
    let compact: String = text.split_whitespace().collect();
    let decoded = base64_decode(&compact).and_then(|b| String::from_utf8(b).ok());
    match decoded.map(|d| russh::keys::decode_secret_key(&d, None)) {
        Some(Ok(k)) => Ok(k),
        _ => Err(ExecError::Key {
            target: t.name.clone(),
            what: "inline privateKey".into(),
            detail: "not an unencrypted OpenSSH/PEM key, nor base64 of one".into(),
        }),
    }
}

pub(crate) use ops_model::base64_decode;

async fn try_key(
    h: &mut Handle<Client>,
    t: &SshTarget,
    key: PrivateKey,
) -> Result<bool, ExecError> {
    // Only RSA keys need the server's preferred hash; asking can wait
    // up to a second for the server's extension info.
    let hash = if key.algorithm().is_rsa() {
        h.best_supported_rsa_hash().await.ok().flatten().flatten()
    } else {
        None
    };
    let r = h
        .authenticate_publickey(
            t.user.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .map_err(|e| proto(t, e))?;
    Ok(r.success())
}

fn proto(t: &SshTarget, e: impl std::fmt::Display) -> ExecError {
    ExecError::Protocol {
        target: t.name.clone(),
        detail: format!("ssh: {e}"),
    }
}

async fn authenticate(h: &mut Handle<Client>, t: &SshTarget) -> Result<(), ExecError> {
    let mut tried = Vec::new();
    if let Some(text) = &t.inline_key {
        tried.push("inline key".to_owned());
        if try_key(h, t, decode_inline(t, text)?).await? {
            return Ok(());
        }
    }
    if let Some(path) = &t.key_path {
        tried.push(format!("key {}", path.display()));
        let key = russh::keys::load_secret_key(path, None).map_err(|e| ExecError::Key {
            target: t.name.clone(),
            what: path.display().to_string(),
            detail: e.to_string(),
        })?;
        if try_key(h, t, key).await? {
            return Ok(());
        }
    }
    let explicit = t.inline_key.is_some() || t.key_path.is_some() || t.password.is_some();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        if let Ok(mut agent) = AgentClient::connect_env().await {
            if let Ok(ids) = agent.request_identities().await {
                for id in ids {
                    if let AgentIdentity::PublicKey { key, comment } = id {
                        tried.push(format!("agent key {comment}"));
                        // Only RSA keys need the server's preferred hash; asking can wait
                        // up to a second for the server's extension info.
                        let hash = if key.algorithm().is_rsa() {
                            h.best_supported_rsa_hash().await.ok().flatten().flatten()
                        } else {
                            None
                        };
                        if let Ok(r) = h
                            .authenticate_publickey_with(t.user.clone(), key, hash, &mut agent)
                            .await
                        {
                            if r.success() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }
    if !explicit {
        // As ssh does: the user's default keys.
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = crate::expand_home(&format!("~/.ssh/{name}"));
            if let Ok(key) = russh::keys::load_secret_key(&path, None) {
                tried.push(format!("key {}", path.display()));
                if try_key(h, t, key).await? {
                    return Ok(());
                }
            }
        }
    }
    if let Some(pw) = &t.password {
        tried.push("password".into());
        let r = h
            .authenticate_password(t.user.clone(), pw.clone())
            .await
            .map_err(|e| proto(t, e))?;
        if r.success() {
            return Ok(());
        }
        tried.push("keyboard-interactive".into());
        let mut resp = h
            .authenticate_keyboard_interactive_start(t.user.clone(), None)
            .await
            .map_err(|e| proto(t, e))?;
        for _ in 0..4 {
            match resp {
                KeyboardInteractiveAuthResponse::Success => return Ok(()),
                KeyboardInteractiveAuthResponse::Failure { .. } => break,
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let answers = prompts.iter().map(|_| pw.clone()).collect();
                    resp = h
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(|e| proto(t, e))?;
                }
            }
        }
    }
    Err(ExecError::Auth {
        target: t.name.clone(),
        user: t.user.clone(),
        tried,
    })
}

/// Connects, verifies the host key and authenticates.
pub(crate) async fn open(
    t: &SshTarget,
    o: &SshOptions,
    learn_lock: Arc<Mutex<()>>,
) -> Result<Handle<Client>, ExecError> {
    let limit = t.connect_timeout.unwrap_or(o.connect_timeout);
    let addr_text = format!("{}:{}", t.host, t.port);
    if t.host.is_empty() {
        return Err(ExecError::Invalid {
            target: t.name.clone(),
            detail: "host has no address".into(),
        });
    }
    let addrs: Vec<std::net::SocketAddr> =
        tokio::time::timeout(limit, tokio::net::lookup_host((t.host.as_str(), t.port)))
            .await
            .map_err(|_| ExecError::ConnectTimeout {
                target: t.name.clone(),
                addr: addr_text.clone(),
                after: limit,
            })?
            .map_err(|e| ExecError::Resolve {
                target: t.name.clone(),
                host: t.host.clone(),
                detail: e.to_string(),
            })?
            .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => {
                last = Some(ExecError::Connect {
                    target: t.name.clone(),
                    addr: a.to_string(),
                    detail: e.to_string(),
                })
            }
            Err(_) => {
                last = Some(ExecError::ConnectTimeout {
                    target: t.name.clone(),
                    addr: a.to_string(),
                    after: limit,
                })
            }
        }
    }
    let Some(stream) = stream else {
        return Err(last.unwrap_or(ExecError::Resolve {
            target: t.name.clone(),
            host: t.host.clone(),
            detail: "no addresses".into(),
        }));
    };
    let _ = stream.set_nodelay(true);
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        ..client::Config::default()
    });
    let problem = Arc::new(Mutex::new(None));
    let handler = Client {
        host: t.host.clone(),
        port: t.port,
        options: o.clone(),
        learn_lock,
        problem: Arc::clone(&problem),
    };
    let handshake =
        tokio::time::timeout(limit, client::connect_stream(config, stream, handler)).await;
    let mut handle = match handshake {
        Err(_) => {
            return Err(ExecError::ConnectTimeout {
                target: t.name.clone(),
                addr: addr_text,
                after: limit,
            });
        }
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let p = problem.lock().ok().and_then(|mut p| p.take());
            return Err(match p {
                Some(p) => host_key_error(t, o, p),
                None => proto(t, format!("handshake with {addr_text} failed: {e}")),
            });
        }
    };
    match tokio::time::timeout(limit * 3, authenticate(&mut handle, t)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(ExecError::ConnectTimeout {
                target: t.name.clone(),
                addr: addr_text,
                after: limit * 3,
            });
        }
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use ops_model::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert!(base64_decode("a*b").is_none());
    }
}
