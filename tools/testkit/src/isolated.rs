//! A host of its own for tests that change machine state: a real `sshd`
//! in new network, mount, UTS and PID namespaces, reached over a veth pair
//! in 198.18.0.0/15 (checked with `ip route get` before use). Inside, the
//! host has its own hostname, a private copy of `/etc`, tmpfs `/tmp`,
//! `/srv` and `/root`, and a read-only `/proc/sys`, so a task that edits
//! `/etc/hosts` or runs `sysctl -p` touches nothing of the machine running
//! the tests. Dropping it kills every process in it and deletes the
//! namespace and the veth.
//!
//! Needs root and `ip`/`unshare` (iproute2, util-linux). Where namespaces
//! are not permitted, `IsolatedHost::start` returns `Err` with the reason,
//! and callers skip with that reason printed.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct IsolatedHost {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub host_public: String,
    ns: String,
    veth: String,
    dir: PathBuf,
    child: Option<Child>,
}

fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{cmd}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl IsolatedHost {
    /// Starts a host named `name`, accepting `authorized` public keys
    /// for root.
    pub fn start(name: &str, authorized: &[&str]) -> Result<IsolatedHost, String> {
        if !std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        {
            return Err("not running as root".into());
        }
        let pid = std::process::id();
        // A /30 per host, spread by pid so parallel test processes differ.
        let used = sh("ip -o -4 addr show").unwrap_or_default();
        let mut slot = (pid as usize * 7) % 16000 + 1;
        let (mut third, mut fourth) = ((slot / 64) % 256, (slot % 64) * 4);
        while used.contains(&format!("198.18.{third}.{} ", fourth + 1))
            || used.contains(&format!("198.18.{third}.{}/", fourth + 1))
        {
            slot += 1;
            (third, fourth) = ((slot / 64) % 256, (slot % 64) * 4);
        }
        let (host_ip, addr) = (
            format!("198.18.{third}.{}", fourth + 1),
            format!("198.18.{third}.{}", fourth + 2),
        );
        let ns = format!("opst-{pid}-{third}-{fourth}");
        let veth = format!("ot{:x}{:x}", pid % 0xfffff, slot % 0xff);
        let peer = format!("{veth}c");
        sh(&format!("ip netns add {ns}"))?;
        let mut host = IsolatedHost {
            name: name.to_owned(),
            addr: addr.clone(),
            port: 22,
            host_public: String::new(),
            ns: ns.clone(),
            veth: veth.clone(),
            dir: PathBuf::new(),
            child: None,
        };
        sh(&format!("ip link add {veth} type veth peer name {peer}"))?;
        sh(&format!("ip link set {peer} netns {ns}"))?;
        sh(&format!(
            "ip addr add {host_ip}/30 dev {veth} && ip link set {veth} up"
        ))?;
        sh(&format!(
            "ip netns exec {ns} ip addr add {addr}/30 dev {peer} && ip netns exec {ns} ip link set {peer} up && ip netns exec {ns} ip link set lo up"
        ))?;
        let route = sh(&format!("ip route get {addr}"))?;
        if !route.contains(&format!("dev {veth}")) {
            return Err(format!("{addr} does not route over {veth}: {route}"));
        }
        let dir = tempfile::Builder::new()
            .prefix("ops-isolated-")
            .tempdir_in("/var/tmp")
            .map_err(|e| e.to_string())?
            .keep();
        host.dir = dir.clone();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("host_ed25519"))
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("ssh-keygen failed".into());
        }
        host.host_public = std::fs::read_to_string(dir.join("host_ed25519.pub"))
            .map_err(|e| e.to_string())?
            .trim()
            .to_owned();
        std::fs::write(
            dir.join("authorized_keys"),
            authorized
                .iter()
                .map(|k| format!("{k}\n"))
                .collect::<String>(),
        )
        .map_err(|e| e.to_string())?;
        sh(&format!("cp -a /etc {}/etc", dir.display()))?;
        let hosts = dir.join("etc/hosts");
        let mut h = std::fs::read_to_string(&hosts).unwrap_or_default();
        h.push_str(&format!("127.0.1.1 {name}\n"));
        std::fs::write(&hosts, h).map_err(|e| e.to_string())?;
        let cfg = format!(
            "ListenAddress {addr}:22\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin yes\nUsePAM no\nLogLevel ERROR\nMaxSessions 50\nSubsystem sftp internal-sftp\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), cfg).map_err(|e| e.to_string())?;
        let inner = format!(
            "set -e; mount --make-rprivate /; hostname {name}; mount --bind {d}/etc /etc; \
             mount -t tmpfs -o size=64m tmpfs /tmp; mount -t tmpfs -o size=64m tmpfs /srv; mount -t tmpfs -o size=64m tmpfs /root; \
             mount -o bind,ro /proc/sys /proc/sys; mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e -f {d}/sshd_config",
            d = dir.display()
        );
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "sh",
                "-c",
                &inner,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        host.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(
                &format!("{addr}:22")
                    .parse()
                    .map_err(|e: std::net::AddrParseError| e.to_string())?,
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(host);
            }
            if let Some(Ok(Some(_))) = host.child.as_mut().map(Child::try_wait) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        Err(format!("sshd in namespace {ns} did not start: {log}"))
    }

    /// A known_hosts line for it.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_public.split_whitespace();
        format!(
            "{} {} {}\n",
            self.addr,
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        )
    }

    /// Reads a file as the host sees it (its private /etc copy for /etc).
    pub fn etc_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("etc").join(name)).unwrap_or_default()
    }
}

impl Drop for IsolatedHost {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Any process left in the namespace (there should be none once its
        // PID-namespace init is gone) is killed before the namespace goes.
        let _ = sh(&format!("ip netns pids {} | xargs -r kill -9", self.ns));
        let _ = sh(&format!("ip link del {}", self.veth));
        let _ = sh(&format!("ip netns del {}", self.ns));
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
