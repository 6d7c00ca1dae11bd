//! Heartbeats: a reachable host (the local executor) gets its status
//! filled from a real probe, an unreachable one is marked failed with the
//! reason, a cluster (the stand-in API server; no real one runs here)
//! reports version and counts, and each heartbeat is an event. The
//! accelerator and certificate parsers are checked on fixed inputs.

use std::sync::Arc;

use ops_engine::heartbeat::{self, Accelerators, accelerators, cert_days_left};
use ops_engine::{Engine, EngineOptions};
use ops_events::log;
use ops_exec::ssh::{SshOptions, SshPool};
use ops_model::{Kind, Object, ObjectKey, parse_documents};
use ops_store::{SqliteStore, Store};
use ops_testkit::kube_standin::{KubeStandIn, node};
use tokio_util::sync::CancellationToken;

#[test]
fn accelerators_from_each_tool() {
    assert_eq!(
        accelerators("nvidia=NVIDIA H100 80GB HBM3\nnvidia=NVIDIA H100 80GB HBM3\n"),
        Some(Accelerators {
            vendor: "nvidia".into(),
            model: "NVIDIA H100 80GB HBM3".into(),
            count: 2
        })
    );
    assert_eq!(
        accelerators("npucount= 8\n").map(|a| (a.vendor, a.count)),
        Some(("huawei".into(), 8))
    );
    let lspci = "pci=NVIDIA Corporation GA100 [A100 PCIe 40GB] (rev a1)\npci=ASPEED Technology, Inc. ASPEED Graphics Family (rev 41)\n";
    assert_eq!(
        accelerators(lspci).map(|a| (a.vendor, a.count)),
        Some(("nvidia".into(), 1))
    );
    assert_eq!(
        accelerators("pci=ASPEED Technology ASPEED Graphics\n"),
        None
    );
    assert_eq!(accelerators(""), None);
}

/// A minimal DER certificate skeleton with the given notAfter (UTCTime).
fn cert(not_after: &str) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 128 {
            v.push(body.len() as u8);
        } else {
            v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }
    let validity = [tlv(0x17, b"250101000000Z"), tlv(0x17, not_after.as_bytes())].concat();
    let tbs = [
        tlv(0xa0, &tlv(0x02, &[2])),
        tlv(0x02, &[1]),
        tlv(0x30, &[]),
        tlv(0x30, &[0u8; 200]),
        tlv(0x30, &validity),
        tlv(0x30, &[]),
    ]
    .concat();
    tlv(0x30, &[tlv(0x30, &tbs), tlv(0x30, &[])].concat())
}

#[test]
fn certificate_days_left() {
    let in_30 = (chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(1))
        .format("%y%m%d%H%M%SZ")
        .to_string();
    assert_eq!(cert_days_left(&cert(&in_30)), Some(30));
    assert!(cert_days_left(&cert("200101000000Z")).unwrap() < 0);
    assert_eq!(cert_days_left(b"\x30\x03junk"), None);
}

#[tokio::test]
async fn hosts_and_clusters_beat_into_status_and_events() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap());
    let k = KubeStandIn::start(vec![
        node("node-1", &[], &[], true),
        node("node-2", &[], &[], true),
    ])
    .await;
    k.seed(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "a"}}));
    k.seed(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2", "namespace": "b"}}));
    let cluster = k.cluster_object(dir.path(), &k.token);
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let yaml = format!(
        "apiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: here}}\nspec: {{address: 127.0.0.1}}\n---\napiVersion: ops.dev/v1\nkind: Host\nmetadata: {{name: gone}}\nspec: {{address: 127.0.0.2, port: {port}, username: nobody}}\n"
    );
    let mut objs: Vec<Object> = parse_documents(&yaml)
        .unwrap()
        .into_iter()
        .map(|d| d.object)
        .collect();
    objs.push(Object::Cluster(cluster));
    store.apply(objs, "ops-system").await.unwrap();
    let ssh = SshOptions::new(dir.path());
    let engine = Engine::new(
        Arc::clone(&store),
        SshPool::new(ssh),
        EngineOptions::default(),
    );
    let feed = engine.feed().clone();
    let r = heartbeat::round(
        &engine,
        &feed,
        Some("ops-system"),
        4,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut results = r.results.clone();
    results.sort();
    assert_eq!(
        results,
        vec![
            ("clusters/lab (namespace ops-system)".to_owned(), true),
            ("hosts/gone (namespace ops-system)".to_owned(), false),
            ("hosts/here (namespace ops-system)".to_owned(), true),
        ]
    );
    let get = |kind: Kind, name: &str| {
        let store = Arc::clone(&store);
        let key = ObjectKey {
            kind,
            namespace: "ops-system".into(),
            name: name.into(),
        };
        async move { store.get(&key).await.unwrap().unwrap().object }
    };
    let Object::Host(here) = get(Kind::Host, "here").await else {
        panic!()
    };
    let st = here.status.unwrap();
    assert_eq!(st.heart_status.as_deref(), Some("successed"));
    assert_eq!(st.arch.as_deref(), Some(std::env::consts::ARCH));
    assert!(st.kernel_version.is_some() && st.hostname.is_some());
    assert!(st.cpu_total.unwrap().parse::<u32>().unwrap() >= 1);
    assert!(st.mem_total.unwrap().ends_with('i'));
    assert!(st.cpu_usage_percent.unwrap().parse::<u32>().unwrap() <= 100);
    assert!(st.disk_usage_percent.is_some());
    // The spec is untouched by a status write.
    assert_eq!(here.spec.address.as_deref(), Some("127.0.0.1"));
    let Object::Host(gone) = get(Kind::Host, "gone").await else {
        panic!()
    };
    assert_eq!(gone.status.unwrap().heart_status.as_deref(), Some("failed"));
    let Object::Cluster(lab) = get(Kind::Cluster, "lab").await else {
        panic!()
    };
    let cs = lab.status.unwrap();
    assert_eq!(cs.version.as_deref(), Some("v1.31.0-standin"));
    assert_eq!((cs.node_number, cs.pod_number), (Some(2), Some(2)));
    assert_eq!(cs.last_heart_status.as_deref(), Some("successed"));

    let (events, _) = log::query(
        &store,
        "ops.clusters.*.namespaces.ops-system.*.*.status",
        0,
        None,
        10,
    )
    .await
    .unwrap();
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e.subject.clone(),
                e.data["heartStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "ops.clusters.lab.namespaces.ops-system.clusters.lab.status".to_owned(),
                "successed".to_owned()
            ),
            (
                "ops.clusters.local.namespaces.ops-system.hosts.gone.status".to_owned(),
                "failed".to_owned()
            ),
            (
                "ops.clusters.local.namespaces.ops-system.hosts.here.status".to_owned(),
                "successed".to_owned()
            ),
        ]
    );
    let gone_event = events
        .iter()
        .find(|e| e.subject.contains(".gone."))
        .unwrap();
    assert!(!gone_event.data["error"].as_str().unwrap().is_empty());
    let here_event = events
        .iter()
        .find(|e| e.subject.contains(".here."))
        .unwrap();
    assert!(here_event.data["disks"].as_array().is_some());
}
