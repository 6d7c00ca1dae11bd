//! Every Task of the anchor's library, unchanged, either runs on a real
//! (isolated) sshd host and succeeds, or is skipped with a stated reason.
//! The report is printed; a task that fails is an engine bug until shown
//! otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ops_engine::{Engine, EngineOptions, NoopObserver, TaskRunRequest};
use ops_exec::ssh::{HostKeyPolicy, SshOptions, SshPool};
use ops_model::manifest::load_path;
use ops_model::{Object, RunPhase, Task, parse_documents};
use ops_store::{SqliteStore, Store};
use ops_testkit::isolated::IsolatedHost;
use ops_testkit::sshd::ClientKey;
use tokio_util::sync::CancellationToken;

fn corpus() -> PathBuf {
    std::env::var_os("OPS_COMPAT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/ops-manifests"),
        PathBuf::from,
    )
}

/// Why a task cannot run on a plain Linux host here, or `None`.
fn skip_reason(t: &Task) -> Option<String> {
    let special = match t.metadata.name.as_str() {
        "clear-sshd" => {
            Some("kills the `sshd: root@notty` sessions it runs in; meant for a host-local agent")
        }
        "get-kubeconfig" => {
            Some("needs a Kubernetes control-plane host (/etc/kubernetes/admin.conf)")
        }
        "restart-kubelet" => Some("needs systemd with a kubelet unit"),
        "restart-fabricmanager" => Some("needs systemd with nvidia-fabricmanager (GPU host)"),
        _ => None,
    };
    if let Some(s) = special {
        return Some(s.to_owned());
    }
    let host = t.spec.host.clone().unwrap_or_default();
    if ops_engine::target::CLUSTER_KEYWORDS.contains(&host.as_str()) {
        return Some(format!("targets Kubernetes nodes (`{host}`)"));
    }
    let text: String = t
        .spec
        .steps()
        .iter()
        .map(|s| {
            format!(
                "{}\n{}\n{}\n",
                s.content.as_deref().unwrap_or(""),
                s.localfile.as_deref().unwrap_or(""),
                s.remotefile.as_deref().unwrap_or("")
            )
        })
        .collect();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if t.spec.runtime_image.is_some() || t.spec.mounts.is_some() {
        return Some("runs in a container on a Kubernetes node (runtimeImage/mounts)".into());
    }
    if has(&["kubectl", "helm ", "crictl", "nerdctl", "ctr "]) {
        return Some("needs Kubernetes tooling (kubectl, helm, crictl or nerdctl)".into());
    }
    if has(&["docker "]) {
        return Some("needs a Docker engine".into());
    }
    if has(&["nvidia-smi", "npu-smi", "dcgmi", "hccn_tool"])
        || host.contains("gpu")
        || host.contains("npu")
    {
        return Some("needs GPUs or NPUs".into());
    }
    if has(&["OPSSERVER_ENDPOINT"]) {
        return Some("reports to an ops-server endpoint (outside service)".into());
    }
    if has(&["s3://", "http://", "https://"]) {
        return Some("needs outside network services".into());
    }
    None
}

/// Values for required variables: the declaration's default, example or
/// first allowed value, else a harmless loopback-only value by name.
fn fill(t: &Task, host: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, v) in t.spec.variables.clone().unwrap_or_default() {
        if v.effective().is_some() {
            continue;
        }
        let by_name = match name.as_str() {
            "ip" => "127.0.0.77".to_owned(),
            "domain" => "ops-compat.test".to_owned(),
            "targets" => "127.0.0.1".to_owned(),
            "host" | "nodename" => host.to_owned(),
            _ => "ops-compat".to_owned(),
        };
        let value = v
            .enums
            .as_ref()
            .and_then(|e| e.first().cloned())
            .or_else(|| {
                (name != "targets")
                    .then(|| v.examples.as_ref().and_then(|e| e.first().cloned()))
                    .flatten()
            })
            .unwrap_or(by_name);
        out.insert(name, value);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_tasks_run_unchanged_on_an_isolated_host() {
    let key = ClientKey::new();
    let host = match IsolatedHost::start("compat-1", &[&key.public]) {
        Ok(h) => h,
        Err(reason) => {
            println!("SKIPPED compat task run: namespaces are not permitted here ({reason})");
            return;
        }
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("known_hosts"), host.known_hosts_line()).unwrap();
    let store = Arc::new(SqliteStore::open(&home.path().join("ops.db")).unwrap());
    let report = load_path(&corpus().join("tasks"));
    assert!(report.errors.is_empty());
    let tasks: Vec<Task> = report
        .files
        .into_iter()
        .flat_map(|f| f.documents)
        .filter_map(|d| match d.object {
            Object::Task(t) => Some(t),
            _ => None,
        })
        .collect();
    let host_yaml = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: compat-1}}\nspec:\n  address: {}\n  username: root\n  privateKeyPath: {}\n",
        host.addr,
        key.private.display()
    );
    let host_obj = parse_documents(&host_yaml).unwrap().remove(0).object;
    store
        .apply(vec![host_obj.clone()], "ops-system")
        .await
        .unwrap();
    let mut o = SshOptions::new(home.path());
    o.policy = HostKeyPolicy::Strict;
    let engine = Engine::new(store.clone(), SshPool::new(o), EngineOptions::default());
    let Object::Host(h) = host_obj else { panic!() };

    let mut isolation_checked = false;
    let (mut ran, mut ok, mut failures, mut skipped) =
        (0, 0, Vec::new(), BTreeMap::<String, Vec<String>>::new());
    for t in &tasks {
        if let Some(reason) = skip_reason(t) {
            skipped
                .entry(reason)
                .or_default()
                .push(t.metadata.name.clone());
            continue;
        }
        ran += 1;
        let targets = engine.targets_for_hosts(vec![h.clone()]).unwrap();
        let req = TaskRunRequest {
            task: t.clone(),
            name: None,
            namespace: "ops-system".into(),
            variables: fill(t, "compat-1"),
            targets,
            timeout: Some(Duration::from_secs(120)),
            sudo: false,
            parent_id: None,
        };
        let run = engine
            .run_task(req, &NoopObserver, CancellationToken::new())
            .await;
        match run {
            Ok(r) if r.phase == RunPhase::Succeeded => {
                ok += 1;
                if t.metadata.name == "add-etchosts" {
                    // The host's /etc is its own: the task wrote there, not here.
                    assert!(
                        host.etc_file("hosts")
                            .contains("127.0.0.77 ops-compat.test"),
                        "{}",
                        host.etc_file("hosts")
                    );
                    assert!(
                        !std::fs::read_to_string("/etc/hosts")
                            .unwrap()
                            .contains("ops-compat.test")
                    );
                    isolation_checked = true;
                }
                println!(
                    "ran      {:<28} Succeeded ({} steps)",
                    t.metadata.name,
                    r.steps.len()
                );
                if std::env::var_os("OPS_COMPAT_VERBOSE").is_some() {
                    for s in &r.steps {
                        println!("    {} {}: {}{}", s.name, s.phase, s.stdout, s.stderr);
                    }
                }
            }
            Ok(r) => {
                let bad: Vec<String> = r
                    .steps
                    .iter()
                    .filter(|s| {
                        s.phase == RunPhase::Failed && !s.stderr.contains("failure allowed")
                    })
                    .map(|s| format!("{}: {}", s.name, s.stderr.trim()))
                    .collect();
                failures.push(format!("{}: {} {:?}", t.metadata.name, r.phase, bad));
            }
            Err(e) => failures.push(format!("{}: {e}", t.metadata.name)),
        }
    }
    let nskipped: usize = skipped.values().map(Vec::len).sum();
    println!(
        "\ncompat tasks: {} in all; {ran} ran on an isolated sshd host, {ok} succeeded, {} failed; {nskipped} skipped:",
        tasks.len(),
        failures.len()
    );
    for (reason, names) in &skipped {
        println!("  {:>3}  {reason}", names.len());
    }
    assert!(
        failures.is_empty(),
        "compat tasks failed:\n{}",
        failures.join("\n")
    );
    assert!(
        isolation_checked,
        "add-etchosts ran and its effect stayed on the isolated host"
    );
    assert_eq!(ran + nskipped, tasks.len());
    assert!(ran >= 8, "expected the host-side tasks to run, ran {ran}");
}
