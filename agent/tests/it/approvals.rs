//! Approvals are bound to the exact call: any change to the tool, an
//! argument or the targets needs a new approval; approve-once is consumed
//! by one run; denials carry their reason; unanswered requests expire.

use std::sync::Arc;
use std::time::Duration;

use ops_agent::approvals::{
    Answer, ApprovalError, ApprovalRequest, Approvals, Authorized, CallSpec,
};
use ops_model::Effect;
use ops_store::SqliteStore;
use serde_json::json;

fn call(cmd: &str, targets: &[&str]) -> CallSpec {
    CallSpec {
        tool: "host_run_shell".into(),
        args: json!({"command": cmd, "sudo": true, "timeout": 30}),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        effect: Effect::Mutate,
    }
}

fn request(c: &CallSpec) -> ApprovalRequest {
    ApprovalRequest {
        call: c.clone(),
        summary: format!("{} on {}", c.args["command"], c.targets.join(", ")),
        reason: "nginx is down".into(),
        plan: None,
    }
}

fn approvals(dir: &std::path::Path, ttl: Duration) -> Approvals {
    Approvals::new(
        Arc::new(SqliteStore::open(&dir.join("ops.db")).unwrap()),
        ttl,
    )
}

#[test]
fn the_hash_covers_tool_arguments_and_targets_but_not_key_order() {
    let a = call("systemctl restart nginx", &["web-1", "web-2"]);
    let mut reordered = a.clone();
    reordered.args = json!({"timeout": 30, "sudo": true, "command": "systemctl restart nginx"});
    reordered.targets = vec!["web-2".into(), "web-1".into(), "web-1".into()];
    assert_eq!(a.hash(), reordered.hash());
    for changed in [
        call("systemctl restart postgres", &["web-1", "web-2"]),
        call("systemctl restart nginx", &["web-1", "web-2", "db-1"]),
        call("systemctl restart nginx", &["web-1"]),
        CallSpec {
            tool: "node_shell".into(),
            ..a.clone()
        },
        CallSpec {
            args: json!({"command": "systemctl restart nginx", "sudo": false, "timeout": 30}),
            ..a.clone()
        },
    ] {
        assert_ne!(a.hash(), changed.hash(), "{changed:?}");
    }
}

#[tokio::test]
async fn approve_once_runs_exactly_that_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let ap = approvals(dir.path(), Duration::from_secs(600));
    let c = call("systemctl restart nginx", &["web-1"]);
    let req = ap.request("s-1", &request(&c)).await.unwrap();
    assert_eq!(req.state, "pending");
    let e = ap.authorize("s-1", &req.id, &c).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Pending(_)), "{e}");
    let decided = ap
        .answer(
            &req.id,
            &Answer::Once,
            &ops_protocol::Principal::local_user("alice", 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        decided.decided_by.as_deref(),
        Some("alice (local uid 1000)")
    );
    // A different call cannot use it, and does not consume it.
    let other = call("systemctl restart nginx; rm -rf /srv", &["web-1"]);
    let e = ap.authorize("s-1", &req.id, &other).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("a new approval is needed"), "{e}");
    let e = ap.authorize("s-2", &req.id, &c).await.unwrap_err();
    assert!(matches!(e, ApprovalError::OtherSession(_)), "{e}");
    assert!(matches!(
        ap.authorize("s-1", &req.id, &c).await.unwrap(),
        Authorized::Once(_)
    ));
    let e = ap.authorize("s-1", &req.id, &c).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Used(_)), "{e}");
    // Once decided, a second decision changes nothing.
    let e = ap
        .answer(
            &req.id,
            &Answer::Deny("too late".into()),
            &ops_protocol::Principal::local_user("bob", 1000),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApprovalError::NotPending { .. }), "{e}");
    let e = ap
        .answer(
            "ap-nope",
            &Answer::Once,
            &ops_protocol::Principal::local_user("bob", 1000),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApprovalError::Unknown(_)), "{e}");
}

#[tokio::test]
async fn session_approvals_cover_identical_calls_only() {
    let dir = tempfile::tempdir().unwrap();
    let ap = approvals(dir.path(), Duration::from_secs(600));
    let c = call("systemctl reload nginx", &["web-1"]);
    let req = ap.request("s-1", &request(&c)).await.unwrap();
    assert!(ap.preapproved("s-1", &c).await.unwrap().is_none());
    ap.answer(
        &req.id,
        &Answer::Session,
        &ops_protocol::Principal::local_user("alice", 1000),
    )
    .await
    .unwrap();
    assert!(ap.preapproved("s-1", &c).await.unwrap().is_some());
    assert!(
        ap.preapproved("s-2", &c).await.unwrap().is_none(),
        "another session"
    );
    assert!(
        ap.preapproved("s-1", &call("systemctl reload nginx", &["web-2"]))
            .await
            .unwrap()
            .is_none(),
        "another target"
    );
    for _ in 0..3 {
        assert!(matches!(
            ap.authorize("s-1", &req.id, &c).await.unwrap(),
            Authorized::Session(_)
        ));
    }
}

#[tokio::test]
async fn denials_carry_the_reason_and_requests_expire() {
    let dir = tempfile::tempdir().unwrap();
    let ap = approvals(dir.path(), Duration::from_secs(600));
    let c = call("reboot", &["web-1"]);
    let req = ap.request("s-1", &request(&c)).await.unwrap();
    ap.answer(
        &req.id,
        &Answer::Deny("not during business hours".into()),
        &ops_protocol::Principal::local_user("alice", 1000),
    )
    .await
    .unwrap();
    let e = ap.authorize("s-1", &req.id, &c).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "denied by alice (local uid 1000): not during business hours"
    );

    let short = approvals(dir.path(), Duration::from_millis(1));
    let req = short.request("s-1", &request(&c)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = short.authorize("s-1", &req.id, &c).await.unwrap_err();
    assert!(matches!(e, ApprovalError::Expired(_)), "{e}");
    let e = short
        .answer(
            &req.id,
            &Answer::Once,
            &ops_protocol::Principal::local_user("alice", 1000),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApprovalError::Expired(_)), "{e}");
    let e = short.authorize("s-1", &req.id, &c).await.unwrap_err();
    assert!(
        matches!(e, ApprovalError::Expired(_)),
        "an expired request stays expired: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approve_once_approval_authorises_one_of_many_racing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ap = approvals(dir.path(), Duration::from_secs(600));
    let c = call("systemctl restart nginx", &["web-1"]);
    let req = ap.request("s-1", &request(&c)).await.unwrap();
    ap.answer(
        &req.id,
        &Answer::Once,
        &ops_protocol::Principal::local_user("alice", 1000),
    )
    .await
    .unwrap();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (ap, c, id) = (ap.clone(), c.clone(), req.id.clone());
        handles.push(tokio::spawn(async move {
            ap.authorize("s-1", &id, &c).await.is_ok()
        }));
    }
    let mut ok = 0;
    for h in handles {
        ok += usize::from(h.await.unwrap());
    }
    assert_eq!(ok, 1);
}

/// A waiter hears a decision pushed to it: from this process at once, and
/// from another store handle on the same file (as another `opscli`
/// process writes it) through the store's change signal. The waiters
/// below would re-read on their own only after an hour, so returning at
/// all shows the push.
#[tokio::test]
async fn waiting_for_a_decision_is_woken_by_it_not_by_polling() {
    let dir = tempfile::tempdir().unwrap();
    let ap = approvals(dir.path(), Duration::from_secs(600));
    let never = Duration::from_secs(3600);
    let alice = ops_protocol::Principal::local_user("alice", 1000);

    // Decided by another handle on the file: the inotify path.
    let req = ap
        .request("s-1", &request(&call("reboot", &["web-1"])))
        .await
        .unwrap();
    let other = approvals(dir.path(), Duration::from_secs(600));
    let waiter = {
        let (ap, id) = (ap.clone(), req.id.clone());
        tokio::spawn(async move { ap.wait(&id, never).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.answer(&req.id, &Answer::Once, &alice).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("woken by the other handle's write")
        .unwrap();
    assert_eq!(
        got,
        ops_agent::approvals::Wait::Recorded(Answer::Once, "alice (local uid 1000)".into())
    );

    // Decided through the same store: woken at once.
    let req = ap
        .request("s-1", &request(&call("halt", &["web-1"])))
        .await
        .unwrap();
    let waiter = {
        let (ap, id) = (ap.clone(), req.id.clone());
        tokio::spawn(async move { ap.wait(&id, never).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    ap.answer(&req.id, &Answer::Deny("no".into()), &alice)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("woken by this process's decision")
        .unwrap();
    assert!(matches!(got, ops_agent::approvals::Wait::Recorded(Answer::Deny(r), _) if r == "no"));

    // ops acting for its own objects may ask, never decide.
    let req = ap
        .request("s-1", &request(&call("halt", &["web-2"])))
        .await
        .unwrap();
    let hook = ops_protocol::Principal::system("eventhooks/ops/auto");
    assert!(matches!(
        ap.answer(&req.id, &Answer::Once, &hook).await,
        Err(ApprovalError::NotAnApprover(_))
    ));
    // A lapsed request ends the wait as expired.
    let short = approvals(dir.path(), Duration::from_secs(1));
    let req = short
        .request("s-1", &request(&call("halt", &["web-3"])))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), short.wait(&req.id, never))
        .await
        .expect("the expiry ends the wait");
    assert_eq!(got, ops_agent::approvals::Wait::Expired);
}
