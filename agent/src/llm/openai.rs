//! [`OpenAiModel`]: any OpenAI-compatible chat endpoint (OpenAI, Azure's
//! OpenAI-compatible route, vLLM, Ollama, llama.cpp's `llama-server`)
//! through async-openai, with requests built as JSON (so server-specific
//! fields such as llama.cpp's `cache_prompt` pass through), a timeout on
//! every request, and errors that say what went wrong (bad key,
//! unreachable, context too long). Retries are async-openai's own: 429,
//! 5xx and connection failures are retried 3 times with exponential
//! backoff from 100 ms (capped at 8 s, `Retry-After` honoured; an
//! insufficient-quota 429 is not retried).

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use ops_tools::tool::ToolSpec;
use serde_json::{Map, Value, json};

use super::{ChatModel, LlmError, Message, Reply, Role, ToolCall, ToolCallMode, Usage, action};

/// Where the model is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Base URL, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// API key (sent as a bearer token); none for local servers.
    pub api_key: Option<String>,
    /// Model name.
    pub model: String,
    /// Sampling temperature (0 for repeatable runs).
    pub temperature: Option<f32>,
    /// Limit for one request, reply included.
    pub timeout: Duration,
    /// Limit for connecting.
    pub connect_timeout: Duration,
    /// Extra top-level request fields (`{"cache_prompt": false}`).
    pub extra: Map<String, Value>,
}

impl EndpointConfig {
    /// An endpoint with defaults: 120 s per request, 10 s to connect.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        EndpointConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: None,
            model: model.into(),
            temperature: None,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            extra: Map::new(),
        }
    }
}

/// A chat model behind an OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    cfg: EndpointConfig,
}

impl OpenAiModel {
    /// A client for `cfg`.
    pub fn new(cfg: EndpointConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .build()
            .map_err(|e| LlmError::Transport {
                endpoint: cfg.base_url.clone(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        let mut oc = OpenAIConfig::new().with_api_base(cfg.base_url.clone());
        // Local servers need no key; async-openai would otherwise read
        // OPENAI_API_KEY, which belongs to another endpoint.
        oc = oc.with_api_key(cfg.api_key.clone().unwrap_or_default());
        let client = Client::with_config(oc).with_http_client(http);
        Ok(OpenAiModel { client, cfg })
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }
}

fn message_json(m: &Message, mode: ToolCallMode) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.content}),
        Role::User => json!({"role": "user", "content": m.content}),
        Role::Assistant if mode == ToolCallMode::JsonAction => {
            // No `tools` in this mode: the model's own action objects.
            let text = match m.tool_calls.first() {
                Some(c) => {
                    let mut o = serde_json::from_str::<Value>(&c.arguments)
                        .ok()
                        .and_then(|v| v.as_object().cloned())
                        .unwrap_or_default();
                    o.insert("action".into(), Value::String(c.name.clone()));
                    Value::Object(o).to_string()
                }
                None => json!({"action": action::FINAL_ANSWER, "answer": m.content}).to_string(),
            };
            json!({"role": "assistant", "content": text})
        }
        Role::Assistant => {
            let mut o = json!({"role": "assistant", "content": m.content});
            if !m.tool_calls.is_empty() {
                o["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                if m.content.is_empty() {
                    o["content"] = Value::Null;
                }
            }
            o
        }
        Role::Tool if mode == ToolCallMode::JsonAction => json!({
            "role": "user",
            "content": format!("Result of the last action:\n{}", m.content),
        }),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "content": m.content,
        }),
    }
}

/// The request body for one completion.
pub fn request_body(
    cfg: &EndpointConfig,
    messages: &[Message],
    tools: &[ToolSpec],
    mode: ToolCallMode,
) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(cfg.model.clone()));
    body.insert(
        "messages".into(),
        messages.iter().map(|m| message_json(m, mode)).collect(),
    );
    body.insert("stream".into(), Value::Bool(false));
    if let Some(t) = cfg.temperature {
        body.insert("temperature".into(), json!(t));
    }
    match mode {
        ToolCallMode::JsonAction => {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "action", "strict": true, "schema": action::action_schema(tools)?}}),
            );
        }
        ToolCallMode::Native | ToolCallMode::Lenient => {
            if !tools.is_empty() {
                body.insert(
                    "tools".into(),
                    tools
                        .iter()
                        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                        .collect(),
                );
                body.insert("tool_choice".into(), Value::String("auto".into()));
            }
        }
    }
    for (k, v) in &cfg.extra {
        body.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(body))
}

/// Reads a completion response.
pub fn parse_response(v: &Value) -> Result<Reply, String> {
    let msg = v.pointer("/choices/0/message").ok_or_else(|| {
        format!(
            "the reply has no choices: {}",
            ops_tools::tool::clip(&v.to_string(), 300)
        )
    })?;
    let content = msg
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut tool_calls = Vec::new();
    if let Some(Value::Array(calls)) = msg.get("tool_calls") {
        for (i, c) in calls.iter().enumerate() {
            let f = c.get("function").unwrap_or(c);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let arguments = match f.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "{}".into(),
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call-{i}"), str::to_owned);
            tool_calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    let usage = Usage {
        prompt: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        completion: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(Reply {
        content,
        tool_calls,
        usage,
    })
}

impl OpenAiModel {
    fn classify(&self, e: OpenAIError) -> LlmError {
        let endpoint = self.cfg.base_url.clone();
        match e {
            OpenAIError::ApiError(api) => {
                let code = api.status_code.as_u16();
                let msg = api.api_error.message.clone();
                let lower = msg.to_lowercase();
                if code == 401 || code == 403 {
                    LlmError::Api {
                        endpoint,
                        detail: format!("bad or missing API key (HTTP {code}): {msg}"),
                    }
                } else if code == 429 || code >= 500 {
                    LlmError::Api {
                        endpoint,
                        detail: format!("HTTP {code}: {msg}"),
                    }
                } else if lower.contains("context")
                    || lower.contains("too long")
                    || lower.contains("exceeds")
                {
                    LlmError::Api {
                        endpoint,
                        detail: format!(
                            "the conversation is too long for the model's context (HTTP {code}): {msg}"
                        ),
                    }
                } else {
                    LlmError::Api {
                        endpoint,
                        detail: format!("HTTP {code}: {msg}"),
                    }
                }
            }
            OpenAIError::Reqwest(r) => {
                let detail = if r.is_timeout() {
                    format!(
                        "no reply within {}s (timed out)",
                        self.cfg.timeout.as_secs_f32()
                    )
                } else if r.is_connect() {
                    format!("cannot connect: {r}")
                } else {
                    r.to_string()
                };
                LlmError::Transport { endpoint, detail }
            }
            OpenAIError::JSONDeserialize(err, body) => LlmError::Api {
                endpoint,
                detail: format!(
                    "unreadable reply ({err}): {}",
                    ops_tools::tool::clip(&body, 300)
                ),
            },
            other => LlmError::Transport {
                endpoint,
                detail: other.to_string(),
            },
        }
    }
}

#[async_trait::async_trait]
impl ChatModel for OpenAiModel {
    async fn chat(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mode: ToolCallMode,
    ) -> Result<Reply, LlmError> {
        let body =
            request_body(&self.cfg, messages, tools, mode).map_err(|detail| LlmError::Api {
                endpoint: self.cfg.base_url.clone(),
                detail,
            })?;
        let result: Result<Value, OpenAIError> = self.client.chat().create_byot(body).await;
        match result {
            Ok(v) => parse_response(&v).map_err(|detail| LlmError::Api {
                endpoint: self.cfg.base_url.clone(),
                detail,
            }),
            Err(e) => Err(self.classify(e)),
        }
    }
}
