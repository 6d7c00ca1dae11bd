//! The Kubernetes node executor and node selection, against the stand-in
//! API server (`support/kube_standin.rs`; no real API server runs here).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ops_engine::{Engine, EngineOptions, NoopObserver, TaskRunRequest};
use ops_exec::kube::{PodRuntime, client, select_nodes};
use ops_exec::ssh::{SshOptions, SshPool};
use ops_model::{Object, RunPhase, Task, parse_documents};
use ops_store::{SqliteStore, Store};
use ops_testkit::kube_standin::{KubeStandIn, node};
use tokio_util::sync::CancellationToken;

const CP: &str = "node-role.kubernetes.io/control-plane";

async fn standin() -> KubeStandIn {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    KubeStandIn::start(vec![
        node("master-1", &[(CP, "")], &[(CP, None, "NoSchedule")], true),
        node(
            "worker-1",
            &[("gpu", "a100")],
            &[("dedicated", Some("ml"), "NoExecute")],
            true,
        ),
        node("worker-2", &[], &[], false),
    ])
    .await
}

#[tokio::test]
async fn node_selection_by_the_anchors_keywords() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    for (expr, want) in [
        ("anymaster", vec!["master-1"]),
        ("anyworker", vec!["worker-1"]),
        ("anynode", vec!["master-1"]),
        ("allmasters", vec!["master-1"]),
        ("allworkers", vec!["worker-1", "worker-2"]),
        ("all", vec!["master-1", "worker-1", "worker-2"]),
        ("worker-2,master-1", vec!["worker-2", "master-1"]),
        ("gpu=a100", vec!["worker-1"]),
    ] {
        assert_eq!(select_nodes(&c, "lab", expr).await.unwrap(), want, "{expr}");
    }
    let e = select_nodes(&c, "lab", "nope").await.unwrap_err();
    assert!(e.to_string().contains("no node named `nope`"), "{e}");
    let e = select_nodes(&c, "lab", "gpu=h100").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("no node matches `gpu=h100` (3 nodes in the cluster)"),
        "{e}"
    );
    let bad = client(&k.cluster_object(dir.path(), "wrong-token"))
        .await
        .unwrap();
    let e = select_nodes(&bad, "lab", "all").await.unwrap_err();
    assert!(
        e.to_string().contains("lab") && e.to_string().to_lowercase().contains("unauthorized"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_on_nodes_through_node_shell_pods() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    store
        .apply(
            vec![Object::Cluster(k.cluster_object(dir.path(), &k.token))],
            "ops-system",
        )
        .await
        .unwrap();
    let engine = Engine::new(
        store.clone(),
        SshPool::new(SshOptions::new(home.path())),
        EngineOptions::default(),
    );
    let task: Task = match parse_documents(
        "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: node-check}\nspec:\n  host: anymaster\n  runtimeImage: busybox:1.36\n  steps:\n    - name: look\n      content: echo \"on ${HOSTNAME}\"; echo to-stderr >&2; exit 3\n      allowfailure: \"true\"\n    - name: slow\n      content: sleep 30\n      timeoutSeconds: 1\n",
    )
    .unwrap()
    .remove(0)
    .object
    {
        Object::Task(t) => t,
        _ => unreachable!(),
    };
    // `anymaster` resolves against the namespace's only Cluster.
    let targets = engine.targets("ops-system", "anymaster").await.unwrap();
    assert_eq!(targets.len(), 1);
    let image = task.spec.runtime_image.clone();
    let c = match store
        .list(ops_model::Kind::Cluster, None, &Default::default())
        .await
        .unwrap()
        .remove(0)
        .object
    {
        Object::Cluster(c) => c,
        _ => unreachable!(),
    };
    let targets = engine
        .cluster_targets(&c, "anymaster", &PodRuntime::image(image.as_deref()))
        .await
        .unwrap();
    let run = engine
        .run_task(
            TaskRunRequest {
                task,
                name: None,
                namespace: "ops-system".into(),
                variables: BTreeMap::new(),
                targets,
                timeout: None,
                sudo: false,
                parent_id: None,
            },
            &NoopObserver,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let look = &run.steps[0];
    assert_eq!(look.target, "master-1");
    assert_eq!(look.exit_code, Some(3));
    assert_eq!(
        look.stdout, "on master-1\nto-stderr\n",
        "one log stream, wrapper marker removed"
    );
    let slow = &run.steps[1];
    assert_eq!(slow.phase, RunPhase::Failed);
    assert!(slow.stderr.contains("timed out after 1s"), "{slow:?}");
    assert_eq!(run.phase, RunPhase::Failed);

    let pods = k.created();
    assert_eq!(pods.len(), 2);
    let spec = pods[0].spec.clone().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("master-1"));
    assert_eq!((spec.host_pid, spec.host_network), (Some(true), Some(true)));
    let c0 = &spec.containers[0];
    assert_eq!(c0.image.as_deref(), Some("busybox:1.36"));
    assert_eq!(
        c0.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    assert_eq!(
        &c0.command.as_ref().unwrap()[..7],
        ["nsenter", "-t", "1", "-m", "-u", "-i", "-n"]
    );
    let tol = spec.tolerations.unwrap();
    assert_eq!(tol.len(), 1);
    assert_eq!(
        (
            tol[0].key.as_deref(),
            tol[0].operator.as_deref(),
            tol[0].effect.as_deref()
        ),
        (Some(CP), Some("Exists"), Some("NoSchedule"))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(k.live_pods(), 0, "every pod deleted afterwards");
}
