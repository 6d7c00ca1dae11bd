//! The scripted tier's model: a real OpenAI-compatible HTTP server on
//! loopback (`/v1/chat/completions`, plain JSON or SSE) that replays a
//! case's `script`, one reply per request, and records every request. The
//! session talks to it through the same client as to any endpoint, so the
//! scripted tier proves the whole path: client, parsing, tools, the gate,
//! the lab and the checks. Deterministic by construction.
//!
//! Token counts it reports are estimates (4 characters a token): the
//! scripted tier measures the harness, not a model.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::EvalError;
use crate::case::Reply;

#[derive(Debug, Default)]
struct Shared {
    replies: VecDeque<Value>,
    requests: Vec<Value>,
}

/// A running scripted server.
#[derive(Debug)]
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A script reply as an assistant message.
fn message(i: usize, r: &Reply) -> Value {
    match (&r.call, &r.say) {
        (Some(name), _) => {
            let args = r.args.clone().unwrap_or_else(|| json!({}));
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call-{i}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]})
        }
        (None, say) => json!({"role": "assistant", "content": say.clone().unwrap_or_default()}),
    }
}

impl ScriptedServer {
    /// Starts it on a free loopback port.
    pub async fn start() -> Result<ScriptedServer, EvalError> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .with_state(Arc::clone(&shared));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| EvalError::Setup(format!("scripted model server: {e}")))?;
        let addr = l
            .local_addr()
            .map_err(|e| EvalError::Setup(format!("scripted model server: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Ok(ScriptedServer {
            base_url: format!("http://{addr}/v1"),
            shared,
            task,
        })
    }

    /// Queues a case's script (dropping what is left of the last one).
    pub fn load(&self, script: &[Reply]) {
        self.load_messages(
            script
                .iter()
                .enumerate()
                .map(|(i, r)| message(i, r))
                .collect(),
        );
    }

    /// Queues raw assistant messages (OpenAI chat format), for tests that
    /// script the model directly.
    pub fn load_messages(&self, messages: Vec<Value>) {
        if let Ok(mut s) = self.shared.lock() {
            s.replies = messages.into();
            s.requests.clear();
        }
    }

    /// The request bodies received since the last load, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }
}

fn estimate(v: &Value) -> u64 {
    (v.to_string().len() / 4) as u64
}

async fn completions(State(s): State<Arc<Mutex<Shared>>>, body: axum::Json<Value>) -> Response {
    let streamed = body.0["stream"] == true;
    let prompt = estimate(&body.0["messages"]);
    let msg = match s.lock() {
        Ok(mut s) => {
            s.requests.push(body.0.clone());
            s.replies.pop_front()
        }
        Err(_) => None,
    }
    .unwrap_or_else(
        || json!({"role": "assistant", "content": "(the scripted model has no more replies)"}),
    );
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": estimate(&msg),
                       "total_tokens": prompt + estimate(&msg)});
    if !streamed {
        return axum::Json(
            json!({"id": "scripted", "object": "chat.completion", "created": 0,
            "model": "scripted", "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": usage}),
        )
        .into_response();
    }
    let chunk = |delta: Value| {
        json!({"id": "scripted", "object": "chat.completion.chunk", "created": 0,
               "model": "scripted", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}))];
    let text: Vec<char> = msg["content"].as_str().unwrap_or("").chars().collect();
    for piece in text.chunks(16) {
        chunks.push(chunk(json!({"content": piece.iter().collect::<String>()})));
    }
    if let Some(Value::Array(calls)) = msg.get("tool_calls") {
        let indexed: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c["index"] = json!(i);
                c
            })
            .collect();
        chunks.push(chunk(json!({"tool_calls": indexed})));
    }
    chunks.push(
        json!({"id": "scripted", "object": "chat.completion.chunk", "created": 0,
                       "model": "scripted", "choices": [], "usage": usage}),
    );
    let mut out = String::new();
    for c in chunks {
        out.push_str(&format!("data: {c}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        out,
    )
        .into_response()
}
