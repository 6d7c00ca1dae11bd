//! The audit trail: redacted before it is written, hash-chained, and any
//! edit, removal or reordering made behind the store's back is found.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;

use ops_agent::audit::{Audit, AuditEvent};
use ops_tools::store::{AuditCheck, SqliteStore, Store};

async fn trail(path: &std::path::Path) -> (Arc<SqliteStore>, Audit) {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let audit = Audit::new(store.clone());
    let events = [
        AuditEvent::UserInput {
            text: "why is web-1 slow?".into(),
        },
        AuditEvent::ToolCall {
            tool: "host_run_shell".into(),
            args: serde_json::json!({"host": "web-1", "command": "systemctl restart nginx"}),
            effect: "mutate".into(),
        },
        AuditEvent::ApprovalRequested {
            id: "ap-1".into(),
            call_hash: "abc".into(),
            summary: "systemctl restart nginx on web-1".into(),
        },
        AuditEvent::ApprovalDecided {
            id: "ap-1".into(),
            decision: "denied".into(),
            by: "alice".into(),
            reason: Some("not during business hours".into()),
        },
        AuditEvent::ToolResult {
            tool: "host_read_file".into(),
            ok: true,
            output: "DB_PASSWORD=hunter2-fake\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n".into(),
        },
    ];
    for (i, e) in events.iter().enumerate() {
        let session = if i == 4 { Some("s-2") } else { Some("s-1") };
        audit.record(session, e).await.unwrap();
    }
    (store, audit)
}

#[tokio::test]
async fn records_are_redacted_chained_and_listed_by_session() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = trail(&dir.path().join("ops.db")).await;
    let all = store.list_audit(None, 0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        all.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        [
            "user_input",
            "tool_call",
            "approval_requested",
            "approval_decided",
            "tool_result"
        ]
    );
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let last = &all[4].payload;
    assert!(
        !last.contains("hunter2-fake") && !last.contains("AKIAIOSFODNN7EXAMPLE"),
        "{last}"
    );
    assert!(last.contains("[REDACTED:"), "{last}");
    assert_eq!(
        store.list_audit(Some("s-2"), 0, 100).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.list_audit(Some("s-1"), 2, 100).await.unwrap().len(),
        2
    );
    match store.verify_audit().await.unwrap() {
        AuditCheck::Intact { records, head } => {
            assert_eq!(records, 5);
            assert_eq!(head, all[4].hash);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let (store, _) = trail(&path).await;
    drop(store);
    let broken = |sql: &str| {
        let copy = dir.path().join(format!("copy-{}.db", sql.len()));
        std::fs::copy(&path, &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        copy
    };
    for (sql, seq, why) in [
        (
            "UPDATE audit SET payload = replace(payload, 'denied', 'approved') WHERE seq = 4",
            4,
            "edited",
        ),
        ("DELETE FROM audit WHERE seq = 2", 3, "removed"),
        ("UPDATE audit SET hash = 'x' WHERE seq = 3", 3, "edited"),
        (
            // Recomputing one record's hash is not enough: the next link breaks.
            "UPDATE audit SET kind = 'model_reply' WHERE seq = 1",
            1,
            "edited",
        ),
    ] {
        let copy = broken(sql);
        let s = SqliteStore::open(&copy).unwrap();
        match s.verify_audit().await.unwrap() {
            AuditCheck::Broken { seq: at, reason } => {
                assert_eq!(at, seq, "{sql}: {reason}");
                assert!(
                    reason.contains(why) || reason.contains("removed"),
                    "{sql}: {reason}"
                );
            }
            other => panic!("{sql}: not detected: {other:?}"),
        }
    }
}
