//! Runbook knowledge: the team's runbooks, split into sections
//! ([`chunk`]), stored with their vectors ([`Store`] tables `runbooks`,
//! `runbook_chunks`, `embeddings`), and searched by words ([`bm25`]) and
//! by meaning ([`embed`]) at once, fused by reciprocal rank, with a boost
//! for runbooks whose front matter names the alert, its labels, services
//! or hosts. Every hit cites its runbook, heading path and lines.
//!
//! Without an embedding model the search is BM25 alone and says so.
//! Vectors are searched through a [`index::VectorIndex`]: in-process by
//! default (brute-force cosine: right up to ~10^5 chunks), or a Qdrant
//! collection, synced from the store.

pub mod bm25;
pub mod chunk;
pub mod embed;
pub mod index;
pub mod tool;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ops_store::{ChunkRecord, RunbookChange, RunbookRecord, Store, StoreError};
use serde::Serialize;
use tokio::sync::Mutex;

use bm25::Bm25;
use chunk::{CodeBlock, FrontMatter, Parsed, code_blocks, content_hash};
use embed::Embedder;
use index::{EmbeddedIndex, Point, VectorIndex};

/// What went wrong with runbooks.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// A file could not be read.
    #[error("{path}: {detail}")]
    Io {
        /// Which.
        path: String,
        /// Why.
        detail: String,
    },
    /// A runbook could not be parsed.
    #[error(transparent)]
    Parse(#[from] chunk::ParseError),
    /// The embedding model failed or is missing.
    #[error("embedding model: {0}")]
    Model(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vector index failed.
    #[error("vector index: {0}")]
    Index(String),
    /// No such runbook.
    #[error("no runbook named `{0}` (see `opscli runbook list`)")]
    NotFound(String),
}

/// Files `add` reads.
pub const EXTENSIONS: &[&str] = &["md", "markdown", "txt"];

/// How one file went in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Added {
    /// Runbook name.
    pub name: String,
    /// What changed.
    pub change: RunbookChange,
    /// Chunks embedded now (the rest had cached vectors).
    pub embedded: usize,
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// BM25 and vectors, fused.
    #[default]
    Hybrid,
    /// Words only.
    Bm25,
    /// Meaning only.
    Vector,
}

/// A search.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Words (a question, or an alert rendered as text).
    pub text: String,
    /// Labels (an alert's) to match against front matter.
    pub labels: BTreeMap<String, String>,
    /// Hits wanted.
    pub k: usize,
    /// Rankings to use.
    pub method: Method,
    /// Only these runbooks (none: all).
    pub only: Vec<String>,
    /// The query's vector, when the caller has it (skips embedding).
    pub vector: Option<Vec<f32>>,
}

/// One hit, with its citation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Runbook name.
    pub runbook: String,
    /// Runbook title.
    pub title: String,
    /// Heading path.
    pub heading: String,
    /// First line.
    pub start_line: u32,
    /// Last line.
    pub end_line: u32,
    /// Fused score.
    pub score: f32,
    /// Rank in the BM25 list (1 = best), if in it.
    pub bm25_rank: Option<usize>,
    /// Rank in the vector list, if in it.
    pub vector_rank: Option<usize>,
    /// Front-matter matches that raised it (`alert:DiskFull`).
    pub matched: Vec<String>,
    /// The section's text.
    pub text: String,
    /// Its code blocks, whole.
    pub code: Vec<CodeBlock>,
}

impl Hit {
    /// `disk.md § Disk full > Cleanup (lines 13-20)`.
    pub fn citation(&self) -> String {
        format!(
            "{} § {} (lines {}-{})",
            self.runbook, self.heading, self.start_line, self.end_line
        )
    }
}

/// Search results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// Best first.
    pub hits: Vec<Hit>,
    /// The rankings used.
    pub method: Method,
    /// Why the search is not what was asked (no embedding model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Rank fusion constant (the usual 60).
const RRF_K: f32 = 60.0;
/// Candidates taken from each ranking.
const CANDIDATES: usize = 50;

/// What a search runs over: chunks with their runbooks' metadata, the
/// BM25 index and the vectors; rebuilt after a change.
#[derive(Debug)]
struct Snapshot {
    chunks: Vec<ChunkRecord>,
    meta: HashMap<String, (String, FrontMatter)>,
    bm25: Bm25,
    /// Whether the index holds vectors (an embedder is set).
    vectors: bool,
    /// Section id -> position in `chunks`.
    by_id: HashMap<i64, usize>,
}

/// Runbooks: add, list, show, remove, search.
pub struct Knowledge {
    store: Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
    /// Why there is no embedder.
    no_embedder: Option<String>,
    index: Arc<dyn VectorIndex>,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field(
                "embedder",
                &self.embedder.as_ref().map(|e| e.id().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

/// The text that is indexed for a chunk: its heading path and body.
fn indexed_text(c: &ChunkRecord, title: &str) -> String {
    format!("{title}\n{}\n{}", c.heading, c.body)
}

fn glob_match(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(s),
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len()
                && s[..pre.len()].eq_ignore_ascii_case(pre)
                && s[s.len() - post.len()..].eq_ignore_ascii_case(post)
        }
    }
}

/// Front-matter matches of a runbook for a query.
fn matches(meta: &FrontMatter, q: &Query, qterms: &[String], qlower: &str) -> Vec<String> {
    let mut out = Vec::new();
    let alertname = q.labels.get("alertname").map(String::as_str);
    for a in &meta.alerts {
        let lower = a.to_lowercase();
        if alertname.is_some_and(|n| n.eq_ignore_ascii_case(a))
            || qterms.contains(&lower)
            || qlower.contains(&lower)
        {
            out.push(format!("alert:{a}"));
        }
    }
    for (k, v) in &meta.labels {
        if q.labels.get(k).is_some_and(|x| x.eq_ignore_ascii_case(v)) {
            out.push(format!("label:{k}={v}"));
        }
    }
    for s in &meta.services {
        let lower = s.to_lowercase();
        if q.labels.values().any(|v| v.eq_ignore_ascii_case(s)) || qterms.contains(&lower) {
            out.push(format!("service:{s}"));
        }
    }
    let host = ["instance", "host", "node", "hostname"]
        .iter()
        .filter_map(|k| q.labels.get(*k))
        .map(|v| v.split(':').next().unwrap_or(v))
        .collect::<Vec<_>>();
    for h in &meta.hosts {
        if host.iter().any(|v| glob_match(h, v)) {
            out.push(format!("host:{h}"));
        }
    }
    out
}

impl Knowledge {
    /// Runbooks in `store`, searched by meaning with `embedder` when there
    /// is one (`why_none` says why not, for the note on results).
    pub fn new(
        store: Arc<dyn Store>,
        embedder: Option<Arc<dyn Embedder>>,
        why_none: Option<String>,
    ) -> Self {
        Knowledge {
            store,
            embedder,
            no_embedder: why_none,
            index: Arc::new(EmbeddedIndex::default()),
            snapshot: Mutex::new(None),
        }
    }

    /// The same, with vectors searched in `index` (Qdrant).
    pub fn with_index(mut self, index: Arc<dyn VectorIndex>) -> Self {
        self.index = index;
        self
    }

    /// `embedded` or `qdrant`.
    pub fn index_kind(&self) -> &'static str {
        self.index.kind()
    }

    /// The embedder's id, if any.
    pub fn embedder(&self) -> Option<&str> {
        self.embedder.as_deref().map(|e| e.id())
    }

    /// Adds a file, or every `.md`/`.markdown`/`.txt` file under a
    /// directory (named by their path relative to it). Unchanged files do
    /// no work; a changed one replaces only its changed chunks.
    pub async fn add(&self, path: &Path) -> Result<Vec<Added>, KnowledgeError> {
        let io = |p: &Path, e: std::io::Error| KnowledgeError::Io {
            path: p.display().to_string(),
            detail: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        if meta.is_dir() {
            let mut stack = vec![path.to_path_buf()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
                    let p = entry.map_err(|e| io(&dir, e))?.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e))
                    {
                        let name = p
                            .strip_prefix(path)
                            .unwrap_or(&p)
                            .to_string_lossy()
                            .into_owned();
                        files.push((name, p));
                    }
                }
            }
            files.sort();
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            files.push((name, path.to_path_buf()));
        }
        let mut out = Vec::new();
        for (name, p) in files {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            out.push(self.add_text(&name, &p, &text).await?);
        }
        Ok(out)
    }

    /// Adds one runbook from its text.
    pub async fn add_text(
        &self,
        name: &str,
        source: &Path,
        text: &str,
    ) -> Result<Added, KnowledgeError> {
        let stem = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_owned());
        let is_text = Path::new(name).extension().and_then(|e| e.to_str()) == Some("txt");
        let parsed: Parsed = if is_text {
            chunk::parse_text(&stem, text)
        } else {
            chunk::parse_markdown(name, &stem, text)?
        };
        let source = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        let record = RunbookRecord {
            name: name.to_owned(),
            source: source.display().to_string(),
            hash: content_hash(text),
            title: parsed.title.clone(),
            meta: serde_json::to_string(&parsed.meta).unwrap_or_else(|_| "{}".into()),
            added_at: String::new(),
            updated_at: String::new(),
            chunks: parsed.chunks.len(),
        };
        let chunks: Vec<ChunkRecord> = parsed
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| ChunkRecord {
                id: 0,
                runbook: name.to_owned(),
                ordinal: i as u32,
                heading: c.heading_path(),
                start_line: c.start_line,
                end_line: c.end_line,
                body: c.body.clone(),
                hash: c.hash(),
                code: c.code,
            })
            .collect();
        let change = self.store.put_runbook(&record, &chunks).await?;
        let embedded = if change.unchanged {
            0
        } else {
            let texts: Vec<(String, String)> = chunks
                .iter()
                .map(|c| (c.hash.clone(), indexed_text(c, &parsed.title)))
                .collect();
            self.ensure_vectors(&texts).await?
        };
        *self.snapshot.lock().await = None;
        Ok(Added {
            name: name.to_owned(),
            change,
            embedded,
        })
    }

    /// Embeds what has no cached vector; returns how many were embedded.
    async fn ensure_vectors(&self, items: &[(String, String)]) -> Result<usize, KnowledgeError> {
        let Some(e) = &self.embedder else {
            return Ok(0);
        };
        let hashes: Vec<String> = items.iter().map(|(h, _)| h.clone()).collect();
        let have = self.store.get_embeddings(e.id(), &hashes).await?;
        let missing: Vec<&(String, String)> = items
            .iter()
            .filter(|(h, _)| !have.contains_key(h))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
        let vectors = e.embed(&texts).await?;
        let pairs: Vec<(String, Vec<f32>)> = missing
            .iter()
            .map(|(h, _)| h.clone())
            .zip(vectors)
            .collect();
        self.store.put_embeddings(e.id(), &pairs).await?;
        Ok(pairs.len())
    }

    /// Runbooks.
    pub async fn list(&self) -> Result<Vec<RunbookRecord>, KnowledgeError> {
        Ok(self.store.list_runbooks().await?)
    }

    /// One runbook with its chunks.
    pub async fn show(
        &self,
        name: &str,
    ) -> Result<(RunbookRecord, Vec<ChunkRecord>), KnowledgeError> {
        self.store
            .get_runbook(name)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound(name.to_owned()))
    }

    /// Removes a runbook.
    pub async fn remove(&self, name: &str) -> Result<(), KnowledgeError> {
        if !self.store.delete_runbook(name).await? {
            return Err(KnowledgeError::NotFound(name.to_owned()));
        }
        *self.snapshot.lock().await = None;
        Ok(())
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>, KnowledgeError> {
        let mut guard = self.snapshot.lock().await;
        if let Some(s) = &*guard {
            return Ok(Arc::clone(s));
        }
        let chunks = self.store.runbook_chunks().await?;
        let mut meta = HashMap::new();
        for rb in self.store.list_runbooks().await? {
            let fm: FrontMatter = serde_json::from_str(&rb.meta).unwrap_or_default();
            meta.insert(rb.name.clone(), (rb.title.clone(), fm));
        }
        let title = |c: &ChunkRecord| {
            meta.get(&c.runbook)
                .map_or("", |(t, _)| t.as_str())
                .to_owned()
        };
        let texts: Vec<String> = chunks.iter().map(|c| indexed_text(c, &title(c))).collect();
        let bm25 = Bm25::new(texts.iter().map(String::as_str));
        let vectors = match &self.embedder {
            Some(e) => {
                let items: Vec<(String, String)> = chunks
                    .iter()
                    .zip(&texts)
                    .map(|(c, t)| (c.hash.clone(), t.clone()))
                    .collect();
                self.ensure_vectors(&items).await?;
                let hashes: Vec<String> = chunks.iter().map(|c| c.hash.clone()).collect();
                let have = self.store.get_embeddings(e.id(), &hashes).await?;
                let points: Vec<Point> = chunks
                    .iter()
                    .filter_map(|c| {
                        have.get(&c.hash).map(|v| Point {
                            id: c.id as u64,
                            vector: v.clone(),
                            runbook: c.runbook.clone(),
                        })
                    })
                    .collect();
                self.index.sync(&points).await?;
                true
            }
            None => false,
        };
        let by_id = chunks.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let s = Arc::new(Snapshot {
            chunks,
            meta,
            bm25,
            vectors,
            by_id,
        });
        *guard = Some(Arc::clone(&s));
        Ok(s)
    }

    /// Searches the runbooks.
    pub async fn search(&self, q: &Query) -> Result<Results, KnowledgeError> {
        let snap = self.snapshot().await?;
        let k = q.k.max(1);
        let mut method = q.method;
        let mut note = None;
        if method != Method::Bm25 && !snap.vectors {
            note = Some(format!(
                "BM25 only: no embedding model ({})",
                self.no_embedder
                    .clone()
                    .unwrap_or_else(|| "none configured".into())
            ));
            method = Method::Bm25;
        }
        let only = |i: &usize| q.only.is_empty() || q.only.contains(&snap.chunks[*i].runbook);
        let bm25: Vec<(usize, f32)> = if method == Method::Vector {
            Vec::new()
        } else if q.only.is_empty() {
            snap.bm25.search(&q.text, CANDIDATES)
        } else {
            let mut all = snap.bm25.search(&q.text, snap.bm25.len());
            all.retain(|(i, _)| only(i));
            all.truncate(CANDIDATES);
            all
        };
        let vector: Vec<(usize, f32)> = match (method, &self.embedder) {
            (Method::Hybrid | Method::Vector, Some(e)) if snap.vectors => {
                let qv = match &q.vector {
                    Some(v) => v.clone(),
                    None => e
                        .embed(std::slice::from_ref(&q.text))
                        .await?
                        .pop()
                        .unwrap_or_default(),
                };
                let filter = (!q.only.is_empty()).then_some(q.only.as_slice());
                self.index
                    .search(&qv, CANDIDATES, filter)
                    .await?
                    .into_iter()
                    .filter_map(|(id, s)| snap.by_id.get(&(id as i64)).map(|i| (*i, s)))
                    .collect()
            }
            _ => Vec::new(),
        };
        let mut fused: HashMap<usize, (f32, Option<usize>, Option<usize>)> = HashMap::new();
        for (rank, (i, _)) in bm25.iter().enumerate() {
            let e = fused.entry(*i).or_default();
            e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
            e.1 = Some(rank + 1);
        }
        for (rank, (i, _)) in vector.iter().enumerate() {
            let e = fused.entry(*i).or_default();
            e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
            e.2 = Some(rank + 1);
        }
        // Front matter that names the alert, its labels, services or
        // hosts: worth as much as a first place in one ranking (alerts),
        // half that for the rest. Applies to every chunk of the runbook
        // that is already a candidate, or to its first chunk otherwise.
        let qterms = bm25::terms(&q.text);
        let qlower = q.text.to_lowercase();
        let mut boosts: HashMap<String, Vec<String>> = HashMap::new();
        for (name, (_, fm)) in &snap.meta {
            if !q.only.is_empty() && !q.only.contains(name) {
                continue;
            }
            let m = matches(fm, q, &qterms, &qlower);
            if !m.is_empty() {
                boosts.insert(name.clone(), m);
            }
        }
        for name in boosts.keys() {
            if let Some(first) = snap.chunks.iter().position(|c| &c.runbook == name) {
                fused.entry(first).or_default();
            }
        }
        // Score every candidate, keep the best k, then build their hits.
        let mut scored: Vec<(usize, f32, Option<usize>, Option<usize>)> = fused
            .into_iter()
            .map(|(i, (score, br, vr))| {
                let c = &snap.chunks[i];
                let matched: &[String] = boosts.get(&c.runbook).map_or(&[], Vec::as_slice);
                let mut boost: f32 = matched
                    .iter()
                    .map(|m| {
                        if m.starts_with("alert:") {
                            1.0 / (RRF_K + 1.0)
                        } else {
                            0.5 / (RRF_K + 1.0)
                        }
                    })
                    .sum();
                // The runbook for the alert is entered at its top: the
                // overview says what the alert means and where to go.
                if c.ordinal == 0 && matched.iter().any(|m| m.starts_with("alert:")) {
                    boost += 0.25 / (RRF_K + 1.0);
                }
                (i, score + boost, br, vr)
            })
            .collect();
        scored.sort_by(|a, b| {
            let (ca, cb) = (&snap.chunks[a.0], &snap.chunks[b.0]);
            b.1.total_cmp(&a.1)
                .then_with(|| ca.runbook.cmp(&cb.runbook))
                .then(ca.start_line.cmp(&cb.start_line))
        });
        scored.truncate(k);
        let hits: Vec<Hit> = scored
            .into_iter()
            .map(|(i, score, br, vr)| {
                let c = &snap.chunks[i];
                Hit {
                    runbook: c.runbook.clone(),
                    title: snap
                        .meta
                        .get(&c.runbook)
                        .map(|(t, _)| t.clone())
                        .unwrap_or_default(),
                    heading: c.heading.clone(),
                    start_line: c.start_line,
                    end_line: c.end_line,
                    score,
                    bm25_rank: br,
                    vector_rank: vr,
                    matched: boosts.get(&c.runbook).cloned().unwrap_or_default(),
                    code: code_blocks(&c.body),
                    text: c.body.clone(),
                }
            })
            .collect();
        Ok(Results { hits, method, note })
    }
}
