//! Benchmark (not a test): index N runbook sections (default 10,000,
//! built from the labelled runbooks in `evals/runbooks` with varied hosts,
//! services and numbers), then search with the labelled queries, embedded
//! index vs the Qdrant STAND-IN (tests/support/qdrant_standin.rs: an
//! in-memory gRPC server; no Qdrant server exists on these machines).
//! Reports indexing throughput (parse + store + embed) and search latency
//! p50 / p99 with the query embedding and without it.
//!
//!   cargo run --release -p ops-agent --example runbook_bench [-- CHUNKS [QUERIES]]
//!
//! Needs the embedding model (`scripts/embed-model.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

use ops_testkit::qdrant_standin;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_agent::knowledge::embed::{Embedder, MiniLm};
use ops_agent::knowledge::index::QdrantIndex;
use ops_agent::knowledge::{Knowledge, Method, Query};
use ops_store::{SqliteStore, Store};

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let want: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let nq: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let home = std::env::var_os("OPS_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".ops")))
        .unwrap();
    let model: Arc<dyn Embedder> = Arc::new(
        MiniLm::load(&MiniLm::dir_under(&home)).expect("embedding model (scripts/embed-model.sh)"),
    );
    let mut books: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(repo.join("evals/runbooks")).unwrap() {
        let p = e.unwrap().path();
        books.push((
            p.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read_to_string(&p).unwrap(),
        ));
    }
    books.sort();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("ops.db")).unwrap());
    let k = Knowledge::new(store.clone(), Some(model.clone()), None);
    let hosts = [
        "web", "db", "cache", "gpu", "batch", "edge", "kafka", "build",
    ];
    let started = Instant::now();
    let mut chunks = 0;
    let mut copy = 0;
    'outer: loop {
        for (name, text) in &books {
            let h = hosts[copy % hosts.len()];
            let varied = format!(
                "{}\n\nApplies to {h}-{copy} in zone z{}; ticket OPS-{}.\n",
                text.replace("web-", &format!("{h}-"))
                    .replace("/var/log/app", &format!("/var/log/svc{copy}")),
                copy % 7,
                1000 + copy
            );
            let name = format!("{copy:03}/{name}");
            let added = k.add_text(&name, Path::new(&name), &varied).await.unwrap();
            chunks += added.change.added;
            if chunks >= want {
                break 'outer;
            }
        }
        copy += 1;
    }
    let index_s = started.elapsed().as_secs_f64();
    println!(
        "indexed {chunks} sections in {index_s:.1} s: {:.0} sections/s (parse + store + embed, 2 cores)",
        chunks as f64 / index_s
    );

    #[derive(serde::Deserialize)]
    struct Case {
        query: String,
    }
    let cases: Vec<Case> =
        serde_yaml::from_str(&std::fs::read_to_string(repo.join("evals/retrieval.yaml")).unwrap())
            .unwrap();
    let queries: Vec<String> = cases
        .iter()
        .map(|c| c.query.clone())
        .cycle()
        .take(nq)
        .collect();
    let mut embed_t = Vec::new();
    let mut vectors = Vec::new();
    for q in &queries {
        let t = Instant::now();
        vectors.push(
            model
                .embed(std::slice::from_ref(q))
                .await
                .unwrap()
                .remove(0),
        );
        embed_t.push(t.elapsed());
    }
    println!(
        "query embedding alone: p50 {:.2} ms, p99 {:.2} ms",
        pct(embed_t.clone(), 0.5),
        pct(embed_t, 0.99)
    );

    let qd = qdrant_standin::QdrantStandIn::start().await;
    let backends: Vec<(&str, Knowledge)> = vec![
        (
            "embedded",
            Knowledge::new(store.clone(), Some(model.clone()), None),
        ),
        (
            "qdrant stand-in",
            Knowledge::new(store.clone(), Some(model.clone()), None)
                .with_index(Arc::new(QdrantIndex::new(&qd.url, "bench", None).unwrap())),
        ),
    ];
    println!(
        "\n| index | sections | hybrid p50 / p99 (no query embedding) | hybrid p50 / p99 (with embedding) | vector-only p50 / p99 (no embedding) |"
    );
    println!("|---|---|---|---|---|");
    for (name, kn) in &backends {
        // The first search builds the snapshot (and syncs the index).
        let t = Instant::now();
        kn.search(&Query {
            text: "warm".into(),
            k: 5,
            ..Query::default()
        })
        .await
        .unwrap();
        eprintln!(
            "{name}: first search (load + sync) {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let run = |method: Method, with_vec: bool| {
            let (queries, vectors) = (&queries, &vectors);
            async move {
                let mut ts = Vec::new();
                for (q, v) in queries.iter().zip(vectors) {
                    let query = Query {
                        text: q.clone(),
                        k: 5,
                        method,
                        vector: with_vec.then(|| v.clone()),
                        ..Query::default()
                    };
                    let t = Instant::now();
                    kn.search(&query).await.unwrap();
                    ts.push(t.elapsed());
                }
                ts
            }
        };
        let hybrid = run(Method::Hybrid, true).await;
        let full = run(Method::Hybrid, false).await;
        let vector = run(Method::Vector, true).await;
        println!(
            "| {name} | {chunks} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            pct(hybrid.clone(), 0.5),
            pct(hybrid, 0.99),
            pct(full.clone(), 0.5),
            pct(full, 0.99),
            pct(vector.clone(), 0.5),
            pct(vector, 0.99),
        );
    }
}
