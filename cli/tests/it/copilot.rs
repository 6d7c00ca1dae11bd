//! `opscli copilot` against a scripted OpenAI-compatible server (no live
//! model) and this machine as the Host: one-question mode runs reads and
//! refuses changes (nobody to approve), the chat asks and honours y / n,
//! and a missing endpoint is a clear error. The server streams (SSE) when
//! asked to, as real endpoints do.

use crate::common::Ops;
use ops_evals::scripted::ScriptedServer;
use serde_json::{Value, json};

/// The scripted OpenAI-compatible server the eval suite uses (JSON and
/// SSE), with these replies queued.
async fn server(replies: Vec<Value>) -> (String, ScriptedServer) {
    let s = ScriptedServer::start().await.unwrap();
    s.load_messages(replies);
    (s.base_url.clone(), s)
}

fn call(name: &str, args: Value) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("c-{name}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}]})
}

fn say(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

fn with_host(ops: &Ops) {
    ops.run_stdin(
        &["apply", "-f", "-"],
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {name: here}\nspec: {address: 127.0.0.1}\n",
    )
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_question_runs_reads_and_refuses_changes() {
    let ops = Ops::new();
    with_host(&ops);
    let marker = ops.home().join("marker");
    let (url, s) = server(vec![
        call("host_run_shell", json!({"hosts": "here", "command": "printf checked-%s%s 4 2"})),
        call("host_run_shell", json!({"hosts": "here", "command": format!("touch {}", marker.display()), "reason": "test"})),
        say("Checked: 42. I could not create the marker without approval."),
    ])
    .await;
    let out = tokio::task::block_in_place(|| {
        ops.run_env(
            &["copilot", "-p", "check here", "-o", "json"],
            &[("OPENAI_BASE_URL", &url), ("OPENAI_API_KEY", "sk-x")],
        )
    })
    .ok();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"tool_finished"), "{kinds:?}");
    assert!(kinds.contains(&"approval_requested"), "{kinds:?}");
    assert!(
        events.iter().any(|e| e["event"] == "refused"
            && e["reason"].as_str().unwrap().contains("one-question mode")),
        "{}",
        out.stdout
    );
    assert_eq!(events.last().unwrap()["event"], "turn_complete");
    assert!(out.stdout.contains("checked-42"));
    assert!(!marker.exists(), "nothing changed without approval");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0]["tools"].as_array().unwrap().len() >= 18);
    assert_eq!(reqs[0]["stream"], true);
    let streamed: String = events
        .iter()
        .filter(|e| e["event"] == "answer_delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        streamed,
        "Checked: 42. I could not create the marker without approval."
    );
    let audit = ops.run(&["audit", "verify"]).ok();
    assert!(
        audit.stdout.contains("audit log intact"),
        "{}",
        audit.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_asks_and_honours_the_answer() {
    let ops = Ops::new();
    with_host(&ops);
    let marker = ops.home().join("marker");
    let touch = json!({"hosts": "here", "command": format!("touch {}", marker.display()), "reason": "asked to"});
    let (url, _s) = server(vec![
        call("host_run_shell", touch.clone()),
        say("Not done: you said no."),
        call("host_run_shell", touch),
        say("Done."),
    ])
    .await;
    let env = [("OPENAI_BASE_URL", url.as_str())];
    let out = tokio::task::block_in_place(|| {
        let mut c = ops.command();
        c.args(["copilot"]);
        for (k, v) in env {
            c.env(k, v);
        }
        use std::io::Write;
        use std::process::Stdio;
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"create the marker\nd\nn not now\ncreate it now please\ny\n")
            .unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // [d]etails, then the question again.
    assert_eq!(stdout.matches("?? approval").count(), 3, "{stdout}");
    assert!(stdout.contains("targets: here"), "{stdout}");
    assert!(stdout.contains("bound to call "), "{stdout}");
    assert!(stdout.contains("\"reason\": \"asked to\""), "{stdout}");
    assert!(stdout.contains("not run: denied by"), "{stdout}");
    assert!(stdout.contains("Done."), "{stdout}");
    assert!(marker.exists(), "approved the second time");
    // Approvals requested and decided, and the rest of the audit trail,
    // are events on the feed.
    let ev = ops
        .run(&[
            "events",
            "query",
            "ops.clusters.local.namespaces.ops-system.approvals.>",
            "-o",
            "json",
        ])
        .ok();
    let kinds: Vec<String> = ev
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "dev.ops.approval.requested",
            "dev.ops.approval.decided",
            "dev.ops.approval.requested",
            "dev.ops.approval.decided"
        ],
        "{}",
        ev.stdout
    );
    assert!(
        ev.stdout.contains(r#""decision":"denied""#),
        "{}",
        ev.stdout
    );
    let audit = ops
        .run(&[
            "events",
            "query",
            "ops.clusters.local.namespaces.*.sessions.*.events",
            "--limit",
            "1000",
        ])
        .ok();
    assert!(
        audit.stdout.contains("dev.ops.audit.user_input"),
        "{}",
        audit.stdout
    );
    assert!(
        audit.stdout.contains("dev.ops.audit.tool_result"),
        "{}",
        audit.stdout
    );
}

#[test]
fn no_endpoint_is_a_clear_error_and_the_key_is_never_shown() {
    let ops = Ops::new();
    let out = ops.run(&["copilot", "-p", "hi"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no model endpoint is configured"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("scripts/local-model.sh"),
        "{}",
        out.stderr
    );
    let bad = ops.run(&["copilot", "-p", "hi", "--mode", "yolo"]);
    assert!(bad.stderr.contains("unknown mode `yolo`"), "{}", bad.stderr);
    ops.run(&["config", "set", "model-api-key", "sk-very-secret"])
        .ok();
    let list = ops.run(&["config", "list"]).ok();
    assert!(!list.stdout.contains("sk-very-secret"), "{}", list.stdout);
    assert!(list.stdout.contains("<redacted>"));
    let get = ops.run(&["config", "get", "model-api-key"]).ok();
    assert_eq!(get.stdout.trim(), "<redacted>");
    let bad_url = ops.run(&["config", "set", "model-url", "localhost:8080"]);
    assert!(
        bad_url.stderr.contains("must start with http://"),
        "{}",
        bad_url.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copilot_searches_runbooks_when_there_are_some() {
    let ops = Ops::new();
    let books = concat!(env!("CARGO_MANIFEST_DIR"), "/../evals/runbooks");
    ops.run(&["runbook", "add", books]).ok();
    let (url, s) = server(vec![
        call(
            "runbook_search",
            json!({"query": "inode exhaustion no space left but df shows free"}),
        ),
        say("Follow inode-exhaustion.md § Inode exhaustion (lines 5-8)."),
    ])
    .await;
    let out = tokio::task::block_in_place(|| {
        ops.run_env(
            &[
                "copilot",
                "-p",
                "no space left on device but df shows free space",
                "-o",
                "json",
            ],
            &[("OPENAI_BASE_URL", &url)],
        )
    })
    .ok();
    let finished: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "tool_finished")
        .collect();
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    assert!(
        finished[0]["output"]
            .as_str()
            .unwrap()
            .contains("inode-exhaustion.md § Inode exhaustion"),
        "{}",
        out.stdout
    );
    let reqs = s.requests();
    assert!(
        reqs[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "runbook_search")
    );
}

/// A `copilot` hook: an event starts a triage session on the configured
/// model (here the scripted server) with the event as input; reads run,
/// a change waits for an approval nobody gives (refused when it expires),
/// and the answer is recorded with the delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copilot_hook_triages_an_event_through_the_gate() {
    let ops = Ops::new();
    with_host(&ops);
    let marker = ops.home().join("marker");
    let (url, s) = server(vec![
        call("host_run_shell", json!({"hosts": "here", "command": "printf disk-%s%s 9 7"})),
        call("host_run_shell", json!({"hosts": "here", "command": format!("touch {}", marker.display()), "reason": "clean"})),
        say("Disk at 97%; cleaning needs approval."),
    ])
    .await;
    ops.run_stdin(
        &["apply", "-f", "-"],
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: triage}\nspec:\n  type: copilot\n  subject: ops.clusters.*.namespaces.*.hosts.*.alerts\n  url: You are on call.\n  options: {approval-ttl: '2'}\n",
    )
    .ok();
    let env = [
        ("OPENAI_BASE_URL", url.as_str()),
        ("OPS_TOOL_CALLS", "native"),
    ];
    let mut run = {
        let mut c = ops.command();
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(["hook", "run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    tokio::task::block_in_place(|| {
        ops.run(&[
            "events",
            "publish",
            "ops.clusters.c1.namespaces.ops-system.hosts.here.alerts",
            "-d",
            r#"{"message":"/var 97% used"}"#,
        ])
        .ok()
    });
    let mut recs: Vec<Value> = Vec::new();
    for _ in 0..300 {
        let d = tokio::task::block_in_place(|| {
            ops.run(&["hook", "deliveries", "triage", "-o", "json"])
                .ok()
        });
        recs = serde_json::from_str(&d.stdout).unwrap();
        if recs.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = tokio::task::block_in_place(|| run.wait());
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0]["status"], "started");
    assert_eq!(recs[1]["status"], "refused", "{recs:?}");
    let detail = recs[1]["detail"].as_str().unwrap();
    assert!(detail.contains("expired unanswered"), "{detail}");
    assert!(detail.contains("Disk at 97%"), "{detail}");
    assert!(!marker.exists(), "nothing changed without approval");
    let reqs = s.requests();
    let first = reqs[0]["messages"].to_string();
    assert!(first.contains("You are on call."), "{first}");
    assert!(first.contains("/var 97% used"), "{first}");
    // The read ran and its result went back to the model.
    assert!(reqs[1]["messages"].to_string().contains("disk-97"));
}

/// A chat's approval decided in another terminal (`opscli approval
/// approve`): the chat stops asking, the call runs once, and the chat's
/// own later `y` is not needed. The first decision wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_approval_decided_elsewhere_runs_and_stops_the_question() {
    let ops = Ops::new();
    with_host(&ops);
    let marker = ops.home().join("marker");
    let touch = json!({"hosts": "here", "command": format!("echo x >> {}", marker.display()), "reason": "asked to"});
    let (url, _s) = server(vec![call("host_run_shell", touch), say("Done.")]).await;
    let out = tokio::task::block_in_place(|| {
        use std::io::Write;
        use std::process::Stdio;
        let mut c = ops.command();
        c.args(["copilot"]).env("OPENAI_BASE_URL", &url);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"create the marker\n").unwrap();
        stdin.flush().unwrap();
        // The request is in the store: decide it from here.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let id = loop {
            let l = ops.run(&["approval", "list", "-o", "json"]).ok();
            let pending: Vec<Value> = serde_json::from_str(&l.stdout).unwrap();
            if let Some(p) = pending.first() {
                break p["id"].as_str().unwrap().to_owned();
            }
            assert!(std::time::Instant::now() < deadline, "no approval request");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        ops.run(&["approval", "approve", &id]).ok();
        while !marker.exists() {
            assert!(std::time::Instant::now() < deadline, "the call did not run");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("decided elsewhere"), "{stdout}");
    assert!(stdout.contains("Done."), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "ran once"
    );
}
