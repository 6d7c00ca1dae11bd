//! Benchmark (not a test): events per second from publish, through an
//! EventHooks with a REGEX keyword filter, to a sink, against the raw
//! async-nats publish rate measured in the same run on the same
//! nats-server (JetStream, file storage, started here on loopback).
//!
//! - raw core: `client.publish` of N payloads of the same size, then flush
//!   (no stream acks; the physical limit of the connection);
//! - raw JetStream: the same N to the stream, acks awaited, pipelined;
//! - ops: `Feed::publish` of N CloudEvents (queue, batch, JetStream with
//!   message ids and acks) while a `Dispatcher` runs one hook (durable
//!   consumer, regex filter on the rendered event) whose sink is (a) an
//!   `event` re-publish or (b) a webhook to a local HTTP receiver; the
//!   clock stops when the sink has all N;
//! - the ceiling for any hook: `Feed::publish` of N while a reader on the
//!   hooks' consumer only counts what arrives;
//! - the hook alone: N events published while the hook was stopped, the
//!   clock running while it catches up (publishers elsewhere).
//!
//! Every path's events or payloads are made before its clock starts; what
//! is timed is serialising, sending, storing, consuming and delivering.
//!
//!   bash scripts/nats-server.sh
//!   cargo run --release -p ops-tools --example events_bench [-- N]
//!
//! `ROUNDS=N` (default 3) pairs per path, `BENCH_ONLY=webhook-1-500`
//! (sink-concurrency-batch, `-backlog` for the hook alone) one hooked
//! path besides the two references (the Feed alone, the counting reader), `BENCH_TRACE=1` times on stderr (for a profiler started from
//! outside: when the Feed's and each hooked path's clock starts, when a
//! hooked path's last publish was acked, when its sink had all).
//!
//! `SERVER_GOMAXPROCS` (default `1`; `default` leaves it to the
//! environment, where unset Go runs one thread per core) is the
//! nats-server's `GOMAXPROCS`. Sharing 2 cores with its
//! clients, nats-server with one Go thread per core hands each message
//! from goroutine to goroutine across OS threads (the storing loop, the
//! consumer, the connection writers): measured 8,700 - 10,000 context
//! switches/s against 3,000 with `GOMAXPROCS=1`, for the same work, and
//! more server CPU per event; raw JetStream publishing is not slower
//! with it. `scripts/nats-server.sh --run` starts its loopback server
//! that way on machines of 2 cores or fewer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

use ops_testkit::nats as nats_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ops_events::dispatch::Dispatcher;
use ops_events::feed::{Feed, FeedConfig};
use ops_events::hooks::{Deliverer, Hook, Retry};
use ops_events::nats::{Nats, NatsConfig};
use ops_model::event::CloudEvent;
use ops_model::{Kind, Object};
use ops_store::{SqliteStore, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The allocator `opscli` uses (see its `main.rs`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn event(i: usize) -> CloudEvent {
    CloudEvent::new(
        "bench",
        "dev.ops.taskrun.report",
        format!("ops.clusters.c1.nodes.gpu-{}.findings", i % 64),
        json!({"task": "alert-gpu-xid", "status": "alerting", "message": format!("Xid 79 on GPU {}", i % 8), "i": i}),
    )
}

fn hook(kind: &str, url: &str, concurrency: usize, batch: usize) -> Hook {
    let yaml = format!(
        "apiVersion: crd.chenshaowen.com/v1\nkind: EventHooks\nmetadata: {{name: bench-{kind}, namespace: ops-system}}\nspec:\n  type: {kind}\n  subject: ops.clusters.*.nodes.*.findings\n  url: '{url}'\n  options: {{concurrency: '{concurrency}', batch: '{batch}'}}\n  keywords: {{include: [alerting, '.*alert-gpu-.*'], matchMode: ALL, matchType: REGEX}}\n"
    );
    let Object::EventHooks(h) = Object::from_yaml_str(Kind::EventHooks, &yaml).unwrap() else {
        unreachable!()
    };
    Hook::compile(&h).unwrap()
}

async fn raw_core(url: &str, payloads: &[Vec<u8>]) -> f64 {
    let client = async_nats::connect(url).await.unwrap();
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        client
            .publish(format!("raw.core.{}", i % 64), p.clone().into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    payloads.len() as f64 / t.elapsed().as_secs_f64()
}

async fn raw_jetstream(url: &str, payloads: &[Vec<u8>], server: Option<u32>) -> (f64, (f64, f64)) {
    let n = Nats::connect(
        NatsConfig {
            stream: "raw".into(),
            ..NatsConfig::new(url)
        },
        true,
    )
    .await
    .unwrap();
    fresh_stream(url, "raw").await;
    n.js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "raw".into(),
        subjects: vec!["raw.js.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let (t, cpu) = (Instant::now(), Cpu::now(server));
    for chunk in payloads.chunks(512) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (i, p) in chunk.iter().enumerate() {
            acks.push(
                n.js.publish(format!("raw.js.{}", i % 64), p.clone().into())
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    (
        payloads.len() as f64 / t.elapsed().as_secs_f64(),
        cpu.per_event(server, payloads.len()),
    )
}

/// A local HTTP sink counting the events it receives: one per plain
/// POST, the array's length for a CloudEvents batch, half the lines of an
/// Elasticsearch `_bulk` body.
async fn receiver(count: Arc<AtomicUsize>) -> String {
    use axum::Router;
    use axum::routing::any;
    let app = Router::new().fallback(any(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let count = Arc::clone(&count);
        async move {
            let n = if uri.path().ends_with("/_bulk") {
                body.split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
                    / 2
            } else if body.first() == Some(&b'[') {
                // Checked to be a JSON array and counted, without building
                // the documents (the sink's cost is not ours to measure).
                serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body).map_or(0, |v| v.len())
            } else {
                1
            };
            count.fetch_add(n, Ordering::Relaxed);
            r#"{"errors":false,"items":[]}"#
        }
    }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// Publishes `n` events through a feed while a dispatcher delivers them;
/// returns events/s end to end (publish start to the last delivery).
/// `backlog`: the hook runs once (its position: the stream's end) and
/// stops, the `n` events are published while it is down, and the clock
/// runs while the restarted hook catches up: the hook's side alone, as
/// when the publishers are other processes.
async fn through_hook(
    url: &str,
    n: usize,
    sink: &str,
    conc: usize,
    batch: usize,
    backlog: bool,
    server: Option<u32>,
) -> (f64, (f64, f64)) {
    let (_dir, feed) = fresh_feed(url).await;
    let got = Arc::new(AtomicUsize::new(0));
    let h = match sink {
        "webhook" => hook(
            "webhook",
            &format!("{}/hook", receiver(Arc::clone(&got)).await),
            conc,
            batch,
        ),
        "elasticsearch" => hook(
            "elasticsearch",
            &receiver(Arc::clone(&got)).await,
            conc,
            batch,
        ),
        _ => hook("event", "ops.clusters.*.nodes.*.alerts", conc, 1),
    };
    let d = Dispatcher::new(
        feed.clone(),
        Deliverer::new(feed.clone(), None, Retry::default()),
    );
    let run = |hook: Hook| {
        let (d2, cancel) = (d.clone(), CancellationToken::new());
        let c2 = cancel.clone();
        (
            cancel,
            tokio::spawn(async move { d2.run(vec![hook], c2).await }),
        )
    };
    let trace = tracing();
    // The clock starts when the events start to move: at the first
    // publish, or (`backlog`) when the hook is started again.
    let (cancel, task, (t, cpu)) = if backlog {
        let (cancel, task) = run(h.clone());
        tokio::time::sleep(Duration::from_millis(800)).await;
        cancel.cancel();
        let _ = task.await;
        for e in (0..n).map(event) {
            feed.publish(e).await.unwrap();
        }
        feed.flush(Duration::from_secs(600)).await.unwrap();
        let clocked = start_clock(&format!("{sink} backlog"), server);
        let (cancel, task) = run(h);
        (cancel, task, clocked)
    } else {
        let (cancel, task) = run(h);
        // The alerts the `event` sink re-publishes, counted on the bus.
        if sink == "event" {
            let client = async_nats::connect(url).await.unwrap();
            let mut sub = client
                .subscribe("ops.clusters.*.nodes.*.alerts")
                .await
                .unwrap();
            client.flush().await.unwrap();
            let g = Arc::clone(&got);
            tokio::spawn(async move {
                while sub.next().await.is_some() {
                    g.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let clocked = publish_clocked(&feed, n, sink, server).await;
        if trace {
            feed.flush(Duration::from_secs(600)).await.unwrap();
            eprintln!(
                "published and acked at {:.3} s; the sink had {}",
                clocked.0.elapsed().as_secs_f64(),
                got.load(Ordering::Relaxed)
            );
        }
        (cancel, task, clocked)
    };
    wait_for(&got, n).await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    if trace {
        eprintln!("the sink had all at {:.3} s", t.elapsed().as_secs_f64());
    }
    let cpu = cpu.per_event(server, n);
    cancel.cancel();
    let _ = task.await;
    (rate, cpu)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let procs = std::env::var("SERVER_GOMAXPROCS").unwrap_or_else(|_| "1".into());
    let server = nats_server::NatsServer::start_with_gomaxprocs(
        (procs != "default").then_some(procs.as_str()),
    );
    let sample = serde_json::to_vec(&event(12345)).unwrap();
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| serde_json::to_vec(&event(i)).unwrap())
        .collect();
    println!(
        "events_bench: {n} events of ~{} bytes, nats-server 2.15.1 on loopback (GOMAXPROCS {procs}), {} CPUs",
        sample.len(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    // The machine's speed drifts (raw JetStream here has read anywhere
    // from 80,000 to 160,000/s from one minute to the next), so every
    // measurement is paired with a raw JetStream run just before it and
    // the ratio of each pair is what is compared: the median of ROUNDS.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let core = raw_core(&server.url, &payloads).await;
    println!("raw async-nats core publish          {core:>10.0} events/s");
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let paths = [
        ("feed", 1, 1, false),
        ("reader", 1, 1, false),
        ("event", 1, 1, false),
        ("webhook", 1, 1, false),
        ("webhook", 32, 1, false),
        ("webhook", 1, 500, false),
        ("elasticsearch", 1, 500, false),
        ("webhook", 1, 500, true),
    ];
    for (sink, conc, batch, backlog) in paths {
        let name = format!(
            "{sink}-{conc}-{batch}{}",
            if backlog { "-backlog" } else { "" }
        );
        // The two references (publishing alone, and publishing with a
        // reader that does nothing) come with every selection.
        if !only.is_empty() && only != name && sink != "feed" && sink != "reader" {
            continue;
        }
        let mut pairs = Vec::new();
        for _ in 0..rounds {
            let (js, js_cpu) = raw_jetstream(&server.url, &payloads, server.pid()).await;
            let (rate, cpu) = if sink == "feed" {
                feed_only(&server.url, n, server.pid()).await
            } else if sink == "reader" {
                bare_reader(&server.url, n, server.pid()).await
            } else {
                through_hook(&server.url, n, sink, conc, batch, backlog, server.pid()).await
            };
            pairs.push((rate / js, rate, js, js_cpu, cpu));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, rate, js, js_cpu, cpu) = pairs[pairs.len() / 2];
        let all: Vec<String> = pairs.iter().map(|p| format!("{:.2}", p.0)).collect();
        let what = if sink == "feed" {
            "ops Feed publish, acked (no hook)".to_owned()
        } else if sink == "reader" {
            "ops Feed publish -> a reader that only counts (no hook)".to_owned()
        } else if backlog {
            format!("hook alone: a backlog of N -> regex hook -> {sink} (batch {batch})")
        } else {
            format!(
                "ops publish -> regex hook -> {sink:<13} (concurrency {conc:>2}, batch {batch:>3})"
            )
        };
        println!(
            "{what:<78} {rate:>8.0} events/s vs raw JetStream {js:>7.0}/s: {ratio:.2}x (median of {rounds}: {})",
            all.join(" ")
        );
        // Where the time went (CPU per event, this process + nats-server;
        // the median pair's): what a path costs beyond raw's work.
        println!(
            "{:<78} CPU µs/event: {:.1} + server {:.1} (raw JetStream {:.1} + server {:.1})",
            "", cpu.0, cpu.1, js_cpu.0, js_cpu.1
        );
    }
}

/// Whether `BENCH_TRACE` asks for times on stderr (read once).
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("BENCH_TRACE").is_some())
}

/// Waits until the sink has counted `n` events (at most 10 minutes).
async fn wait_for(got: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while got.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            got.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// CPU time used so far by this process and by nats-server, in clock
/// ticks (`/proc/PID/stat`, 100 per second).
#[derive(Clone, Copy)]
struct Cpu(u64, u64);

fn ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name: state is field 0, utime 11, stime 12.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

impl Cpu {
    fn now(server: Option<u32>) -> Cpu {
        Cpu(ticks("self"), server.map_or(0, |p| ticks(&p.to_string())))
    }

    /// µs of CPU per event since `self`: (this process, nats-server).
    fn per_event(self, server: Option<u32>, n: usize) -> (f64, f64) {
        let now = Cpu::now(server);
        let us = |t: u64| t as f64 * 10_000.0 / n as f64;
        (us(now.0 - self.0), us(now.1 - self.1))
    }
}

/// Deletes stream `name` (if there is one): every path starts on an
/// empty stream.
async fn fresh_stream(url: &str, name: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(name).await;
}

/// A feed on an empty `ops` stream, its store in a temporary directory
/// (kept alive by the first value).
async fn fresh_feed(url: &str) -> (tempfile::TempDir, Feed) {
    fresh_stream(url, "ops").await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap());
    let feed = Feed::open(
        FeedConfig {
            nats: Some(NatsConfig::new(url)),
            ..FeedConfig::default()
        },
        store,
    )
    .await
    .unwrap();
    (dir, feed)
}

/// Starts a path's clock: the time and the CPU used so far (`clock:
/// {what}` on stderr with `BENCH_TRACE`, for a profiler outside).
fn start_clock(what: &str, server: Option<u32>) -> (Instant, Cpu) {
    if tracing() {
        eprintln!("clock: {what}");
    }
    (Instant::now(), Cpu::now(server))
}

/// Makes `n` events, then starts the clock ([`start_clock`]) and
/// publishes them all through `feed`: the events are made before the
/// clock, as the raw paths' payloads are; serialising and sending them is
/// on it. Returns the clock's start.
async fn publish_clocked(feed: &Feed, n: usize, what: &str, server: Option<u32>) -> (Instant, Cpu) {
    let events: Vec<CloudEvent> = (0..n).map(event).collect();
    let clocked = start_clock(what, server);
    for e in events {
        feed.publish(e).await.unwrap();
    }
    clocked
}

/// `Feed::publish` of `n` events until all are acked; events/s.
async fn feed_only(url: &str, n: usize, server: Option<u32>) -> (f64, (f64, f64)) {
    let (_dir, feed) = fresh_feed(url).await;
    let (t, cpu) = publish_clocked(&feed, n, "feed", server).await;
    feed.flush(Duration::from_secs(600)).await.unwrap();
    (
        n as f64 / t.elapsed().as_secs_f64(),
        cpu.per_event(server, n),
    )
}

/// `Feed::publish` of `n` events while a reader follows the stream as a
/// hook does ([`nats::follow`]: the same consumer) and only counts what
/// arrives, decoding nothing and delivering nowhere; events/s until it
/// has counted all. What JetStream and the connection cost any hook: the
/// ceiling for the hooked paths.
async fn bare_reader(url: &str, n: usize, server: Option<u32>) -> (f64, (f64, f64)) {
    let (_dir, feed) = fresh_feed(url).await;
    let nats = Nats::connect(NatsConfig::new(url), true).await.unwrap();
    let mut stream = ops_events::nats::follow(&nats, "bench_reader", None, 0)
        .await
        .unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = Arc::clone(&got);
    let reader = tokio::spawn(async move {
        while let Some(m) = stream.next().await {
            // The stream sequence, as a hook keeps it.
            let _ = m.unwrap().info().unwrap().stream_sequence;
            g.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (t, cpu) = publish_clocked(&feed, n, "reader", server).await;
    wait_for(&got, n).await;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let cpu = cpu.per_event(server, n);
    reader.abort();
    (rate, cpu)
}
