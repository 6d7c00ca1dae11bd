//! `opscli` end to end: the real binary, a private `$OPS_HOME`, snapshots of
//! what people see.

use std::collections::BTreeMap;

use crate::common::{Ops, corpus, fixtures, scrub, snap};

#[test]
fn compat_corpus_apply_then_get_loses_no_field() {
    let ops = Ops::new();
    let dir = corpus();
    let applied = ops.run(&["apply", "-f", dir.to_str().unwrap()]).ok();
    assert!(
        applied.stderr.contains("0 files rejected"),
        "{}",
        applied.stderr
    );

    // Everything back, per kind, across namespaces.
    let mut stored: BTreeMap<(String, String, String), serde_yaml::Value> = BTreeMap::new();
    for kind in ["tasks", "pipelines", "taskruns", "eventhooks"] {
        let out = ops.run(&["get", kind, "-A", "-o", "yaml"]).ok();
        for doc in serde_yaml::Deserializer::from_str(&out.stdout) {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            let key = (
                v["kind"].as_str().unwrap().to_owned(),
                v["metadata"]["namespace"].as_str().unwrap().to_owned(),
                v["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            stored.insert(key, v);
        }
    }

    let mut compared = 0;
    let report = ops_walk(&dir);
    for path in report {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let original: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            if original.is_null() {
                continue;
            }
            let key = (
                original["kind"].as_str().unwrap().to_owned(),
                original["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("ops-system")
                    .to_owned(),
                original["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            let back = stored
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} from {} not stored", path.display()));
            assert_eq!(
                back,
                &original,
                "{} changed through apply -> get -o yaml",
                path.display()
            );
            compared += 1;
        }
    }
    println!("compat corpus: {compared} objects applied and read back unchanged");
    assert!(compared >= 180, "{compared}");
}

fn ops_walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(ops_walk(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn tables_yaml_json_and_describe_never_show_secrets() {
    let ops = Ops::new();
    ops.run(&["apply", "-f", "hosts.yaml", "-f", "library.yaml"])
        .ok();

    let table = ops.run(&["get", "hosts"]).ok();
    snap!("get_hosts_table", table.stdout);
    let all = ops.run(&["get", "ho", "-A", "-o", "wide"]).ok();
    snap!("get_hosts_all_namespaces_wide", all.stdout);

    let yaml = ops.run(&["get", "host", "web-1", "-o", "yaml"]).ok();
    snap!("get_host_yaml", yaml.stdout);
    let json = ops
        .run(&["get", "hosts", "db-1", "-n", "prod", "-o", "json"])
        .ok();
    snap!("get_host_json", json.stdout);
    let describe = ops.run(&["describe", "host", "web-1"]).ok();
    snap!("describe_host", describe.stdout);
    let task = ops.run(&["get", "task", "add-etchosts", "-o", "yaml"]).ok();
    snap!("get_task_yaml_redacts_secret_variables", task.stdout);

    for out in [&table, &all, &yaml, &json, &describe, &task] {
        for secret in ["hunter2", "b3BlbnNzaC1rZXktdjEAAAAA", "s3cret"] {
            assert!(
                !out.stdout.contains(secret),
                "leaked {secret}:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn describe_pipeline_flags_missing_task_refs() {
    let ops = Ops::new();
    ops.run(&["apply", "-f", "library.yaml"]).ok();
    let out = ops.run(&["describe", "pl", "fix-hosts"]).ok();
    snap!("describe_pipeline", out.stdout);
    assert!(
        out.stdout
            .contains("check-hosts (MISSING: no Task `check-hosts`")
    );
}

#[test]
fn directory_apply_reports_every_bad_file_and_applies_no_partial_file() {
    let ops = Ops::new();
    let out = ops.run(&["apply", "-f", "bad"]);
    assert_eq!(out.code, 1);
    snap!("apply_bad_directory_stdout", out.stdout);
    snap!("apply_bad_directory_stderr", scrub(&ops, &out.stderr));
    let tasks = ops.run(&["get", "tasks", "-o", "name"]).ok();
    assert_eq!(
        tasks.stdout, "task/good-task\n",
        "half-ok must not be applied alone"
    );
    let hosts = ops.run(&["get", "hosts", "-o", "name"]).ok();
    assert_eq!(hosts.stdout, "");
}

#[test]
fn apply_is_idempotent_and_reports_changes() {
    let ops = Ops::new();
    let first = ops.run(&["apply", "-f", "library.yaml"]).ok();
    assert_eq!(
        first.stdout,
        "task/add-etchosts created\npipeline/fix-hosts created\n"
    );
    let again = ops.run(&["apply", "-f", "library.yaml"]).ok();
    assert_eq!(
        again.stdout,
        "task/add-etchosts unchanged\npipeline/fix-hosts unchanged\n"
    );
    let text = std::fs::read_to_string(fixtures().join("library.yaml")).unwrap();
    let changed = ops
        .run_stdin(
            &["apply", "-f", "-"],
            &text.replace("fix /etc/hosts then check", "new desc"),
        )
        .ok();
    assert_eq!(
        changed.stdout,
        "task/add-etchosts unchanged\npipeline/fix-hosts configured\n"
    );
    let dry = ops
        .run(&["apply", "-f", "hosts.yaml", "--dry-run", "-o", "json"])
        .ok();
    assert!(dry.stdout.contains("valid (dry run)"), "{}", dry.stdout);
    assert_eq!(
        ops.run(&["get", "hosts", "-A", "-o", "name"]).ok().stdout,
        ""
    );
}

#[test]
fn selectors_namespaces_and_kind_aliases() {
    let ops = Ops::new();
    ops.run(&["apply", "-f", "hosts.yaml"]).ok();
    for kind in ["host", "hosts", "ho", "HOST", "hosts.ops.dev"] {
        let out = ops.run(&["get", kind, "-o", "name"]).ok();
        assert_eq!(out.stdout, "host/web-1\nhost/web-2\n", "{kind}");
    }
    let web = ops
        .run(&[
            "get",
            "hosts",
            "-A",
            "-l",
            "role=web,env=prod",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(web.stdout, "host/web-1\n");
    let not_web = ops
        .run(&["get", "hosts", "-A", "-l", "role!=web", "-o", "name"])
        .ok();
    assert_eq!(not_web.stdout, "host/db-1\n");
    let prod = ops.run(&["get", "hosts", "-n", "prod", "-o", "name"]).ok();
    assert_eq!(prod.stdout, "host/db-1\n");
    let empty = ops.run(&["get", "tasks"]).ok();
    assert_eq!(empty.stderr, "No tasks found in namespace ops-system.\n");

    let bad_kind = ops.run(&["get", "hostz"]);
    assert_eq!(bad_kind.code, 1);
    snap!("unknown_kind_error", bad_kind.stderr);
    let bad_sel = ops.run(&["get", "hosts", "-l", "=x"]);
    assert_eq!(bad_sel.code, 1);
    assert!(
        bad_sel.stderr.contains("invalid label selector"),
        "{}",
        bad_sel.stderr
    );
    let missing = ops.run(&["get", "host", "web-1", "nope"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stdout.contains("web-1"));
    assert!(
        missing
            .stderr
            .contains("Host `nope` not found in namespace ops-system"),
        "{}",
        missing.stderr
    );
}

#[test]
fn delete_by_name_and_by_file() {
    let ops = Ops::new();
    ops.run(&["apply", "-f", "hosts.yaml", "-f", "library.yaml"])
        .ok();
    let out = ops.run(&["delete", "host", "web-1", "web-2"]).ok();
    assert_eq!(out.stdout, "host/web-1 deleted\nhost/web-2 deleted\n");
    let again = ops.run(&["delete", "host", "web-1"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("Host `web-1` not found"),
        "{}",
        again.stderr
    );
    ops.run(&["delete", "host", "web-1", "--ignore-not-found"])
        .ok();
    let by_file = ops.run(&["delete", "-f", "library.yaml"]).ok();
    assert_eq!(
        by_file.stdout,
        "task/add-etchosts deleted\npipeline/fix-hosts deleted\n"
    );
    assert_eq!(
        ops.run(&["get", "hosts", "-A", "-o", "name"]).ok().stdout,
        "host/db-1\n"
    );
}

#[test]
fn create_host_from_addresses_and_files() {
    let ops = Ops::new();
    let key = ops.home().join("id_test");
    std::fs::write(&key, "not really a key").unwrap();
    let out = ops
        .run(&[
            "create",
            "host",
            "-i",
            "127.0.0.5,127.0.0.6",
            "--name",
            "lab",
            "--username",
            "ops",
            "--port",
            "2022",
            "--key-file",
            key.to_str().unwrap(),
            "-l",
            "role=lab",
        ])
        .ok();
    assert_eq!(out.stdout, "host/lab-1 created\nhost/lab-2 created\n");
    let y = ops.run(&["get", "host", "lab-2", "-o", "yaml"]).ok();
    snap!("create_host_yaml", scrub(&ops, &y.stdout));

    let list = ops.home().join("inventory.txt");
    std::fs::write(&list, "# lab\n127.0.0.7\n\n127.0.0.8  # second\n").unwrap();
    ops.run(&["create", "host", "-i", list.to_str().unwrap()])
        .ok();
    let names = ops.run(&["get", "hosts", "-o", "name"]).ok();
    assert_eq!(
        names.stdout,
        "host/127-0-0-7\nhost/127-0-0-8\nhost/lab-1\nhost/lab-2\n"
    );

    let pw = ops
        .run_stdin(
            &[
                "create",
                "host",
                "-i",
                "127.0.0.9",
                "--name",
                "pw",
                "--password-stdin",
            ],
            "topsecret\n",
        )
        .ok();
    assert_eq!(pw.stdout, "host/pw created\n");
    let d = ops.run(&["describe", "host", "pw"]).ok();
    assert!(
        d.stdout.contains("Password:       <redacted>"),
        "{}",
        d.stdout
    );
    assert!(!d.stdout.contains("topsecret"));

    let dry = ops
        .run(&["create", "host", "-i", "10.9.8.7", "--dry-run"])
        .ok();
    assert!(dry.stdout.contains("name: 10-9-8-7"), "{}", dry.stdout);
    assert!(
        ops.run(&["get", "host", "10-9-8-7"]).code != 0,
        "dry run stored nothing"
    );

    let missing_key = ops.run(&[
        "create",
        "host",
        "-i",
        "127.0.0.10",
        "--key-file",
        "/nonexistent/key",
    ]);
    assert_eq!(missing_key.code, 1);
    assert!(
        missing_key
            .stderr
            .contains("key file /nonexistent/key not found"),
        "{}",
        missing_key.stderr
    );
    let bad_name = ops.run(&["create", "host", "-i", "127.0.0.10", "--name", "Bad Name"]);
    assert_eq!(bad_name.code, 1);
    assert!(
        bad_name.stderr.contains("is not valid"),
        "{}",
        bad_name.stderr
    );
}

#[test]
fn create_cluster_stores_a_reference_or_an_embedded_secret() {
    let ops = Ops::new();
    ops.run(&[
        "create",
        "cluster",
        "-i",
        "kubeconfig.yaml",
        "--name",
        "lab",
    ])
    .ok();
    let y = ops.run(&["get", "cluster", "lab", "-o", "yaml"]).ok();
    snap!("create_cluster_reference_yaml", scrub(&ops, &y.stdout));
    ops.run(&[
        "create",
        "cluster",
        "-i",
        "kubeconfig.yaml",
        "--name",
        "embedded",
        "--embed",
    ])
    .ok();
    let e = ops.run(&["get", "cluster", "embedded", "-o", "json"]).ok();
    assert!(
        e.stdout.contains("\"config\": \"<redacted>\""),
        "{}",
        e.stdout
    );
    assert!(!e.stdout.contains("abc.def") && !e.stdout.contains("LS0tLS1CRUdJTi"));
    let table = ops.run(&["get", "clusters"]).ok();
    snap!("get_clusters_table", table.stdout);
    let bad = ops.run(&["create", "cluster", "-i", "bad/a-good.yaml", "--name", "x"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("kubeconfig has no current-context"),
        "{}",
        bad.stderr
    );
}

#[cfg(unix)]
#[test]
fn store_and_config_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let ops = Ops::new();
    ops.run(&["apply", "-f", "hosts.yaml"]).ok();
    ops.run(&["config", "set", "namespace", "team-a"]).ok();
    for f in ["ops.db", "config.yaml"] {
        let mode = std::fs::metadata(ops.home().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn config_precedence_is_flag_then_env_then_file_then_default() {
    let ops = Ops::new();
    let get = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["config", "get", "namespace"];
        args.extend_from_slice(extra);
        ops.run_env(&args, env).ok().stdout
    };
    assert_eq!(get(&[], &[]), "ops-system\n");
    ops.run(&["config", "set", "namespace", "from-file"]).ok();
    assert_eq!(get(&[], &[]), "from-file\n");
    assert_eq!(get(&[("OPS_NAMESPACE", "from-env")], &[]), "from-env\n");
    assert_eq!(
        get(&[("OPS_NAMESPACE", "from-env")], &["-n", "from-flag"]),
        "from-flag\n"
    );

    let list = ops
        .run_env(&["config", "list"], &[("OPS_OUTPUT", "yaml")])
        .ok();
    snap!("config_list", scrub(&ops, &list.stdout));

    // The file's namespace is used by apply and get.
    ops.run(&["apply", "-f", "library.yaml"]).ok();
    assert_eq!(
        ops.run(&["get", "tasks", "-n", "from-file", "-o", "name"])
            .ok()
            .stdout,
        "task/add-etchosts\n"
    );

    let bad = ops.run(&["config", "set", "namespace", "Not Valid"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("namespace `Not Valid` is not valid"),
        "{}",
        bad.stderr
    );
    let unknown = ops.run(&["config", "set", "colour", "blue"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains(
            "unknown setting `colour`; known settings: namespace, store, output, known-hosts, forks"
        ),
        "{}",
        unknown.stderr
    );
    let bad_env = ops.run_env(&["get", "tasks"], &[("OPS_OUTPUT", "xml")]);
    assert_eq!(bad_env.code, 1);
    assert!(
        bad_env.stderr.contains("setting `output` from $OPS_OUTPUT"),
        "{}",
        bad_env.stderr
    );

    ops.run(&["config", "unset", "namespace"]).ok();
    assert_eq!(get(&[], &[]), "ops-system\n");
    let store = ops.home().join("elsewhere.db");
    ops.run(&["config", "set", "store", "elsewhere.db"]).ok();
    ops.run(&["apply", "-f", "hosts.yaml"]).ok();
    assert!(
        store.exists(),
        "relative store path resolved against OPS_HOME"
    );
}

#[test]
fn a_broken_config_file_names_itself_and_can_be_repaired() {
    let ops = Ops::new();
    std::fs::write(ops.home().join("config.yaml"), "namespace: BAD NS\n").unwrap();
    let out = ops.run(&["get", "tasks"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("config.yaml"), "{}", out.stderr);
    ops.run(&["config", "set", "namespace", "good"]).ok();
    ops.run(&["get", "tasks"]).ok();
}

#[test]
fn shell_completions() {
    let ops = Ops::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = ops.run(&["completion", shell]).ok();
        assert!(out.stdout.contains("opscli"), "{shell}");
        assert!(out.stdout.contains("apply"), "{shell}");
    }
}

#[test]
fn two_processes_applying_at_once_corrupt_nothing() {
    let ops = Ops::new();
    let dir = ops.home().join("many");
    for side in ["a", "b"] {
        let d = dir.join(side);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..60 {
            std::fs::write(
                d.join(format!("h{i}.yaml")),
                format!("apiVersion: ops.dev/v1\nkind: Host\nmetadata:\n  name: {side}-{i}\nspec:\n  address: 127.0.0.1\n"),
            )
            .unwrap();
        }
    }
    let spawn = |side: &str| {
        ops.command()
            .args(["apply", "-f", dir.join(side).to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = ops.run(&["get", "hosts", "-o", "name"]).ok();
    assert_eq!(names.stdout.lines().count(), 120);
    let conn = rusqlite_check(&ops.home().join("ops.db"));
    assert_eq!(conn, "ok");
}

fn rusqlite_check(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let ops = Ops::new();
    let dir = corpus();
    ops.run(&["apply", "-f", dir.to_str().unwrap()]).ok();
    let mut child = ops
        .command()
        .args(["get", "tasks", "-o", "yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
