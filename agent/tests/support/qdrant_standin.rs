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

#[tonic::async_trait]
impl points_server::Points for Shared {
    async fn upsert(
        &self,
        request: Request<UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let r = request.into_inner();
        let mut cols = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let col = cols.get_mut(&r.collection_name).ok_or_else(|| {
            Status::not_found(format!("collection `{}` not found", r.collection_name))
        })?;
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
        let mut cols = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let col = cols.get_mut(&r.collection_name).ok_or_else(|| {
            Status::not_found(format!("collection `{}` not found", r.collection_name))
        })?;
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
    async fn get(&self, _: Request<GetPoints>) -> Result<Response<GetResponse>, Status> {
        Err(Status::unimplemented("Points/get: not in the stand-in"))
    }
    async fn update_vectors(
        &self,
        _: Request<UpdatePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/update_vectors: not in the stand-in",
        ))
    }
    async fn delete_vectors(
        &self,
        _: Request<DeletePointVectors>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/delete_vectors: not in the stand-in",
        ))
    }
    async fn set_payload(
        &self,
        _: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/set_payload: not in the stand-in",
        ))
    }
    async fn overwrite_payload(
        &self,
        _: Request<SetPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/overwrite_payload: not in the stand-in",
        ))
    }
    async fn delete_payload(
        &self,
        _: Request<DeletePayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/delete_payload: not in the stand-in",
        ))
    }
    async fn clear_payload(
        &self,
        _: Request<ClearPayloadPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/clear_payload: not in the stand-in",
        ))
    }
    async fn create_field_index(
        &self,
        _: Request<CreateFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/create_field_index: not in the stand-in",
        ))
    }
    async fn delete_field_index(
        &self,
        _: Request<DeleteFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/delete_field_index: not in the stand-in",
        ))
    }
    async fn create_vector_name(
        &self,
        _: Request<CreateVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/create_vector_name: not in the stand-in",
        ))
    }
    async fn delete_vector_name(
        &self,
        _: Request<DeleteVectorNameRequest>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Points/delete_vector_name: not in the stand-in",
        ))
    }
    async fn search(&self, _: Request<SearchPoints>) -> Result<Response<SearchResponse>, Status> {
        Err(Status::unimplemented("Points/search: not in the stand-in"))
    }
    async fn search_batch(
        &self,
        _: Request<SearchBatchPoints>,
    ) -> Result<Response<SearchBatchResponse>, Status> {
        Err(Status::unimplemented(
            "Points/search_batch: not in the stand-in",
        ))
    }
    async fn search_groups(
        &self,
        _: Request<SearchPointGroups>,
    ) -> Result<Response<SearchGroupsResponse>, Status> {
        Err(Status::unimplemented(
            "Points/search_groups: not in the stand-in",
        ))
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
        let cols = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let col = cols.get(&r.collection_name).ok_or_else(|| {
            Status::not_found(format!("collection `{}` not found", r.collection_name))
        })?;
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
    async fn recommend(
        &self,
        _: Request<RecommendPoints>,
    ) -> Result<Response<RecommendResponse>, Status> {
        Err(Status::unimplemented(
            "Points/recommend: not in the stand-in",
        ))
    }
    async fn recommend_batch(
        &self,
        _: Request<RecommendBatchPoints>,
    ) -> Result<Response<RecommendBatchResponse>, Status> {
        Err(Status::unimplemented(
            "Points/recommend_batch: not in the stand-in",
        ))
    }
    async fn recommend_groups(
        &self,
        _: Request<RecommendPointGroups>,
    ) -> Result<Response<RecommendGroupsResponse>, Status> {
        Err(Status::unimplemented(
            "Points/recommend_groups: not in the stand-in",
        ))
    }
    async fn discover(
        &self,
        _: Request<DiscoverPoints>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        Err(Status::unimplemented(
            "Points/discover: not in the stand-in",
        ))
    }
    async fn discover_batch(
        &self,
        _: Request<DiscoverBatchPoints>,
    ) -> Result<Response<DiscoverBatchResponse>, Status> {
        Err(Status::unimplemented(
            "Points/discover_batch: not in the stand-in",
        ))
    }
    async fn count(&self, _: Request<CountPoints>) -> Result<Response<CountResponse>, Status> {
        Err(Status::unimplemented("Points/count: not in the stand-in"))
    }
    async fn update_batch(
        &self,
        _: Request<UpdateBatchPoints>,
    ) -> Result<Response<UpdateBatchResponse>, Status> {
        Err(Status::unimplemented(
            "Points/update_batch: not in the stand-in",
        ))
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
        let cols = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let col = cols.get(&r.collection_name).ok_or_else(|| {
            Status::not_found(format!("collection `{}` not found", r.collection_name))
        })?;
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
    async fn query_batch(
        &self,
        _: Request<QueryBatchPoints>,
    ) -> Result<Response<QueryBatchResponse>, Status> {
        Err(Status::unimplemented(
            "Points/query_batch: not in the stand-in",
        ))
    }
    async fn query_groups(
        &self,
        _: Request<QueryPointGroups>,
    ) -> Result<Response<QueryGroupsResponse>, Status> {
        Err(Status::unimplemented(
            "Points/query_groups: not in the stand-in",
        ))
    }
    async fn facet(&self, _: Request<FacetCounts>) -> Result<Response<FacetResponse>, Status> {
        Err(Status::unimplemented("Points/facet: not in the stand-in"))
    }
    async fn search_matrix_pairs(
        &self,
        _: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixPairsResponse>, Status> {
        Err(Status::unimplemented(
            "Points/search_matrix_pairs: not in the stand-in",
        ))
    }
    async fn search_matrix_offsets(
        &self,
        _: Request<SearchMatrixPoints>,
    ) -> Result<Response<SearchMatrixOffsetsResponse>, Status> {
        Err(Status::unimplemented(
            "Points/search_matrix_offsets: not in the stand-in",
        ))
    }
}
#[tonic::async_trait]
impl collections_server::Collections for Shared {
    async fn get(
        &self,
        _: Request<GetCollectionInfoRequest>,
    ) -> Result<Response<GetCollectionInfoResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/get: not in the stand-in",
        ))
    }
    async fn list(
        &self,
        _: Request<ListCollectionsRequest>,
    ) -> Result<Response<ListCollectionsResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/list: not in the stand-in",
        ))
    }
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
        let mut cols = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
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
    async fn update(
        &self,
        _: Request<UpdateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/update: not in the stand-in",
        ))
    }
    async fn delete(
        &self,
        _: Request<DeleteCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/delete: not in the stand-in",
        ))
    }
    async fn update_aliases(
        &self,
        _: Request<ChangeAliases>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/update_aliases: not in the stand-in",
        ))
    }
    async fn list_collection_aliases(
        &self,
        _: Request<ListCollectionAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/list_collection_aliases: not in the stand-in",
        ))
    }
    async fn list_aliases(
        &self,
        _: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/list_aliases: not in the stand-in",
        ))
    }
    async fn collection_cluster_info(
        &self,
        _: Request<CollectionClusterInfoRequest>,
    ) -> Result<Response<CollectionClusterInfoResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/collection_cluster_info: not in the stand-in",
        ))
    }
    async fn collection_exists(
        &self,
        request: Request<CollectionExistsRequest>,
    ) -> Result<Response<CollectionExistsResponse>, Status> {
        let r = request.into_inner();
        let exists = self
            .collections
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .contains_key(&r.collection_name);
        Ok(Response::new(CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: 0.0,
        }))
    }
    async fn update_collection_cluster_setup(
        &self,
        _: Request<UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<UpdateCollectionClusterSetupResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/update_collection_cluster_setup: not in the stand-in",
        ))
    }
    async fn create_shard_key(
        &self,
        _: Request<CreateShardKeyRequest>,
    ) -> Result<Response<CreateShardKeyResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/create_shard_key: not in the stand-in",
        ))
    }
    async fn delete_shard_key(
        &self,
        _: Request<DeleteShardKeyRequest>,
    ) -> Result<Response<DeleteShardKeyResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/delete_shard_key: not in the stand-in",
        ))
    }
    async fn list_shard_keys(
        &self,
        _: Request<ListShardKeysRequest>,
    ) -> Result<Response<ListShardKeysResponse>, Status> {
        Err(Status::unimplemented(
            "Collections/list_shard_keys: not in the stand-in",
        ))
    }
}
