//! The audit trail: redacted before it is written, hash-chained, and any
//! edit, removal or reordering made behind the store's back is found.

use std::sync::Arc;

use ops_agent::audit::{Audit, AuditEvent};
use ops_store::{AuditCheck, SqliteStore, Store};

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
            by: Some("alice (local uid 1000)".into()),
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

/// A sealed trail (key outside the store, head file) with one approval
/// requested and denied, as a session and `opscli approval` record it.
async fn sealed(dir: &std::path::Path) -> (std::path::PathBuf, ops_store::seal::AuditSeal) {
    use ops_agent::approvals::{Answer, ApprovalRequest, Approvals, CallSpec};
    use ops_store::seal::AuditSeal;
    let path = dir.join("ops.db");
    let seal = AuditSeal::open(&dir.join("audit.key"), &dir.join("ops.db.audit-head")).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&path)
            .unwrap()
            .with_audit_seal(seal.clone()),
    );
    let audit = Audit::new(store.clone());
    let approvals = Approvals::new(store.clone(), std::time::Duration::from_secs(600));
    audit
        .record(
            Some("s-1"),
            &AuditEvent::UserInput {
                text: "tidy /srv".into(),
            },
        )
        .await
        .unwrap();
    let call = CallSpec {
        tool: "host_run_shell".into(),
        args: serde_json::json!({"command": "rm -rf /srv/cache", "hosts": "web-1"}),
        targets: vec!["web-1".into()],
        effect: ops_model::Effect::Destructive,
    };
    let rec = approvals
        .request(
            "s-1",
            &ApprovalRequest {
                call: call.clone(),
                summary: "rm -rf /srv/cache on web-1".into(),
                reason: "cache is full".into(),
                plan: None,
            },
        )
        .await
        .unwrap();
    audit
        .record(
            Some("s-1"),
            &AuditEvent::ApprovalRequested {
                id: rec.id.clone(),
                call_hash: rec.call_hash.clone(),
                summary: "rm -rf /srv/cache on web-1".into(),
            },
        )
        .await
        .unwrap();
    approvals
        .answer(
            &rec.id,
            &Answer::Deny("not now".into()),
            &ops_protocol::Principal::local_user("alice", 1000),
        )
        .await
        .unwrap();
    audit
        .record(
            Some("s-1"),
            &AuditEvent::ApprovalDecided {
                id: rec.id.clone(),
                decision: "denied".into(),
                by: "alice (local uid 1000)".into(),
                reason: Some("not now".into()),
            },
        )
        .await
        .unwrap();
    audit
        .record(
            Some("s-1"),
            &AuditEvent::ModelReply {
                text: "I did not delete anything.".into(),
            },
        )
        .await
        .unwrap();
    (path, seal)
}

/// What a store-only attacker does: edit the database (not the key, not
/// the head file) and recompute plain hashes, delete the tail or every
/// record, append a record of their own, or turn a denial into an
/// approval. Each is found (issue "the gate must hold").
#[tokio::test]
async fn regression_sealed_audit_finds_truncation_forgery_and_edited_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let (path, seal) = sealed(dir.path()).await;
    let verify = |db: &std::path::Path| {
        let store = SqliteStore::open(db).unwrap().with_audit_seal(seal.clone());
        async move { ops_agent::audit::verify(&store).await.unwrap() }
    };
    match verify(&path).await {
        AuditCheck::Intact { records, .. } => assert_eq!(records, 4),
        other => panic!("{other:?}"),
    }
    // Each attack on a copy of the database; the head file stays where
    // the real one is (the attacker cannot write it).
    let attack = |name: &str, edit: &dyn Fn(&rusqlite::Connection)| {
        let copy = dir.path().join(format!("{name}.db"));
        std::fs::copy(&path, &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        edit(&c);
        drop(c);
        copy
    };
    let plain = |c: &rusqlite::Connection| {
        // Recompute every hash as the unkeyed chain, from the genesis.
        let rows: Vec<(i64, Option<String>, String, String, String)> = c
            .prepare("SELECT seq, session_id, at, kind, payload FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut prev = ops_store::AUDIT_GENESIS.to_owned();
        for (seq, session, at, kind, payload) in rows {
            let h = ops_store::audit_hash(&prev, seq, &at, session.as_deref(), &kind, &payload);
            c.execute(
                "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![prev, h, seq],
            )
            .unwrap();
            prev = h;
        }
    };
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        (
            "tail",
            attack("tail", &|c| {
                c.execute("DELETE FROM audit WHERE seq >= 3", []).unwrap();
            }),
            "removed from the end",
        ),
        (
            "everything",
            attack("everything", &|c| {
                c.execute("DELETE FROM audit", []).unwrap();
            }),
            "all 4 records were removed",
        ),
        (
            "recomputed",
            attack("recomputed", &|c| {
                c.execute(
                    "UPDATE audit SET payload = replace(payload, 'denied', 'approved') WHERE kind = 'approval_decided'",
                    [],
                )
                .unwrap();
                plain(c);
            }),
            "without the key",
        ),
        (
            "forged",
            attack("forged", &|c| {
                c.execute(
                    "INSERT INTO audit (seq, session_id, at, kind, payload, prev_hash, hash)
                     SELECT seq + 1, session_id, at, 'model_reply', '{\"kind\":\"model_reply\",\"text\":\"ok\"}', hash, 'hmac-sha256:00'
                     FROM audit WHERE seq = 4",
                    [],
                )
                .unwrap();
            }),
            "forged without the key",
        ),
        (
            "approval",
            attack("approval", &|c| {
                c.execute(
                    "UPDATE approvals SET state = 'approved', decision = NULL",
                    [],
                )
                .unwrap();
            }),
            "no such decision was audited",
        ),
        (
            "approval-hash",
            attack("approval-hash", &|c| {
                c.execute("UPDATE approvals SET call_hash = 'deadbeef'", [])
                    .unwrap();
            }),
            "the approval was edited",
        ),
        (
            "approval-inserted",
            attack("approval-inserted", &|c| {
                c.execute(
                    "INSERT INTO approvals (id, session_id, call_hash, state, request, decided_by, created_at)
                     SELECT 'ap-forged', session_id, call_hash, 'approved', request, 'mallory', created_at FROM approvals",
                    [],
                )
                .unwrap();
            }),
            "never audited",
        ),
    ];
    for (name, db, want) in cases {
        // Every copy is checked against the real head file.
        match verify(&db).await {
            AuditCheck::Broken { reason, .. } => {
                assert!(reason.contains(want), "{name}: {reason}");
            }
            other => panic!("{name}: not detected: {other:?}"),
        }
    }
    // The key file is private, and a head file edited by hand is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let head = dir.path().join("ops.db.audit-head");
    let text = std::fs::read_to_string(&head).unwrap();
    std::fs::write(&head, text.replace("\"seq\":4", "\"seq\":3")).unwrap();
    match verify(&path).await {
        AuditCheck::Broken { reason, .. } => assert!(reason.contains("MAC"), "{reason}"),
        other => panic!("edited head not detected: {other:?}"),
    }
}
