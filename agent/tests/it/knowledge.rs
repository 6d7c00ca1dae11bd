//! Runbook knowledge: the embedding model against its published reference
//! vector, incremental adds (only changed chunks are stored and embedded),
//! BM25 alone when there is no model (and saying so), metadata boosts for
//! alerts, the `/v1/embeddings` client, and retrieval quality on the
//! labelled set in `evals/` (recall@1, recall@3, MRR for BM25, vectors and
//! hybrid; the test fails if a score drops below its recorded value).

use ops_testkit::qdrant_standin;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ops_agent::knowledge::embed::{Embedder, EndpointEmbedder, MiniLm};
use ops_agent::knowledge::{Knowledge, KnowledgeError, Method, Query};
use ops_store::{SqliteStore, Store};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The model set up by scripts/embed-model.sh, if it is.
fn minilm() -> Option<MiniLm> {
    let home = std::env::var_os("OPS_LOCAL_MODEL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".ops")))?;
    let dir = MiniLm::dir_under(&home);
    if !MiniLm::present(&dir) {
        eprintln!(
            "SKIPPED (vector part): no embedding model at {}; run scripts/embed-model.sh",
            dir.display()
        );
        return None;
    }
    Some(MiniLm::load(&dir).unwrap())
}

fn store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.join("ops.db")).unwrap())
}

/// Deterministic vectors from word hashes; counts what it embeds.
#[derive(Default)]
struct Fake {
    embedded: AtomicUsize,
}

#[async_trait::async_trait]
impl Embedder for Fake {
    fn id(&self) -> &str {
        "fake"
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        self.embedded.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; 64];
                for w in t.split_whitespace() {
                    let h = w
                        .bytes()
                        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
                    v[(h % 64) as usize] += 1.0;
                }
                ops_agent::knowledge::embed::unit(v)
            })
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_matches_the_published_reference_vector() {
    let Some(m) = minilm() else { return };
    let v = m
        .embed(&["This is an example sentence".to_owned()])
        .await
        .unwrap();
    let want = [0.0677f32, 0.0635, 0.0487];
    for (got, want) in v[0].iter().zip(want) {
        assert!((got - want).abs() < 5e-4, "{:?}", &v[0][..3]);
    }
    assert_eq!(v[0].len(), 384);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Batches pad to the longest text: a short text's vector does not
    // change when it shares a batch with a long one.
    let long = "disk ".repeat(300);
    let both = m
        .embed(&["This is an example sentence".to_owned(), long])
        .await
        .unwrap();
    for (a, b) in both[0].iter().zip(&v[0]) {
        assert!((a - b).abs() < 1e-4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_again_does_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("books");
    std::fs::create_dir_all(books.join("db")).unwrap();
    std::fs::write(
        books.join("disk.md"),
        "# Disk\n\nIntro.\n\n## Clean\n\nDelete old logs.\n\n## Grow\n\nResize the volume.\n",
    )
    .unwrap();
    std::fs::write(books.join("db/pg.md"), "# Postgres\n\nConnections.\n").unwrap();
    std::fs::write(books.join("notes.bin"), "ignored").unwrap();
    let fake = Arc::new(Fake::default());
    let k = Knowledge::new(store(dir.path()), Some(fake.clone()), None);
    let added = k.add(&books).await.unwrap();
    let names: Vec<&str> = added.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["db/pg.md", "disk.md"]);
    assert_eq!(added[1].change.added, 3);
    assert_eq!(fake.embedded.load(Ordering::SeqCst), 4);
    // Again, unchanged: nothing stored, nothing embedded.
    let again = k.add(&books).await.unwrap();
    assert!(again.iter().all(|a| a.change.unchanged && a.embedded == 0));
    assert_eq!(fake.embedded.load(Ordering::SeqCst), 4);
    // One section changes: one chunk replaced, the others kept.
    std::fs::write(
        books.join("disk.md"),
        "# Disk\n\nIntro.\n\n## Clean\n\nDelete logs older than 7 days.\n\n## Grow\n\nResize the volume.\n",
    )
    .unwrap();
    let changed = k.add(&books.join("disk.md")).await.unwrap();
    let c = changed[0].change;
    assert_eq!((c.added, c.kept, c.removed), (1, 2, 1), "{c:?}");
    assert_eq!(changed[0].embedded, 1);
    let (rb, chunks) = k.show("disk.md").await.unwrap();
    assert_eq!(rb.chunks, 3);
    assert_eq!(chunks[1].heading, "Disk > Clean");
    assert!(chunks[1].body.contains("7 days"));
    let r = k
        .search(&Query {
            text: "delete logs older than a week".into(),
            k: 2,
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(r.method, Method::Hybrid);
    assert_eq!(r.hits[0].citation(), "disk.md § Disk > Clean (lines 5-7)");
    k.remove("db/pg.md").await.unwrap();
    assert_eq!(k.list().await.unwrap().len(), 1);
    assert!(matches!(
        k.remove("db/pg.md").await,
        Err(KnowledgeError::NotFound(_))
    ));
    // Broken front matter: says which file and line, stores nothing.
    std::fs::write(books.join("bad.md"), "---\nalerts: [x\n---\n# Bad\n").unwrap();
    let e = k.add(&books.join("bad.md")).await.unwrap_err();
    assert!(e.to_string().starts_with("bad.md:"), "{e}");
    assert!(k.show("bad.md").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_it_is_bm25_and_says_so_and_alerts_boost() {
    let dir = tempfile::tempdir().unwrap();
    let k = Knowledge::new(
        store(dir.path()),
        None,
        Some("not set up; run scripts/embed-model.sh".into()),
    );
    k.add(&repo().join("evals/runbooks")).await.unwrap();
    let r = k
        .search(&Query {
            text: "firing".into(),
            labels: BTreeMap::from([
                ("alertname".to_owned(), "KubeNodeNotReady".to_owned()),
                ("node".to_owned(), "node-7".to_owned()),
            ]),
            k: 3,
            method: Method::Hybrid,
            only: Vec::new(),
            vector: None,
        })
        .await
        .unwrap();
    assert_eq!(r.method, Method::Bm25);
    assert!(r.note.as_deref().unwrap().contains("BM25 only"), "{r:?}");
    assert_eq!(r.hits[0].runbook, "kubelet-not-ready.md");
    assert!(
        r.hits[0]
            .matched
            .contains(&"alert:KubeNodeNotReady".to_owned())
    );
    let code = k
        .search(&Query {
            text: "nginx config test before restart".into(),
            k: 1,
            method: Method::Bm25,
            ..Query::default()
        })
        .await
        .unwrap();
    assert!(!code.hits[0].code.is_empty(), "{:?}", code.hits[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embeddings_endpoint_client_works_and_fails_clearly() {
    use axum::Json;
    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(|Json(b): Json<serde_json::Value>| async move {
            let n = b["input"].as_array().unwrap().len();
            let data: Vec<serde_json::Value> = (0..n)
                .rev()
                .map(|i| serde_json::json!({"index": i, "embedding": [3.0, 4.0, i as f64]}))
                .collect();
            Json(serde_json::json!({"data": data}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let e = EndpointEmbedder::new(&url, "nomic-embed-text", None).unwrap();
    let v = e.embed(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(v[0], [0.6, 0.8, 0.0], "in input order, unit length");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = EndpointEmbedder::new(&format!("http://127.0.0.1:{port}/v1"), "m", None).unwrap();
    let err = down.embed(&["a".into()]).await.unwrap_err();
    assert!(err.to_string().contains("embedding model"), "{err}");
}

#[derive(serde::Deserialize)]
struct Case {
    query: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    expect: Expect,
}

#[derive(serde::Deserialize)]
struct Expect {
    runbook: String,
    section: String,
}

/// recall@1, recall@3, MRR (over the top 10).
async fn score(k: &Knowledge, cases: &[Case], method: Method) -> (f32, f32, f32, Vec<String>) {
    let (mut r1, mut r3, mut mrr) = (0.0, 0.0, 0.0);
    let mut misses = Vec::new();
    for c in cases {
        let r = k
            .search(&Query {
                text: c.query.clone(),
                labels: c.labels.clone(),
                k: 10,
                method,
                only: Vec::new(),
                vector: None,
            })
            .await
            .unwrap();
        let pos = r
            .hits
            .iter()
            .position(|h| h.runbook == c.expect.runbook && h.heading == c.expect.section);
        match pos {
            Some(0) => r1 += 1.0,
            _ => misses.push(format!(
                "{:?}: got {:?}",
                c.query,
                r.hits.first().map(|h| h.citation())
            )),
        }
        if pos.is_some_and(|p| p < 3) {
            r3 += 1.0;
        }
        if let Some(p) = pos {
            mrr += 1.0 / (p as f32 + 1.0);
        }
    }
    let n = cases.len() as f32;
    (r1 / n, r3 / n, mrr / n, misses)
}

/// Recorded scores (2026-11-22, 66 cases; recall@1, recall@3); a change
/// that lowers one fails here. Measured then: BM25 0.773 / 0.939 / MRR
/// 0.867, vectors 0.788 / 0.955 / 0.873, hybrid 0.833 / 0.955 / 0.905.
const BM25_FLOOR: (f32, f32) = (51.0 / 66.0 - 1e-4, 62.0 / 66.0 - 1e-4);
const HYBRID_FLOOR: (f32, f32) = (55.0 / 66.0 - 1e-4, 63.0 / 66.0 - 1e-4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_quality_on_the_labelled_set() {
    let cases: Vec<Case> = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("evals/retrieval.yaml")).unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 60);
    let dir = tempfile::tempdir().unwrap();
    let model = minilm().map(|m| Arc::new(m) as Arc<dyn Embedder>);
    let k = Knowledge::new(store(dir.path()), model.clone(), None);
    let added = k.add(&repo().join("evals/runbooks")).await.unwrap();
    assert!(added.len() >= 25);
    // Every expected section exists.
    for c in &cases {
        let (_, chunks) = k.show(&c.expect.runbook).await.unwrap();
        assert!(
            chunks.iter().any(|ch| ch.heading == c.expect.section),
            "no section {:?} in {}",
            c.expect.section,
            c.expect.runbook
        );
    }
    let mut report = vec!["method  recall@1 recall@3 MRR".to_owned()];
    let bm25 = score(&k, &cases, Method::Bm25).await;
    report.push(format!(
        "bm25    {:.3}    {:.3}    {:.3}",
        bm25.0, bm25.1, bm25.2
    ));
    if model.is_some() {
        let vector = score(&k, &cases, Method::Vector).await;
        report.push(format!(
            "vector  {:.3}    {:.3}    {:.3}",
            vector.0, vector.1, vector.2
        ));
        let hybrid = score(&k, &cases, Method::Hybrid).await;
        report.push(format!(
            "hybrid  {:.3}    {:.3}    {:.3}",
            hybrid.0, hybrid.1, hybrid.2
        ));
        for m in &hybrid.3 {
            eprintln!("hybrid miss@1: {m}");
        }
        eprintln!("{}", report.join("\n"));
        assert!(
            hybrid.0 >= HYBRID_FLOOR.0 && hybrid.1 >= HYBRID_FLOOR.1,
            "{}",
            report.join("\n")
        );
    } else {
        eprintln!("{}", report.join("\n"));
    }
    assert!(
        bm25.0 >= BM25_FLOOR.0 && bm25.1 >= BM25_FLOOR.1,
        "{}",
        report.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_search_tool_cites_what_it_found() {
    use ops_tools::{ToolContext, builtin::registry};
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let k = Arc::new(Knowledge::new(
        store.clone(),
        Some(Arc::new(Fake::default())),
        None,
    ));
    k.add(&repo().join("evals/runbooks")).await.unwrap();
    let mut r = registry().unwrap();
    r.register(Arc::new(ops_agent::knowledge::tool::RunbookSearch::new(k)))
        .unwrap();
    let spec = r
        .specs()
        .into_iter()
        .find(|s| s.name == "runbook_search")
        .unwrap();
    assert_eq!(spec.parameters["required"], serde_json::json!(["query"]));
    assert!(!spec.parameters.to_string().contains("$ref"));
    let p = r
        .prepare(
            "runbook_search",
            serde_json::json!({"query": "too many clients already", "k": 2}),
        )
        .unwrap();
    assert_eq!(p.facts.effect, Some(ops_model::Effect::Read));
    let bad = r
        .prepare("runbook_search", serde_json::json!({"query": " ", "k": 2}))
        .unwrap_err();
    assert!(bad.to_string().contains("query is empty"), "{bad}");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let engine = ops_engine::Engine::new(
        store,
        ops_exec::ssh::SshPool::new(ops_exec::ssh::SshOptions::new(dir.path())),
        ops_engine::EngineOptions::default(),
    );
    let ctx = ToolContext {
        engine: Arc::new(engine),
        namespace: "ops-system".into(),
        cancel: tokio_util::sync::CancellationToken::new(),
        sandbox: false,
        pinned: None,
    };
    let out = r
        .get("runbook_search")
        .unwrap()
        .run(&ctx, p.args)
        .await
        .unwrap();
    let first = &out["results"][0];
    assert!(
        first["citation"]
            .as_str()
            .unwrap()
            .starts_with("postgres-connections.md § PostgreSQL: too many connections"),
        "{out}"
    );
    assert_eq!(out["results"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qdrant_backend_answers_like_the_embedded_index() {
    use ops_agent::knowledge::index::QdrantIndex;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let q = qdrant_standin::QdrantStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let fake: Arc<dyn Embedder> = Arc::new(Fake::default());
    let embedded = Knowledge::new(st.clone(), Some(fake.clone()), None);
    embedded.add(&repo().join("evals/runbooks")).await.unwrap();
    let qdrant = Knowledge::new(st.clone(), Some(fake), None).with_index(Arc::new(
        QdrantIndex::new(&q.url, "ops_runbooks", None).unwrap(),
    ));
    assert_eq!(qdrant.index_kind(), "qdrant");
    let total = st.runbook_chunks().await.unwrap().len();
    for (text, only) in [
        ("disk full clean old logs", vec![]),
        ("certificate renew reload", vec![]),
        (
            "restart the service",
            vec![
                "nginx-down.md".to_owned(),
                "kubelet-not-ready.md".to_owned(),
            ],
        ),
    ] {
        let query = Query {
            text: text.into(),
            k: 5,
            method: Method::Vector,
            only: only.clone(),
            ..Query::default()
        };
        let a = embedded.search(&query).await.unwrap();
        let b = qdrant.search(&query).await.unwrap();
        let cites = |r: &ops_agent::knowledge::Results| -> Vec<String> {
            r.hits.iter().map(|h| h.citation()).collect()
        };
        assert_eq!(cites(&a), cites(&b), "{text}");
        if !only.is_empty() {
            assert!(
                b.hits.iter().all(|h| only.contains(&h.runbook)),
                "{:?}",
                cites(&b)
            );
        }
    }
    assert_eq!(q.count("ops_runbooks"), total);
    // Removing a runbook removes its points at the next sync.
    let (_, gone) = st.get_runbook("redis-memory.md").await.unwrap().unwrap();
    qdrant.remove("redis-memory.md").await.unwrap();
    qdrant
        .search(&Query {
            text: "x".into(),
            k: 1,
            method: Method::Vector,
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(q.count("ops_runbooks"), total - gone.len());
    // An unreachable Qdrant is a clear error, not a hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Knowledge::new(st, Some(Arc::new(Fake::default())), None).with_index(Arc::new(
        QdrantIndex::new(&format!("http://127.0.0.1:{port}"), "ops_runbooks", None).unwrap(),
    ));
    let e = down
        .search(&Query {
            text: "disk".into(),
            k: 1,
            ..Query::default()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("qdrant http://127.0.0.1:"), "{e}");
}
