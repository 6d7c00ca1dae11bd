//! `opscli hook` and `opscli --nats`: a webhook hook tested against a
//! local receiver, `hook run` delivering events another process publishes
//! (and stopping cleanly on Ctrl-C), deliveries recorded and listed; the
//! event commands against a real nats-server, including an outage that
//! parks events in the outbox until `events flush` sends them.

use ops_testkit::nats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::Ops;

const DISK: &str = "ops.clusters.c1.namespaces.ops-system.hosts.web-1.findings";

/// Requests seen: (head, body).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A tiny HTTP receiver: records each request's headers and body,
/// answers 200.
fn receiver() -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    s.lock()
                        .unwrap()
                        .push((head, String::from_utf8_lossy(&body).into_owned()));
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                }
            });
        }
    });
    (url, seen)
}

/// Ctrl-C to a running `opscli`: it must exit 0; returns its stderr.
fn interrupt(mut child: std::process::Child) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    err
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hook_test_run_and_deliveries() {
    let ops = Ops::new();
    let (url, seen) = receiver();
    let hooks = format!(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: alert-hosts-disk}}\nspec:\n  type: webhook\n  subject: ops.clusters.*.namespaces.ops-system.hosts.*.findings\n  url: {url}/hook\n  options: {{secret: '${{env:HOOK_SECRET}}'}}\n  keywords: {{include: [alerting, alert-hosts-disk], matchMode: ALL}}\n"
    );
    ops.run_stdin(&["apply", "-f", "-"], &hooks).ok();
    let ev = ops.home().join("event.json");
    std::fs::write(
        &ev,
        format!(
            r#"{{"subject":"{DISK}","data":{{"task":"alert-hosts-disk","status":"alerting"}}}}"#
        ),
    )
    .unwrap();
    let t = ops.run_env(
        &[
            "hook",
            "test",
            "alert-hosts-disk",
            "--event",
            ev.to_str().unwrap(),
        ],
        &[("HOOK_SECRET", "k1")],
    );
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    assert!(t.stdout.contains("subject   matches"), "{}", t.stdout);
    assert!(
        t.stdout
            .contains("delivery  delivered after 1 attempt(s), HTTP 200"),
        "{}",
        t.stdout
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0]
                .0
                .to_lowercase()
                .contains("x-ops-signature-256: sha256="),
            "{}",
            seen[0].0
        );
    }
    // A healthy finding does not pass the keywords: nothing sent, exit 1.
    std::fs::write(
        &ev,
        format!(r#"{{"subject":"{DISK}","data":{{"task":"alert-hosts-disk","status":"normal"}}}}"#),
    )
    .unwrap();
    let t = ops.run(&[
        "hook",
        "test",
        "alert-hosts-disk",
        "--event",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(t.code, 1);
    assert!(t.stdout.contains("keywords  filtered out"), "{}", t.stdout);
    let t = ops.run(&["hook", "test", "nope", "--event", ev.to_str().unwrap()]);
    assert!(t.stderr.contains("no EventHooks `nope`"), "{}", t.stderr);

    // `hook run` delivers what another process publishes.
    let run = ops
        .command()
        .args(["hook", "run", "--reload", "1"])
        .env("HOOK_SECRET", "k1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    for status in ["alerting", "normal", "alerting"] {
        ops.run(&[
            "events",
            "publish",
            DISK,
            "-d",
            &format!(r#"{{"task":"alert-hosts-disk","status":"{status}"}}"#),
        ])
        .ok();
    }
    wait_until("two deliveries", || seen.lock().unwrap().len() >= 3);
    // A hook applied while it runs is picked up.
    ops.run_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: gpu}}\nspec: {{type: webhook, subject: 'ops.clusters.*.nodes.*.findings', url: '{url}/gpu'}}\n"
        ),
    )
    .ok();
    std::thread::sleep(Duration::from_millis(2500));
    ops.run(&[
        "events",
        "publish",
        "ops.clusters.c1.nodes.gpu-1.findings",
        "-d",
        "{}",
    ])
    .ok();
    wait_until("the new hook's delivery", || {
        seen.lock().unwrap().len() >= 4
    });
    assert!(
        seen.lock().unwrap()[3].0.starts_with("POST /gpu "),
        "{:?}",
        seen.lock().unwrap()[3].0
    );
    let err = interrupt(run);
    assert!(
        err.contains("running 1 hook(s) on the store's event log"),
        "{err}"
    );
    assert!(err.contains("hooks changed: reloading"), "{err}");
    assert!(err.contains("3 delivered, 0 failed"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 4);

    let d = ops.run(&["hook", "deliveries", "-o", "json"]).ok();
    let recs: Vec<serde_json::Value> = serde_json::from_str(&d.stdout).unwrap();
    assert_eq!(recs.len(), 4);
    assert!(
        recs[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("(hook test)")
    );
    assert!(recs.iter().all(|r| r["status"] == "delivered"));
    // Found again by the event it carried; the table counts its events.
    let id = recs[2]["event_id"].as_str().unwrap();
    let d = ops
        .run(&["hook", "deliveries", "--event", id, "-o", "json"])
        .ok();
    let one: Vec<serde_json::Value> = serde_json::from_str(&d.stdout).unwrap();
    assert_eq!(one.len(), 1, "{}", d.stdout);
    assert_eq!(one[0]["event_id"], recs[2]["event_id"]);
    let t = ops.run(&["hook", "deliveries", "--event", id]).ok();
    assert!(t.stdout.contains("EVENTS"), "{}", t.stdout);
    let l = ops.run(&["hook", "list"]).ok();
    assert!(
        l.stdout.contains("ops-system/alert-hosts-disk"),
        "{}",
        l.stdout
    );
    assert!(l.stdout.contains("delivered"), "{}", l.stdout);
}

#[test]
fn events_over_nats_with_an_outage() {
    let mut server = nats::NatsServer::start();
    let ops = Ops::new();
    let url = server.url.clone();
    let publish = |n: u32| {
        ops.run(&[
            "--nats",
            &url,
            "events",
            "publish",
            DISK,
            "-d",
            &format!(r#"{{"n":{n}}}"#),
        ])
    };
    publish(1).ok();
    let q = ops
        .run_env(
            &["events", "query", "ops.>", "-o", "json"],
            &[("OPS_NATS_URL", &url)],
        )
        .ok();
    assert_eq!(q.stdout.lines().count(), 1, "{}", q.stdout);
    assert!(q.stdout.contains(r#""n":1"#));
    // Not in the embedded log: the stream is the feed now.
    let local = ops.run(&["events", "query", "ops.>"]).ok();
    assert!(local.stdout.is_empty(), "{}", local.stdout);

    server.kill();
    let p = publish(2).ok();
    assert!(
        p.stderr.contains("1 event(s) wait in the outbox"),
        "{}",
        p.stderr
    );
    let f = ops.run(&["--nats", &url, "events", "flush"]);
    assert_eq!(f.code, 1, "{}", f.stdout);
    assert!(f.stdout.contains("1 waiting in the outbox"), "{}", f.stdout);
    server.restart();
    let f = ops.run(&["--nats", &url, "events", "flush"]).ok();
    assert!(f.stdout.contains("0 waiting in the outbox"), "{}", f.stdout);
    let q = ops
        .run(&["--nats", &url, "events", "query", "ops.>", "-o", "json"])
        .ok();
    assert_eq!(q.stdout.lines().count(), 2, "{}", q.stdout);
    assert!(q.stdout.contains(r#""n":2"#));

    let bad = ops.run(&["--nats", "http://x", "events", "query"]);
    assert!(bad.stderr.contains("must be nats://"), "{}", bad.stderr);
    let bad = ops.run(&["config", "set", "nats-retention", "a week"]);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

/// The stream ops creates takes its retention and duplicate window from
/// the settings.
#[test]
fn the_stream_is_created_with_the_configured_retention() {
    let server = nats::NatsServer::start();
    let ops = Ops::new();
    ops.run(&["config", "set", "nats-retention", "2h"]).ok();
    ops.run_env(
        &["--nats", &server.url, "events", "publish", DISK],
        &[
            ("OPS_NATS_DEDUP_WINDOW", "90s"),
            ("OPS_NATS_STREAM", "opsx"),
        ],
    )
    .ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = rt.block_on(async {
        let n =
            ops_events::nats::Nats::connect(ops_events::nats::NatsConfig::new(&server.url), true)
                .await
                .unwrap();
        let mut s = n.js.get_stream("opsx").await.unwrap();
        s.info().await.unwrap().config.clone()
    });
    assert_eq!(cfg.max_age, Duration::from_secs(7200));
    assert_eq!(cfg.duplicate_window, Duration::from_secs(90));
    assert_eq!(cfg.subjects, vec!["ops.>".to_owned()]);
}

/// A `task` hook: the Task changes the host, so its call (an `Op::Invoke`
/// through the gate, no model) waits for an approval decided with
/// `opscli approval` from another process; an approved run goes ahead
/// once, a denied one does not, and both outcomes are recorded as
/// deliveries. The audit names who asked (ops for the hook) and who
/// decided (the OS account that ran `opscli approval`).
#[test]
fn task_hooks_go_through_the_approval_gate() {
    let ops = Ops::new();
    let marker = ops.home().join("marker");
    let objs = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: here}}\nspec: {{address: 127.0.0.1}}\n---\napiVersion: crd.chenshaowen.com/v1\nkind: Task\nmetadata: {{name: clear-disk}}\nspec:\n  steps:\n    - name: mark\n      content: echo ${{reason}} >> {}\n---\napiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: auto-clear}}\nspec:\n  type: task\n  subject: ops.clusters.*.namespaces.ops-system.hosts.*.findings\n  url: clear-disk\n  options: {{var.reason: disk-full}}\n  keywords: {{include: [alerting]}}\n",
        marker.display()
    );
    ops.run_stdin(&["apply", "-f", "-"], &objs).ok();
    let run = ops
        .command()
        .args(["hook", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let here = "ops.clusters.c1.namespaces.ops-system.hosts.here.findings";
    let pending = || -> Vec<serde_json::Value> {
        let l = ops.run(&["approval", "list", "-o", "json"]).ok();
        serde_json::from_str(&l.stdout).unwrap()
    };
    for round in ["approve", "deny"] {
        ops.run(&["events", "publish", here, "-d", r#"{"status":"alerting"}"#])
            .ok();
        wait_until("an approval request", || !pending().is_empty());
        let p = pending();
        assert_eq!(p.len(), 1, "{p:?}");
        let id = p[0]["id"].as_str().unwrap().to_owned();
        assert!(
            p[0]["session_id"]
                .as_str()
                .unwrap()
                .starts_with("hook-auto-clear-")
        );
        let req = p[0]["request"].as_str().unwrap();
        assert!(
            req.contains("clear-disk") && req.contains("\"here\""),
            "{req}"
        );
        if round == "approve" {
            // Nothing ran before the decision.
            assert!(!marker.exists());
            ops.run(&["approval", "approve", &id]).ok();
            // Woken by the store's change signal: the waiter re-reads on
            // its own only every 30 s, so a run within 15 s was pushed.
            let decided = Instant::now();
            while !marker.exists() {
                assert!(
                    decided.elapsed() < Duration::from_secs(15),
                    "the approved run did not follow the decision"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(
                std::fs::read_to_string(&marker).unwrap().trim(),
                "disk-full"
            );
        } else {
            ops.run(&["approval", "deny", &id, "--reason", "not now"])
                .ok();
        }
        wait_until("the session's result", || {
            let d = ops
                .run(&["hook", "deliveries", "auto-clear", "-o", "json"])
                .ok();
            let recs: Vec<serde_json::Value> = serde_json::from_str(&d.stdout).unwrap();
            recs.iter().filter(|r| r["status"] != "started").count()
                == if round == "approve" { 1 } else { 2 }
        });
    }
    // `hook test` on an action hook waits for its session (which would
    // otherwise die with the command) and reports how it ended.
    let ev = ops.home().join("event.json");
    std::fs::write(
        &ev,
        format!(r#"{{"subject":"{here}","data":{{"status":"alerting"}}}}"#),
    )
    .unwrap();
    let test = ops
        .command()
        .args([
            "hook",
            "test",
            "auto-clear",
            "--event",
            ev.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the test's approval request", || !pending().is_empty());
    let id = pending()[0]["id"].as_str().unwrap().to_owned();
    ops.run(&["approval", "deny", &id, "--reason", "only a test"])
        .ok();
    let out = test.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("delivery  refused"), "{stdout}");
    assert!(stdout.contains("only a test"), "{stdout}");
    interrupt(run);
    // Ran once: the denied calls did not run.
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1);
    let d = ops
        .run(&["hook", "deliveries", "auto-clear", "-o", "json"])
        .ok();
    let recs: Vec<serde_json::Value> = serde_json::from_str(&d.stdout).unwrap();
    let statuses: Vec<&str> = recs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["started", "done", "started", "refused", "refused"],
        "{recs:?}"
    );
    assert!(
        recs[3]["detail"].as_str().unwrap().contains("not now"),
        "{recs:?}"
    );
    // The decisions are audited in the hook's sessions, under the OS
    // account that made them; the calls under the hook that asked.
    let audit = ops.run(&["audit", "show", "-o", "json"]).ok();
    let uid = nix::unistd::getuid();
    assert!(
        audit.stdout.contains(&format!("(local uid {uid})")),
        "{}",
        audit.stdout
    );
    assert!(
        audit
            .stdout
            .contains("ops:eventhooks/ops-system/auto-clear (system)"),
        "{}",
        audit.stdout
    );
}

/// A hook that no longer compiles (stored before `apply` checked hooks,
/// or edited behind its back) is skipped with a warning naming it; the
/// others still list and run. It used to stop every hook.
#[test]
fn regression_a_broken_hook_never_stops_the_others() {
    let ops = Ops::new();
    let (url, _seen) = receiver();
    for name in ["good", "broken"] {
        let hook = format!(
            "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: {name}}}\nspec:\n  type: webhook\n  subject: ops.clusters.*.namespaces.ops-system.hosts.*.findings\n  url: {url}/hook\n"
        );
        let a = ops.run_stdin(&["apply", "-f", "-"], &hook);
        assert_eq!(a.code, 0, "{}", a.stderr);
    }
    // `apply` refuses a bad regex now; put one in behind its back.
    let db = rusqlite::Connection::open(ops.home().join("ops.db")).unwrap();
    let n = db
        .execute(
            "UPDATE objects SET body = json_set(body, '$.spec.keywords', json('{\"matchType\":\"REGEX\",\"include\":[\"(unclosed\"]}')) WHERE name = 'broken'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let l = ops.run(&["hook", "list"]);
    assert_eq!(l.code, 0, "{}{}", l.stdout, l.stderr);
    assert!(l.stdout.contains("good"), "{}", l.stdout);
    assert!(
        l.stderr.contains("broken") && l.stderr.contains("skipped"),
        "{}",
        l.stderr
    );
    let ev = ops.home().join("event.json");
    std::fs::write(
        &ev,
        format!(r#"{{"subject":"{DISK}","data":{{"status":"alerting"}}}}"#),
    )
    .unwrap();
    let t = ops.run(&["hook", "test", "good", "--event", ev.to_str().unwrap()]);
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    assert!(t.stdout.contains("delivered"), "{}", t.stdout);
}
