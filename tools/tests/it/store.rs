//! The embedded SQLite store against a real file.

use ops_model::{Kind, LabelSelector, Object, ObjectKey, RunPhase, parse_documents};
use ops_store::{ApplyOutcome, RunFilter, RunRecord, SqliteStore, StepRecord, Store};

fn host(name: &str, ns: Option<&str>, role: &str) -> Object {
    let ns = ns
        .map(|n| format!("\n  namespace: {n}"))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: {name}{ns}\n  labels: {{role: {role}}}\nspec:\n  address: 127.0.0.2\n  password: hunter2\n"
    );
    parse_documents(&text).unwrap().remove(0).object
}

fn key(name: &str, ns: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::Host,
        namespace: ns.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn apply_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ops.db")).unwrap();

    let out = store
        .apply(
            vec![host("web-1", None, "web"), host("db-1", Some("prod"), "db")],
            "ops-system",
        )
        .await
        .unwrap();
    assert_eq!(out, vec![ApplyOutcome::Created, ApplyOutcome::Created]);

    let again = store
        .apply(vec![host("web-1", None, "web")], "ops-system")
        .await
        .unwrap();
    assert_eq!(again, vec![ApplyOutcome::Unchanged]);
    let changed = store
        .apply(vec![host("web-1", None, "edge")], "ops-system")
        .await
        .unwrap();
    assert_eq!(changed, vec![ApplyOutcome::Configured]);

    let got = store
        .get(&key("web-1", "ops-system"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.generation, 2);
    assert_eq!(
        got.object.namespace(),
        Some("ops-system"),
        "default namespace filled in"
    );
    let Object::Host(h) = &got.object else {
        panic!("kind")
    };
    assert_eq!(
        h.spec.password.as_deref(),
        Some("hunter2"),
        "store keeps secrets; output redacts"
    );

    let all = store
        .list(Kind::Host, None, &LabelSelector::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let in_ns = store
        .list(Kind::Host, Some("prod"), &LabelSelector::default())
        .await
        .unwrap();
    assert_eq!(in_ns.len(), 1);
    let edge = store
        .list(Kind::Host, None, &"role=edge".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(edge.len(), 1);
    assert_eq!(edge[0].key.name, "web-1");
    assert!(
        store
            .list(Kind::Task, None, &LabelSelector::default())
            .await
            .unwrap()
            .is_empty()
    );

    let deleted = store
        .delete(&[key("web-1", "ops-system"), key("nope", "ops-system")])
        .await
        .unwrap();
    assert_eq!(deleted, vec![true, false]);
    assert!(
        store
            .get(&key("web-1", "ops-system"))
            .await
            .unwrap()
            .is_none()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn store_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let path = home.join("ops.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .apply(vec![host("a", None, "x")], "default")
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&home), 0o700);
    for side in ["ops.db-wal", "ops.db-shm"] {
        let p = home.join(side);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{side} readable by others");
        }
    }
}

fn run(id: &str, phase: RunPhase) -> RunRecord {
    RunRecord {
        id: id.into(),
        kind: "TaskRun".into(),
        namespace: "ops-system".into(),
        name: format!("{id}-name"),
        ref_name: "disk-usage".into(),
        phase,
        message: None,
        spec: serde_json::json!({"taskRef": "disk-usage"}),
        parent_id: None,
        owner: Some(format!("{}-owner", id)),
        cancel_requested: false,
        created_at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
        started_at: None,
        finished_at: None,
        steps: vec![],
    }
}

fn step(run_id: &str, target: &str, index: u32, phase: RunPhase) -> StepRecord {
    StepRecord {
        run_id: run_id.into(),
        task: String::new(),
        target: target.into(),
        index,
        name: format!("s{index}"),
        phase,
        exit_code: Some(0),
        started_at: None,
        finished_at: None,
        stdout: "partial output".into(),
        stderr: String::new(),
    }
}

#[tokio::test]
async fn runs_and_steps_round_trip_and_crashes_become_interrupted() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .create_run(&run("r1", RunPhase::Pending))
        .await
        .unwrap();
    store
        .set_run_phase("r1", RunPhase::Running, None)
        .await
        .unwrap();
    store
        .record_step(&step("r1", "web-1", 0, RunPhase::Succeeded))
        .await
        .unwrap();
    store
        .record_step(&step("r1", "web-1", 1, RunPhase::Running))
        .await
        .unwrap();

    store
        .create_run(&run("r22", RunPhase::Pending))
        .await
        .unwrap();
    store
        .set_run_phase("r22", RunPhase::Running, None)
        .await
        .unwrap();
    store
        .set_run_phase("r22", RunPhase::Succeeded, Some("all good"))
        .await
        .unwrap();

    let got = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(got.phase, RunPhase::Running);
    assert!(got.started_at.is_some() && got.finished_at.is_none());
    assert_eq!(got.steps.len(), 2);

    // A live owner's runs are left alone.
    assert_eq!(store.mark_interrupted(&|_| true).await.unwrap(), 0);
    assert!(store.request_cancel("r1").await.unwrap());
    assert!(store.get_run("r1").await.unwrap().unwrap().cancel_requested);
    assert!(
        !store.request_cancel("r22").await.unwrap(),
        "a finished run cannot be cancelled"
    );
    let n = store
        .mark_interrupted(&|owner| owner != "r1-owner")
        .await
        .unwrap();
    assert_eq!(n, 1, "only the running run of the dead owner");
    let got = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(got.phase, RunPhase::Interrupted);
    assert!(got.finished_at.is_some());
    assert_eq!(got.steps[1].phase, RunPhase::Interrupted);
    assert_eq!(got.steps[1].stdout, "partial output", "partial output kept");
    let done = store.get_run("r22").await.unwrap().unwrap();
    assert_eq!(done.phase, RunPhase::Succeeded);
    assert_eq!(done.message.as_deref(), Some("all good"));

    let listed = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r22", "r1"]
    );
    let failed = store
        .list_runs(&RunFilter {
            phase: Some(RunPhase::Succeeded),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);

    let missing = store
        .set_run_phase("nope", RunPhase::Failed, None)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("run `nope` not found"),
        "{missing}"
    );
    let orphan = store
        .record_step(&step("nope", "h", 0, RunPhase::Running))
        .await
        .unwrap_err();
    assert!(orphan.to_string().contains("not found"), "{orphan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer has its own connection, like separate processes.
            let store = SqliteStore::open(&path).unwrap();
            for i in 0..50 {
                store
                    .apply(vec![host(&format!("w{writer}-h{i}"), None, "x")], "default")
                    .await
                    .unwrap();
                store
                    .apply(
                        vec![host("shared", None, &format!("w{writer}-{i}"))],
                        "default",
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.integrity_check().await.unwrap();
    let all = store
        .list(Kind::Host, None, &LabelSelector::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4 * 50 + 1);
    let shared = store.get(&key("shared", "default")).await.unwrap().unwrap();
    assert!(shared.generation >= 2);
}

#[test]
fn owners_are_alive_only_while_their_process_runs() {
    use ops_store::{owner_alive, process_owner};
    assert!(owner_alive(&process_owner()));
    let me = process_owner();
    let machine = me.rsplit_once(':').unwrap().0;
    assert!(!owner_alive(&format!("{machine}:999999999")));
    assert!(
        owner_alive("another-machine:1"),
        "other machines recover their own runs"
    );
    assert!(!owner_alive("garbage"));
}

#[tokio::test]
async fn a_newer_schema_is_refused_not_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        err.to_string().contains("schema version 999 is newer"),
        "{err}"
    );
}

/// A run whose owner stopped renewing its lease reads as Interrupted,
/// wherever the owner was (a pid check only works on the owner's own
/// machine); a run with a live lease is left alone.
#[tokio::test]
async fn a_lapsed_lease_interrupts_a_run_owned_anywhere() {
    let store = SqliteStore::open_in_memory().unwrap();
    for id in ["lapsed", "leased"] {
        let mut r = run(id, RunPhase::Pending);
        r.owner = Some("another-machine:4242".into());
        store.create_run(&r).await.unwrap();
        store
            .set_run_phase(id, RunPhase::Running, None)
            .await
            .unwrap();
    }
    let past = ops_model::stamp::ago(std::time::Duration::from_secs(60));
    let future = ops_model::stamp::of(chrono::Utc::now() + chrono::Duration::seconds(60));
    store.renew_lease("lapsed", &past).await.unwrap();
    store.renew_lease("leased", &future).await.unwrap();
    // Owners on other machines count as alive to the pid check.
    let n = store.mark_interrupted(&|_| true).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        store.get_run("lapsed").await.unwrap().unwrap().phase,
        RunPhase::Interrupted
    );
    assert_eq!(
        store.get_run("leased").await.unwrap().unwrap().phase,
        RunPhase::Running
    );
}
