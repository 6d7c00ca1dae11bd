//! `opscli shell|file|task|pipeline run|run ...` against real sshd hosts.

use ops_testkit::sshd;

use std::time::{Duration, Instant};

use crate::common::Ops;
use sshd::{ClientKey, Sshd};

fn host_yaml(name: &str, s: &Sshd, key: &ClientKey, role: &str) -> String {
    format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: {name}\n  labels: {{role: {role}}}\nspec:\n  address: {}\n  port: {}\n  username: root\n  privateKeyPath: {}\n---\n",
        s.addr,
        s.port,
        key.private.display()
    )
}

fn lab(ops: &Ops, key: &ClientKey, servers: &[&Sshd]) {
    let mut yaml = String::new();
    for (i, s) in servers.iter().enumerate() {
        yaml.push_str(&host_yaml(&format!("web-{}", i + 1), s, key, "web"));
    }
    yaml.push_str("apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: web-down\n  labels: {role: web}\nspec:\n  address: 127.0.0.9\n  port: 22\n");
    ops.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    let known: String = servers.iter().map(|s| s.known_hosts_line()).collect();
    std::fs::write(ops.home().join("known_hosts"), known).unwrap();
}

#[test]
fn shell_fans_out_reports_every_host_and_fails_when_one_does() {
    let key = ClientKey::new();
    let (a, b, c) = (
        Sshd::start("127.0.0.2", &[&key]),
        Sshd::start("127.0.0.3", &[&key]),
        Sshd::start("127.0.0.4", &[&key]),
    );
    let ops = Ops::new();
    lab(&ops, &key, &[&a, &b, &c]);
    let ok = ops
        .run(&[
            "shell",
            "-i",
            "web-1,web-2,web-3",
            "--content",
            "echo $SSH_CONNECTION | cut -d' ' -f3",
        ])
        .ok();
    for s in [&a, &b, &c] {
        assert!(
            ok.stdout.contains(&format!("\n{}\n", s.addr)),
            "{}",
            ok.stdout
        );
    }
    assert!(ok.stdout.contains("run shell-"), "{}", ok.stdout);

    let mixed = ops.run(&["shell", "-i", "role=web", "--content", "true", "-o", "json"]);
    assert_eq!(mixed.code, 1, "{}", mixed.stderr);
    let run: serde_json::Value = serde_json::from_str(&mixed.stdout).unwrap();
    assert_eq!(run["phase"], "Failed");
    let down = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["target"] == "web-down")
        .unwrap();
    assert!(
        down["stderr"]
            .as_str()
            .unwrap()
            .contains("cannot connect to 127.0.0.9:22"),
        "{down}"
    );
    assert_eq!(
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["phase"] == "Succeeded")
            .count(),
        3
    );
}

#[test]
fn ad_hoc_addresses_use_the_flags_and_the_known_hosts_policy() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.3", &[&key]);
    let ops = Ops::new();
    let port = s.port.to_string();
    let args = [
        "shell",
        "-i",
        "127.0.0.3",
        "--port",
        &port,
        "--username",
        "root",
        "--privatekeypath",
        key.private.to_str().unwrap(),
        "--content",
        "whoami",
    ];
    let strict = ops.run(&args);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains("host key of [127.0.0.3]:") && strict.stdout.contains("SHA256:"),
        "{}",
        strict.stdout
    );
    let mut tofu = args.to_vec();
    tofu.extend(["--known-hosts", "accept-new"]);
    let ok = ops.run(&tofu).ok();
    assert!(ok.stdout.contains("\nroot\n"), "{}", ok.stdout);
    // Now known: strict passes.
    ops.run(&args).ok();
}

#[test]
fn file_upload_and_download_round_trip() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.4", &[&key]);
    let ops = Ops::new();
    lab(&ops, &key, &[&s]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("payload.txt");
    std::fs::write(&local, "payload\n".repeat(1000)).unwrap();
    let remote = dir.path().join("remote-copy.txt");
    let up = ops
        .run(&[
            "file",
            "-i",
            "web-1",
            "--direction",
            "upload",
            "--localfile",
            local.to_str().unwrap(),
            "--remotefile",
            remote.to_str().unwrap(),
        ])
        .ok();
    assert!(up.stdout.contains("8000 bytes, sha256"), "{}", up.stdout);
    let back = dir.path().join("back.txt");
    ops.run(&[
        "file",
        "-i",
        "web-1",
        "--direction",
        "download",
        "--localfile",
        back.to_str().unwrap(),
        "--remotefile",
        remote.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&local).unwrap()
    );
}

#[test]
fn tasks_take_anchor_style_variables_and_pipelines_run() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.2", &[&key]);
    let ops = Ops::new();
    lab(&ops, &key, &[&s]);
    let task = "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: greet}\nspec:\n  host: web-1\n  variables:\n    who: {required: true}\n    times: {default: \"2\", regex: \"^[0-9]+$\"}\n  steps:\n    - name: say\n      content: for i in $(seq ${times}); do echo \"hi ${who} from ${HOSTNAME}\"; done\n---\napiVersion: crd.chenshaowen.com/v1\nkind: Pipeline\nmetadata: {name: greet-twice}\nspec:\n  variables:\n    who: {default: pipeline}\n  tasks:\n    - {name: one, taskRef: greet}\n    - {name: two, taskRef: greet, variables: {times: \"1\"}}\n";
    ops.run_stdin(&["apply", "-f", "-"], task).ok();
    let out = ops
        .run(&["task", "-f", "greet", "--who", "anchor", "--times=3"])
        .ok();
    assert_eq!(
        out.stdout.matches("hi anchor from web-1").count(),
        3,
        "{}",
        out.stdout
    );
    let bad = ops.run(&["task", "-f", "greet", "--who", "x", "--times", "many"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("`times` = `many` does not match"),
        "{}",
        bad.stderr
    );
    let p = ops.run(&["pipeline", "run", "greet-twice"]).ok();
    assert_eq!(
        p.stdout.matches("hi pipeline from web-1").count(),
        3,
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("one | web-1 | say: Succeeded"),
        "{}",
        p.stdout
    );
    let missing = ops.run(&["pipeline", "run", "nope"]);
    assert!(
        missing.stderr.contains("no Pipeline named `nope`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn run_records_list_get_logs_and_cancel_from_another_process() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.3", &[&key]);
    let ops = Ops::new();
    lab(&ops, &key, &[&s]);
    let child = ops
        .command()
        .args([
            "shell",
            "-i",
            "web-1",
            "--content",
            "echo started; sleep 300 & echo $! > /tmp/ops-cancel-test.pid; wait",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_running(&ops);
    let cancel = ops.run(&["run", "cancel", &id]).ok();
    assert!(
        cancel.stdout.contains("cancellation requested"),
        "{}",
        cancel.stdout
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let got = ops.run(&["run", "get", &id, "-o", "json"]).ok();
    let run: serde_json::Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(run["phase"], "Cancelled");
    let pid = std::fs::read_to_string("/tmp/ops-cancel-test.pid").unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "remote sleep still running: {stat}"
    );
    let logs = ops.run(&["run", "logs", &id]).ok();
    assert!(
        logs.stdout
            .contains("==> web-1 | shell: Cancelled\nstarted\n"),
        "{}",
        logs.stdout
    );
    let list = ops.run(&["run", "list", "--status", "Cancelled"]).ok();
    assert!(list.stdout.contains(&id), "{}", list.stdout);
}

fn wait_for_running(ops: &Ops) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let l = ops.run(&["run", "list", "--status", "Running", "-o", "json"]);
        if l.code == 0 {
            let runs: serde_json::Value = serde_json::from_str(&l.stdout).unwrap_or_default();
            if let Some(id) = runs
                .as_array()
                .and_then(|a| a.first())
                .and_then(|r| r["id"].as_str())
            {
                std::thread::sleep(Duration::from_millis(500));
                return id.to_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no run started");
}

#[test]
fn ctrl_c_cancels_and_a_killed_process_leaves_an_interrupted_run() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.4", &[&key]);
    let ops = Ops::new();
    lab(&ops, &key, &[&s]);
    let child = ops
        .command()
        .args(["shell", "-i", "web-1", "--content", "echo begun; sleep 300"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_running(&ops);
    nix_kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value =
        serde_json::from_str(&ops.run(&["run", "get", &id, "-o", "json"]).ok().stdout).unwrap();
    assert_eq!(got["phase"], "Cancelled");

    let child = ops
        .command()
        .args([
            "shell",
            "-i",
            "web-1",
            "--content",
            "echo partial; sleep 300",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_for_running(&ops);
    nix_kill(child.id(), "KILL");
    let _ = child.wait_with_output();
    // The next opscli that runs something recovers it.
    let next = ops.run(&["shell", "--content", "true"]).ok();
    assert!(
        next.stderr.contains("marked Interrupted"),
        "{}",
        next.stderr
    );
    let got: serde_json::Value =
        serde_json::from_str(&ops.run(&["run", "get", &id, "-o", "json"]).ok().stdout).unwrap();
    assert_eq!(got["phase"], "Interrupted");
    assert_eq!(got["steps"][0]["phase"], "Interrupted");
}

fn nix_kill(pid: u32, sig: &str) {
    use nix::sys::signal::{Signal, kill};
    let signal = match sig {
        "INT" => Signal::SIGINT,
        _ => Signal::SIGKILL,
    };
    let pid = i32::try_from(pid).unwrap();
    assert!(pid > 1, "refusing to signal pid {pid}");
    kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

/// A step with no time limit dies with its connection, and the run reads
/// as Interrupted at once: after `kill -9` of opscli mid-step, the remote
/// step used to finish its side effect and `run list` said Running until
/// another command ran (issue "the gate must hold").
#[test]
fn regression_a_killed_opscli_takes_its_remote_step_down() {
    let key = ClientKey::new();
    let s = Sshd::start("127.0.0.4", &[&key]);
    let ops = Ops::new();
    lab(&ops, &key, &[&s]);
    let marker = ops.home().join("side-effect");
    let child = ops
        .command()
        .args([
            "shell",
            "-i",
            "web-1",
            "--content",
            &format!("echo begun; sleep 4; touch {}", marker.display()),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_for_running(&ops);
    nix_kill(child.id(), "KILL");
    let _ = child.wait_with_output();
    // Read at once, by a command that runs nothing.
    let got: serde_json::Value =
        serde_json::from_str(&ops.run(&["run", "get", &id, "-o", "json"]).ok().stdout).unwrap();
    assert_eq!(got["phase"], "Interrupted", "{got}");
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(
        !marker.exists(),
        "the remote step went on after its connection died"
    );
}
