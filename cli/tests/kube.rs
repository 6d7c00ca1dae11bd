//! `opscli` on Kubernetes nodes, against the stand-in API server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;
#[path = "../../tools/tests/support/kube_standin.rs"]
mod kube_standin;

use common::Ops;
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
