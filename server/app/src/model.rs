//! The copilot's model: the configured OpenAI-compatible endpoint, or the
//! built-in llama.cpp model started here.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use ops_agent::llm::ToolCallMode;
use ops_agent::llm::local::{LocalModel, LocalServer};
use ops_agent::llm::openai::{EndpointConfig, OpenAiModel, detect_mode};

use crate::settings::{Settings as Config, env};

/// The configured endpoint, or the built-in local model started here (and
/// stopped when the returned server is dropped).
pub async fn model(cfg: &Config) -> Result<(OpenAiModel, Option<LocalServer>, ToolCallMode)> {
    let (e, server, mode) = endpoint(cfg).await?;
    Ok((OpenAiModel::new(e)?, server, mode))
}

/// What [`model`] talks to: the endpoint's settings, the local server it
/// started (if any) and the tool-call mode.
pub async fn endpoint(cfg: &Config) -> Result<(EndpointConfig, Option<LocalServer>, ToolCallMode)> {
    let Some(url) = cfg.model_url.clone() else {
        let model_home = std::env::var_os(env::LOCAL_MODEL_HOME)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| cfg.home.clone());
        let local = LocalModel::under(&model_home);
        if !local.present() {
            bail!(
                "no model endpoint is configured and the built-in model is not set up: run `bash scripts/local-model.sh` once (builds llama-server and fetches the model into {}; about 11 minutes), or set {} (and {} if it needs a key) to any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, llama-server)",
                cfg.home.display(),
                env::MODEL_URL,
                env::MODEL_API_KEY
            );
        }
        tracing::info!(
            "starting the built-in model ({}) ...",
            local.model.display()
        );
        let server = LocalServer::start(&local, &cfg.home.join("logs"), Duration::from_secs(180))
            .await
            .map_err(|e| anyhow::anyhow!("built-in model: {e}"))?;
        let mut e = EndpointConfig::new(server.base_url.clone(), "local");
        e.api_key = Some(server.api_key.clone());
        e.temperature = Some(0.0);
        // Greedy decoding of a 1.5B model can loop on one sentence: a
        // length cap bounds a reply (a repeat penalty was tried and made
        // it drift off the JSON actions).
        e.extra.insert("max_tokens".into(), serde_json::json!(768));
        // A 1.5B model calls tools reliably only under a grammar.
        let mode = cfg.tool_calls.unwrap_or(ToolCallMode::JsonAction);
        return Ok((e, Some(server), mode));
    };
    let mut e = EndpointConfig::new(url, cfg.model.clone());
    if let Some(k) = &cfg.model_api_key {
        e.api_key = Some(ops_exec::secret::resolve(k).context("setting `model-api-key`")?);
    }
    let mode = match cfg.tool_calls {
        Some(m) => m,
        None => {
            let (m, why) = detect_mode(&e).await;
            tracing::info!("tool calls: {} ({why})", m.as_str());
            m
        }
    };
    Ok((e, None, mode))
}
