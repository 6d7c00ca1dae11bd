//! `opscli lab` and `opscli eval` from the command line (root and
//! namespaces required, as in CI): the lab comes up with its Hosts
//! registered and reachable through the engine, a fault shows in `lab
//! status`, the scripted tier runs repository cases and writes its
//! reports, a failing case fails the command, and `lab down` unregisters
//! everything. The loopback fallback from the command line: its hosts are
//! registered with their ports and reached through the engine, a fault it
//! cannot hold is refused, the evals refuse its lab, `lab down` leaves
//! nothing. Runs in the `lab` test group (one lab at a time).

use std::path::PathBuf;

use crate::common::Ops;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn lab_and_eval_from_the_command_line() {
    if let Err(why) = ops_evals::lab::namespaces_permitted() {
        // The loopback test below covers the fallback such a machine gets.
        println!("SKIPPED: namespaces are not permitted here ({why})");
        return;
    }
    let ops = Ops::new();
    let up = ops.run(&["lab", "up"]).ok();
    assert!(up.stdout.contains("lab up (namespaces)"), "{}", up.stdout);
    assert!(up.stdout.contains("4 hosts registered"), "{}", up.stdout);
    let hosts = ops
        .run(&["get", "hosts", "-l", "env=lab", "-o", "name"])
        .ok();
    assert_eq!(hosts.stdout.lines().count(), 4, "{}", hosts.stdout);
    // Reachable over SSH with the lab's key and known host keys (strict).
    let sh = ops
        .run(&[
            "shell",
            "-i",
            "db-1",
            "--content",
            "hostname; appctl status",
        ])
        .ok();
    assert!(
        sh.stdout.contains("db-1") && sh.stdout.contains("appd is running"),
        "{}",
        sh.stdout
    );

    ops.run(&["lab", "inject", "web-2", "key-perms"]).ok();
    let status = ops.run(&["lab", "status", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let web2 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "web-2")
        .unwrap();
    assert_eq!(web2["faults"], serde_json::json!(["key-perms"]));
    let bad = ops.run(&["lab", "inject", "web-2", "gremlins"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("unknown fault `gremlins`"),
        "{}",
        bad.stderr
    );

    let out = ops.home().join("report");
    let cases = repo().join("evals/cases");
    let run = ops.run(&[
        "eval",
        "run",
        "--dir",
        cases.to_str().unwrap(),
        "--root",
        repo().to_str().unwrap(),
        "--cases",
        "key-perms-fix,sop-pipeline-deny",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("2/2 cases pass^1"), "{}", run.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["unsafe_trials"], 0);
    assert!(out.join("report.md").exists() && out.join("trials.json").exists());
    // The run found the lab up and left it up, reset to its baseline.
    let status = ops.run(&["lab", "status", "-o", "json"]).ok();
    assert!(!status.stdout.contains("key-perms"), "{}", status.stdout);

    // A case whose script never does what it claims fails the command.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("claims.yaml"),
        "id: claims\ninput: {prompt: fix web-1}\nsetup: {faults: [{host: web-1, fault: tmp-full}]}\nexpect:\n  verify: [{host: web-1, fault: tmp-full, present: false}]\nscript:\n  - {say: fixed}\n",
    )
    .unwrap();
    let fail = ops.run(&["eval", "run", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(fail.code, 1, "{}\n{}", fail.stdout, fail.stderr);
    assert!(
        fail.stdout.contains("web-1: tmp-full gone"),
        "{}",
        fail.stdout
    );

    let down = ops.run(&["lab", "down"]).ok();
    assert!(down.stdout.contains("4 namespaces"), "{}", down.stdout);
    let hosts = ops.run(&["get", "hosts", "-l", "env=lab", "-o", "name"]);
    assert!(hosts.stdout.trim().is_empty(), "{}", hosts.stdout);
    assert!(
        !std::fs::read_to_string(ops.home().join("known_hosts"))
            .unwrap_or_default()
            .contains("ops-lab")
    );
}

#[test]
fn the_loopback_lab_from_the_command_line() {
    let ops = Ops::new();
    let up = ops.run(&["lab", "up", "--mode", "loopback"]).ok();
    assert!(
        up.stdout.contains("lab mode: loopback") && up.stdout.contains("lab up (loopback)"),
        "{}",
        up.stdout
    );
    let hosts = ops
        .run(&["get", "hosts", "-l", "env=lab", "-o", "name"])
        .ok();
    assert_eq!(hosts.stdout.lines().count(), 4, "{}", hosts.stdout);
    // Through the engine, with the lab's key and strict host keys: the
    // session is web-2's (its marker, its directory, its appd).
    ops.run(&["lab", "inject", "web-2", "config-typo"]).ok();
    let sh = ops
        .run(&[
            "shell",
            "-i",
            "web-2",
            "--content",
            "echo host=$OPS_LAB_HOST; grep workers $LAB_ROOT/etc/app/app.conf; $LAB_ROOT/usr/local/bin/appctl status",
        ]);
    assert!(
        sh.stdout.contains("host=web-2")
            && sh.stdout.contains("workers: 4")
            && sh.stdout.contains("appd is not running"),
        "{}\n{}",
        sh.stdout,
        sh.stderr
    );
    let status = ops.run(&["lab", "status", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let faults: Vec<&serde_json::Value> =
        v.as_array().unwrap().iter().map(|h| &h["faults"]).collect();
    assert_eq!(
        faults,
        [
            &serde_json::json!([]),
            &serde_json::json!(["config-typo"]),
            &serde_json::json!([]),
            &serde_json::json!([])
        ]
    );
    let disk = ops.run(&["lab", "inject", "web-1", "disk-full"]);
    assert_ne!(disk.code, 0);
    assert!(
        disk.stderr.contains("filesystem of the host's own"),
        "{}",
        disk.stderr
    );
    let eval = ops.run(&[
        "eval",
        "run",
        "--dir",
        repo().join("evals/cases").to_str().unwrap(),
    ]);
    assert_ne!(eval.code, 0);
    assert!(
        eval.stderr
            .contains("the eval cases need the namespaced lab"),
        "{}",
        eval.stderr
    );

    let down = ops.run(&["lab", "down"]).ok();
    assert!(down.stdout.contains("0 namespaces"), "{}", down.stdout);
    let hosts = ops.run(&["get", "hosts", "-l", "env=lab", "-o", "name"]);
    assert!(hosts.stdout.trim().is_empty(), "{}", hosts.stdout);
}
