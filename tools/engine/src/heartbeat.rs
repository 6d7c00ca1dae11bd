//! Heartbeats: what each Host and Cluster looks like now, written to its
//! `status` (the anchor's fields) and published.
//!
//! - Host: one probe script over its executor (SSH or local, 30 s limit):
//!   hostname, kernel, distribution, arch, CPU count / 1-minute load /
//!   usage (sampled over half a second), memory, disk per mount (root in
//!   the status, every mount in the event), GPU or NPU vendor, model and
//!   count from `nvidia-smi`, `npu-smi` or `lspci`. Event
//!   `dev.ops.host.heartbeat` on
//!   `ops.clusters.local.namespaces.{ns}.hosts.{name}.status`.
//! - Cluster: server version, node and pod counts, days left on the
//!   kubeconfig's client certificate. Event `dev.ops.cluster.heartbeat` on
//!   `ops.clusters.{name}.namespaces.{ns}.clusters.{name}.status`.
//!
//! A host or cluster that cannot be reached gets `heartStatus: failed`
//! (the anchor's words: `successed` / `failed`) and an event saying why.
//! [`run`] repeats every `interval`, each round started at a random offset
//! of up to a tenth of the interval so many schedulers do not beat at once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::host_status::{HostStatusReport, STATUS_SCRIPT, parse_status};
use ops_events::feed::Feed;
use ops_exec::ExecRequest;
use ops_model::event::CloudEvent;
use ops_model::event::subject::{Channel, LOCAL_CLUSTER, object};
use ops_model::{Cluster, ClusterStatus, Host, HostStatus, Kind, LabelSelector, Object};

const EXTRA_SCRIPT: &str = r#"echo "arch=$(uname -m)"
read -r _ a b c d e f g h _ < /proc/stat; t1=$((a+b+c+d+e+f+g+h)); i1=$((d+e))
sleep 0.5
read -r _ a b c d e f g h _ < /proc/stat; t2=$((a+b+c+d+e+f+g+h)); i2=$((d+e))
[ $((t2-t1)) -gt 0 ] && echo "cpuusage=$(( 100 * ((t2-t1)-(i2-i1)) / (t2-t1) ))"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sed 's/^/nvidia=/'; fi
if command -v npu-smi >/dev/null 2>&1; then npu-smi info -l 2>/dev/null | awk -F: '/Total Count/{gsub(/ /,"",$2); print "npucount="$2}'; fi
if command -v lspci >/dev/null 2>&1; then lspci 2>/dev/null | grep -iE '3d controller|processing accelerators|vga compatible' | sed 's/^[^:]*:[^:]*: /pci=/'; fi
true"#;

/// Accelerators seen on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accelerators {
    /// `nvidia`, `huawei`, `amd`.
    pub vendor: String,
    /// Model as the tool names it.
    pub model: String,
    /// How many.
    pub count: usize,
}

/// Reads accelerator lines of the probe (`nvidia=`, `npucount=`, `pci=`).
pub fn accelerators(text: &str) -> Option<Accelerators> {
    let nvidia: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("nvidia="))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(first) = nvidia.first() {
        return Some(Accelerators {
            vendor: "nvidia".into(),
            model: (*first).to_owned(),
            count: nvidia.len(),
        });
    }
    let npu = text
        .lines()
        .filter_map(|l| l.strip_prefix("npucount="))
        .find_map(|n| n.trim().parse::<usize>().ok())
        .filter(|n| *n > 0);
    if let Some(count) = npu {
        return Some(Accelerators {
            vendor: "huawei".into(),
            model: "Ascend".into(),
            count,
        });
    }
    // lspci: accelerators only (3D controllers, processing accelerators,
    // and discrete NVIDIA/AMD VGA devices), not a server's BMC graphics.
    let pci: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("pci="))
        .filter(|l| {
            let u = l.to_uppercase();
            u.contains("NVIDIA") || u.contains("AMD/ATI") || u.contains("HUAWEI")
        })
        .collect();
    let first = pci.first()?;
    let u = first.to_uppercase();
    let vendor = if u.contains("NVIDIA") {
        "nvidia"
    } else if u.contains("HUAWEI") {
        "huawei"
    } else {
        "amd"
    };
    Some(Accelerators {
        vendor: vendor.into(),
        model: first.trim().to_owned(),
        count: pci.len(),
    })
}

fn human_mib(mib: u64) -> String {
    if mib >= 1024 * 1024 {
        format!("{:.1}Ti", mib as f64 / (1024.0 * 1024.0))
    } else if mib >= 1024 {
        format!("{:.1}Gi", mib as f64 / 1024.0)
    } else {
        format!("{mib}Mi")
    }
}

use ops_model::stamp::now as stamp;

/// A host's status from the probe's output.
pub fn host_status(text: &str) -> (HostStatus, HostStatusReport) {
    let r = parse_status(text);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().to_owned())
    };
    let root = r
        .disks
        .iter()
        .find(|d| d.mount == "/")
        .or_else(|| r.disks.first());
    let acc = accelerators(text);
    let mem_pct = (r.memory_total_mib > 0).then(|| {
        100 * r.memory_total_mib.saturating_sub(r.memory_available_mib) / r.memory_total_mib
    });
    let st = HostStatus {
        hostname: Some(r.hostname.clone()).filter(|s| !s.is_empty()),
        kernel_version: Some(r.kernel.clone()).filter(|s| !s.is_empty()),
        distribution: Some(r.os.clone()).filter(|s| !s.is_empty()),
        arch: get("arch"),
        disk_total: root.map(|d| human_mib(d.size_mib)),
        disk_usage_percent: root.map(|d| d.use_percent.to_string()),
        cpu_total: (r.cpus > 0).then(|| r.cpus.to_string()),
        cpu_load1: r.load.first().map(|l| format!("{l:.2}")),
        cpu_usage_percent: get("cpuusage"),
        mem_total: (r.memory_total_mib > 0).then(|| human_mib(r.memory_total_mib)),
        mem_usage_percent: mem_pct.map(|p| p.to_string()),
        accelerator_vendor: acc.as_ref().map(|a| a.vendor.clone()),
        accelerator_model: acc.as_ref().map(|a| a.model.clone()),
        accelerator_count: acc.as_ref().map(|a| a.count.to_string()),
        heart_status: Some("successed".into()),
        heart_time: Some(stamp()),
    };
    (st, r)
}

/// One host's heartbeat: its status (failed, with the reason, when it
/// cannot be reached) and the event data.
pub async fn beat_host(
    engine: &Engine,
    host: &Host,
    cancel: &CancellationToken,
) -> (HostStatus, Value) {
    let name = host.metadata.name.clone();
    let probe = async {
        let exec = engine.executor_for(host).map_err(|e| e.to_string())?;
        let req = ExecRequest::script(format!("{STATUS_SCRIPT}\n{EXTRA_SCRIPT}"))
            .with_timeout(Duration::from_secs(30));
        let out = exec
            .run(&req, None, cancel)
            .await
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "probe ended {:?}: {}",
                out.status,
                ops_model::clip(&out.stderr.text(), 300)
            ));
        }
        Ok(out.stdout.text())
    };
    match probe.await {
        Ok(text) => {
            let (st, report) = host_status(&text);
            let data = json!({
                "host": name,
                "heartStatus": "successed",
                "status": st,
                "disks": report.disks,
                "failedUnits": report.failed_units,
                "uptimeSeconds": report.uptime_seconds,
            });
            (st, data)
        }
        Err(why) => {
            let mut st = host.status.clone().unwrap_or_default();
            st.heart_status = Some("failed".into());
            st.heart_time = Some(stamp());
            let data = json!({"host": name, "heartStatus": "failed", "error": why});
            (st, data)
        }
    }
}

/// Days from now until a DER certificate's `notAfter`.
pub fn cert_days_left(der: &[u8]) -> Option<i64> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?,
    // serialNumber, signature, issuer, validity SEQUENCE { notBefore,
    // notAfter }, ... } ... }
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let first = *b.get(1)?;
        let (len, head) = if first & 0x80 == 0 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *b.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let body = b.get(head..head + len)?;
        Some((tag, body, b.get(head + len..)?))
    }
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after_before) = tlv(validity)?;
    let (tag, not_after, _) = tlv(after_before)?;
    let text = std::str::from_utf8(not_after).ok()?;
    let t = match tag {
        0x17 => chrono::NaiveDateTime::parse_from_str(text, "%y%m%d%H%M%SZ").ok()?,
        0x18 => chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%SZ").ok()?,
        _ => return None,
    };
    Some((t.and_utc() - chrono::Utc::now()).num_days())
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    ops_model::base64_decode(body.trim())
}

/// Days left on the client certificate the cluster's kubeconfig uses.
async fn client_cert_days(cluster: &Cluster) -> Option<i64> {
    let cfg = ops_exec::kube::config(cluster).await.ok()?;
    let a = &cfg.auth_info;
    let pem = if let Some(data) = a.client_certificate_data.as_deref() {
        let raw = ops_model::base64_decode(data.trim())?;
        String::from_utf8(raw).ok()?
    } else {
        std::fs::read_to_string(a.client_certificate.as_deref()?).ok()?
    };
    cert_days_left(&pem_to_der(&pem)?)
}

/// One cluster's heartbeat.
pub async fn beat_cluster(cluster: &Cluster) -> (ClusterStatus, Value) {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, ListParams};
    let name = cluster.metadata.name.clone();
    let probe = async {
        let client = ops_exec::kube::client(cluster)
            .await
            .map_err(|e| e.to_string())?;
        let version = client
            .apiserver_version()
            .await
            .map_err(|e| format!("version: {e}"))?;
        let nodes: Api<Node> = Api::all(client.clone());
        let n = nodes
            .list_metadata(&ListParams::default().limit(500))
            .await
            .map_err(|e| format!("nodes: {e}"))?;
        let node_number = n.items.len() as i64 + n.metadata.remaining_item_count.unwrap_or(0);
        let pods: Api<Pod> = Api::all(client);
        let p = pods
            .list_metadata(&ListParams::default().limit(500))
            .await
            .map_err(|e| format!("pods: {e}"))?;
        let pod_number = p.items.len() as i64 + p.metadata.remaining_item_count.unwrap_or(0);
        Ok::<_, String>((version.git_version, node_number, pod_number))
    };
    let mut st = cluster.status.clone().unwrap_or_default();
    st.last_heart_time = Some(stamp());
    match probe.await {
        Ok((version, nodes, pods)) => {
            st.version = Some(version);
            st.node_number = Some(nodes);
            st.pod_number = Some(pods);
            st.cert_days_left = client_cert_days(cluster).await;
            st.last_heart_status = Some("successed".into());
            let data = json!({"cluster": name, "heartStatus": "successed", "status": st});
            (st, data)
        }
        Err(why) => {
            st.last_heart_status = Some("failed".into());
            let data = json!({"cluster": name, "heartStatus": "failed", "error": why});
            (st, data)
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// `(kind/namespace/name, ok)` per object beaten.
    pub results: Vec<(String, bool)>,
}

/// One round over every Host and Cluster of `namespace` (all with
/// `None`), `forks` at a time: statuses written, events published.
pub async fn round(
    engine: &Engine,
    feed: &Feed,
    namespace: Option<&str>,
    forks: usize,
    cancel: &CancellationToken,
) -> Result<Round, ops_store::StoreError> {
    let store = Arc::clone(engine.store());
    let sel = LabelSelector::default();
    let hosts = store.list(Kind::Host, namespace, &sel).await?;
    let clusters = store.list(Kind::Cluster, namespace, &sel).await?;
    let source = ops_model::event::default_source();
    let jobs = hosts.into_iter().chain(clusters).map(|o| {
        let store = Arc::clone(&store);
        let source = source.clone();
        async move {
            let key = o.key.clone();
            let ns = key.namespace.clone();
            let (status, event) = match &o.object {
                Object::Host(h) => {
                    let (st, data) = beat_host(engine, h, cancel).await;
                    let ok = st.heart_status.as_deref() == Some("successed");
                    let e = CloudEvent::new(
                        source,
                        "dev.ops.host.heartbeat",
                        object(LOCAL_CLUSTER, &ns, "hosts", &key.name, Channel::Status),
                        data,
                    )
                    .in_cluster(LOCAL_CLUSTER);
                    (serde_json::to_value(st).unwrap_or_default(), (e, ok))
                }
                Object::Cluster(c) => {
                    let (st, data) = beat_cluster(c).await;
                    let ok = st.last_heart_status.as_deref() == Some("successed");
                    let e = CloudEvent::new(
                        source,
                        "dev.ops.cluster.heartbeat",
                        object(&key.name, &ns, "clusters", &key.name, Channel::Status),
                        data,
                    )
                    .in_cluster(key.name.clone());
                    (serde_json::to_value(st).unwrap_or_default(), (e, ok))
                }
                _ => return None,
            };
            let (e, ok) = event;
            if let Err(err) = store.set_status(&key, &status).await {
                tracing::warn!("status of {key} not written: {err}");
            }
            if let Err(err) = feed.publish(e).await {
                tracing::warn!("heartbeat of {key} not published: {err}");
            }
            Some((key.to_string(), ok))
        }
    });
    let results: Vec<(String, bool)> = futures::stream::iter(jobs)
        .buffer_unordered(forks.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await;
    Ok(Round { results })
}

/// Rounds every `interval` (each started at a random offset of up to a
/// tenth of it) until `cancel`.
pub async fn run(
    engine: &Engine,
    feed: &Feed,
    namespace: Option<&str>,
    forks: usize,
    interval: Duration,
    cancel: &CancellationToken,
) {
    loop {
        let tenth = (interval.as_millis() / 10).max(1) as u64;
        let jitter = Duration::from_millis(
            u64::from_str_radix(&ops_model::id::unique_hex("heartbeat", 4), 16).unwrap_or(0)
                % tenth,
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(jitter) => {}
        }
        match round(engine, feed, namespace, forks, cancel).await {
            Ok(r) => {
                let failed = r.results.iter().filter(|(_, ok)| !ok).count();
                if failed > 0 {
                    tracing::info!("heartbeat: {failed} of {} unreachable", r.results.len());
                }
            }
            Err(e) => tracing::warn!("heartbeat round failed: {e}"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval.saturating_sub(jitter)) => {}
        }
    }
}
