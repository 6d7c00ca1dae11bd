//! `opscli` on Kubernetes nodes, against the stand-in API server.

use ops_testkit::kube_standin;

use crate::common::Ops;
use kube_standin::{KubeStandIn, node};

const CP: &str = "node-role.kubernetes.io/control-plane";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_and_tasks_on_cluster_nodes() {
    let k = KubeStandIn::start(vec![
        node("master-1", &[(CP, "")], &[(CP, None, "NoSchedule")], true),
        node("worker-1", &[], &[], true),
    ])
    .await;
    let ops = Ops::new();
    let kc = ops.home().join("kubeconfig.yaml");
    std::fs::write(&kc, k.kubeconfig(&k.token)).unwrap();
    let kc = kc.to_str().unwrap().to_owned();
    let run = |args: Vec<String>| {
        let ops = &ops;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| ops.run(&args))
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    run(s(&["create", "cluster", "-i", &kc, "--name", "lab"])).ok();
    let out = run(s(&[
        "shell",
        "--cluster",
        "lab",
        "--nodename",
        "anymaster",
        "--content",
        "echo hi from ${HOSTNAME}",
    ]))
    .ok();
    assert!(
        out.stdout.contains("==> master-1 | shell: Succeeded"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("hi from master-1"), "{}", out.stdout);

    let failed = run(s(&[
        "shell",
        "-i",
        &kc,
        "--nodename",
        "worker-1",
        "--content",
        "exit 4",
    ]));
    assert_eq!(failed.code, 1);
    assert!(
        failed.stdout.contains("worker-1 | shell: Failed (exit 4"),
        "{}",
        failed.stdout
    );

    let task = "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: on-master}\nspec:\n  host: anymaster\n  steps:\n    - name: who\n      content: echo \"task on ${HOSTNAME}\"\n";
    tokio::task::block_in_place(|| ops.run_stdin(&["apply", "-f", "-"], task)).ok();
    let t = run(s(&["task", "-f", "on-master"])).ok();
    assert!(t.stdout.contains("task on master-1"), "{}", t.stdout);

    let nowhere = run(s(&["shell", "--cluster", "lab", "--content", "true"]));
    assert_eq!(nowhere.code, 1);
    assert!(
        nowhere.stderr.contains("which nodes? give --nodename"),
        "{}",
        nowhere.stderr
    );
    let missing = run(s(&[
        "shell",
        "--cluster",
        "nope",
        "--nodename",
        "all",
        "--content",
        "true",
    ]));
    assert!(
        missing.stderr.contains("no Cluster named `nope`"),
        "{}",
        missing.stderr
    );
    assert_eq!(k.live_pods(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_reads_and_exec_from_the_command_line() {
    let k = KubeStandIn::start(vec![node("node-1", &[], &[], true)]).await;
    k.seed(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    }));
    k.seed(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "api-key", "namespace": "shop"},
        "data": {"key": "c3VwZXJzZWNyZXQ="}
    }));
    k.seed(serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
        "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning",
        "count": 12, "lastTimestamp": "2026-11-22T10:00:00Z"
    }));
    k.seed_log(
        "shop",
        "web-1",
        kube_standin::SeededLog {
            lines: vec![(30, "starting".into()), (10, "listening on :8080".into())],
            previous: None,
        },
    );
    let ops = Ops::new();
    let kc = ops.home().join("kubeconfig.yaml");
    std::fs::write(&kc, k.kubeconfig(&k.token)).unwrap();
    let kc = kc.to_str().unwrap().to_owned();
    let run = |args: &[&str]| tokio::task::block_in_place(|| ops.run(args));
    // No cluster stored and none given: a clear error.
    let none = run(&["cluster", "get", "pods"]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("no Cluster in namespace ops-system"),
        "{}",
        none.stderr
    );
    run(&["create", "cluster", "-i", &kc, "--name", "lab"]).ok();

    let pods = run(&["cluster", "get", "po", "-N", "shop"]).ok();
    assert!(pods.stdout.contains("NAME"), "{}", pods.stdout);
    assert!(
        pods.stdout.contains("web-1") && pods.stdout.contains("CrashLoopBackOff 0/1 restarts=4"),
        "{}",
        pods.stdout
    );
    let wide = run(&[
        "cluster", "get", "pods", "-A", "-l", "app=web", "-o", "wide",
    ])
    .ok();
    assert!(
        wide.stdout.contains("NAMESPACE") && wide.stdout.contains("app=web"),
        "{}",
        wide.stdout
    );
    let empty = run(&["cluster", "get", "pods", "--kubeconfig", &kc]).ok();
    assert!(
        empty.stderr.contains("No pods found in namespace default."),
        "{}",
        empty.stderr
    );

    let secret = run(&[
        "cluster", "get", "secret", "api-key", "-N", "shop", "-o", "yaml",
    ])
    .ok();
    assert!(
        !secret.stdout.contains("c3VwZXJzZWNyZXQ"),
        "{}",
        secret.stdout
    );
    assert!(
        secret.stdout.contains("<redacted: 11 bytes>"),
        "{}",
        secret.stdout
    );

    let described = run(&["cluster", "describe", "pod", "web-1", "-N", "shop"]).ok();
    assert!(
        described.stdout.contains("Events:") && described.stdout.contains("BackOff"),
        "{}",
        described.stdout
    );

    let logs = run(&["cluster", "logs", "web-1", "-N", "shop", "--since", "20s"]).ok();
    assert_eq!(logs.stdout, "listening on :8080\n");
    let bad = run(&["cluster", "logs", "web-1", "-N", "shop", "--since", "5x"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("unknown unit `x`"), "{}", bad.stderr);

    let evs = run(&["cluster", "events", "po/web-1", "-N", "shop"]).ok();
    assert!(
        evs.stdout.contains("Pod/web-1") && evs.stdout.contains("12"),
        "{}",
        evs.stdout
    );
    let evs_json = run(&["cluster", "events", "-N", "shop", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&evs_json.stdout).unwrap();
    assert_eq!(v[0]["reason"], "BackOff");

    let unknown = run(&["cluster", "get", "widgets"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no resource type `widgets`"),
        "{}",
        unknown.stderr
    );

    let exec = run(&[
        "cluster",
        "exec",
        "web-1",
        "-N",
        "shop",
        "--",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 5",
    ]);
    assert_eq!(exec.code, 5);
    assert_eq!(exec.stdout, "hi\n");
    assert!(exec.stderr.contains("oops"), "{}", exec.stderr);
    let piped = tokio::task::block_in_place(|| {
        ops.run_stdin(
            &[
                "cluster", "exec", "web-1", "-N", "shop", "--stdin", "--", "wc", "-c",
            ],
            "12345",
        )
    })
    .ok();
    assert_eq!(piped.stdout.trim(), "5");
}
