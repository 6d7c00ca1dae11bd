//! Host key verification against a known_hosts file under `$OPS_HOME`.
//!
//! `strict` (default) refuses a host whose key is not recorded;
//! `accept-new` records a first key (trust on first use). A key that
//! differs from a recorded one — any recorded key of the host, whatever
//! its algorithm — is always refused, naming both fingerprints. Ignoring
//! host keys is not an option.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

/// What to do with a host whose key is not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it.
    #[default]
    Strict,
    /// Record its key and connect (trust on first use).
    AcceptNew,
}

impl FromStr for HostKeyPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" | "yes" => Ok(HostKeyPolicy::Strict),
            "accept-new" => Ok(HostKeyPolicy::AcceptNew),
            other => Err(format!(
                "unknown known-hosts policy `{other}`; expected strict or accept-new"
            )),
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
        })
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyProblem {
    /// Not recorded, strict policy.
    Unknown {
        /// Offered fingerprint.
        offered: String,
    },
    /// Differs from the recorded key(s).
    Changed {
        /// Recorded fingerprints.
        expected: String,
        /// Offered fingerprint.
        offered: String,
    },
    /// The server sent a certificate (not supported yet).
    Certificate,
    /// The known_hosts file could not be read or written.
    File(String),
}

/// `host` for port 22, `[host]:port` otherwise (OpenSSH's form).
pub fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// SHA-256 fingerprint, `SHA256:...`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks (and under `accept-new` records) `key` for `host:port`. The
/// lock serialises recording so parallel first connections do not
/// interleave lines.
pub fn verify(
    host: &str,
    port: u16,
    key: &PublicKey,
    path: &Path,
    policy: HostKeyPolicy,
    lock: &Mutex<()>,
) -> Result<(), HostKeyProblem> {
    let _guard = lock
        .lock()
        .map_err(|_| HostKeyProblem::File("known_hosts lock poisoned".into()))?;
    let recorded = russh::keys::known_hosts::known_host_keys_path(host, port, path)
        .map_err(|e| HostKeyProblem::File(format!("{}: {e}", path.display())))?;
    if recorded.iter().any(|(_, k)| k.key_data() == key.key_data()) {
        return Ok(());
    }
    let offered = fingerprint(key);
    if !recorded.is_empty() {
        let expected = recorded
            .iter()
            .map(|(line, k)| format!("{} (line {line})", fingerprint(k)))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(HostKeyProblem::Changed { expected, offered });
    }
    match policy {
        HostKeyPolicy::Strict => Err(HostKeyProblem::Unknown { offered }),
        HostKeyPolicy::AcceptNew => {
            learn(host, port, key, path)
                .map_err(|e| HostKeyProblem::File(format!("{}: {e}", path.display())))?;
            restrict(path);
            Ok(())
        }
    }
}

/// Appends `host key` in OpenSSH's format (without russh's leading blank
/// line on a new file, so line numbers in messages stay right).
fn learn(host: &str, port: u16, key: &PublicKey, path: &Path) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let existing = std::fs::read(path).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let sep = if existing.is_empty() || existing.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    let openssh = key.to_openssh().map_err(|e| e.to_string())?;
    writeln!(f, "{sep}{} {openssh}", host_label(host, port)).map_err(|e| e.to_string())
}

fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: the file holds no secret, but keep it like ~/.ssh.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// The default known_hosts path for an `$OPS_HOME`.
pub fn default_path(ops_home: &Path) -> PathBuf {
    ops_home.join("known_hosts")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICI0Y1RuNAe7qCu1FJ5grgtnFy8L62/SwB/r3wo5LYCd";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPJBWe6hKzZbp9tARdUyzjUbPB/au+dJ7kchMwHn6rfp";

    #[test]
    fn strict_accept_new_and_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let lock = Mutex::new(());
        let (k1, k2) = (
            PublicKey::from_openssh(K1).unwrap(),
            PublicKey::from_openssh(K2).unwrap(),
        );
        assert!(matches!(
            verify("h", 2222, &k1, &path, HostKeyPolicy::Strict, &lock),
            Err(HostKeyProblem::Unknown { .. })
        ));
        verify("h", 2222, &k1, &path, HostKeyPolicy::AcceptNew, &lock).unwrap();
        verify("h", 2222, &k1, &path, HostKeyPolicy::Strict, &lock).unwrap();
        let changed = verify("h", 2222, &k2, &path, HostKeyPolicy::AcceptNew, &lock).unwrap_err();
        let HostKeyProblem::Changed { expected, offered } = changed else {
            panic!("{changed:?}")
        };
        assert_eq!(expected, format!("{} (line 1)", fingerprint(&k1)));
        assert_eq!(offered, fingerprint(&k2));
        // Another port is another host.
        assert!(verify("h", 22, &k2, &path, HostKeyPolicy::Strict, &lock).is_err());
    }
}
