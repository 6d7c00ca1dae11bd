//! The run engine end to end: local and real-sshd targets, recorded runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ops_engine::{
    Engine, EngineError, EngineOptions, NoopObserver, PipelineRunRequest, TaskRunRequest,
};
use ops_exec::ssh::{HostKeyPolicy, SshOptions, SshPool};
use ops_model::{Object, Pipeline, RunPhase, Task, parse_documents};
use ops_store::{SqliteStore, Store};
use ops_testkit::sshd::{ClientKey, Sshd};
use tokio_util::sync::CancellationToken;

struct World {
    _home: tempfile::TempDir,
    store: Arc<SqliteStore>,
    engine: Engine,
}

fn world(forks: usize) -> World {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    let mut o = SshOptions::new(home.path());
    o.policy = HostKeyPolicy::AcceptNew;
    o.connect_timeout = Duration::from_secs(5);
    let engine = Engine::new(
        store.clone(),
        SshPool::new(o),
        EngineOptions {
            forks,
            default_user: "root".into(),
            // These tests drive the engine as a person's direct commands.
            implicit_local: true,
        },
    );
    World {
        _home: home,
        store,
        engine,
    }
}

fn objects(yaml: &str) -> Vec<Object> {
    parse_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|d| d.object)
        .collect()
}

fn task(yaml: &str) -> Task {
    match objects(yaml).remove(0) {
        Object::Task(t) => t,
        o => panic!("{o:?}"),
    }
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const STEPS: &str = r#"
apiVersion: crd.chenshaowen.com/v1
kind: Task
metadata: {name: steps-demo}
spec:
  variables:
    mode: {default: "fast", enums: [fast, slow]}
    who: {required: true}
  steps:
    - name: hello
      content: echo "hello ${who} on ${HOSTNAME} in ${NAMESPACE}"; echo OPS_RESULT:greeted=${who}
    - name: only-slow
      when: ${mode} == "slow"
      content: echo should-not-run
    - name: uses-output
      when: startwith("${steps.hello.output}", "hello")
      content: echo "previous said [${steps.hello.output}] status ${steps.hello.status}"
    - name: python
      content: |
        #!/usr/bin/python
        print("py:" + "${who}".upper())
    - name: shell-vars-survive
      content: RED=red; echo "${RED}-${percent:-80}"
    - name: tolerated
      content: exit 7
      allowfailure: "true"
    - name: fails
      content: echo boom >&2; exit 3
    - name: never
      content: echo unreachable
"#;

#[tokio::test]
async fn steps_when_allowfailure_results_on_this_machine() {
    let w = world(4);
    let t = task(STEPS);
    let targets = w.engine.targets("ops-system", "").await.unwrap();
    let run = w
        .engine
        .run_task(
            TaskRunRequest {
                task: t,
                name: None,
                namespace: "ops-system".into(),
                variables: vars(&[("who", "ops")]),
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
    assert_eq!(run.phase, RunPhase::Failed);
    let by_name: BTreeMap<&str, _> = run.steps.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(
        by_name["hello"].stdout,
        "hello ops on localhost in ops-system\nOPS_RESULT:greeted=ops\n"
    );
    assert_eq!(by_name["only-slow"].phase, RunPhase::Skipped);
    assert_eq!(
        by_name["uses-output"].stdout,
        "previous said [hello ops on localhost in ops-system\nOPS_RESULT:greeted=ops] status Succeeded\n"
    );
    assert_eq!(by_name["python"].stdout, "py:OPS\n");
    assert_eq!(by_name["shell-vars-survive"].stdout, "red-80\n");
    assert_eq!(by_name["tolerated"].phase, RunPhase::Failed);
    assert_eq!(by_name["tolerated"].exit_code, Some(7));
    assert_eq!(by_name["fails"].phase, RunPhase::Failed);
    assert_eq!(by_name["fails"].stderr, "boom\n");
    assert_eq!(
        by_name["never"].phase,
        RunPhase::Skipped,
        "a failure stops later steps"
    );
    // Recorded in the store, identical.
    assert_eq!(w.store.get_run(&run.id).await.unwrap().unwrap(), run);
}

#[tokio::test]
async fn bad_variables_and_empty_targets_fail_before_anything_runs() {
    let w = world(4);
    let targets = w.engine.targets("ops-system", "").await.unwrap();
    let req = |variables| TaskRunRequest {
        task: task(STEPS),
        name: None,
        namespace: "ops-system".into(),
        variables,
        targets: targets.clone(),
        timeout: None,
        sudo: false,
        parent_id: None,
    };
    let e = w
        .engine
        .run_task(
            req(vars(&[("mode", "turbo")])),
            &NoopObserver,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`who` is required")
            && text.contains("`mode` = `turbo` is not one of: fast, slow"),
        "{text}"
    );
    assert!(
        w.store
            .list_runs(&Default::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing recorded or run"
    );

    let none = w
        .engine
        .targets("ops-system", "role=nothing")
        .await
        .unwrap_err();
    assert!(matches!(none, EngineError::Target(_)), "{none}");
    assert!(
        none.to_string()
            .contains("no Host in namespace ops-system matches `role=nothing`"),
        "{none}"
    );
    let kube = w
        .engine
        .targets("ops-system", "anymaster")
        .await
        .unwrap_err();
    assert!(
        kube.to_string()
            .contains("namespace ops-system has no Cluster"),
        "{kube}"
    );
}

#[tokio::test]
async fn step_timeouts_run_timeouts_and_cancellation_from_another_process() {
    let w = world(4);
    let targets = w.engine.targets("ops-system", "").await.unwrap();
    let slow = task(
        "apiVersion: ops.dev/v1\nkind: Task\nmetadata: {name: slow}\nspec:\n  steps:\n    - name: nap\n      content: sleep 30\n      timeoutSeconds: 1\n    - name: after\n      content: echo no\n",
    );
    let base = TaskRunRequest {
        task: slow,
        name: None,
        namespace: "ops-system".into(),
        variables: BTreeMap::new(),
        targets,
        timeout: None,
        sudo: false,
        parent_id: None,
    };
    let run = w
        .engine
        .run_task(base.clone(), &NoopObserver, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(run.phase, RunPhase::Failed);
    assert!(
        run.steps[0].stderr.contains("step timed out after 1s"),
        "{:?}",
        run.steps[0]
    );
    assert_eq!(run.steps[1].phase, RunPhase::Skipped);

    let mut no_step_limit = base.clone();
    no_step_limit.task.spec.steps.as_mut().unwrap()[0].timeout_seconds = None;
    let mut whole = no_step_limit.clone();
    whole.timeout = Some(Duration::from_secs(1));
    let run = w
        .engine
        .run_task(whole, &NoopObserver, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(run.phase, RunPhase::Failed);
    assert_eq!(run.message.as_deref(), Some("run timed out after 1s"));

    // Another process asks through the store.
    let store = w.store.clone();
    let canceller = tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let runs = store.list_runs(&Default::default()).await.unwrap();
            if let Some(r) = runs.iter().find(|r| r.phase == RunPhase::Running) {
                assert!(store.request_cancel(&r.id).await.unwrap());
                return;
            }
        }
        panic!("run never started");
    });
    let run = w
        .engine
        .run_task(no_step_limit, &NoopObserver, CancellationToken::new())
        .await
        .unwrap();
    canceller.await.unwrap();
    assert_eq!(run.phase, RunPhase::Cancelled);
    assert_eq!(run.steps[0].phase, RunPhase::Cancelled);
}

const PIPELINE: &str = r#"
apiVersion: ops.dev/v1
kind: Task
metadata: {name: probe}
spec:
  variables:
    region: {default: eu}
  steps:
    - name: find
      content: echo "OPS_RESULT:ip=10.9.8.7"; echo "OPS_RESULT:region=${region}"
---
apiVersion: ops.dev/v1
kind: Task
metadata: {name: use}
spec:
  variables:
    target: {required: true}
  steps:
    - content: echo "using ${target}"
---
apiVersion: ops.dev/v1
kind: Task
metadata: {name: broken}
spec:
  steps:
    - content: exit 1
---
apiVersion: ops.dev/v1
kind: Task
metadata: {name: cleanup}
spec:
  steps:
    - content: echo cleaned
---
apiVersion: ops.dev/v1
kind: Pipeline
metadata: {name: flow}
spec:
  variables:
    region: {default: us}
    level: {default: "1"}
  tasks:
    - name: probe
      taskRef: probe
      results: {addr: "ip is ${results.ip}"}
    - name: use-it
      taskRef: use
      variables: {target: "${tasks.probe.results.ip} (${tasks.probe.results.addr})"}
    - name: optional
      taskRef: broken
      allowFailure: true
    - name: required
      taskRef: broken
    - name: skipped
      taskRef: use
      variables: {target: x}
    - name: always
      taskRef: cleanup
      runAlways: true
"#;

#[tokio::test]
async fn pipelines_pass_results_and_honour_allow_failure_and_run_always() {
    let w = world(4);
    w.store
        .apply(objects(PIPELINE), "ops-system")
        .await
        .unwrap();
    let Some(Object::Pipeline(p)) = objects(PIPELINE).into_iter().find(|o| o.name() == "flow")
    else {
        panic!()
    };
    let req = |p: Pipeline, variables| PipelineRunRequest {
        pipeline: p,
        name: None,
        namespace: "ops-system".into(),
        variables,
        host: None,
        allowed: None,
        timeout: None,
        sudo: false,
        parent_id: None,
    };
    let run = w
        .engine
        .run_pipeline(
            req(p.clone(), vars(&[("level", "2")])),
            &NoopObserver,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(run.phase, RunPhase::Failed);
    assert_eq!(run.message.as_deref(), Some("task `required` failed"));
    let phase = |task: &str| run.steps.iter().find(|s| s.task == task).map(|s| s.phase);
    assert_eq!(phase("probe"), Some(RunPhase::Succeeded));
    let used = run.steps.iter().find(|s| s.task == "use-it").unwrap();
    assert_eq!(used.stdout, "using 10.9.8.7 (ip is 10.9.8.7)\n");
    let probe = run.steps.iter().find(|s| s.task == "probe").unwrap();
    assert!(
        probe.stdout.contains("region=us"),
        "pipeline default wins over task default: {}",
        probe.stdout
    );
    assert_eq!(phase("optional"), Some(RunPhase::Failed));
    assert_eq!(phase("required"), Some(RunPhase::Failed));
    assert_eq!(phase("skipped"), Some(RunPhase::Skipped));
    assert_eq!(phase("always"), Some(RunPhase::Succeeded));
    assert_eq!(
        run.spec["variables"]["region"], "us",
        "declared defaults merged, not replaced"
    );
    assert_eq!(run.spec["variables"]["level"], "2");

    let mut missing = p.clone();
    missing.spec.tasks[1].task_ref = Some("nope".into());
    let e = w
        .engine
        .run_pipeline(
            req(missing, BTreeMap::new()),
            &NoopObserver,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "pipeline `flow`: task entry `use-it` refers to Task `nope`, which does not exist in namespace ops-system"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_over_real_hosts_with_one_down() {
    let key = ClientKey::new();
    let a = Sshd::start("127.0.0.2", &[&key]);
    let b = Sshd::start("127.0.0.3", &[&key]);
    let w = world(2);
    let host = |name: &str, addr: &str, port: u16, role: &str| {
        format!(
            "apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: {name}\n  labels: {{role: {role}}}\nspec:\n  address: {addr}\n  port: {port}\n  username: root\n  privateKeyPath: {}\n",
            key.private.display()
        )
    };
    let yaml = [
        host("web-a", &a.addr, a.port, "web"),
        host("web-b", &b.addr, b.port, "web"),
        host("web-down", "127.0.0.9", 22, "web"),
        host("db", &a.addr, a.port, "db"),
    ]
    .join("---\n");
    w.store.apply(objects(&yaml), "ops-system").await.unwrap();
    let t = task(
        "apiVersion: ops.dev/v1\nkind: Task\nmetadata: {name: who}\nspec:\n  host: role=web\n  steps:\n    - name: where\n      content: echo \"${HOSTNAME} ${labels.role} $SSH_CONNECTION\"\n    - name: second\n      content: echo two\n",
    );
    let targets = w
        .engine
        .targets("ops-system", t.spec.host.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["web-a", "web-b", "web-down"]
    );
    let run = w
        .engine
        .run_task(
            TaskRunRequest {
                task: t,
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
    assert_eq!(run.phase, RunPhase::Failed, "one target failed");
    let step = |target: &str, i: u32| {
        run.steps
            .iter()
            .find(|s| s.target == target && s.index == i)
            .unwrap()
    };
    assert!(
        step("web-a", 0).stdout.starts_with("web-a web 127.0.0."),
        "{}",
        step("web-a", 0).stdout
    );
    assert!(
        step("web-a", 0)
            .stdout
            .trim_end()
            .ends_with(&format!("{}", a.port))
    );
    assert_eq!(step("web-b", 1).phase, RunPhase::Succeeded);
    assert_eq!(step("web-down", 0).phase, RunPhase::Failed);
    assert!(
        step("web-down", 0)
            .stderr
            .contains("cannot connect to 127.0.0.9:22"),
        "{}",
        step("web-down", 0).stderr
    );
    assert_eq!(step("web-down", 1).phase, RunPhase::Skipped);
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

const SCHEDULED: &str = r#"
apiVersion: ops.dev/v1
kind: Task
metadata: {name: tick}
spec:
  steps: [{name: tick, content: "echo tick ${who}"}]
---
apiVersion: ops.dev/v1
kind: Task
metadata: {name: slow}
spec:
  steps: [{name: nap, content: "sleep 20"}]
---
apiVersion: crd.chenshaowen.com/v1
kind: TaskRun
metadata: {name: every-minute}
spec: {taskRef: tick, crontab: "* * * * *", variables: {who: cron}}
---
apiVersion: crd.chenshaowen.com/v1
kind: TaskRun
metadata: {name: once}
spec: {taskRef: tick, variables: {who: once}}
---
apiVersion: crd.chenshaowen.com/v1
kind: TaskRun
metadata: {name: slow-every-minute}
spec: {taskRef: slow, crontab: "* * * * *"}
---
apiVersion: crd.chenshaowen.com/v1
kind: TaskRun
metadata: {name: orphan}
spec: {taskRef: no-such-task}
---
apiVersion: crd.chenshaowen.com/v1
kind: TaskRun
metadata: {name: broken-cron}
spec: {taskRef: tick, crontab: "every tuesday"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_once_per_occurrence_never_overlaps_and_survives_restart() {
    use ops_engine::schedule::{Scheduler, TickEvent};
    use ops_store::RunFilter;
    let w = world(4);
    w.store
        .apply(objects(SCHEDULED), "ops-system")
        .await
        .unwrap();
    let key = |n: &str| format!("TaskRun/ops-system/{n}");
    let mut s = Scheduler::new(w.engine.clone(), Duration::ZERO);

    let first = s.tick(at("2026-01-01T00:00:10Z")).await.unwrap();
    assert!(
        first.contains(&TickEvent::Registered {
            key: key("every-minute"),
            next: at("2026-01-01T00:01:00Z")
        }),
        "{first:?}"
    );
    assert!(
        first.contains(&TickEvent::Fired { key: key("once") }),
        "a TaskRun without crontab runs once"
    );
    assert!(first.iter().any(|e| matches!(e, TickEvent::Invalid { key: k, error } if *k == key("broken-cron") && error.contains("every tuesday"))), "{first:?}");
    s.wait_idle().await;

    let early = s.tick(at("2026-01-01T00:00:50Z")).await.unwrap();
    assert!(
        early.contains(&TickEvent::Waiting {
            key: key("every-minute"),
            next: at("2026-01-01T00:01:00Z")
        }),
        "{early:?}"
    );
    assert!(
        !early.iter().any(|e| matches!(e, TickEvent::Fired { .. })),
        "once stays once: {early:?}"
    );

    let due = s.tick(at("2026-01-01T00:01:02Z")).await.unwrap();
    assert!(
        due.contains(&TickEvent::Fired {
            key: key("every-minute")
        }),
        "{due:?}"
    );
    assert!(
        due.contains(&TickEvent::Fired {
            key: key("slow-every-minute")
        }),
        "{due:?}"
    );
    // Give the slow child time to be recorded as Running.
    tokio::time::sleep(Duration::from_millis(800)).await;

    // A restarted scheduler (new instance, same store) does not fire again
    // for the same minute, and skips the next one while the slow child runs.
    let mut s2 = Scheduler::new(w.engine.clone(), Duration::ZERO);
    let again = s2.tick(at("2026-01-01T00:01:30Z")).await.unwrap();
    assert!(
        !again.iter().any(|e| matches!(e, TickEvent::Fired { .. })),
        "{again:?}"
    );
    let next = s2.tick(at("2026-01-01T00:02:01Z")).await.unwrap();
    assert!(
        next.contains(&TickEvent::Fired {
            key: key("every-minute")
        }),
        "{next:?}"
    );
    assert!(next.iter().any(|e| matches!(e, TickEvent::SkippedOverlap { key: k, .. } if *k == key("slow-every-minute"))), "{next:?}");
    s.cancel_runs();
    s.wait_idle().await;
    s2.wait_idle().await;

    let children = |k: String| {
        let store = w.store.clone();
        async move {
            store
                .list_runs(&RunFilter {
                    parent_id: Some(k),
                    ..RunFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let minute = children(key("every-minute")).await;
    assert_eq!(minute.len(), 2, "one child per occurrence");
    assert!(
        minute.iter().all(|r| r.phase == RunPhase::Succeeded),
        "{minute:?}"
    );
    let once = w
        .store
        .get_run(&children(key("once")).await[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(once.steps[0].stdout, "tick once\n");
    let orphan = children(key("orphan")).await;
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0].phase, RunPhase::Failed);
    assert_eq!(
        orphan[0].message.as_deref(),
        Some("Task `no-such-task` does not exist in namespace ops-system")
    );
}

#[tokio::test]
async fn the_anchors_cron_taskruns_load_and_schedule() {
    use ops_engine::schedule::{Scheduler, TickEvent};
    let w = world(4);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/compat/ops-manifests");
    let report = ops_model::manifest::load_path(&dir.join("taskruns"));
    assert!(report.errors.is_empty());
    let objs: Vec<Object> = report
        .files
        .into_iter()
        .flat_map(|f| f.documents)
        .map(|d| d.object)
        .collect();
    let n = objs.len();
    w.store.apply(objs, "ops-system").await.unwrap();
    let mut s = Scheduler::new(w.engine.clone(), Duration::from_secs(30));
    let events = s.tick(at("2026-06-01T12:00:00Z")).await.unwrap();
    let registered = events
        .iter()
        .filter(|e| matches!(e, TickEvent::Registered { .. }))
        .count();
    assert_eq!(
        registered, n,
        "every cron TaskRun gets a next fire time: {events:?}"
    );
    println!("anchor cron TaskRuns scheduled: {registered}");
}

/// The machine `ops` runs on is a target for the copilot and other doors
/// only when it is in the inventory by name (it used to be the implicit
/// target of an empty `host`, where a read of `$OPS_HOME/ops.db` returned
/// a stored password).
#[tokio::test]
async fn regression_this_machine_only_by_name() {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    let engine = Engine::new(
        store.clone(),
        SshPool::new(SshOptions::new(home.path())),
        EngineOptions::default(),
    );
    for expr in ["", "localhost", "127.0.0.1", "local"] {
        let e = engine
            .targets("ops-system", expr)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("only by name"), "{expr:?}: {e}");
    }
    let host: ops_model::Object = ops_model::parse_documents(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: localhost}\nspec: {address: 127.0.0.1}\n",
    )
    .unwrap()
    .remove(0)
    .object;
    store.apply(vec![host], "ops-system").await.unwrap();
    let t = engine.targets("ops-system", "").await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, "localhost");
}

/// A stand-in target that records what it is asked to run and answers
/// each script with its first word echoed back.
#[derive(Debug, Default)]
struct Recorder {
    name: String,
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ops_exec::Executor for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    async fn run(
        &self,
        req: &ops_exec::ExecRequest,
        _sink: Option<ops_exec::OutputSink<'_>>,
        _cancel: &CancellationToken,
    ) -> Result<ops_exec::ExecOutput, ops_exec::ExecError> {
        let text = format!("{:?}", req.command);
        self.seen.lock().unwrap().push(text.clone());
        let mut stdout = ops_exec::Captured::new(req.limits);
        stdout.push(format!("ran on {}\n", self.name).as_bytes());
        Ok(ops_exec::ExecOutput {
            status: ops_exec::ExitStatus::Code(0),
            stdout,
            stderr: ops_exec::Captured::new(req.limits),
            duration: Duration::from_millis(1),
        })
    }
    async fn upload(
        &self,
        _local: &std::path::Path,
        _remote: &str,
        _mode: Option<u32>,
        _cancel: &CancellationToken,
    ) -> Result<ops_exec::Transfer, ops_exec::ExecError> {
        unreachable!("no file steps here")
    }
    async fn download(
        &self,
        _remote: &str,
        _local: &std::path::Path,
        _cancel: &CancellationToken,
    ) -> Result<ops_exec::Transfer, ops_exec::ExecError> {
        unreachable!("no file steps here")
    }
}

/// Hands out one recorder per host name.
#[derive(Debug, Default)]
struct Fakes {
    made: std::sync::Mutex<BTreeMap<String, Arc<Recorder>>>,
}

#[async_trait::async_trait]
impl ops_engine::ExecutorFactory for Fakes {
    fn host(
        &self,
        host: &ops_model::Host,
        _default_user: &str,
    ) -> Result<Arc<dyn ops_exec::Executor>, ops_exec::ExecError> {
        let name = host.metadata.name.clone();
        let r = Arc::clone(
            self.made
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_insert_with(|| {
                    Arc::new(Recorder {
                        name,
                        ..Recorder::default()
                    })
                }),
        );
        Ok(r)
    }
    async fn nodes(
        &self,
        cluster: &ops_model::Cluster,
        _expr: &str,
        _runtime: &ops_exec::kube::PodRuntime,
    ) -> Result<Vec<ops_engine::Target>, EngineError> {
        Err(EngineError::Target(format!(
            "no nodes in the fake cluster {}",
            cluster.metadata.name
        )))
    }
}

/// The engine takes its executors from the factory it is given: a Task
/// over two stored hosts runs its steps, in order, on the fakes, and the
/// run is recorded as with real targets.
#[tokio::test]
async fn the_engine_runs_on_the_executors_it_is_given() {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    let hosts = parse_documents(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: web-1}\nspec: {address: 198.18.0.10}\n---\napiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: web-2}\nspec: {address: 198.18.0.11}\n",
    )
    .unwrap()
    .into_iter()
    .map(|d| d.object)
    .collect();
    store.apply(hosts, "ops-system").await.unwrap();
    let fakes = Arc::new(Fakes::default());
    let engine = Engine::with_executors(store.clone(), fakes.clone(), EngineOptions::default());
    let task: Task = match parse_documents(
        "apiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {name: two}\nspec:\n  steps:\n    - {name: a, content: echo first}\n    - {name: b, content: echo second}\n",
    )
    .unwrap()
    .remove(0)
    .object
    {
        Object::Task(t) => t,
        _ => unreachable!(),
    };
    let targets = engine.targets("ops-system", "web-1,web-2").await.unwrap();
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
    assert_eq!(run.phase, RunPhase::Succeeded);
    {
        let made = fakes.made.lock().unwrap();
        assert_eq!(made.keys().cloned().collect::<Vec<_>>(), ["web-1", "web-2"]);
        for r in made.values() {
            let seen = r.seen.lock().unwrap();
            assert_eq!(seen.len(), 2, "{seen:?}");
            assert!(seen[0].contains("echo first") && seen[1].contains("echo second"));
        }
    }
    let stored = store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(stored.steps.len(), 4, "two steps on two hosts");
}
