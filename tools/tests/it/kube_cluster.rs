//! Cluster reads (discovery, get/list, describe, logs, events), pod exec
//! (commands, stdin, exit codes, timeouts, cancellation, file transfers),
//! file steps on nodes and container mode with mounts, against the
//! stand-in API server (`support/kube_standin.rs`; no real API server runs
//! here).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ops_engine::{Engine, EngineOptions, NoopObserver, TaskRunRequest};
use ops_exec::kube::read::{self, ListQuery, LogQuery};
use ops_exec::kube::{NodeExecutor, PodExecutor, PodRuntime, client};
use ops_exec::ssh::{SshOptions, SshPool};
use ops_exec::{ExecRequest, Executor, ExitStatus};
use ops_model::{Object, RunPhase, Task, parse_documents};
use ops_store::{SqliteStore, Store};
use ops_testkit::kube_standin::{KubeStandIn, SeededLog, node};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn standin() -> KubeStandIn {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let k = KubeStandIn::start(vec![node("node-1", &[], &[], true)]).await;
    k.seed(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 1}
    }));
    for (name, app, waiting) in [
        ("web-1", "web", Some("CrashLoopBackOff")),
        ("web-2", "web", None),
        ("db-1", "db", None),
    ] {
        let state = match waiting {
            Some(r) => json!({"waiting": {"reason": r}}),
            None => json!({"running": {}}),
        };
        k.seed(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": waiting.is_none(), "restartCount": if waiting.is_some() { 7 } else { 0 }, "state": state}]}
        }));
    }
    k.seed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "other", "namespace": "kube-system", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }));
    k.seed(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db-pass", "namespace": "shop",
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "team": "shop"}},
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"token": "plain-secret-token"}
    }));
    for (i, (kind, name, reason, msg)) in [
        (
            "Pod",
            "web-1",
            "BackOff",
            "Back-off restarting failed container app",
        ),
        ("Pod", "web-2", "Pulled", "Container image already present"),
        (
            "Deployment",
            "web",
            "ScalingReplicaSet",
            "Scaled up replica set web-7d to 3",
        ),
    ]
    .iter()
    .enumerate()
    {
        k.seed(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("ev-{i}"), "namespace": "shop"},
            "involvedObject": {"kind": kind, "name": name, "namespace": "shop"},
            "reason": reason, "message": msg, "type": if *reason == "BackOff" { "Warning" } else { "Normal" },
            "count": i + 1, "lastTimestamp": format!("2026-11-22T10:0{i}:00Z")
        }));
    }
    k
}

#[tokio::test]
async fn discovery_resolves_every_kubectl_name() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    for (name, plural, group, namespaced) in [
        ("pods", "pods", "", true),
        ("pod", "pods", "", true),
        ("Pod", "pods", "", true),
        ("po", "pods", "", true),
        ("no", "nodes", "", false),
        ("deploy", "deployments", "apps", true),
        ("Deployment", "deployments", "apps", true),
        ("deployments.apps", "deployments", "apps", true),
        ("sts", "statefulsets", "apps", true),
        ("cm", "configmaps", "", true),
    ] {
        let r = read::resolve(&c, "lab", name).await.unwrap();
        assert_eq!(
            (r.api.plural.as_str(), r.api.group.as_str(), r.namespaced),
            (plural, group, namespaced),
            "{name}"
        );
    }
    let e = read::resolve(&c, "lab", "widgets").await.unwrap_err();
    assert!(e.to_string().contains("no resource type `widgets`"), "{e}");
    // Subresources (`pods/log`) are never taken for types.
    assert!(read::resolve(&c, "lab", "log").await.is_err());
}

#[tokio::test]
async fn list_get_and_describe_with_selectors_and_redaction() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    let pods = read::resolve(&c, "lab", "po").await.unwrap();
    let in_shop = ListQuery {
        namespace: Some("shop".into()),
        ..ListQuery::default()
    };
    let names = |v: &[kube::api::DynamicObject]| {
        v.iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let list = read::list(&c, "lab", &pods, &in_shop).await.unwrap();
    assert_eq!(names(&list), ["db-1", "web-1", "web-2"]);
    let web = ListQuery {
        labels: Some("app=web".into()),
        ..in_shop.clone()
    };
    let list = read::list(&c, "lab", &pods, &web).await.unwrap();
    assert_eq!(names(&list), ["web-1", "web-2"]);
    assert_eq!(
        read::status_of("Pod", &list[0]),
        "CrashLoopBackOff 0/1 restarts=7"
    );
    assert_eq!(read::status_of("Pod", &list[1]), "Running 1/1 restarts=0");
    let everywhere = ListQuery {
        labels: Some("app=web".into()),
        ..ListQuery::default()
    };
    let list = read::list(&c, "lab", &pods, &everywhere).await.unwrap();
    assert_eq!(names(&list), ["other", "web-1", "web-2"], "all namespaces");

    let deploy = read::resolve(&c, "lab", "deploy").await.unwrap();
    let d = read::get(&c, "lab", &deploy, Some("shop"), "web")
        .await
        .unwrap();
    assert_eq!(read::status_of("Deployment", &d), "1/3 ready");
    assert!(d.metadata.managed_fields.is_none(), "managedFields dropped");
    let e = read::get(&c, "lab", &deploy, Some("shop"), "nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("get deployments.apps nope in namespace shop") && e.contains("not found"),
        "{e}"
    );
    let e = read::get(&c, "lab", &deploy, None, "web")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("give a namespace"), "{e}");

    // Secrets: values never come back, in get, list or describe.
    let secrets = read::resolve(&c, "lab", "secrets").await.unwrap();
    let s = read::get(&c, "lab", &secrets, Some("shop"), "db-pass")
        .await
        .unwrap();
    let text = serde_json::to_string(&s).unwrap();
    assert!(!text.contains("aHVudGVyMg"), "{text}");
    assert!(!text.contains("plain-secret-token"), "{text}");
    assert_eq!(s.data["data"]["password"], "<redacted: 7 bytes>");
    assert_eq!(s.data["stringData"]["token"], "<redacted: 18 bytes>");
    assert_eq!(
        s.metadata
            .annotations
            .as_ref()
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("shop")
    );
    let listed = read::list(&c, "lab", &secrets, &in_shop).await.unwrap();
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains("aHVudGVyMg")
    );
    let described = read::describe(&c, "lab", &secrets, Some("shop"), "db-pass")
        .await
        .unwrap();
    assert!(!described.contains("aHVudGVyMg") && !described.contains("plain-secret"));

    // Describe: the object and only its own events.
    let text = read::describe(&c, "lab", &deploy, Some("shop"), "web")
        .await
        .unwrap();
    assert!(text.contains("replicas: 3"), "{text}");
    assert!(text.contains("ScalingReplicaSet"), "{text}");
    assert!(!text.contains("BackOff"), "another object's event: {text}");
}

#[tokio::test]
async fn events_for_an_object_and_pod_logs_with_tail_since_previous() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    let all = read::events(&c, "lab", Some("shop"), None).await.unwrap();
    assert_eq!(all.len(), 3);
    let mine = read::events(&c, "lab", Some("shop"), Some(("Pod", "web-1")))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].type_.as_str(),
            mine[0].reason.as_str(),
            mine[0].object.as_str()
        ),
        ("Warning", "BackOff", "Pod/web-1")
    );
    assert!(
        read::events(&c, "lab", Some("default"), None)
            .await
            .unwrap()
            .is_empty()
    );

    k.seed_log(
        "shop",
        "web-1",
        SeededLog {
            lines: (0..10u64)
                .map(|i| (1000 - i * 100, format!("line {i}")))
                .collect(),
            previous: Some("panic: out of memory\n".into()),
        },
    );
    let q = |tail, since: Option<u64>, previous| LogQuery {
        tail,
        since: since.map(Duration::from_secs),
        previous,
        ..LogQuery::default()
    };
    let all = read::logs(&c, "lab", "shop", "web-1", &q(None, None, false))
        .await
        .unwrap();
    assert_eq!(all.lines().count(), 10);
    let tail = read::logs(&c, "lab", "shop", "web-1", &q(Some(2), None, false))
        .await
        .unwrap();
    assert_eq!(tail, "line 8\nline 9\n");
    let recent = read::logs(&c, "lab", "shop", "web-1", &q(None, Some(250), false))
        .await
        .unwrap();
    assert_eq!(recent, "line 8\nline 9\n", "lines at most 250 s old");
    let prev = read::logs(&c, "lab", "shop", "web-1", &q(None, None, true))
        .await
        .unwrap();
    assert_eq!(prev, "panic: out of memory\n");
    let e = read::logs(&c, "lab", "shop", "web-2", &q(None, None, false))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("log of pod shop/web-2"), "{e}");
}

fn pid_alive(pid: i32) -> bool {
    // PID 1 here does not reap: a zombie counts as dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_exec_streams_stdin_exit_codes_timeouts_and_cancellation() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    let pod = PodExecutor::new(c.clone(), "lab", "shop", "web-2", Some("app"));
    assert_eq!(pod.name(), "shop/web-2");
    let mut req = ExecRequest::script("echo out; echo err >&2; cat; exit 3");
    req.stdin = Some(b"from stdin\n".to_vec());
    let out = pod
        .run(&req, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout.text(), "out\nfrom stdin\n");
    assert_eq!(out.stderr.text(), "err\n", "marker removed, streams apart");

    let ok = pod
        .run(
            &ExecRequest::argv(["echo", "a b"]),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        (ok.status, ok.stdout.text()),
        (ExitStatus::Code(0), "a b\n".into())
    );

    // A limit stops the command and everything it started.
    let pidfile = dir.path().join("timeout.pid");
    let req = ExecRequest::script(format!("sleep 30 & echo $! > {}; wait", pidfile.display()))
        .with_timeout(Duration::from_secs(1));
    let out = pod
        .run(&req, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::TimedOut);
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pid_alive(child),
        "the timed-out command's child still runs"
    );

    // Cancellation kills the remote process group through a second exec
    // (closing the stream alone would leave it running, as on a kubelet).
    let pidfile = dir.path().join("cancel.pid");
    let req = ExecRequest::script(format!("sleep 30 & echo $! > {}; wait", pidfile.display()));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let pf = pidfile.clone();
    tokio::spawn(async move {
        for _ in 0..100 {
            if pf.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let out = pod.run(&req, None, &cancel).await.unwrap();
    assert_eq!(out.status, ExitStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(20));
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut gone = false;
    for _ in 0..40 {
        if !pid_alive(child) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "cancelled command's child {child} still runs");
    assert!(
        k.execs()
            .iter()
            .any(|a| a.last().is_some_and(|l| l.contains("kill -TERM -"))),
        "a kill exec was sent"
    );

    // Sudo is refused with a reason, not silently ignored.
    let mut sudo = ExecRequest::script("id");
    sudo.sudo = true;
    let e = pod
        .run(&sudo, None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("sudo is not available"), "{e}");

    // An unknown pod is a clear error.
    let ghost = PodExecutor::new(c, "lab", "shop", "ghost", None);
    let e = ghost
        .run(
            &ExecRequest::script("true"),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
}

fn write_random(path: &std::path::Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_move_both_ways_through_pod_exec_and_node_helper_pods() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    let src = dir.path().join("src.bin");
    write_random(&src, 5 * 1024 * 1024 + 17);
    let want = std::fs::read(&src).unwrap();
    let never = CancellationToken::new();

    let pod = PodExecutor::new(c.clone(), "lab", "shop", "web-2", None);
    let remote = dir.path().join("in-pod.bin");
    let up = pod
        .upload(&src, remote.to_str().unwrap(), Some(0o640), &never)
        .await
        .unwrap();
    assert_eq!(up.bytes, want.len() as u64);
    assert_eq!(std::fs::read(&remote).unwrap(), want);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let back = dir.path().join("back.bin");
    let down = pod
        .download(remote.to_str().unwrap(), &back, &never)
        .await
        .unwrap();
    assert_eq!(down.sha256, up.sha256);
    assert_eq!(std::fs::read(&back).unwrap(), want);
    let e = pod
        .download("/nonexistent/file", &dir.path().join("x"), &never)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/file"), "{e}");
    assert!(!dir.path().join("x").exists());

    // On a node: a helper pod, exec into the host's mount namespace, and
    // the helper deleted afterwards.
    let node = NodeExecutor::new(c, "lab", "node-1", "ops-system", PodRuntime::default());
    let on_node = dir.path().join("on-node.bin");
    node.upload(&src, on_node.to_str().unwrap(), None, &never)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&on_node).unwrap(), want);
    let back2 = dir.path().join("back2.bin");
    node.download(on_node.to_str().unwrap(), &back2, &never)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back2).unwrap(), want);
    let helpers = k.created();
    assert_eq!(helpers.len(), 2);
    let spec = helpers[0].spec.clone().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("node-1"));
    assert_eq!(
        spec.containers[0].command.as_deref().unwrap(),
        ["sleep", "3600"]
    );
    assert!(
        k.execs()
            .iter()
            .filter(|a| a.first().map(String::as_str) == Some("nsenter"))
            .count()
            >= 2,
        "transfers enter the host: {:?}",
        k.execs()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(k.live_pods(), 0, "helper pods deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_mode_runs_in_the_image_with_rendered_mounts() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    let cl = k.cluster_object(dir.path(), &k.token);
    store
        .apply(vec![Object::Cluster(cl.clone())], "ops-system")
        .await
        .unwrap();
    let engine = Engine::new(
        store.clone(),
        SshPool::new(SshOptions::new(home.path())),
        EngineOptions::default(),
    );
    // The anchor's sync-image shape: containerd socket and a registry
    // secret named by a variable.
    let task: Task = match parse_documents(
        "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: sync}\nspec:\n  runtimeImage: nerdctl:1\n  variables:\n    secret_name: {default: regcred}\n  mounts:\n    - hostPath: /run/containerd/containerd.sock\n      mountPath: /run/containerd/containerd.sock\n    - secret:\n        name: ${secret_name}\n        mountPath: /root/.docker\n  steps:\n    - name: inside\n      content: echo in-container\n",
    )
    .unwrap()
    .remove(0)
    .object
    {
        Object::Task(t) => t,
        _ => unreachable!(),
    };
    let given = BTreeMap::from([("secret_name".to_owned(), "ghcr-cred".to_owned())]);
    let runtime = PodRuntime::for_task(&task, &given);
    assert!(runtime.container_mode());
    let targets = engine
        .targets_with("ops-system", "anynode", &runtime)
        .await
        .unwrap();
    let run = engine
        .run_task(
            TaskRunRequest {
                task,
                name: None,
                namespace: "ops-system".into(),
                variables: given,
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
    assert_eq!(run.phase, RunPhase::Succeeded, "{run:?}");
    assert_eq!(run.steps[0].stdout, "in-container\n");
    let spec = k.created()[0].spec.clone().unwrap();
    let c0 = &spec.containers[0];
    assert_eq!(c0.image.as_deref(), Some("nerdctl:1"));
    assert_eq!(
        c0.command.as_ref().unwrap()[0],
        "sh",
        "no nsenter in container mode"
    );
    assert_eq!(spec.host_pid, Some(false));
    let vols = spec.volumes.unwrap();
    assert_eq!(
        vols[0].host_path.as_ref().unwrap().path,
        "/run/containerd/containerd.sock"
    );
    assert_eq!(
        vols[1].secret.as_ref().unwrap().secret_name.as_deref(),
        Some("ghcr-cred"),
        "variable rendered into the secret name"
    );
    let mounts = c0.volume_mounts.clone().unwrap();
    assert_eq!(
        mounts
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect::<Vec<_>>(),
        ["/run/containerd/containerd.sock", "/root/.docker"]
    );

    // A mount with neither a hostPath nor a secret is refused by name.
    let bad = PodRuntime {
        image: Some("x".into()),
        mounts: vec![ops_model::Mount {
            mount_path: Some("/x".into()),
            ..Default::default()
        }],
    };
    let e = bad.volumes().unwrap_err();
    assert!(
        e.contains("mount 0: give exactly one of hostPath or secret"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_instead_of_waiting_forever() {
    let k = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&k.cluster_object(dir.path(), &k.token))
        .await
        .unwrap();
    let node = NodeExecutor::new(
        c,
        "lab",
        "node-1",
        "ops-system",
        PodRuntime::image(Some("registry.example/no-such-image:1")),
    );
    let never = CancellationToken::new();
    // No time limit on the step: only the pull failure can end it.
    let e = node
        .run(&ExecRequest::script("true"), None, &never)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ErrImagePull") && e.contains("no-such-image"),
        "{e}"
    );
    let src = dir.path().join("f");
    std::fs::write(&src, "x").unwrap();
    let e = node
        .upload(&src, "/tmp/ops-never", None, &never)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("helper pod") && e.contains("ErrImagePull"),
        "{e}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(k.live_pods(), 0, "failed pods are deleted");
}
