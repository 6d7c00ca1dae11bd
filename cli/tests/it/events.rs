//! `opscli events` on the embedded event log: publish (validated subject
//! and JSON), query by pattern and age, tail that sees an event published
//! by another process.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::common::Ops;

const DISK: &str = "ops.clusters.c1.namespaces.ops-system.hosts.web-1.findings";
const GPU: &str = "ops.clusters.c1.nodes.gpu-3.findings";

#[test]
fn publish_and_query() {
    let ops = Ops::new();
    let id = ops
        .run(&[
            "events",
            "publish",
            DISK,
            "-d",
            r#"{"task":"alert-hosts-disk","status":"alerting"}"#,
            "--cluster",
            "c1",
        ])
        .ok();
    assert_eq!(id.stdout.trim().len(), 32, "{}", id.stdout);
    ops.run(&[
        "events",
        "publish",
        GPU,
        "-d",
        r#"{"task":"alert-gpu-xid"}"#,
    ])
    .ok();
    let all = ops.run(&["events", "query", "ops.>", "-o", "json"]).ok();
    let events: Vec<serde_json::Value> = all
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["specversion"], "1.0");
    assert_eq!(events[0]["cluster"], "c1");
    assert_eq!(events[0]["data"]["status"], "alerting");
    let nodes = ops
        .run(&["events", "query", "ops.clusters.*.nodes.*.findings"])
        .ok();
    assert_eq!(nodes.stdout.lines().count(), 1, "{}", nodes.stdout);
    assert!(nodes.stdout.contains(GPU));
    let recent = ops
        .run(&["events", "query", "ops.>", "--since", "10m", "--limit", "1"])
        .ok();
    assert_eq!(recent.stdout.lines().count(), 1);
    assert!(recent.stdout.contains(GPU), "the newest: {}", recent.stdout);

    let bad = ops.run(&["events", "publish", "ops.clusters.*.x", "-d", "{}"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("not a concrete subject"),
        "{}",
        bad.stderr
    );
    let bad = ops.run(&["events", "publish", DISK, "-d", "{oops"]);
    assert!(
        bad.stderr.contains("--data is not valid JSON"),
        "{}",
        bad.stderr
    );
    let bad = ops.run(&["events", "query", "ops.>.x"]);
    assert!(bad.stderr.contains("not valid"), "{}", bad.stderr);
}

#[test]
fn tail_follows_new_events() {
    let ops = Ops::new();
    ops.run(&["events", "publish", DISK, "-d", r#"{"n":1}"#])
        .ok();
    let mut tail = ops
        .command()
        .args([
            "events",
            "tail",
            "ops.clusters.*.nodes.>",
            "--last",
            "5",
            "--count",
            "1",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    ops.run(&["events", "publish", DISK, "-d", r#"{"n":2}"#])
        .ok();
    ops.run(&["events", "publish", GPU, "-d", r#"{"n":3}"#])
        .ok();
    let out = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
        let _ = tx.send(lines);
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("tail did not see the event");
    assert!(tail.wait().unwrap().success());
    assert_eq!(lines.len(), 1, "{lines:?}");
    let e: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(e["subject"], GPU);
    assert_eq!(e["data"]["n"], 3);
}

#[test]
fn every_run_records_its_events() {
    let ops = Ops::new();
    let objs = "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: here}\nspec: {address: 127.0.0.1}\n---\napiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: greet}\nspec:\n  host: here\n  steps:\n    - name: say\n      content: echo hi\n    - name: fail-ok\n      content: exit 3\n      allowfailure: \"true\"\n---\napiVersion: crd.chenshaowen.com/v1\nkind: Pipeline\nmetadata: {name: twice}\nspec:\n  tasks:\n    - {name: one, taskRef: greet}\n";
    ops.run_stdin(&["apply", "-f", "-"], objs).ok();
    ops.run(&["task", "-f", "greet"]).ok();
    let out = ops
        .run(&[
            "events",
            "query",
            "ops.clusters.local.namespaces.*.taskruns.>",
            "-o",
            "json",
        ])
        .ok();
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "dev.ops.run.started",
            "dev.ops.run.step",
            "dev.ops.run.step",
            "dev.ops.run.finished"
        ],
        "{}",
        out.stdout
    );
    assert_eq!(events[1]["data"]["step"], "say");
    assert_eq!(events[2]["data"]["exit_code"], 3);
    let fin = &events[3]["data"];
    assert_eq!(fin["phase"], "Succeeded");
    assert_eq!(fin["steps"].as_array().unwrap().len(), 2);
    assert!(
        !out.stdout.contains("\"hi\\n\""),
        "no step output in events"
    );
    ops.run(&["pipeline", "run", "twice"]).ok();
    let p = ops
        .run(&[
            "events",
            "query",
            "ops.clusters.local.namespaces.*.pipelineruns.>",
            "-o",
            "json",
        ])
        .ok();
    let last: serde_json::Value = serde_json::from_str(p.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "dev.ops.run.finished");
    assert_eq!(last["data"]["kind"], "PipelineRun");
}

#[test]
fn prune_removes_old_events_only() {
    let ops = Ops::new();
    ops.run(&["events", "publish", DISK, "-d", "{}"]).ok();
    let kept = ops.run(&["events", "prune", "--older-than", "1h"]).ok();
    assert!(
        kept.stdout.contains("removed 0 event(s)"),
        "{}",
        kept.stdout
    );
    std::thread::sleep(Duration::from_millis(1100));
    let gone = ops.run(&["events", "prune", "--older-than", "1s"]).ok();
    assert!(
        gone.stdout.contains("removed 1 event(s)"),
        "{}",
        gone.stdout
    );
    let q = ops.run(&["events", "query", "ops.>"]).ok();
    assert!(q.stdout.is_empty(), "{}", q.stdout);
    // New events still get new positions and are found.
    ops.run(&["events", "publish", GPU, "-d", "{}"]).ok();
    let q = ops.run(&["events", "query", "ops.>"]).ok();
    assert_eq!(q.stdout.lines().count(), 1, "{}", q.stdout);
    let bad = ops.run(&["events", "prune", "--older-than", "soon"]);
    assert_eq!(bad.code, 1);
}
