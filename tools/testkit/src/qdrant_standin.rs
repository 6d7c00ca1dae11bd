//! A STAND-IN for a Qdrant server (no Qdrant server can be installed
//! here): an in-memory gRPC server built from the `Points` and
//! `Collections` service traits that ship inside `qdrant-client`, answering
//! the RPCs `QdrantIndex` uses (collection exists / create, upsert,
//! delete by ids, scroll without filter, nearest-dense query with a keyword
//! filter on one payload field) with Qdrant's semantics (cosine scores,
//! dimension checks, NOT_FOUND for a missing collection), and
//! UNIMPLEMENTED for every other RPC. Generated stubs: see the end.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use qdrant_client::qdrant::{
    ChangeAliases, ClearPayloadPoints, CollectionClusterInfoRequest, CollectionClusterInfoResponse,
    CollectionExists, CollectionExistsRequest, CollectionExistsResponse,
    CollectionOperationResponse, Condition, CountPoints, CountResponse, CreateCollection,
    CreateFieldIndexCollection, CreateShardKeyRequest, CreateShardKeyResponse,
    CreateVectorNameRequest, DeleteCollection, DeleteFieldIndexCollection, DeletePayloadPoints,
    DeletePointVectors, DeletePoints, DeleteShardKeyRequest, DeleteShardKeyResponse,
    DeleteVectorNameRequest, DiscoverBatchPoints, DiscoverBatchResponse, DiscoverPoints,
    DiscoverResponse, FacetCounts, FacetResponse, Filter, GetCollectionInfoRequest,
    GetCollectionInfoResponse, GetPoints, GetResponse, ListAliasesRequest, ListAliasesResponse,
    ListCollectionAliasesRequest, ListCollectionsRequest, ListCollectionsResponse,
    ListShardKeysRequest, ListShardKeysResponse, PointId, PointsOperationResponse,
    QueryBatchPoints, QueryBatchResponse, QueryGroupsResponse, QueryPointGroups, QueryPoints,
    QueryResponse, RecommendBatchPoints, RecommendBatchResponse, RecommendGroupsResponse,
    RecommendPointGroups, RecommendPoints, RecommendResponse, RetrievedPoint, ScoredPoint,
    ScrollPoints, ScrollResponse, SearchBatchPoints, SearchBatchResponse, SearchGroupsResponse,
    SearchMatrixOffsetsResponse, SearchMatrixPairsResponse, SearchMatrixPoints, SearchPointGroups,
    SearchPoints, SearchResponse, SetPayloadPoints, UpdateBatchPoints, UpdateBatchResponse,
    UpdateCollection, UpdateCollectionClusterSetupRequest, UpdateCollectionClusterSetupResponse,
    UpdatePointVectors, UpdateResult, UpdateStatus, UpsertPoints, Value, VectorInput, Vectors,
    collections_server, condition::ConditionOneOf, r#match::MatchValue, point_id::PointIdOptions,
    points_selector::PointsSelectorOneOf, points_server, query, value::Kind, vector, vector_input,
    vectors::VectorsOptions, vectors_config,
};
use tonic::{Request, Response, Status};

#[derive(Debug)]
struct Collection {
    dim: usize,
    /// id -> (vector, `runbook` payload)
    points: BTreeMap<u64, (Vec<f32>, Option<String>)>,
}

/// The stand-in's state, shared by both services.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    collections: Arc<Mutex<HashMap<String, Collection>>>,
}

/// A running stand-in on 127.0.0.1.
#[derive(Debug)]
pub struct QdrantStandIn {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Its state.
    pub state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for QdrantStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl QdrantStandIn {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Shared::default();
        let (p, c) = (state.clone(), state.clone());
        let task = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(points_server::PointsServer::new(p))
                .add_service(collections_server::CollectionsServer::new(c))
                .serve_with_incoming(incoming)
                .await;
        });
        QdrantStandIn { url, state, task }
    }

    /// Points in a collection.
    pub fn count(&self, collection: &str) -> usize {
        self.state
            .collections
            .lock()
            .map(|c| c.get(collection).map_or(0, |c| c.points.len()))
            .unwrap_or(0)
    }
}

/// Implements a service trait: the given methods, and UNIMPLEMENTED for
/// every RPC listed (the stand-in answers only what `QdrantIndex` uses).
macro_rules! stand_in {
    ($tr:path, unimplemented: [$($name:ident: $req:ty => $resp:ty),* $(,)?], $($body:item)*) => {
        #[tonic::async_trait]
        impl $tr for Shared {
            $($body)*
            $(
                async fn $name(&self, _: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(Status::unimplemented(concat!(stringify!($name), ": not in the Qdrant stand-in")))
                }
            )*
        }
    };
}

impl Shared {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Collection>>, Status> {
        self.collections
            .lock()
            .map_err(|_| Status::internal("stand-in state poisoned"))
    }
}

/// A collection by name, NOT_FOUND as Qdrant answers.
fn collection<'a>(
    cols: &'a mut HashMap<String, Collection>,
    name: &str,
) -> Result<&'a mut Collection, Status> {
    cols.get_mut(name)
        .ok_or_else(|| Status::not_found(format!("collection `{name}` not found")))
}

fn num_id(id: Option<&PointId>) -> Result<u64, Status> {
    match id.and_then(|i| i.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => Ok(*n),
        _ => Err(Status::unimplemented(
            "the stand-in takes numeric point ids only",
        )),
    }
}

#[allow(deprecated)] // older clients send the dense values in `data`
fn dense(v: Option<&Vectors>) -> Result<Vec<f32>, Status> {
    match v.and_then(|v| v.vectors_options.as_ref()) {
        Some(VectorsOptions::Vector(v)) => match &v.vector {
            Some(vector::Vector::Dense(d)) => Ok(d.data.clone()),
            None if !v.data.is_empty() => Ok(v.data.clone()),
            _ => Err(Status::unimplemented(
                "the stand-in stores dense vectors only",
            )),
        },
        _ => Err(Status::invalid_argument("point without a vector")),
    }
}

fn string_value(v: &Value) -> Option<String> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A `must` filter of keyword matches on `runbook`: the allowed values.
fn keyword_filter(f: Option<&Filter>) -> Result<Option<Vec<String>>, Status> {
    let Some(f) = f else { return Ok(None) };
    if !f.should.is_empty() || !f.must_not.is_empty() || f.min_should.is_some() {
        return Err(Status::unimplemented(
            "the stand-in filters with `must` only",
        ));
    }
    let mut allowed: Option<Vec<String>> = None;
    for c in &f.must {
        let Condition {
            condition_one_of: Some(ConditionOneOf::Field(fc)),
        } = c
        else {
            return Err(Status::unimplemented("the stand-in filters on fields only"));
        };
        if fc.key != "runbook" {
            return Err(Status::unimplemented(
                "the stand-in filters on `runbook` only",
            ));
        }
        let values = match fc.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
            Some(MatchValue::Keyword(k)) => vec![k.clone()],
            Some(MatchValue::Keywords(k)) => k.strings.clone(),
            _ => return Err(Status::unimplemented("the stand-in matches keywords only")),
        };
        allowed = Some(match allowed {
            None => values,
            Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    Ok(allowed)
}

fn done() -> PointsOperationResponse {
    PointsOperationResponse {
        result: Some(UpdateResult {
            operation_id: Some(0),
            status: UpdateStatus::Completed as i32,
        }),
        ..PointsOperationResponse::default()
    }
}

stand_in! {
    points_server::Points,
    unimplemented: [
        get: GetPoints => GetResponse,
        update_vectors: UpdatePointVectors => PointsOperationResponse,
        delete_vectors: DeletePointVectors => PointsOperationResponse,
        set_payload: SetPayloadPoints => PointsOperationResponse,
        overwrite_payload: SetPayloadPoints => PointsOperationResponse,
        delete_payload: DeletePayloadPoints => PointsOperationResponse,
        clear_payload: ClearPayloadPoints => PointsOperationResponse,
        create_field_index: CreateFieldIndexCollection => PointsOperationResponse,
        delete_field_index: DeleteFieldIndexCollection => PointsOperationResponse,
        create_vector_name: CreateVectorNameRequest => PointsOperationResponse,
        delete_vector_name: DeleteVectorNameRequest => PointsOperationResponse,
        search: SearchPoints => SearchResponse,
        search_batch: SearchBatchPoints => SearchBatchResponse,
        search_groups: SearchPointGroups => SearchGroupsResponse,
        recommend: RecommendPoints => RecommendResponse,
        recommend_batch: RecommendBatchPoints => RecommendBatchResponse,
        recommend_groups: RecommendPointGroups => RecommendGroupsResponse,
        discover: DiscoverPoints => DiscoverResponse,
        discover_batch: DiscoverBatchPoints => DiscoverBatchResponse,
        count: CountPoints => CountResponse,
        update_batch: UpdateBatchPoints => UpdateBatchResponse,
        query_batch: QueryBatchPoints => QueryBatchResponse,
        query_groups: QueryPointGroups => QueryGroupsResponse,
        facet: FacetCounts => FacetResponse,
        search_matrix_pairs: SearchMatrixPoints => SearchMatrixPairsResponse,
        search_matrix_offsets: SearchMatrixPoints => SearchMatrixOffsetsResponse,
    ],
    async fn upsert(
        &self,
        request: Request<UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let r = request.into_inner();
        let mut cols = self.lock()?;
        let col = collection(&mut cols, &r.collection_name)?;
        for p in r.points {
            let id = num_id(p.id.as_ref())?;
            let v = dense(p.vectors.as_ref())?;
            if v.len() != col.dim {
                return Err(Status::invalid_argument(format!(
                    "wrong vector dimension: expected {}, got {}",
                    col.dim,
                    v.len()
                )));
            }
            let runbook = p.payload.get("runbook").and_then(string_value);
            col.points.insert(id, (v, runbook));
        }
        Ok(Response::new(done()))
    }
    async fn delete(
        &self,
        request: Request<DeletePoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let r = request.into_inner();
        let mut cols = self.lock()?;
        let col = collection(&mut cols, &r.collection_name)?;
        let ids = match r.points.and_then(|s| s.points_selector_one_of) {
            Some(PointsSelectorOneOf::Points(list)) => list.ids,
            _ => {
                return Err(Status::unimplemented(
                    "the stand-in deletes by id list only",
                ));
            }
        };
        for id in ids {
            col.points.remove(&num_id(Some(&id))?);
        }
        Ok(Response::new(done()))
    }
    async fn scroll(
        &self,
        request: Request<ScrollPoints>,
    ) -> Result<Response<ScrollResponse>, Status> {
        let r = request.into_inner();
        if r.filter.is_some() {
            return Err(Status::unimplemented(
                "the stand-in scrolls without a filter only",
            ));
        }
        let mut cols = self.lock()?;
        let col = collection(&mut cols, &r.collection_name)?;
        let from = match r.offset.as_ref() {
            Some(o) => num_id(Some(o))?,
            None => 0,
        };
        let limit = r.limit.unwrap_or(10) as usize;
        let mut page: Vec<u64> = col
            .points
            .range(from..)
            .map(|(id, _)| *id)
            .take(limit + 1)
            .collect();
        let next = if page.len() > limit {
            page.pop().map(PointId::from)
        } else {
            None
        };
        Ok(Response::new(ScrollResponse {
            next_page_offset: next,
            result: page
                .into_iter()
                .map(|id| RetrievedPoint {
                    id: Some(PointId::from(id)),
                    ..RetrievedPoint::default()
                })
                .collect(),
            ..ScrollResponse::default()
        }))
    }
    async fn query(
        &self,
        request: Request<QueryPoints>,
    ) -> Result<Response<QueryResponse>, Status> {
        let r = request.into_inner();
        let q = match r.query.and_then(|q| q.variant) {
            Some(query::Variant::Nearest(VectorInput {
                variant: Some(vector_input::Variant::Dense(d)),
            })) => d.data,
            _ => {
                return Err(Status::unimplemented(
                    "the stand-in answers nearest-dense queries only",
                ));
            }
        };
        let allowed = keyword_filter(r.filter.as_ref())?;
        let mut cols = self.lock()?;
        let col = collection(&mut cols, &r.collection_name)?;
        if q.len() != col.dim {
            return Err(Status::invalid_argument("wrong query dimension"));
        }
        let norm = |v: &[f32]| {
            v.iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE)
        };
        let qn = norm(&q);
        let mut scored: Vec<(u64, f32)> = col
            .points
            .iter()
            .filter(|(_, (_, rb))| match &allowed {
                None => true,
                Some(a) => rb.as_ref().is_some_and(|r| a.contains(r)),
            })
            .map(|(id, (v, _))| {
                (
                    *id,
                    v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * qn),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(r.limit.unwrap_or(10) as usize);
        Ok(Response::new(QueryResponse {
            result: scored
                .into_iter()
                .map(|(id, score)| ScoredPoint {
                    id: Some(PointId::from(id)),
                    score,
                    ..ScoredPoint::default()
                })
                .collect(),
            ..QueryResponse::default()
        }))
    }
}
stand_in! {
    collections_server::Collections,
    unimplemented: [
        get: GetCollectionInfoRequest => GetCollectionInfoResponse,
        list: ListCollectionsRequest => ListCollectionsResponse,
        update: UpdateCollection => CollectionOperationResponse,
        delete: DeleteCollection => CollectionOperationResponse,
        update_aliases: ChangeAliases => CollectionOperationResponse,
        list_collection_aliases: ListCollectionAliasesRequest => ListAliasesResponse,
        list_aliases: ListAliasesRequest => ListAliasesResponse,
        collection_cluster_info: CollectionClusterInfoRequest => CollectionClusterInfoResponse,
        update_collection_cluster_setup: UpdateCollectionClusterSetupRequest => UpdateCollectionClusterSetupResponse,
        create_shard_key: CreateShardKeyRequest => CreateShardKeyResponse,
        delete_shard_key: DeleteShardKeyRequest => DeleteShardKeyResponse,
        list_shard_keys: ListShardKeysRequest => ListShardKeysResponse,
    ],
    async fn create(
        &self,
        request: Request<CreateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let r = request.into_inner();
        let dim = match r.vectors_config.and_then(|c| c.config) {
            Some(vectors_config::Config::Params(p)) => p.size as usize,
            _ => {
                return Err(Status::unimplemented(
                    "the stand-in takes one unnamed vector per point",
                ));
            }
        };
        let mut cols = self.lock()?;
        if cols.contains_key(&r.collection_name) {
            return Err(Status::already_exists(format!(
                "collection `{}` already exists",
                r.collection_name
            )));
        }
        cols.insert(
            r.collection_name,
            Collection {
                dim,
                points: BTreeMap::new(),
            },
        );
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }
    async fn collection_exists(
        &self,
        request: Request<CollectionExistsRequest>,
    ) -> Result<Response<CollectionExistsResponse>, Status> {
        let r = request.into_inner();
        let exists = self.lock()?.contains_key(&r.collection_name);
        Ok(Response::new(CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: 0.0,
        }))
    }
}
