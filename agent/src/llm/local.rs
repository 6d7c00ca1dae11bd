//! The built-in offline model: `llama-server` and the Qwen2.5-Coder-1.5B
//! GGUF that `scripts/local-model.sh` puts under `$OPS_HOME`, started on
//! 127.0.0.1 on a free port with `OMP_WAIT_POLICY=PASSIVE` (busy-waiting
//! OpenMP threads make generation collapse under CPU load), waited for
//! until `/health` answers, and stopped when [`LocalServer`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The llama.cpp build `scripts/local-model.sh` makes.
pub const LLAMA_VERSION: &str = "11434.0.0";
/// The model file name under `$OPS_HOME/models`.
pub const MODEL_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

/// Where the script puts things, for this machine's CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    /// The server binary.
    pub server: PathBuf,
    /// The GGUF file.
    pub model: PathBuf,
}

/// The cache key of this CPU, as the script computes it: the first 12 hex
/// digits of the SHA-256 of `/proc/cpuinfo`'s first `flags` line (with its
/// newline, as `grep | sha256sum` sees it).
fn cpu_key() -> String {
    let line = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("flags"))
                .map(str::to_owned)
        })
        .map(|l| format!("{l}\n"))
        .unwrap_or_default();
    Sha256::digest(line.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl LocalModel {
    /// The expected paths under `ops_home`.
    pub fn under(ops_home: &Path) -> Self {
        LocalModel {
            server: ops_home
                .join("llama")
                .join(format!(
                    "{LLAMA_VERSION}-{}-{}",
                    std::env::consts::ARCH,
                    cpu_key()
                ))
                .join("llama-server"),
            model: ops_home.join("models").join(MODEL_FILE),
        }
    }

    /// Both files are there.
    pub fn present(&self) -> bool {
        self.server.is_file() && self.model.is_file()
    }
}

/// A running `llama-server`; stopped on drop.
#[derive(Debug)]
pub struct LocalServer {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl LocalServer {
    /// Starts the server and waits (up to `ready_within`) until it
    /// answers `/health`. Errors name the file or say what the server
    /// printed.
    pub async fn start(m: &LocalModel, ready_within: Duration) -> Result<Self, String> {
        if !m.server.is_file() {
            return Err(format!("{}: not found", m.server.display()));
        }
        if !m.model.is_file() {
            return Err(format!("{}: not found", m.model.display()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let log = std::env::temp_dir().join(format!("ops-llama-server-{port}.log"));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err_file = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = tokio::process::Command::new(&m.server)
            .arg("-m")
            .arg(&m.model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", "8192", "-t", &threads.to_string(), "--jinja"])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", m.server.display()))?;
        let mut server = LocalServer {
            child,
            base_url: format!("http://127.0.0.1:{port}/v1"),
        };
        let health = format!("http://127.0.0.1:{port}/health");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(8).collect();
                return Err(format!(
                    "llama-server exited ({status}) before it was ready: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if let Ok(r) = client.get(&health).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            if started.elapsed() > ready_within {
                return Err(format!(
                    "llama-server did not become ready within {}s (log: {})",
                    ready_within.as_secs(),
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the server now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
