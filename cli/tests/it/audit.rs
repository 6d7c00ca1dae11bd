//! `opscli audit show|verify` over a store with records, intact and
//! tampered.

use crate::common::Ops;
use ops_store::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_and_verify() {
    let ops = Ops::new();
    let run = |args: &[&str]| tokio::task::block_in_place(|| ops.run(args));
    let empty = run(&["audit", "show"]).ok();
    assert!(
        empty.stderr.contains("No audit records."),
        "{}",
        empty.stderr
    );
    let db = ops.home().join("ops.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        store
            .append_audit(
                Some("s-1"),
                "user_input",
                r#"{"text":"disk full on web-1?"}"#,
            )
            .await
            .unwrap();
        store
            .append_audit(
                Some("s-1"),
                "approval_decided",
                r#"{"decision":"denied","by":"alice"}"#,
            )
            .await
            .unwrap();
        store
            .append_audit(Some("s-2"), "user_input", r#"{"text":"other"}"#)
            .await
            .unwrap();
    }
    let shown = run(&["audit", "show", "--session", "s-1"]).ok();
    assert!(
        shown.stdout.contains("approval_decided"),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains("other"), "{}", shown.stdout);
    let json = run(&["audit", "show", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    let ok = run(&["audit", "verify"]).ok();
    assert!(
        ok.stdout.starts_with("audit log intact: 3 records, head "),
        "{}",
        ok.stdout
    );

    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE audit SET payload = replace(payload, 'denied', 'approved') WHERE seq = 2",
        [],
    )
    .unwrap();
    drop(c);
    let bad = run(&["audit", "verify"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stdout.contains("audit log BROKEN at record 2") && bad.stdout.contains("edited"),
        "{}",
        bad.stdout
    );
}
