//! `opscli runbook`: add a directory (again: unchanged), list, show,
//! search by words, by an Alertmanager payload and by labels, remove; clear
//! errors for a missing path, a broken front matter and an unknown name.
//! The test home has no embedding model, so search is BM25 and says so
//! (the vector path is covered in ops-agent's knowledge tests).

use crate::common::Ops;

fn runbooks() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../evals/runbooks").to_owned()
}

#[test]
fn add_list_show_search_remove() {
    let ops = Ops::new();
    let out = ops.run(&["runbook", "add", &runbooks()]).ok();
    assert!(
        out.stdout
            .contains("runbook/disk-full.md added (6 sections)"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("BM25 only"), "{}", out.stderr);
    let again = ops.run(&["runbook", "add", &runbooks()]).ok();
    assert!(
        again.stdout.lines().all(|l| l.ends_with("unchanged")),
        "{}",
        again.stdout
    );
    let list = ops.run(&["runbook", "list"]).ok();
    assert_eq!(list.stdout.lines().count(), 27, "{}", list.stdout);
    assert!(list.stdout.contains("KubeNodeNotReady"));
    let show = ops.run(&["runbook", "show", "nginx-down.md"]).ok();
    assert!(
        show.stdout
            .contains("21-31   nginx down or failing to start > Fix a config error"),
        "{}",
        show.stdout
    );

    let s = ops
        .run(&[
            "runbook",
            "search",
            "sorry too many clients already",
            "-k",
            "1",
        ])
        .ok();
    assert!(
        s.stdout
            .starts_with("1. postgres-connections.md § PostgreSQL: too many connections"),
        "{}",
        s.stdout
    );
    assert!(s.stderr.contains("BM25 only"), "{}", s.stderr);
    let alert = r#"{"receiver":"ops","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"GPUXidError","node":"gpu-12","xid":"79"},"annotations":{"summary":"Xid 79 on gpu-12"}}]}"#;
    let a = ops
        .run_stdin(
            &["runbook", "search", "--alert", "-", "-k", "1", "-o", "json"],
            alert,
        )
        .ok();
    let v: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!(v["method"], "bm25");
    assert_eq!(v["hits"][0]["runbook"], "gpu-xid-errors.md");
    assert_eq!(v["hits"][0]["matched"][0], "alert:GPUXidError");
    let l = ops
        .run(&[
            "runbook",
            "search",
            "--label",
            "alertname=KubeNodeNotReady",
            "-k",
            "1",
        ])
        .ok();
    assert!(l.stdout.contains("kubelet-not-ready.md"), "{}", l.stdout);

    ops.run(&["runbook", "rm", "swap-thrashing.md"]).ok();
    let gone = ops.run(&["runbook", "show", "swap-thrashing.md"]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("no runbook named `swap-thrashing.md`"),
        "{}",
        gone.stderr
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let ops = Ops::new();
    let missing = ops.run(&["runbook", "add", "/nonexistent/runbooks"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("/nonexistent/runbooks"),
        "{}",
        missing.stderr
    );
    let bad = ops.home().join("bad.md");
    std::fs::write(&bad, "---\nalerts: [DiskFull\n---\n# Bad\n").unwrap();
    let e = ops.run(&["runbook", "add", bad.to_str().unwrap()]);
    assert_eq!(e.code, 1);
    assert!(e.stderr.contains("bad.md:"), "{}", e.stderr);
    assert!(e.stderr.contains("front matter"), "{}", e.stderr);
    let nothing = ops.run(&["runbook", "search"]);
    assert!(
        nothing.stderr.contains("nothing to search for"),
        "{}",
        nothing.stderr
    );
    let alert = ops.run_stdin(&["runbook", "search", "--alert", "-"], "{not json");
    assert!(alert.stderr.contains("not valid JSON"), "{}", alert.stderr);
    let method = ops.run(&["runbook", "search", "x", "--method", "magic"]);
    assert!(
        method.stderr.contains("unknown method `magic`"),
        "{}",
        method.stderr
    );
}
