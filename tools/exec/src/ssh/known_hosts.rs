//! Host key verification against a known_hosts file under `$OPS_HOME`.
//!
//! `strict` (default) refuses a host whose key is not recorded;
//! `accept-new` records a first key (trust on first use). A key that
//! differs from a recorded one — any recorded key of the host, whatever
//! its algorithm — is always refused, naming both fingerprints. Ignoring
//! host keys is not an option.
//!
//! The file is read as OpenSSH reads it: comma-separated host patterns
//! with `*` / `?` wildcards and `!` negation, `[host]:port`, hashed names
//! (`|1|salt|hash`, HMAC-SHA1), `@revoked` keys (refused for the hosts
//! they name, whatever else is recorded) and `@cert-authority` lines (not
//! host keys). A malformed line is skipped with a warning naming it; it
//! never makes every host unknown.

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
    /// The key is marked `@revoked` for this host.
    Revoked {
        /// Offered fingerprint.
        offered: String,
        /// The line that revokes it.
        line: usize,
    },
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

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// `@revoked`.
    pub revoked: bool,
    /// The host patterns, as written.
    pub patterns: String,
    /// The key.
    pub key: PublicKey,
}

/// A known_hosts file: its usable lines, and why others were skipped.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    /// Host-key lines (`@cert-authority` lines are left out).
    pub entries: Vec<Entry>,
    /// `(line, why)` for each malformed line.
    pub skipped: Vec<(usize, String)>,
}

impl KnownHosts {
    /// Parses a known_hosts file's text.
    pub fn parse(text: &str) -> KnownHosts {
        let mut out = KnownHosts::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut words = t.split_whitespace();
            let mut first = words.next().unwrap_or("");
            let mut revoked = false;
            if first.starts_with('@') {
                match first {
                    "@revoked" => revoked = true,
                    "@cert-authority" => continue,
                    other => {
                        out.skipped
                            .push((line, format!("unknown marker `{other}`")));
                        continue;
                    }
                }
                first = words.next().unwrap_or("");
            }
            let (Some(kind), Some(data)) = (words.next(), words.next()) else {
                out.skipped
                    .push((line, "expected `hosts keytype base64-key`".into()));
                continue;
            };
            if first.is_empty() {
                out.skipped.push((line, "no host patterns".into()));
                continue;
            }
            match PublicKey::from_openssh(&format!("{kind} {data}")) {
                Ok(key) => out.entries.push(Entry {
                    line,
                    revoked,
                    patterns: first.to_owned(),
                    key,
                }),
                Err(e) => out.skipped.push((line, format!("unreadable key: {e}"))),
            }
        }
        out
    }

    /// Reads `path` (a missing file is empty).
    pub fn load(path: &Path) -> Result<KnownHosts, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(KnownHosts::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The lines whose patterns match `host:port`.
    pub fn for_host(&self, host: &str, port: u16) -> impl Iterator<Item = &Entry> {
        let label = host_label(host, port);
        self.entries
            .iter()
            .filter(move |e| patterns_match(&e.patterns, &label))
    }
}

/// OpenSSH's `match_hostname`: any positive pattern matches and no `!`
/// pattern does; hashed entries compare HMAC-SHA1 of the name.
fn patterns_match(patterns: &str, label: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, label);
    }
    let mut hit = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(&neg.to_ascii_lowercase(), &label.to_ascii_lowercase()) {
                return false;
            }
        } else if wildcard(&p.to_ascii_lowercase(), &label.to_ascii_lowercase()) {
            hit = true;
        }
    }
    hit
}

fn hashed_match(hashed: &str, label: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Some(salt), Some(hash)) = (
        ops_model::base64_decode(salt),
        ops_model::base64_decode(hash),
    ) else {
        return false;
    };
    let Ok(mut m) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    m.update(label.as_bytes());
    m.verify_slice(&hash).is_ok()
}

/// `*` and `?` wildcards (OpenSSH's `match_pattern`).
fn wildcard(p: &str, t: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Checks (and under `accept-new` records) `key` for `host:port`. The
/// lock serialises recording so parallel first connections do not
/// interleave lines. Malformed lines are skipped with a warning.
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
    let known = KnownHosts::load(path).map_err(HostKeyProblem::File)?;
    for (line, why) in &known.skipped {
        tracing::warn!("{}:{line}: {why}; the line is skipped", path.display());
    }
    let offered = fingerprint(key);
    let matching: Vec<&Entry> = known.for_host(host, port).collect();
    if let Some(r) = matching
        .iter()
        .find(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Err(HostKeyProblem::Revoked {
            offered,
            line: r.line,
        });
    }
    let recorded: Vec<&&Entry> = matching.iter().filter(|e| !e.revoked).collect();
    if recorded.iter().any(|e| e.key.key_data() == key.key_data()) {
        return Ok(());
    }
    if !recorded.is_empty() {
        let expected = recorded
            .iter()
            .map(|e| format!("{} (line {})", fingerprint(&e.key), e.line))
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

    /// The trust failures an attacker found: a revoked key still
    /// connected, a wildcard pin was ignored under accept-new, and one
    /// malformed line made every host unknown.
    #[test]
    fn regression_known_hosts_as_openssh_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let lock = Mutex::new(());
        let (k1, k2) = (
            PublicKey::from_openssh(K1).unwrap(),
            PublicKey::from_openssh(K2).unwrap(),
        );
        // A hashed name for [h2]:2222 (HMAC-SHA1 with a known salt).
        let hashed = {
            use hmac::{Hmac, Mac};
            let salt = b"0123456789abcdefghij";
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
            m.update(b"[h2]:2222");
            let b64 = |b: &[u8]| {
                const A: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let mut s = String::new();
                for c in b.chunks(3) {
                    let n = (u32::from(c[0]) << 16)
                        | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                        | u32::from(*c.get(2).unwrap_or(&0));
                    for k in 0..4 {
                        if k <= c.len() {
                            s.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
                        } else {
                            s.push('=');
                        }
                    }
                }
                s
            };
            format!("|1|{}|{}", b64(salt), b64(&m.finalize().into_bytes()))
        };
        std::fs::write(
            &path,
            format!(
                "this line is not a known_hosts line\n\
                 @revoked * {K1}\n\
                 *.prod.example,!bastion.prod.example {K2}\n\
                 {hashed} {K1}\n\
                 [ok]:2222 {K2}\n\
                 @cert-authority *.example {K1}\n"
            ),
        )
        .unwrap();
        let known = KnownHosts::load(&path).unwrap();
        assert_eq!(known.skipped.len(), 1, "{:?}", known.skipped);
        // The malformed line does not stop a recorded host.
        verify("ok", 2222, &k2, &path, HostKeyPolicy::Strict, &lock).unwrap();
        // A revoked key is refused everywhere `*` reaches, even where
        // another line records it.
        assert!(matches!(
            verify("h2", 2222, &k1, &path, HostKeyPolicy::AcceptNew, &lock),
            Err(HostKeyProblem::Revoked { line: 2, .. })
        ));
        // A wildcard pin holds under accept-new; the negated name is not
        // covered by it.
        verify(
            "web.prod.example",
            22,
            &k2,
            &path,
            HostKeyPolicy::Strict,
            &lock,
        )
        .unwrap();
        assert!(matches!(
            verify(
                "db.prod.example",
                22,
                &k1,
                &path,
                HostKeyPolicy::AcceptNew,
                &lock
            ),
            Err(HostKeyProblem::Revoked { .. })
        ));
        let other = PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKLhMKCc4Vp8w2gd7/iTz8V6VoqI4C1mCm5Dg4CuXbsT",
        )
        .unwrap();
        {
            assert!(matches!(
                verify(
                    "db.prod.example",
                    22,
                    &other,
                    &path,
                    HostKeyPolicy::AcceptNew,
                    &lock
                ),
                Err(HostKeyProblem::Changed { .. })
            ));
            // Hashed entries match their host.
            assert!(matches!(
                verify("h2", 2222, &other, &path, HostKeyPolicy::AcceptNew, &lock),
                Err(HostKeyProblem::Changed { .. })
            ));
        }
        assert!(patterns_match(
            "*.prod.example,!bastion.prod.example",
            "web.prod.example"
        ));
        assert!(!patterns_match(
            "*.prod.example,!bastion.prod.example",
            "bastion.prod.example"
        ));
        assert!(patterns_match("[web-?]:2222", "[web-1]:2222"));
        assert!(!patterns_match(&hashed, "[h3]:2222"));
    }
}
