//! Secret paths: which file arguments name something a model must not see
//! without a human's say (shadow, private keys, kubeconfigs and kubelet
//! credentials, service-account tokens, process environments, cloud and
//! registry credentials, `ops`'s own home).
//!
//! Paths are compared after lexical normalisation (`//`, `/./` and `..`
//! folded, `~` read as any home), so `/etc//shadow` and
//! `/var/log/../../etc/shadow` are `/etc/shadow`. A glob argument is a
//! secret when it could match one of a set of sample secret paths, or when
//! its text already is one.

use std::sync::RwLock;

/// Directories registered at run time as secret (the running `ops`'s own
/// `$OPS_HOME`, which holds its store and keys).
static PROTECTED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers `dir` (and everything under it) as a secret path for every
/// classification in this process. Called by whoever resolves `OPS_HOME`.
pub fn protect(dir: &str) {
    let dir = normalize(dir);
    if dir.is_empty() || dir == "/" {
        return;
    }
    if let Ok(mut p) = PROTECTED.write()
        && !p.contains(&dir)
    {
        p.push(dir);
    }
}

/// `path` with `//`, `/./` and `..` folded (lexically; `..` above the root
/// stays at the root). Relative paths stay relative.
pub fn normalize(path: &str) -> String {
    let abs = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if abs { format!("/{joined}") } else { joined }
}

/// Names (last path component) that are secrets wherever they are.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "shadow"
            | "gshadow"
            | "shadow-"
            | "gshadow-"
            | "kubeconfig"
            | ".env"
            | ".netrc"
            | "_netrc"
            | ".pgpass"
            | ".git-credentials"
            | ".vault-token"
            | "credentials"
            | "credentials.json"
            | "kubelet.conf"
            | "admin.conf"
            | "super-admin.conf"
            | "controller-manager.conf"
            | "scheduler.conf"
            | "k3s.yaml"
            | "rke2.yaml"
            | "ops.db"
            | "ops.db-wal"
            | "audit.key"
            | ".htpasswd"
            | "master.key"
    ) || (n.starts_with("id_") && !n.ends_with(".pub"))
        || (n.starts_with("ssh_host_") && n.ends_with("_key"))
        || n.ends_with(".pem")
        || n.ends_with(".key")
        || n.ends_with(".p12")
        || n.ends_with(".pfx")
        || n.ends_with(".jks")
        || n.ends_with(".keystore")
        || n.ends_with(".kubeconfig")
        || n.starts_with(".env.")
}

/// Path fragments that make anything under them secret.
const SECRET_PARTS: &[&str] = &[
    "/.ssh/id_",
    "/.kube/",
    "/etc/kubernetes/",
    "/var/lib/kubelet/",
    "/run/secrets/",
    "/var/run/secrets/",
    "/etc/ssl/private/",
    "/.aws/",
    "/.azure/",
    "/.config/gcloud/",
    "/.docker/config.json",
    "/.gnupg/",
    "/etc/rancher/",
    "/var/lib/rancher/",
    "/etc/ssh/ssh_host_",
    "/.ops/",
    "/etc/sudoers",
    "/var/lib/etcd/",
    "/etc/ceph/",
    "/etc/shadow",
    "/etc/gshadow",
];

/// Sample secret paths a glob is tried against.
const SAMPLES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/home/user/.ssh/id_rsa",
    "/home/user/.ssh/id_ed25519",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_rsa_key",
    "/root/.kube/config",
    "/home/user/.kube/config",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/pki/ca.key",
    "/var/lib/kubelet/pki/kubelet-client-current.pem",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/run/secrets/kubernetes.io/serviceaccount/token",
    "/proc/1/environ",
    "/proc/self/environ",
    "/root/.aws/credentials",
    "/root/.docker/config.json",
    "/root/.netrc",
    "/root/.pgpass",
    "/root/.ops/ops.db",
    "/etc/ssl/private/server.key",
    "/etc/rancher/k3s/k3s.yaml",
    "/srv/app/.env",
];

/// Whether `arg` names a secret file. `glob` says the argument holds
/// unquoted glob characters.
pub fn is_secret(arg: &str, glob: bool) -> bool {
    let a = arg.trim();
    if a.is_empty() {
        return false;
    }
    // `--file=/etc/shadow`, `if=/etc/shadow`, `@/etc/shadow`: the value.
    let value = a
        .split_once('=')
        .map(|(_, v)| v)
        .filter(|_| a.starts_with('-') || !a.starts_with('/'))
        .unwrap_or(a);
    let value = value.strip_prefix('@').unwrap_or(value);
    if value != a && is_secret(value, glob) {
        return true;
    }
    if a.contains("$OPS_HOME") || a.contains("${OPS_HOME}") {
        return true;
    }
    let home = a.strip_prefix('~').map(|rest| {
        // `~/x` and `~user/x`: some home directory.
        let rest = rest.split_once('/').map(|(_, r)| r).unwrap_or("");
        format!("/home/user/{rest}")
    });
    let n = normalize(home.as_deref().unwrap_or(a));
    if n.starts_with("/proc/") && (n.ends_with("/environ") || n.contains("/environ")) {
        return true;
    }
    let name = n.rsplit('/').next().unwrap_or(&n);
    if secret_name(name) {
        return true;
    }
    let rooted = if n.starts_with('/') {
        n.clone()
    } else {
        format!("/{n}")
    };
    let dir_form = format!("{rooted}/");
    if !name.ends_with(".pub") && SECRET_PARTS.iter().any(|p| dir_form.contains(p)) {
        return true;
    }
    if let Ok(p) = PROTECTED.read()
        && p.iter()
            .any(|d| rooted == *d || rooted.starts_with(&format!("{d}/")))
    {
        return true;
    }
    if glob {
        let hit = |sample: &str| {
            if n.starts_with('/') {
                return glob_match(&n, sample);
            }
            // A relative glob may match the tail of any path.
            sample
                .match_indices('/')
                .any(|(i, _)| glob_match(&n, &sample[i + 1..]))
        };
        if SAMPLES.iter().any(|s| hit(s)) {
            return true;
        }
        if let Ok(p) = PROTECTED.read()
            && p.iter().any(|d| hit(&format!("{d}/ops.db")))
        {
            return true;
        }
    }
    false
}

/// Shell pathname matching (`*`, `?`, `[...]`; none of them matches `/`).
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point for `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' if t[ti] != '/' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p, pi, t[ti])
                        && ok
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((_, st)) if t[st] == '/' => return false,
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `[...]` at `p[at]` against `c`: (matches, index after the class).
fn class(p: &[char], at: usize, c: char) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            if p[i] <= c && c <= p[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                hit = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((hit != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::{glob_match, is_secret, normalize};

    #[test]
    fn normalises_before_matching() {
        assert_eq!(normalize("/etc//shadow"), "/etc/shadow");
        assert_eq!(normalize("/var/log/../../etc/./shadow"), "/etc/shadow");
        assert_eq!(normalize("/../../etc/shadow"), "/etc/shadow");
        for p in [
            "/etc//shadow",
            "/etc/./shadow",
            "/tmp/../etc/shadow",
            "~/.ssh/id_rsa",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/etc/kubernetes/kubelet.conf",
            "/root/.ops/ops.db",
            "--kubeconfig=/root/.kube/config",
            "if=/etc/shadow",
            "@/etc/shadow",
            "/proc/self/environ",
        ] {
            assert!(is_secret(p, false), "{p}");
        }
        for p in [
            "/etc/hosts",
            "/var/log/syslog",
            "/etc/ssh/sshd_config",
            "id.pub",
        ] {
            assert!(!is_secret(p, false), "{p}");
        }
    }

    #[test]
    fn globs_that_could_match_a_secret() {
        for p in [
            "/etc/sha*",
            "/etc/s?adow",
            "/root/.ssh/*",
            "/*/*",
            "/proc/*/env*",
        ] {
            assert!(is_secret(p, true), "{p}");
        }
        for p in ["/var/log/*.log", "/proc/[0-9]*/fd", "/srv/*"] {
            assert!(!is_secret(p, true), "{p}");
        }
        assert!(glob_match("/etc/[rs]hadow", "/etc/shadow"));
        assert!(!glob_match("/etc/[!s]hadow", "/etc/shadow"));
    }
}
