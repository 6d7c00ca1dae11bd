//! The model-facing tools: registry, sanitised schemas (snapshot),
//! argument checking, declared effects, and the tools run for real against
//! this machine (a Host at 127.0.0.1), the store and the Kubernetes
//! stand-in (`support/kube_standin.rs`).

use std::sync::Arc;

use ops_engine::{Engine, EngineOptions};
use ops_exec::ssh::{SshOptions, SshPool};
use ops_model::parse_documents;
use ops_store::{SqliteStore, Store};
use ops_tools::builtin::registry;
use ops_tools::{Effect, ToolContext, ToolError};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for bad in ["$ref", "$schema", "definitions", "$defs", "format"] {
                if m.contains_key(bad) {
                    problems.push(format!("{path}: has {bad}"));
                }
            }
            if !m.contains_key("type") && !m.contains_key("anyOf") && !m.contains_key("oneOf") {
                problems.push(format!("{path}: no type"));
            }
            if let Some(Value::Array(t)) = m.get("type") {
                problems.push(format!("{path}: type is a list {t:?}"));
            }
            if m.get("type") == Some(&json!("object")) && m.get("additionalProperties").is_none() {
                problems.push(format!("{path}: object without additionalProperties"));
            }
            if let Some(Value::Object(props)) = m.get("properties") {
                for (k, p) in props {
                    walk(p, &format!("{path}.{k}"), problems);
                }
            }
            if let Some(items) = m.get("items") {
                walk(items, &format!("{path}[]"), problems);
            }
        }
        _ => problems.push(format!("{path}: not an object")),
    }
}

#[test]
fn registry_schemas_are_in_the_function_calling_subset() {
    let r = registry().unwrap();
    assert_eq!(
        r.names(),
        [
            "cluster_describe",
            "cluster_events",
            "cluster_get",
            "cluster_list",
            "cluster_logs",
            "cluster_node_shell",
            "host_describe",
            "host_list",
            "host_read_file",
            "host_run_shell",
            "host_status",
            "pipeline_describe",
            "pipeline_list",
            "pipeline_run",
            "run_status",
            "task_describe",
            "task_list",
            "task_run",
        ]
    );
    let mut problems = Vec::new();
    for s in r.specs() {
        assert!(!s.description.is_empty(), "{}", s.name);
        walk(&s.parameters, &s.name, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let shell = r.get("host_run_shell").unwrap().spec();
    assert_eq!(shell.parameters["required"], json!(["hosts", "command"]));
    assert_eq!(shell.parameters["properties"]["sudo"]["type"], "boolean");
    assert_eq!(
        shell.parameters["properties"]["reason"]["type"], "string",
        "Option<String> is an optional string"
    );
    insta::assert_json_snapshot!("tool_specs", r.specs());
}

#[test]
fn arguments_are_checked_before_anything_runs() {
    let r = registry().unwrap();
    let e = r.prepare("host_nuke", json!({})).unwrap_err();
    assert!(matches!(e, ToolError::Unknown { .. }));
    assert!(
        e.to_string().contains("available tools: cluster_describe"),
        "{e}"
    );
    let e = r
        .prepare("host_run_shell", json!({"hosts": "web-1"}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid arguments for host_run_shell: missing field `command`"
    );
    let e = r
        .prepare(
            "host_run_shell",
            json!({"hosts": "web-1", "command": "ls", "shell": "x"}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `shell`"), "{e}");
    let e = r
        .prepare(
            "host_run_shell",
            json!({"hosts": "web-1", "command": "ls", "timeout_seconds": 0}),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("timeout_seconds must be 1..=3600"),
        "{e}"
    );
    let e = r
        .prepare(
            "host_read_file",
            json!({"host": "web-1", "path": "etc/passwd"}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("path must be absolute"), "{e}");
    let e = r
        .prepare("host_list", json!({"selector": "a=b=c=="}))
        .unwrap_err();
    assert!(matches!(e, ToolError::InvalidArgs { .. }), "{e}");
    // Defaults are filled in, so the approved call is the call that runs.
    let p = r
        .prepare(
            "host_run_shell",
            json!({"hosts": "web-1", "command": "df -h"}),
        )
        .unwrap();
    assert_eq!(p.args["timeout_seconds"], 60);
    assert_eq!(p.args["sudo"], false);
}

#[test]
fn effects_come_from_what_the_call_does() {
    let r = registry().unwrap();
    let effect = |tool: &str, args: Value| r.prepare(tool, args).unwrap().facts;
    assert_eq!(effect("host_list", json!({})).effect, Some(Effect::Read));
    let f = effect(
        "host_run_shell",
        json!({"hosts": "web-1", "command": "df -h | sort"}),
    );
    assert_eq!(f.effect, Some(Effect::Read));
    assert_eq!(f.targets, ["web-1"]);
    let f = effect(
        "host_run_shell",
        json!({"hosts": "web-1,web-2", "command": "systemctl restart nginx"}),
    );
    assert_eq!(f.effect, Some(Effect::Mutate));
    assert_eq!(f.shell.as_deref(), Some("systemctl restart nginx"));
    assert_eq!(f.targets, ["web-1", "web-2"]);
    let f = effect(
        "cluster_node_shell",
        json!({"cluster": "c", "nodes": "all", "command": "reboot"}),
    );
    assert_eq!(f.effect, Some(Effect::Destructive));
    let f = effect(
        "host_read_file",
        json!({"host": "web-1", "path": "/etc/shadow"}),
    );
    assert_eq!(f.effect, Some(Effect::Read));
    assert!(f.reads_secret);
    assert!(
        !effect(
            "host_read_file",
            json!({"host": "web-1", "path": "/var/log/syslog"})
        )
        .reads_secret
    );
    let f = effect("task_run", json!({"name": "clear-disk", "hosts": "web-1"}));
    assert_eq!(
        (f.effect, f.task.as_deref()),
        (Some(Effect::Mutate), Some("clear-disk"))
    );
    assert_eq!(
        effect("pipeline_run", json!({"name": "p"})).effect,
        Some(Effect::Mutate)
    );
    assert_eq!(
        effect("cluster_logs", json!({"cluster": "c", "pod": "p"})).effect,
        Some(Effect::Read)
    );
}

const INVENTORY: &str = r#"
apiVersion: ops.dev/v1
kind: Host
metadata: {name: here, labels: {role: web}}
spec: {address: 127.0.0.1, password: s3cret-pass}
---
apiVersion: crd.chenshaowen.com/v1
kind: Task
metadata: {name: b-ordinary}
spec:
  desc: an ordinary task
  host: here
  variables:
    who: {default: world, desc: whom to greet}
  steps:
    - name: greet
      content: echo "hello ${who}"
---
apiVersion: crd.chenshaowen.com/v1
kind: Task
metadata: {name: z-sop, labels: {ops/copilot: enabled}}
spec:
  desc: a standard procedure
  steps:
    - name: s
      content: "true"
"#;

async fn context(dir: &std::path::Path) -> ToolContext {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let store = Arc::new(SqliteStore::open(&dir.join("ops.db")).unwrap());
    let objects = parse_documents(INVENTORY)
        .unwrap()
        .into_iter()
        .map(|d| d.object)
        .collect();
    store.apply(objects, "ops-system").await.unwrap();
    let engine = Engine::new(
        store,
        SshPool::new(SshOptions::new(dir)),
        EngineOptions::default(),
    );
    ToolContext {
        engine: Arc::new(engine),
        namespace: "ops-system".into(),
        cancel: CancellationToken::new(),
        sandbox: false,
        pinned: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_task_tools_run_for_real() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path()).await;
    let r = registry().unwrap();
    let run = |name: &'static str, args: Value| {
        let (r, ctx) = (&r, &ctx);
        async move { r.get(name).unwrap().run(ctx, args).await }
    };
    let hosts = run("host_list", json!({"selector": "role=web"}))
        .await
        .unwrap();
    assert_eq!(hosts[0]["name"], "here");
    let d = run("host_describe", json!({"host": "here"})).await.unwrap();
    assert!(!d.to_string().contains("s3cret-pass"), "{d}");
    let e = run("host_describe", json!({"host": "nope"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no host named `nope`"), "{e}");
    assert!(e.to_string().contains("(there: here)"), "{e}");

    let st = run("host_status", json!({"host": "here"})).await.unwrap();
    assert!(st["cpus"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["memory_total_mib"].as_u64().unwrap() > 0, "{st}");
    assert!(!st["kernel"].as_str().unwrap().is_empty(), "{st}");

    let file = dir.path().join("app.log");
    std::fs::write(
        &file,
        (1..=100).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .unwrap();
    let f = run(
        "host_read_file",
        json!({"host": "here", "path": file, "tail_lines": 2}),
    )
    .await
    .unwrap();
    assert_eq!(f["content"], "line 99\nline 100\n");
    let f = run(
        "host_read_file",
        json!({"host": "here", "path": file, "max_bytes": 14}),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            f["content"].as_str().unwrap(),
            f["truncated"].as_bool().unwrap()
        ),
        ("line 1\nline 2\n", true)
    );
    let e = run(
        "host_read_file",
        json!({"host": "here", "path": "/nonexistent/x"}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");

    let out = run(
        "host_run_shell",
        json!({"hosts": "here", "command": "echo out; echo err >&2; exit 3"}),
    )
    .await
    .unwrap();
    assert_eq!(out[0]["status"], "exit 3");
    assert_eq!(out[0]["stdout"], "out\n");
    assert_eq!(out[0]["stderr"], "err\n");

    let tasks = run("task_list", json!({})).await.unwrap();
    assert_eq!(tasks[0]["name"], "z-sop", "copilot SOPs first: {tasks}");
    assert_eq!(
        tasks[1]["variables"]["who"],
        "whom to greet (default world)"
    );
    let t = run(
        "task_run",
        json!({"name": "b-ordinary", "variables": {"who": "ops"}}),
    )
    .await
    .unwrap();
    assert_eq!(t["phase"], "Succeeded", "{t}");
    assert_eq!(t["steps"][0]["output"], "hello ops\n");
    let id = t["id"].as_str().unwrap().to_owned();
    let s = run("run_status", json!({"id": id})).await.unwrap();
    assert_eq!(s[0]["phase"], "Succeeded");
    let latest = run("run_status", json!({})).await.unwrap();
    assert_eq!(latest.as_array().unwrap().len(), 1);
    let e = run("task_run", json!({"name": "missing"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no Task named `missing`"), "{e}");
    // ...and names the Tasks that are there, so a guessed name can be corrected.
    assert!(e.to_string().contains("(there: b-ordinary, z-sop)"), "{e}");
}

/// A gated call runs only on the targets the gate judged: when a tool's
/// own resolution finds a target outside the pinned set (the inventory
/// changed after the approval), the call fails before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_calls_never_run_beyond_their_approved_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path()).await;
    let r = registry().unwrap();
    let marker = dir.path().join("ran");
    let touch = json!({"hosts": "role=web", "command": format!("touch {}", marker.display())});
    ctx.pinned = Some(vec!["elsewhere".to_owned()].into());
    let e = r
        .get("host_run_shell")
        .unwrap()
        .run(&ctx, touch.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("its approval does not name"), "{e}");
    let e = r
        .get("task_run")
        .unwrap()
        .run(&ctx, json!({"name": "b-ordinary"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("its approval does not name"), "{e}");
    assert!(!marker.exists(), "nothing ran");
    ctx.pinned = Some(vec!["here".to_owned()].into());
    r.get("host_run_shell")
        .unwrap()
        .run(&ctx, touch)
        .await
        .unwrap();
    assert!(marker.exists(), "ran on the pinned target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_tools_read_through_the_stand_in() {
    use ops_testkit::kube_standin::{KubeStandIn, SeededLog, node};
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path()).await;
    let k = KubeStandIn::start(vec![node("node-1", &[], &[], true)]).await;
    k.seed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
    }));
    k.seed(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "c2VjcmV0LXZhbHVl"}
    }));
    k.seed(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
        "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning", "count": 5
    }));
    k.seed_log(
        "shop",
        "web-1",
        SeededLog {
            lines: vec![(5, "panic: no config".into())],
            previous: None,
        },
    );
    let cl = ops_model::Object::Cluster(k.cluster_object(dir.path(), &k.token));
    ctx.engine
        .store()
        .apply(vec![cl], "ops-system")
        .await
        .unwrap();
    let r = registry().unwrap();
    let run = |name: &'static str, args: Value| {
        let (r, ctx) = (&r, &ctx);
        async move { r.get(name).unwrap().run(ctx, args).await }
    };
    assert_eq!(
        run("cluster_list", json!({})).await.unwrap()[0]["name"],
        "lab"
    );
    let pods = run(
        "cluster_get",
        json!({"cluster": "lab", "resource": "po", "namespace": "shop"}),
    )
    .await
    .unwrap();
    assert_eq!(pods[0]["status"], "CrashLoopBackOff 0/1 restarts=3");
    let secret = run(
        "cluster_get",
        json!({"cluster": "lab", "resource": "secret", "name": "db", "namespace": "shop"}),
    )
    .await
    .unwrap();
    assert!(!secret.to_string().contains("c2VjcmV0LXZhbHVl"), "{secret}");
    let d = run(
        "cluster_describe",
        json!({"cluster": "lab", "resource": "pod", "name": "web-1", "namespace": "shop"}),
    )
    .await
    .unwrap();
    assert!(d.as_str().unwrap().contains("BackOff"), "{d}");
    let logs = run(
        "cluster_logs",
        json!({"cluster": "lab", "pod": "web-1", "namespace": "shop"}),
    )
    .await
    .unwrap();
    assert_eq!(logs, "panic: no config\n");
    let evs = run(
        "cluster_events",
        json!({"cluster": "lab", "namespace": "shop", "kind": "po", "name": "web-1"}),
    )
    .await
    .unwrap();
    assert_eq!(evs[0]["reason"], "BackOff");
    let e = run("cluster_events", json!({"cluster": "lab", "kind": "Pod"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("give both kind and name"), "{e}");
    let e = run(
        "cluster_get",
        json!({"cluster": "nope", "resource": "pods"}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no cluster named `nope`"), "{e}");
    let out = run(
        "cluster_node_shell",
        json!({"cluster": "lab", "nodes": "node-1", "command": "echo on-node"}),
    )
    .await
    .unwrap();
    assert_eq!(out[0]["host"], "node-1");
    assert_eq!(out[0]["stdout"], "on-node\n");
    // What an approval binds to: the nodes the run will pick, not the
    // expression the model wrote.
    let resolved = |nodes: &'static str| {
        let (r, ctx) = (&r, &ctx);
        async move {
            let p = r
                .prepare(
                    "cluster_node_shell",
                    json!({"cluster": "lab", "nodes": nodes, "command": "systemctl restart kubelet"}),
                )
                .unwrap();
            ops_tools::resolve_targets(ctx, &p).await
        }
    };
    let t = resolved("anynode").await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, "lab/node-1");
    assert_eq!(t[0].labels["cluster"], "lab");
    let e = resolved("node-9").await.unwrap_err();
    assert!(e.to_string().contains("no node named `node-9`"), "{e}");
}

/// The anchor's `host` variable picks a Task's targets when its own
/// `host:` is empty; without either, the Task has no target (it used to
/// run on the machine `ops` runs on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_the_host_variable_selects_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path()).await;
    let r = registry().unwrap();
    let e = r
        .get("task_run")
        .unwrap()
        .run(&ctx, json!({"name": "z-sop"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("only by name"), "{e}");
    let p = r
        .prepare(
            "task_run",
            json!({"name": "z-sop", "variables": {"host": "here"}}),
        )
        .unwrap();
    let targets = ops_tools::resolve_targets(&ctx, &p).await.unwrap();
    assert_eq!(
        targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["here"]
    );
    let plan = ops_tools::plan(&ctx, &p).await.unwrap().unwrap();
    assert!(plan.contains("(host: here)"), "{plan}");
    let t = r
        .get("task_run")
        .unwrap()
        .run(
            &ctx,
            json!({"name": "z-sop", "variables": {"host": "here"}}),
        )
        .await
        .unwrap();
    assert_eq!(t["phase"], "Succeeded", "{t}");
    assert_eq!(t["steps"][0]["target"], "here", "{t}");
}
