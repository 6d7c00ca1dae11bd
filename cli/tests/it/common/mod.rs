//! Runs the real `opscli` binary against a private `$OPS_HOME`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[derive(Debug)]
pub struct Ops {
    pub home: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn corpus() -> PathBuf {
    std::env::var_os("OPS_COMPAT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/ops-manifests"),
        PathBuf::from,
    )
}

impl Ops {
    pub fn new() -> Ops {
        Ops {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_opscli"));
        c.env("OPS_HOME", self.home.path())
            .env_remove("OPS_STORE")
            .env_remove("OPS_NAMESPACE")
            .env_remove("OPS_OUTPUT")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPS_MODEL")
            .env_remove("OPS_TOOL_CALLS")
            .env_remove("OPS_EMBED_URL")
            .env_remove("OPS_EMBED_MODEL")
            .env_remove("OPS_QDRANT_URL")
            .env_remove("OPS_NATS_URL")
            .env_remove("OPS_NATS_STREAM")
            .env_remove("OPS_LOCAL_MODEL_HOME")
            .current_dir(fixtures());
        c
    }

    fn finish(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Self::finish(
            self.command()
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k, v);
        }
        Self::finish(c.args(args).stdin(Stdio::null()).output().unwrap())
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Self::finish(child.wait_with_output().unwrap())
    }
}

/// Replaces volatile text (temp paths; timestamps are filtered by insta
/// settings in `snap!`).
pub fn scrub(ops: &Ops, text: &str) -> String {
    let home = ops.home().display().to_string();
    let fixtures = fixtures().display().to_string();
    text.replace(&home, "[HOME]")
        .replace(&fixtures, "[FIXTURES]")
}

/// Snapshot with timestamps filtered.
#[macro_export]
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]")]}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
pub(crate) use snap;
