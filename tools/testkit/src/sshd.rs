//! A real OpenSSH `sshd` for tests, on a loopback address (127.0.0.N) and
//! a free port, with its own host key, config and authorized_keys in a
//! temporary directory. Stopped (and its directory removed) on drop.
//!
//! Needs: root (sshd refuses otherwise), `/usr/sbin/sshd`, `/run/sshd`,
//! and for password/sudo tests the `opstest` user — all installed by
//! `scripts/setup.sh`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TEST_USER: &str = "opstest";
pub const TEST_PASSWORD: &str = "ops-test-password";

/// A client key pair.
pub struct ClientKey {
    pub dir: tempfile::TempDir,
    pub private: PathBuf,
    pub public: String,
}

fn keygen(path: &Path) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is required; run scripts/setup.sh");
    assert!(st.success());
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

impl ClientKey {
    pub fn new() -> ClientKey {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("id_ed25519");
        let public = keygen(&private);
        ClientKey {
            dir,
            private,
            public,
        }
    }
}

/// One running sshd.
pub struct Sshd {
    pub addr: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub host_public: String,
    child: Child,
}

fn free_port(addr: &str) -> u16 {
    TcpListener::bind((addr, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// The sshd master's pid.
    #[allow(dead_code)] // not every test binary freezes a server
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) this server and every
    /// process under it (its per-connection children and their commands),
    /// one pid at a time: a server that stops answering.
    #[allow(dead_code)] // not every test binary freezes a server
    pub fn freeze(&self, frozen: bool) {
        let root = i32::try_from(self.pid()).unwrap();
        let mut family = vec![root];
        // Children by parent pid, walked until no new one appears.
        loop {
            let before = family.len();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                if ppid.is_some_and(|p| family.contains(&p)) && !family.contains(&pid) {
                    family.push(pid);
                }
            }
            if family.len() == before {
                break;
            }
        }
        let sig = if frozen { "STOP" } else { "CONT" };
        for pid in family {
            // One positive pid at a time, through the shell's builtin.
            assert!(pid > 1 && pid != i32::try_from(std::process::id()).unwrap());
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -{sig} {pid}")])
                .status();
        }
    }

    /// Starts sshd on `addr` accepting `keys` for every user (root and
    /// the test user), passwords and keyboard-interactive too.
    pub fn start(addr: &str, keys: &[&ClientKey]) -> Sshd {
        assert!(
            nix_is_root(),
            "the SSH tests start real sshd servers and must run as root (CI does)"
        );
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd missing; run scripts/setup.sh"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        let host_public = keygen(&host_key);
        let auth: String = keys.iter().map(|k| format!("{}\n", k.public)).collect();
        std::fs::write(d.join("authorized_keys"), auth).unwrap();
        for attempt in 0..5 {
            let port = free_port(addr);
            let config = format!(
                "ListenAddress {addr}:{port}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication yes\nUsePAM yes\nLogLevel ERROR\nMaxSessions 50\nMaxStartups 200:30:400\nSubsystem sftp internal-sftp\nAcceptEnv LANG\nSetEnv SHLVL=1\n",
                hk = host_key.display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            );
            let cfg = d.join("sshd_config");
            std::fs::write(&cfg, config).unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect((addr, port)).is_ok() {
                    return Sshd {
                        addr: addr.to_owned(),
                        port,
                        dir,
                        host_public,
                        child,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
            eprintln!("sshd on {addr}:{port} did not start (attempt {attempt}): {log}");
        }
        panic!("could not start sshd on {addr}");
    }

    /// A known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_public.split_whitespace();
        let (alg, key) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[{}]:{} {alg} {key}\n", self.addr, self.port)
    }

    /// Swaps in a restarted server process.
    pub fn replace_child(&mut self, child: Child) {
        self.stop();
        self.child = child;
    }

    /// Stops the server (connections in progress die with it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nix_is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap_or(false)
}
