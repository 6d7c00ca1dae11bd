//! The built-in offline model: `llama-server` and the Qwen2.5-Coder-1.5B
//! GGUF that `scripts/local-model.sh` puts under `$OPS_HOME`, started on
//! 127.0.0.1 on a free port with `OMP_WAIT_POLICY=PASSIVE` (busy-waiting
//! OpenMP threads make generation collapse under CPU load), waited for
//! until `/health` answers, and stopped when [`LocalServer`] is dropped.
//!
//! Each start makes a random API key (given to the server in a file of
//! mode 0600, never on its command line), so other local users cannot use
//! the model; its log goes under `$OPS_HOME/logs` (mode 0700), created
//! anew without following a link planted at its name.

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
    ops_model::hex(&Sha256::digest(line.as_bytes())[..6])
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
pub struct LocalServer {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    /// The key this start made; every request must carry it.
    pub api_key: String,
    /// The server's log.
    pub log: PathBuf,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("base_url", &self.base_url)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// A new file of mode 0600 at `dir/name` (`dir` made with mode 0700): an
/// entry already there, a planted link included, is removed first and
/// the file is created exclusively, so nothing is written through a link.
pub fn private_file(dir: &Path, name: &str) -> Result<(PathBuf, std::fs::File), String> {
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let shown = |e: std::io::Error, p: &Path| format!("{}: {e}", p.display());
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir).map_err(|e| shown(e, dir))?;
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(shown(e, &path)),
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    let f = o.open(&path).map_err(|e| shown(e, &path))?;
    Ok((path, f))
}

/// 32 random bytes as hex.
fn random_key() -> Result<String, String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(ops_model::hex(&b))
}

impl LocalServer {
    /// Starts the server and waits (up to `ready_within`) until it
    /// answers `/health`; its log and key file go under `run_dir`
    /// (`$OPS_HOME/logs`). Errors name the file or say what the server
    /// printed.
    pub async fn start(
        m: &LocalModel,
        run_dir: &Path,
        ready_within: Duration,
    ) -> Result<Self, String> {
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
        let (log, log_file) = private_file(run_dir, &format!("llama-server-{port}.log"))?;
        let api_key = random_key()?;
        let (key_path, mut key_file) = private_file(run_dir, &format!("llama-server-{port}.key"))?;
        {
            use std::io::Write;
            key_file
                .write_all(api_key.as_bytes())
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
        }
        let err_file = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = tokio::process::Command::new(&m.server)
            .arg("-m")
            .arg(&m.model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", "8192", "-t", &threads.to_string(), "--jinja"])
            .arg("--api-key-file")
            .arg(&key_path)
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
            api_key,
            log: log.clone(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::{LocalModel, LocalServer, private_file};

    /// A link planted at the log's name is replaced, never written
    /// through (the log was under /tmp and followed one).
    #[test]
    fn regression_the_log_never_follows_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let run = dir.path().join("logs");
        std::fs::create_dir_all(&run).unwrap();
        std::os::unix::fs::symlink(&victim, run.join("llama-server-1.log")).unwrap();
        let (path, mut f) = private_file(&run, "llama-server-1.log").unwrap();
        std::io::Write::write_all(&mut f, b"log line").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmode = std::fs::metadata(&run).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o755, "an existing directory keeps its mode");
        let fresh = dir.path().join("fresh");
        private_file(&fresh, "x").unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    /// Each start makes its own key, hands it over in a private file (not
    /// on the command line) and keeps the log in the run directory. A
    /// stand-in server (a shell script in front of python's http.server)
    /// records its arguments.
    #[tokio::test]
    async fn each_start_has_a_key_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("health"), "ok").unwrap();
        let args = dir.path().join("args");
        let script = dir.path().join("llama-server");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {}\nport=\nwhile [ $# -gt 0 ]; do [ \"$1\" = --port ] && port=$2; shift; done\ncd {} && exec python3 -m http.server \"$port\" --bind 127.0.0.1\n",
                args.display(),
                www.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let model = dir.path().join("model.gguf");
        std::fs::write(&model, "").unwrap();
        let m = LocalModel {
            server: script,
            model,
        };
        let run = dir.path().join("logs");
        let a = LocalServer::start(&m, &run, Duration::from_secs(30))
            .await
            .unwrap();
        let seen = std::fs::read_to_string(&args).unwrap();
        assert!(
            !seen.contains(&a.api_key),
            "the key is not on the command line: {seen}"
        );
        let key_file = seen
            .split_whitespace()
            .skip_while(|w| *w != "--api-key-file")
            .nth(1)
            .expect("--api-key-file given");
        assert_eq!(std::fs::read_to_string(key_file).unwrap(), a.api_key);
        assert_eq!(a.api_key.len(), 64);
        assert_eq!(
            std::fs::metadata(key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(a.log.starts_with(&run));
        let b = LocalServer::start(&m, &run, Duration::from_secs(30))
            .await
            .unwrap();
        assert_ne!(a.api_key, b.api_key);
        a.stop().await;
        b.stop().await;
    }
}
