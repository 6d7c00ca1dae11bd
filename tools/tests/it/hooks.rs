//! EventHooks delivery against local receivers (axum on loopback) and a
//! real nats-server: webhooks signed and retried (the receiver fails the
//! first attempts), 4xx not retried, an unreachable sink reported, Slack
//! Block Kit, Elasticsearch dated indices, the anchor's findings -> alerts
//! re-publish, and durable consumers that resume after a restart, both on
//! the embedded log and on JetStream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;
use ops_events::dispatch::Dispatcher;
use ops_events::feed::{Feed, FeedConfig};
use ops_events::hooks::{Deliverer, Hook, Retry, signature};
use ops_events::log;
use ops_events::nats::NatsConfig;
use ops_model::Object;
use ops_model::event::CloudEvent;
use ops_model::event::subject::{self, Channel};
use ops_store::{SqliteStore, Store};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    calls: Arc<AtomicUsize>,
    /// Answer this status to the first `fail_first` calls.
    fail_first: usize,
    fail_with: u16,
    /// Body of a 200 answer.
    reply: &'static str,
}

async fn receive(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    r.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    if n < r.fail_first {
        (StatusCode::from_u16(r.fail_with).unwrap(), "")
    } else {
        (StatusCode::OK, r.reply)
    }
}

async fn start(r: Receiver) -> String {
    let app = Router::new().fallback(any(receive)).with_state(r);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn quick() -> Retry {
    Retry {
        retries: 4,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap())
}

fn hook(yaml: &str) -> Hook {
    let obj = Object::from_yaml_str(ops_model::Kind::EventHooks, yaml).unwrap();
    let Object::EventHooks(h) = obj else { panic!() };
    Hook::compile(&h).unwrap()
}

/// An EventHooks `name` in ops-system with `spec` (YAML flow mapping
/// contents).
fn ops_hook(name: &str, spec: &str) -> Hook {
    hook(&format!(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: {name}, namespace: ops-system}}\nspec: {{{spec}}}\n"
    ))
}

fn finding(host: &str, task: &str, status: &str) -> CloudEvent {
    CloudEvent::new(
        "opscli/test",
        "dev.ops.taskrun.report",
        subject::object("c1", "ops-system", "hosts", host, Channel::Findings),
        json!({"task": task, "status": status, "message": format!("{task} on {host}"), "severity": "critical"}),
    )
    .in_cluster("c1")
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_until_the_receiver_takes_them() {
    let r = Receiver {
        fail_first: 2,
        fail_with: 503,
        ..Receiver::default()
    };
    let url = start(r.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::new(Feed::embedded(store(&dir)), None, quick());
    let h = hook(&format!(
        r#"
apiVersion: crd.chenshaowen.com/v1
kind: EventHooks
metadata: {{name: disk, namespace: ops-system}}
spec:
  type: webhook
  subject: ops.clusters.*.namespaces.ops-system.hosts.*.findings
  url: {url}/hook
  additional: "action: clear-disk"
  options: {{secret: s3cret, header.X-Team: sre}}
  keywords: {{include: [alerting, alert-hosts-disk], matchMode: ALL}}
"#
    ));
    let e = finding("web-1", "alert-hosts-disk", "alerting");
    assert!(h.wants(&e));
    assert!(!h.wants(&finding("web-1", "alert-hosts-disk", "normal")));
    let rec = d.deliver(&h, &e).await;
    assert_eq!(rec.status, "delivered", "{rec:?}");
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.code, Some(200));
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/hook");
    let sig = last.headers["x-ops-signature-256"].to_str().unwrap();
    assert_eq!(sig, signature(b"s3cret", &last.body));
    assert_eq!(last.headers["x-ops-event-id"].to_str().unwrap(), e.id);
    assert_eq!(last.headers["x-team"].to_str().unwrap(), "sre");
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["additional"], "action: clear-disk");
    assert_eq!(body["data"]["task"], "alert-hosts-disk");
}

#[tokio::test]
async fn a_rejected_webhook_is_not_retried_and_an_unreachable_one_says_why() {
    let r = Receiver {
        fail_first: 100,
        fail_with: 400,
        ..Receiver::default()
    };
    let url = start(r.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::new(Feed::embedded(store(&dir)), None, quick());
    let yaml = |url: &str| {
        format!(
            "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: w, namespace: ops-system}}\nspec: {{type: webhook, subject: 'ops.>', url: '{url}'}}\n"
        )
    };
    let e = finding("web-1", "alert-hosts-disk", "alerting");
    let rec = d.deliver(&hook(&yaml(&url)), &e).await;
    assert_eq!(
        (rec.status.as_str(), rec.attempts, rec.code),
        ("failed", 1, Some(400))
    );
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let rec = d
        .deliver(&hook(&yaml(&format!("http://127.0.0.1:{port}/x"))), &e)
        .await;
    assert_eq!(rec.status, "failed");
    assert_eq!(rec.attempts, 5);
    assert!(rec.detail.contains("gave up after 5 attempts"), "{rec:?}");
    assert!(rec.detail.to_lowercase().contains("connect"), "{rec:?}");
}

#[tokio::test]
async fn slack_gets_block_kit_and_elasticsearch_a_dated_index() {
    let r = Receiver::default();
    let url = start(r.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::new(Feed::embedded(store(&dir)), None, quick());
    let e = finding("db-1", "alert-hosts-mem", "alerting");
    let slack = ops_hook(
        "s",
        &format!(
            "type: slack, subject: 'ops.>', url: '{url}/services/T0/B0/x', options: {{link: 'https://grafana.example/d/1'}}"
        ),
    );
    assert_eq!(d.deliver(&slack, &e).await.status, "delivered");
    let es = ops_hook(
        "es",
        &format!(
            "type: elasticsearch, subject: 'ops.>', url: '{url}/', options: {{index: ops-findings}}"
        ),
    );
    assert_eq!(d.deliver(&es, &e).await.status, "delivered");
    let seen = r.seen.lock().unwrap().clone();
    let msg: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert_eq!(msg["blocks"][0]["text"]["text"], "alert-hosts-mem on db-1");
    let fields = msg["blocks"][1]["fields"].to_string();
    assert!(fields.contains("*Severity*\\ncritical"), "{fields}");
    assert!(fields.contains("*Cluster*\\nc1"), "{fields}");
    assert!(
        msg["blocks"]
            .to_string()
            .contains("<https://grafana.example/d/1|Open>")
    );
    assert!(msg["text"].as_str().unwrap().starts_with("[critical]"));
    let day = chrono::Utc::now().format("%Y.%m.%d");
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(seen[1].path, format!("/ops-findings-{day}/_doc/{}", e.id));
    let doc: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(doc["@timestamp"], json!(e.time));
}

#[tokio::test]
async fn sink_documents_are_the_event_as_published() {
    let r = Receiver {
        reply: r#"{"took":1,"errors":false,"items":[]}"#,
        ..Receiver::default()
    };
    let url = start(r.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::new(Feed::embedded(store(&dir)), None, quick());
    let events: Vec<CloudEvent> = (0..3)
        .map(|i| finding(&format!("h{i}"), "alert-hosts-disk", "alerting"))
        .collect();
    // As another publisher sent them: an extension attribute this
    // process does not know, the second pretty-printed over lines.
    let texts: Vec<bytes::Bytes> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v = serde_json::to_value(e).unwrap();
            v["traceparent"] = json!(format!("00-{i:032x}-00f067aa0ba902b7-01"));
            let text = match i {
                1 => serde_json::to_string_pretty(&v).unwrap(),
                _ => v.to_string(),
            };
            text.into()
        })
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();

    // A batched webhook sends each event as published, pretty or not.
    let wh = ops_hook(
        "wh",
        &format!(
            "type: webhook, subject: 'ops.>', url: '{url}/batch', options: {{batch: '10', secret: k}}"
        ),
    );
    let recs = d.deliver_all_as_published(&wh, &events, &texts).await;
    assert_eq!(recs[0].status, "delivered", "{recs:?}");
    // A single webhook too; with `additional`, the hook's own document.
    let one = ops_hook(
        "one",
        &format!("type: webhook, subject: 'ops.>', url: '{url}/one'"),
    );
    let rec = d
        .deliver_as_published(&one, &events[0], Some(&texts[0]))
        .await;
    assert_eq!(rec.status, "delivered", "{rec:?}");
    let extra = ops_hook(
        "extra",
        &format!(
            "type: webhook, subject: 'ops.>', url: '{url}/extra', additional: 'runbook: disk'"
        ),
    );
    let rec = d
        .deliver_as_published(&extra, &events[0], Some(&texts[0]))
        .await;
    assert_eq!(rec.status, "delivered", "{rec:?}");
    // Elasticsearch: one line per document, `@timestamp` added; the
    // pretty one is written anew (a `_bulk` document is one line).
    let es = ops_hook(
        "es",
        &format!("type: elasticsearch, subject: 'ops.>', url: '{url}'"),
    );
    let recs = d.deliver_all_as_published(&es, &events, &texts).await;
    assert_eq!(recs[0].status, "delivered", "{recs:?}");

    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].path, "/batch");
    let expected = format!(
        "[{}]",
        texts
            .iter()
            .map(|t| std::str::from_utf8(t).unwrap())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(std::str::from_utf8(&seen[0].body).unwrap(), expected);
    assert_eq!(
        seen[0].headers["x-ops-signature-256"].to_str().unwrap(),
        signature(b"k", &seen[0].body)
    );
    assert_eq!(seen[1].body, texts[0].to_vec());
    let doc: Value = serde_json::from_slice(&seen[2].body).unwrap();
    assert_eq!(doc["additional"], "runbook: disk");
    assert_eq!(doc["id"], ids[0]);
    assert!(doc.get("traceparent").is_none(), "{doc}");
    assert_eq!(seen[3].path, "/_bulk");
    let lines: Vec<Value> = std::str::from_utf8(&seen[3].body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for (i, e) in events.iter().enumerate() {
        let doc = &lines[2 * i + 1];
        assert_eq!(lines[2 * i]["index"]["_id"], json!(e.id));
        assert_eq!(doc["id"], json!(e.id));
        assert_eq!(doc["@timestamp"], json!(e.time));
        assert_eq!(doc["data"]["task"], "alert-hosts-disk");
        // Kept from the published text, except the pretty one.
        assert_eq!(doc.get("traceparent").is_some(), i != 1, "{doc}");
    }
}

#[tokio::test]
async fn batching_sinks_take_a_chunk_per_request() {
    let r = Receiver {
        reply: r#"{"took":1,"errors":false,"items":[]}"#,
        ..Receiver::default()
    };
    let url = start(r.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir);
    let d = Deliverer::new(Feed::embedded(Arc::clone(&st)), None, quick());
    let events: Vec<CloudEvent> = (0..5)
        .map(|i| finding(&format!("h{i}"), "alert-hosts-disk", "alerting"))
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let es = ops_hook(
        "es",
        &format!("type: elasticsearch, subject: 'ops.>', url: '{url}'"),
    );
    // One record per request, naming every event it carried, in order.
    let es_recs = d.deliver_all(&es, &events).await;
    assert_eq!(es_recs.len(), 1, "{es_recs:?}");
    assert_eq!(es_recs[0].status, "delivered", "{es_recs:?}");
    assert_eq!(es_recs[0].event_id, ids[0]);
    assert_eq!(es_recs[0].batch, ids);
    assert_eq!(es_recs[0].events(), 5);
    let wh = ops_hook(
        "wh",
        &format!(
            "type: webhook, subject: 'ops.>', url: '{url}/batch', options: {{batch: '3', secret: k}}"
        ),
    );
    let recs = d.deliver_all(&wh, &events).await;
    assert!(recs.iter().all(|r| r.status == "delivered"), "{recs:?}");
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0].batch, ids[..3]);
    assert_eq!(recs[1].batch, ids[3..]);
    assert_eq!(recs[1].event_id, ids[3]);
    assert!(recs[1].detail.ends_with("(batch of 2)"), "{recs:?}");
    // Stored and found again by any event they carried, by whole id only.
    st.record_deliveries([es_recs, recs].concat(), None)
        .await
        .unwrap();
    let found = st.list_deliveries(None, Some(&ids[4]), 10).await.unwrap();
    let hooks: Vec<&str> = found.iter().map(|r| r.hook.as_str()).collect();
    assert_eq!(hooks, ["ops-system/es", "ops-system/wh"]);
    assert_eq!(found[1].batch, ids[3..]);
    let found = st
        .list_deliveries(Some("ops-system/wh"), Some(&ids[1]), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].batch, ids[..3]);
    assert!(
        st.list_deliveries(None, Some(&ids[4][..12]), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one bulk request, two webhook batches");
    assert_eq!(seen[0].path, "/_bulk");
    assert_eq!(seen[0].headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = std::str::from_utf8(&seen[0].body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    let day = chrono::Utc::now().format("%Y.%m.%d").to_string();
    assert_eq!(lines[0]["index"]["_index"], format!("ops-events-{day}"));
    assert_eq!(lines[0]["index"]["_id"], json!(events[0].id));
    assert_eq!(lines[1]["data"]["task"], "alert-hosts-disk");
    assert_eq!(
        seen[1].headers["content-type"],
        "application/cloudevents-batch+json"
    );
    let batch: Vec<Value> = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(batch.len(), 3);
    let batch2: Vec<Value> = serde_json::from_slice(&seen[2].body).unwrap();
    assert_eq!(batch2.len(), 2);
    assert_eq!(
        seen[2].headers["x-ops-signature-256"].to_str().unwrap(),
        signature(b"k", &seen[2].body)
    );

    // Elasticsearch accepting the request but failing items: failed.
    let bad = Receiver {
        reply: r#"{"errors":true,"items":[{"index":{"status":400,"error":{"reason":"mapper_parsing_exception"}}}]}"#,
        ..Receiver::default()
    };
    let burl = start(bad).await;
    let es = ops_hook(
        "es2",
        &format!("type: elasticsearch, subject: 'ops.>', url: '{burl}'"),
    );
    let recs = d.deliver_all(&es, &events[..2]).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert!(recs.iter().all(|r| r.status == "failed"), "{recs:?}");
    assert_eq!(recs[0].batch, ids[..2]);
    assert!(
        recs[0].detail.contains("mapper_parsing_exception"),
        "{recs:?}"
    );
}

#[tokio::test]
async fn the_anchors_hooks_compile_and_findings_become_alerts() {
    let hooks: Vec<Hook> = ops_testkit::anchor_eventhooks()
        .iter()
        .map(|h| Hook::compile(h).unwrap())
        .collect();
    assert_eq!(hooks.len(), 20);
    let convert = hooks
        .iter()
        .find(|h| h.key == "ops-system/convert-hosts-findings-to-alerts")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir);
    let d = Deliverer::new(Feed::embedded(Arc::clone(&st)), None, quick());
    let e = finding("web-1", "alert-hosts-disk", "alerting");
    assert!(convert.wants(&e));
    let rec = d.deliver(convert, &e).await;
    assert_eq!(rec.status, "delivered", "{rec:?}");
    // Delivered twice (a redelivery after a crash): one alert.
    d.deliver(convert, &e).await;
    let (alerts, _) = log::query(
        &st,
        "ops.clusters.*.namespaces.*.hosts.*.alerts",
        0,
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].subject,
        "ops.clusters.c1.namespaces.ops-system.hosts.web-1.alerts"
    );
    assert_eq!(alerts[0].data["task"], "alert-hosts-disk");
    // A target its own pattern matches would loop: refused.
    let looping = hook(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: loop, namespace: ops-system}\nspec: {type: event, subject: 'ops.clusters.*.nodes.*.findings', url: 'ops.clusters.*.nodes.*.findings'}\n",
    );
    let e = CloudEvent::new(
        "t",
        "dev.ops.test",
        subject::node("c1", "n1", Channel::Findings),
        json!({}),
    );
    let rec = d.deliver(&looping, &e).await;
    assert_eq!(rec.status, "failed");
    assert!(rec.detail.contains("its own event"), "{rec:?}");
}

#[test]
fn bad_hooks_say_what_is_wrong() {
    let err = |y: &str| {
        let Object::EventHooks(h) = Object::from_yaml_str(ops_model::Kind::EventHooks, y).unwrap()
        else {
            panic!()
        };
        Hook::compile(&h).unwrap_err()
    };
    let e = err(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: a, namespace: x}\nspec: {type: webhook, subject: 'ops.>', url: 'ftp://x'}\n",
    );
    assert!(e.contains("x/a") && e.contains("http://"), "{e}");
    let e = err(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: a}\nspec: {type: pager, subject: 'ops.>', url: 'http://x'}\n",
    );
    assert!(e.contains("spec.type `pager`"), "{e}");
    let e = err(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: a}\nspec: {type: webhook, subject: 'ops.>.x', url: 'http://x'}\n",
    );
    assert!(e.contains("spec.subject"), "{e}");
    let e = err(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: a}\nspec: {type: webhook, subject: 'ops.>', url: 'http://x', keywords: {include: ['(x'], matchType: REGEX}}\n",
    );
    assert!(e.contains("spec.keywords") && e.contains("regex"), "{e}");
    let e = err(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {name: a}\nspec: {type: task, subject: 'ops.>'}\n",
    );
    assert!(e.contains("needs the task's name"), "{e}");
}

async fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_within(Duration::from_secs(10), what, f).await;
}

/// Polls `f` every 25 ms until it holds; panics after `limit`.
async fn wait_within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A webhook hook on hosts' findings in ops-system that say `alerting`.
fn disk_hook(url: &str) -> Hook {
    ops_hook(
        "disk",
        &format!(
            "type: webhook, subject: 'ops.clusters.*.namespaces.ops-system.hosts.*.findings', url: '{url}/h', keywords: {{include: ['alerting']}}"
        ),
    )
}

/// A feed on the nats-server at `url`, its store in `dir`.
async fn jetstream_feed(url: &str, dir: &tempfile::TempDir) -> Feed {
    Feed::open(
        FeedConfig {
            nats: Some(NatsConfig::new(url)),
            ..FeedConfig::default()
        },
        store(dir),
    )
    .await
    .unwrap()
}

/// Runs `h` in a dispatcher until the returned token is cancelled.
fn dispatch(
    feed: Feed,
    deliverer: &Deliverer,
    h: &Hook,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let d = Dispatcher::new(feed, deliverer.clone());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let hooks = vec![h.clone()];
    let task = tokio::spawn(async move { d.run(hooks, c).await });
    (cancel, task)
}

/// The event ids the receiver was sent, in order.
fn ids_seen(r: &Receiver) -> Vec<String> {
    r.seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.headers["x-ops-event-id"].to_str().unwrap().to_owned())
        .collect()
}

/// Publishes findings, runs a dispatcher with a webhook hook, stops it,
/// publishes more while it is down, starts it again: every alerting
/// finding is delivered exactly once, in order, none of the others.
async fn durable_consumer_resumes(feed: Feed) {
    let r = Receiver::default();
    let url = start(r.clone()).await;
    let h = disk_hook(&url);
    let deliverer = Deliverer::new(feed.clone(), None, quick());
    let count = || r.calls.load(Ordering::SeqCst);

    let run = |feed: Feed| dispatch(feed, &deliverer, &h);
    let (cancel, task) = run(feed.clone());
    // Let the consumer register (a new consumer starts at "now").
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut expected = Vec::new();
    for i in 0..6 {
        let status = if i % 2 == 0 { "alerting" } else { "normal" };
        let e = finding(&format!("h{i}"), "alert-hosts-disk", status);
        if status == "alerting" {
            expected.push(e.id.clone());
        }
        feed.publish(e).await.unwrap();
    }
    // Another subject: never delivered.
    feed.publish(CloudEvent::new(
        "t",
        "dev.ops.test",
        subject::node("c1", "n1", Channel::Findings),
        json!({"status": "alerting"}),
    ))
    .await
    .unwrap();
    feed.flush(Duration::from_secs(10)).await.unwrap();
    wait_for("3 deliveries", || count() >= 3).await;
    cancel.cancel();
    task.await.unwrap();

    // While the dispatcher is down.
    for i in 6..10 {
        let e = finding(&format!("h{i}"), "alert-hosts-disk", "alerting");
        expected.push(e.id.clone());
        feed.publish(e).await.unwrap();
    }
    feed.flush(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(), 3, "delivered while stopped?");
    let (cancel, task) = run(feed.clone());
    wait_for("7 deliveries", || count() >= 7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(
        ids_seen(&r),
        expected,
        "each alerting finding once, in order"
    );
    let recs = feed
        .store()
        .list_deliveries(Some("ops-system/disk"), None, 100)
        .await
        .unwrap();
    assert_eq!(recs.len(), 7);
    assert!(
        recs.iter()
            .all(|r| r.status == "delivered" && r.code == Some(200))
    );
}

#[tokio::test]
async fn embedded_hook_consumers_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    durable_consumer_resumes(Feed::embedded(store(&dir))).await;
}

#[tokio::test]
async fn jetstream_hook_consumers_are_durable() {
    let server = ops_testkit::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let feed = jetstream_feed(&server.url, &dir).await;
    durable_consumer_resumes(feed).await;
}

/// On JetStream a hook follows the stream from a position it keeps in
/// the store: a nats-server killed and restarted under it, and a stream
/// deleted and made anew while it is stopped (its numbers start at 1
/// again, below the kept position), still get every alerting finding
/// delivered once, in order.
#[tokio::test]
async fn a_jetstream_hook_survives_a_server_restart_and_a_stream_made_anew() {
    let mut server = ops_testkit::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let feed = jetstream_feed(&server.url, &dir).await;
    let r = Receiver::default();
    let url = start(r.clone()).await;
    let h = disk_hook(&url);
    let deliverer = Deliverer::new(feed.clone(), None, quick());
    let count = || r.calls.load(Ordering::SeqCst);
    let run = || dispatch(feed.clone(), &deliverer, &h);
    let mut expected = Vec::new();
    let publish = async |n: usize, expected: &mut Vec<String>| {
        for _ in 0..n {
            let e = finding(
                &format!("h{}", expected.len()),
                "alert-hosts-disk",
                "alerting",
            );
            expected.push(e.id.clone());
            feed.publish(e).await.unwrap();
        }
        // Acked by the stream (a publisher that is reconnecting parks
        // them in its outbox first, and sends them when it is back).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while feed.flush(Duration::from_secs(30)).await.unwrap() != Some(0) {
            assert!(tokio::time::Instant::now() < deadline, "outbox not sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let (cancel, task) = run();
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(3, &mut expected).await;
    wait_for("3 deliveries", || count() >= 3).await;
    // The server goes away under the consumer and comes back empty of
    // consumers (they live in its memory); the stream is on disk.
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    publish(3, &mut expected).await;
    wait_for("6 deliveries", || count() >= 6).await;
    cancel.cancel();
    task.await.unwrap();

    // Stopped: the stream is deleted and made anew by the next publish;
    // its sequences restart at 1, below the hook's kept position (6).
    feed.nats().unwrap().js.delete_stream("ops").await.unwrap();
    publish(2, &mut expected).await;
    let (cancel, task) = run();
    wait_for("8 deliveries", || count() >= 8).await;
    publish(1, &mut expected).await;
    wait_for("9 deliveries", || count() >= 9).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    task.await.unwrap();

    assert_eq!(
        ids_seen(&r),
        expected,
        "each alerting finding once, in order"
    );
    assert_eq!(
        feed.store()
            .list_deliveries(Some("ops-system/disk"), None, 100)
            .await
            .unwrap()
            .len(),
        9
    );
}

/// On JetStream a hook's subject filter runs where it is cheaper: in the
/// server's consumer while the hook wants a small share of the stream, in
/// the reader (every event, subjects matched before decoding) while it
/// wants most of it. Each move follows the stream again from the last
/// event handled: across three moves every wanted event is delivered
/// once, in order, and none of the others.
#[tokio::test]
async fn a_jetstream_hooks_subject_filter_moves_with_its_share_of_the_stream() {
    let server = ops_testkit::nats::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let feed = jetstream_feed(&server.url, &dir).await;
    let r = Receiver::default();
    let url = start(r.clone()).await;
    let h = ops_hook(
        "share",
        &format!(
            "type: webhook, subject: 'ops.clusters.*.namespaces.ops-system.hosts.*.findings', url: '{url}/h', options: {{batch: '500'}}, keywords: {{include: ['alerting']}}"
        ),
    );
    let d = Dispatcher::new(feed.clone(), Deliverer::new(feed.clone(), None, quick()));
    let cancel = CancellationToken::new();
    let task = {
        let (d, c, h) = (d.clone(), cancel.clone(), h.clone());
        tokio::spawn(async move { d.run(vec![h], c).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stream sequences 1-5,000: the hook's findings (every other one
    // alerting); 5,001-15,000: one in ten (the rest are nodes' findings,
    // alerting too, on a subject the hook does not follow); then 8,000 of
    // the hook's again. Measured over windows of 4,096 sequence numbers,
    // the filter moves to the reader at 4,096, back to the server at
    // 12,288 and to the reader again at 20,480.
    let mut expected = Vec::new();
    for i in 0..23_000 {
        let mine = !(5_000..15_000).contains(&i) || i % 10 == 0;
        let e = if mine {
            let status = if i % 2 == 0 { "alerting" } else { "normal" };
            let e = finding(&format!("h{}", i % 7), "alert-hosts-disk", status);
            if status == "alerting" {
                expected.push(e.id.clone());
            }
            e
        } else {
            CloudEvent::new(
                "t",
                "dev.ops.test",
                subject::node("c1", &format!("n{}", i % 7), Channel::Findings),
                json!({"status": "alerting"}),
            )
        };
        feed.publish(e).await.unwrap();
    }
    assert_eq!(feed.flush(Duration::from_secs(60)).await.unwrap(), Some(0));
    let delivered = || d.stats().delivered.load(Ordering::Relaxed) as usize;
    wait_within(Duration::from_secs(60), "every alerting finding", || {
        delivered() >= expected.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    task.await.unwrap();
    let seen: Vec<String> = r
        .seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|s| serde_json::from_slice::<Vec<Value>>(&s.body).unwrap())
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), expected.len(), "every alerting finding, once");
    assert!(seen == expected, "in the order they were published");
    assert_eq!(d.stats().refiltered.load(Ordering::Relaxed), 3);
    // Seen: the hook's 14,000 findings, whichever side matched subjects;
    // matched: the alerting ones (keywords are matched as events are read).
    let (seen, matched, _, failed) = d.stats().snapshot();
    assert_eq!((seen, matched, failed), (14_000, expected.len() as u64, 0));
}
