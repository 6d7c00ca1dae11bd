//! [`OpenAiModel`]: any OpenAI-compatible chat endpoint (OpenAI, Azure's
//! OpenAI-compatible route, vLLM, Ollama, llama.cpp's `llama-server`)
//! through async-openai, with requests built as JSON (so server-specific
//! fields such as llama.cpp's `cache_prompt` pass through), a timeout on
//! every request, and errors that say what went wrong (bad key,
//! unreachable, context too long). Retries are async-openai's own: 429,
//! 5xx and connection failures are retried 3 times with exponential
//! backoff from 100 ms (capped at 8 s, `Retry-After` honoured; an
//! insufficient-quota 429 is not retried), for streamed requests too
//! (until the first byte).
//!
//! Streaming ([`ChatModel::chat_streamed`]) reads server-sent chunks and
//! puts text deltas, tool-call fragments (by index) and the final usage
//! back together ([`StreamAssembler`]).
//!
//! Tool-call modes: [`detect_mode`] picks one for an endpoint it can
//! recognise; and an endpoint that rejects `tools` (Ollama models without
//! tool support, llama-server without `--jinja`) is asked again in
//! JSON-action mode, for that call and every later one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use futures::StreamExt;
use ops_tools::ToolSpec;
use serde_json::{Map, Value, json};

use super::{
    ChatModel, Deltas, LlmError, Message, Reply, Role, ToolCall, ToolCallMode, Usage, action,
};

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
    /// Set once the endpoint rejected `tools`: ask in JSON-action mode.
    no_tools: Arc<AtomicBool>,
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
        Ok(OpenAiModel {
            client,
            cfg,
            no_tools: Arc::new(AtomicBool::new(false)),
        })
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
    let mut msgs: Vec<Value> = messages.iter().map(|m| message_json(m, mode)).collect();
    if mode == ToolCallMode::JsonAction {
        // No `tools` in this mode: the actions are described in the
        // system message (one is added if the conversation has none).
        let catalogue = action::action_prompt(tools);
        match msgs.iter_mut().find(|m| m["role"] == "system") {
            Some(sys) => {
                let text = sys["content"].as_str().unwrap_or("").to_owned();
                sys["content"] = Value::String(text + &catalogue);
            }
            None => msgs.insert(
                0,
                json!({"role": "system", "content": catalogue.trim_start()}),
            ),
        }
    }
    body.insert("messages".into(), Value::Array(msgs));
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
            ops_model::clip(&v.to_string(), 300)
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
    Ok(Reply {
        content,
        tool_calls,
        usage: usage_of(v),
        mode: None,
    })
}

fn usage_of(v: &Value) -> Usage {
    Usage {
        prompt: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        completion: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// Puts a streamed completion back together, chunk by chunk.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    content: String,
    /// Tool calls by their stream index: id, name, argument text.
    calls: Vec<(u64, String, String, String)>,
    usage: Usage,
}

impl StreamAssembler {
    /// Takes one chunk; returns its text delta, if any. A chunk that
    /// carries an error (some servers report a failure mid-stream that
    /// way) is an error.
    pub fn push(&mut self, chunk: &Value) -> Result<Option<String>, String> {
        if let Some(e) = chunk.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned);
            return Err(msg);
        }
        if chunk.get("usage").is_some_and(|u| !u.is_null()) {
            self.usage = usage_of(chunk);
        }
        let Some(delta) = chunk.pointer("/choices/0/delta") else {
            return Ok(None);
        };
        if let Some(Value::Array(calls)) = delta.get("tool_calls") {
            for (n, c) in calls.iter().enumerate() {
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(n as u64);
                let pos = match self.calls.iter().position(|x| x.0 == index) {
                    Some(p) => p,
                    None => {
                        self.calls
                            .push((index, String::new(), String::new(), String::new()));
                        self.calls.len() - 1
                    }
                };
                let entry = &mut self.calls[pos];
                if let Some(id) = c.get("id").and_then(Value::as_str) {
                    entry.1.push_str(id);
                }
                if let Some(f) = c.get("function") {
                    if let Some(name) = f.get("name").and_then(Value::as_str) {
                        entry.2.push_str(name);
                    }
                    match f.get("arguments") {
                        Some(Value::String(a)) => entry.3.push_str(a),
                        Some(Value::Null) | None => {}
                        Some(other) => entry.3.push_str(&other.to_string()),
                    }
                }
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                self.content.push_str(t);
                Ok(Some(t.to_owned()))
            }
            _ => Ok(None),
        }
    }

    /// The whole reply.
    pub fn finish(self) -> Reply {
        let tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            .map(|(i, (_, id, name, arguments))| ToolCall {
                id: if id.is_empty() {
                    format!("call-{i}")
                } else {
                    id
                },
                name,
                arguments: if arguments.trim().is_empty() {
                    "{}".into()
                } else {
                    arguments
                },
            })
            .collect();
        Reply {
            content: self.content,
            tool_calls,
            usage: self.usage,
            mode: None,
        }
    }
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
                detail: format!("unreadable reply ({err}): {}", ops_model::clip(&body, 300)),
            },
            other => LlmError::Transport {
                endpoint,
                detail: other.to_string(),
            },
        }
    }
}

/// Whether an API error says the endpoint does not take `tools`.
fn rejects_tools(e: &OpenAIError) -> bool {
    let OpenAIError::ApiError(api) = e else {
        return false;
    };
    let code = api.status_code.as_u16();
    let msg = api.api_error.message.to_lowercase();
    (code == 400 || code == 404 || code == 422 || code == 500 || code == 501)
        && msg.contains("tool")
        && (msg.contains("support")
            || msg.contains("jinja")
            || msg.contains("not allowed")
            || msg.contains("unknown")
            || msg.contains("unrecognized")
            || msg.contains("invalid"))
}

impl OpenAiModel {
    /// The mode to ask in: JSON-action once the endpoint rejected tools.
    fn effective(&self, mode: ToolCallMode) -> ToolCallMode {
        if mode != ToolCallMode::JsonAction && self.no_tools.load(Ordering::SeqCst) {
            ToolCallMode::JsonAction
        } else {
            mode
        }
    }

    fn body(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mode: ToolCallMode,
        stream: bool,
    ) -> Result<Value, LlmError> {
        let mut body =
            request_body(&self.cfg, messages, tools, mode).map_err(|detail| LlmError::Api {
                endpoint: self.cfg.base_url.clone(),
                detail,
            })?;
        if stream {
            body["stream"] = Value::Bool(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        Ok(body)
    }

    /// One request: plain, or streamed when `deltas` is given (text goes
    /// there as it arrives).
    async fn once(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mode: ToolCallMode,
        deltas: Option<&Deltas>,
    ) -> Result<Reply, OpenAIError> {
        let body = self
            .body(messages, tools, mode, deltas.is_some())
            .map_err(|e| OpenAIError::InvalidArgument(e.to_string()))?;
        let Some(deltas) = deltas else {
            let v: Value = self.client.chat().create_byot(body).await?;
            return parse_response(&v).map_err(OpenAIError::InvalidArgument);
        };
        let started = std::time::Instant::now();
        let mut stream = self
            .client
            .chat()
            .create_stream_byot::<Value, Value>(body)
            .await?;
        let mut asm = StreamAssembler::default();
        while let Some(chunk) = stream.next().await {
            // The request's time limit covers the whole stream: a reply
            // still going when it runs out ends with a body error.
            let chunk = chunk.map_err(|e| {
                if started.elapsed() + Duration::from_secs(1) >= self.cfg.timeout {
                    OpenAIError::InvalidArgument(format!(
                        "the reply was still streaming after {}s and timed out (the model may be looping)",
                        self.cfg.timeout.as_secs()
                    ))
                } else {
                    e
                }
            })?;
            if let Some(text) = asm.push(&chunk).map_err(OpenAIError::InvalidArgument)? {
                let _ = deltas.send(text);
            }
        }
        Ok(asm.finish())
    }

    /// A request in the effective mode; an endpoint that rejects `tools`
    /// is asked again in JSON-action mode, for this call and the rest.
    async fn ask(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mode: ToolCallMode,
        deltas: Option<&Deltas>,
    ) -> Result<Reply, LlmError> {
        let asked = self.effective(mode);
        let (result, asked) = match self.once(messages, tools, asked, deltas).await {
            Err(e) if asked != ToolCallMode::JsonAction && rejects_tools(&e) => {
                self.no_tools.store(true, Ordering::SeqCst);
                let json = ToolCallMode::JsonAction;
                (self.once(messages, tools, json, deltas).await, json)
            }
            other => (other, asked),
        };
        let mut r = result.map_err(|e| self.error(e))?;
        r.mode = (asked != mode).then_some(asked);
        Ok(r)
    }

    fn error(&self, e: OpenAIError) -> LlmError {
        match e {
            OpenAIError::InvalidArgument(detail) => LlmError::Api {
                endpoint: self.cfg.base_url.clone(),
                detail,
            },
            OpenAIError::StreamError(se) => LlmError::Transport {
                endpoint: self.cfg.base_url.clone(),
                detail: format!("the reply stream broke: {se}"),
            },
            other => self.classify(other),
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
        self.ask(messages, tools, mode, None).await
    }

    async fn chat_streamed(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        mode: ToolCallMode,
        deltas: Deltas,
    ) -> Result<Reply, LlmError> {
        self.ask(messages, tools, mode, Some(&deltas)).await
    }
}

/// Picks a tool-call mode for an endpoint, with a short probe: OpenAI and
/// Azure call tools natively; a llama.cpp server (it answers `/props`)
/// gets JSON-action mode, which its grammar enforces; anything else
/// (vLLM, Ollama, unknown) lenient mode, which takes native calls and
/// calls written as text, and falls back to JSON-action mode if the
/// endpoint rejects `tools`. Returns the mode and why.
pub async fn detect_mode(cfg: &EndpointConfig) -> (ToolCallMode, String) {
    let url = cfg.base_url.to_lowercase();
    if url.contains("api.openai.com") || url.contains(".openai.azure.com") {
        return (
            ToolCallMode::Native,
            "OpenAI/Azure endpoint: native tool calls".into(),
        );
    }
    let origin = cfg
        .base_url
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_owned();
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(2))
        .build()
    else {
        return (ToolCallMode::Lenient, "no probe possible".into());
    };
    let props = http.get(format!("{origin}/props")).send().await;
    if let Ok(r) = props {
        if r.status().is_success() {
            if let Ok(v) = serde_json::from_str::<Value>(&r.text().await.unwrap_or_default()) {
                if v.get("default_generation_settings").is_some()
                    || v.get("chat_template").is_some()
                {
                    return (
                        ToolCallMode::JsonAction,
                        "llama.cpp server: grammar-enforced JSON actions".into(),
                    );
                }
            }
        }
    }
    (
        ToolCallMode::Lenient,
        "native tool calls, also read from text; JSON actions if the endpoint rejects tools".into(),
    )
}
