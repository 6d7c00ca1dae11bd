//! The event vocabulary against the anchor's EventHooks
//! (`../shared/compat/ops-manifests/eventhooks`): every hook loads, its
//! subject pattern is valid and its keyword filter compiles; inspection
//! findings shaped like the anchor's reach the hooks they should and no
//! others; `event` hooks rewrite their target subject from the source.

use ops_events::{Bus, Received};
use ops_model::EventHooks;
use ops_model::event::CloudEvent;
use ops_model::event::filter::{KeywordFilter, render};
use ops_model::event::subject::{self, Channel};
use serde_json::json;

fn hooks() -> Vec<EventHooks> {
    ops_testkit::anchor_eventhooks()
}

/// The hooks an event reaches.
fn reached(hooks: &[EventHooks], e: &CloudEvent) -> Vec<String> {
    let text = render(e);
    hooks
        .iter()
        .filter(|h| {
            let pattern = h.spec.subject.as_deref().unwrap_or(">");
            subject::matches(pattern, &e.subject)
                && KeywordFilter::new(h.spec.keywords.as_ref())
                    .unwrap()
                    .passes(&text)
        })
        .map(|h| h.metadata.name.clone())
        .collect()
}

#[test]
fn the_anchors_hooks_load_and_compile() {
    let hooks = hooks();
    assert_eq!(hooks.len(), 20);
    for h in &hooks {
        let name = &h.metadata.name;
        let pattern = h.spec.subject.as_deref().unwrap();
        assert!(subject::valid_pattern(pattern), "{name}: {pattern}");
        KeywordFilter::new(h.spec.keywords.as_ref()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn findings_reach_the_hooks_they_should() {
    let hooks = hooks();
    let disk = CloudEvent::new(
        "opscli/test",
        "dev.ops.taskrun.report",
        subject::object("c1", "ops-system", "hosts", "web-1", Channel::Findings),
        json!({"task": "alert-hosts-disk", "status": "alerting", "message": "/var 97% used"}),
    )
    .in_cluster("c1");
    let got = reached(&hooks, &disk);
    assert!(got.contains(&"alert-hosts-disk".to_owned()), "{got:?}");
    assert!(!got.contains(&"alert-hosts-mem".to_owned()), "{got:?}");
    // The same check, healthy: no alerting hook fires.
    let mut fine = disk.clone();
    fine.data = json!({"task": "alert-hosts-disk", "status": "normal"});
    let fine_hooks = reached(&hooks, &fine);
    assert!(
        !fine_hooks.contains(&"alert-hosts-disk".to_owned()),
        "{fine_hooks:?}"
    );
    // A GPU finding on a node reaches the regex hook.
    let gpu = CloudEvent::new(
        "opscli/test",
        "dev.ops.taskrun.report",
        subject::node("c1", "gpu-12", Channel::Findings),
        json!({"task": "alert-gpu-xid", "status": "alerting", "message": "Xid 79"}),
    );
    let got = reached(&hooks, &gpu);
    assert!(got.contains(&"alert-gpu".to_owned()), "{got:?}");
    assert!(!got.contains(&"alert-hosts-disk".to_owned()));
}

#[test]
fn event_hooks_rewrite_their_target_subject() {
    let hooks = hooks();
    let to_alerts: Vec<&EventHooks> = hooks
        .iter()
        .filter(|h| h.spec.type_.as_deref() == Some("event"))
        .collect();
    assert_eq!(to_alerts.len(), 3);
    for h in to_alerts {
        let from = h.spec.subject.clone().unwrap();
        let concrete = from.replace('*', "x1");
        let target = subject::rewrite(h.spec.url.as_deref().unwrap(), &concrete);
        assert!(subject::valid(&target), "{} -> {target}", h.metadata.name);
        assert!(!target.contains('*'));
        assert!(target.ends_with(".alerts"), "{target}");
    }
}

#[tokio::test]
async fn the_embedded_bus_delivers_by_pattern() {
    let bus = Bus::new(64);
    let mut sub = bus
        .subscribe("ops.clusters.*.namespaces.ops-system.hosts.*.findings")
        .unwrap();
    bus.publish(CloudEvent::new(
        "t",
        "dev.ops.test",
        subject::node("c1", "n1", Channel::Findings),
        json!({}),
    ))
    .unwrap();
    bus.publish(CloudEvent::new(
        "t",
        "dev.ops.test",
        subject::object("c1", "ops-system", "hosts", "Web.1", Channel::Findings),
        json!({}),
    ))
    .unwrap();
    let Some(Received::Event(e)) = sub.next().await else {
        panic!()
    };
    assert_eq!(
        e.subject,
        "ops.clusters.c1.namespaces.ops-system.hosts.web_1.findings"
    );
    let bad = CloudEvent::new("t", "x", "ops.*", json!({}));
    assert!(bus.publish(bad).is_err());
}

#[tokio::test]
async fn the_event_log_dedups_by_id_and_pages_by_position() {
    use ops_events::log;
    use ops_store::{SqliteStore, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap());
    let mut ids = Vec::new();
    for i in 0..5 {
        let e = CloudEvent::new(
            "t",
            "dev.ops.test",
            subject::node("c1", &format!("n{i}"), Channel::Status),
            json!({"i": i}),
        );
        assert!(log::record(&store, &e).await.unwrap());
        // The same event again (a retried publish) is not stored twice.
        assert!(!log::record(&store, &e).await.unwrap());
        ids.push(e.id);
    }
    let (first, pos) = log::query(&store, "ops.>", 0, None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let (rest, _) = log::query(&store, "ops.>", pos, None, 100).await.unwrap();
    let got: Vec<String> = first.iter().chain(&rest).map(|e| e.id.clone()).collect();
    assert_eq!(got, ids, "in order, each once");
    let bad = CloudEvent::new("", "x", "ops.a", json!({}));
    assert!(
        log::record(&store, &bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("`source` is empty")
    );
}
