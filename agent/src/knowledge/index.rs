//! Where runbook vectors are searched. [`EmbeddedIndex`] (the default)
//! keeps them in memory and compares by brute force: exact, and fast
//! enough up to ~10^5 sections. [`QdrantIndex`] keeps them in a Qdrant
//! collection (gRPC through `qdrant-client`), for shared or larger
//! deployments. Both answer the same search with the same payload filter
//! (restrict to some runbooks); the store stays the source of truth and
//! the index is synced from it.

use std::collections::HashSet;
use std::time::Duration;

use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, DeletePointsBuilder, Distance, Filter, PointId,
    PointStruct, PointsIdsList, QueryPointsBuilder, ScrollPointsBuilder, UpsertPointsBuilder,
    VectorParamsBuilder, point_id::PointIdOptions,
};
use tokio::sync::RwLock;

use super::KnowledgeError;

/// A section's vector with what filters see.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The section's id in the store.
    pub id: u64,
    /// Unit vector.
    pub vector: Vec<f32>,
    /// Its runbook (payload, filterable).
    pub runbook: String,
}

/// A vector index.
#[async_trait::async_trait]
pub trait VectorIndex: Send + Sync {
    /// `embedded` or `qdrant`.
    fn kind(&self) -> &'static str;
    /// Makes the index hold exactly `points` (adds, replaces, removes).
    async fn sync(&self, points: &[Point]) -> Result<(), KnowledgeError>;
    /// The `k` nearest ids by cosine, best first; only `runbooks` when
    /// given.
    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        runbooks: Option<&[String]>,
    ) -> Result<Vec<(u64, f32)>, KnowledgeError>;
}

/// Vectors in memory, searched exhaustively.
#[derive(Debug, Default)]
pub struct EmbeddedIndex {
    points: RwLock<Vec<Point>>,
}

/// Dot product in eight independent lanes, so the compiler can use SIMD
/// (a plain `sum()` must add in order and stays scalar).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[async_trait::async_trait]
impl VectorIndex for EmbeddedIndex {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn sync(&self, points: &[Point]) -> Result<(), KnowledgeError> {
        *self.points.write().await = points.to_vec();
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        runbooks: Option<&[String]>,
    ) -> Result<Vec<(u64, f32)>, KnowledgeError> {
        let points = self.points.read().await;
        let mut scored: Vec<(u64, f32)> = points
            .iter()
            .filter(|p| runbooks.is_none_or(|r| r.contains(&p.runbook)))
            .filter(|p| p.vector.len() == vector.len())
            .map(|p| (p.id, dot(vector, &p.vector)))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        // Partial selection, then order the k best.
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(scored)
    }
}

/// A Qdrant collection (one per embedding model and dimension).
pub struct QdrantIndex {
    client: Qdrant,
    collection: String,
    url: String,
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantIndex")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .finish()
    }
}

fn q_err(url: &str, e: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Index(format!("qdrant {url}: {e}"))
}

impl QdrantIndex {
    /// A client for the Qdrant gRPC endpoint at `url`
    /// (`http://127.0.0.1:6334`), collection `collection`; every call has
    /// a timeout.
    pub fn new(
        url: &str,
        collection: &str,
        api_key: Option<String>,
    ) -> Result<Self, KnowledgeError> {
        let mut b = Qdrant::from_url(url)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .skip_compatibility_check();
        if let Some(k) = api_key {
            b = b.api_key(k);
        }
        let client = b.build().map_err(|e| q_err(url, e))?;
        Ok(QdrantIndex {
            client,
            collection: collection.to_owned(),
            url: url.to_owned(),
        })
    }

    async fn ensure(&self, dim: u64) -> Result<(), KnowledgeError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(|e| q_err(&self.url, e))?;
        if !exists {
            self.client
                .create_collection(
                    CreateCollectionBuilder::new(&self.collection)
                        .vectors_config(VectorParamsBuilder::new(dim, Distance::Cosine)),
                )
                .await
                .map_err(|e| q_err(&self.url, e))?;
        }
        Ok(())
    }

    async fn ids(&self) -> Result<HashSet<u64>, KnowledgeError> {
        let mut out = HashSet::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut req = ScrollPointsBuilder::new(&self.collection)
                .limit(1000)
                .with_payload(false)
                .with_vectors(false);
            if let Some(o) = offset.take() {
                req = req.offset(o);
            }
            let page = self
                .client
                .scroll(req)
                .await
                .map_err(|e| q_err(&self.url, e))?;
            for p in &page.result {
                if let Some(PointIdOptions::Num(n)) =
                    p.id.as_ref().and_then(|i| i.point_id_options.clone())
                {
                    out.insert(n);
                }
            }
            match page.next_page_offset {
                Some(o) => offset = Some(o),
                None => return Ok(out),
            }
        }
    }
}

#[async_trait::async_trait]
impl VectorIndex for QdrantIndex {
    fn kind(&self) -> &'static str {
        "qdrant"
    }

    async fn sync(&self, points: &[Point]) -> Result<(), KnowledgeError> {
        let Some(first) = points.first() else {
            return Ok(());
        };
        self.ensure(first.vector.len() as u64).await?;
        let have = self.ids().await?;
        let want: HashSet<u64> = points.iter().map(|p| p.id).collect();
        // Section ids change only when their text does: upsert the new.
        let new: Vec<PointStruct> = points
            .iter()
            .filter(|p| !have.contains(&p.id))
            .map(|p| {
                let mut payload = qdrant_client::Payload::new();
                payload.insert("runbook", p.runbook.clone());
                PointStruct::new(p.id, p.vector.clone(), payload)
            })
            .collect();
        for batch in new.chunks(256) {
            self.client
                .upsert_points(
                    UpsertPointsBuilder::new(&self.collection, batch.to_vec()).wait(true),
                )
                .await
                .map_err(|e| q_err(&self.url, e))?;
        }
        let gone: Vec<PointId> = have
            .difference(&want)
            .map(|id| PointId::from(*id))
            .collect();
        if !gone.is_empty() {
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(PointsIdsList { ids: gone })
                        .wait(true),
                )
                .await
                .map_err(|e| q_err(&self.url, e))?;
        }
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        runbooks: Option<&[String]>,
    ) -> Result<Vec<(u64, f32)>, KnowledgeError> {
        let mut q = QueryPointsBuilder::new(&self.collection)
            .query(vector.to_vec())
            .limit(k as u64);
        if let Some(r) = runbooks {
            q = q.filter(Filter::must([Condition::matches("runbook", r.to_vec())]));
        }
        let resp = self
            .client
            .query(q)
            .await
            .map_err(|e| q_err(&self.url, e))?;
        Ok(resp
            .result
            .into_iter()
            .filter_map(|p| match p.id.and_then(|i| i.point_id_options) {
                Some(PointIdOptions::Num(n)) => Some((n, p.score)),
                _ => None,
            })
            .collect())
    }
}
