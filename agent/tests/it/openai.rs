//! The OpenAI-compatible client against a scripted HTTP server that
//! captures every request: tool calls both ways, JSON action mode, retries
//! on 429/5xx (async-openai's, 3 at most), no retry on a bad key, timeouts,
//! an unreachable endpoint, and a context-too-long refusal; streamed
//! replies (text, tool-call fragments, usage, an error mid-stream), the
//! fallback to JSON actions for an endpoint that rejects `tools`, and
//! tool-call mode detection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ops_agent::llm::openai::{EndpointConfig, OpenAiModel};
use ops_agent::llm::{ChatModel, LlmError, Message, Role, ToolCall, ToolCallMode};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<(u16, Value, Duration)>>>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

async fn completions(
    State(s): State<Script>,
    h: HeaderMap,
    body: axum::Json<Value>,
) -> impl IntoResponse {
    s.requests.lock().unwrap().push((h, body.0));
    let (code, reply, delay) = s.replies.lock().unwrap().pop_front().unwrap_or((
        500,
        json!({"error": {"message": "script exhausted", "type": "x"}}),
        Duration::ZERO,
    ));
    tokio::time::sleep(delay).await;
    if let Some(Value::Array(chunks)) = reply.get("__sse") {
        // Server-sent events, as OpenAI streams them.
        let mut body = String::new();
        for c in chunks {
            body.push_str(&format!("data: {c}\n\n"));
        }
        body.push_str("data: [DONE]\n\n");
        return (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            body,
        )
            .into_response();
    }
    (StatusCode::from_u16(code).unwrap(), axum::Json(reply)).into_response()
}

fn sse(chunks: Vec<Value>) -> (u16, Value, Duration) {
    (200, json!({ "__sse": chunks }), Duration::ZERO)
}

fn delta(d: Value) -> Value {
    json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
           "choices": [{"index": 0, "delta": d, "finish_reason": null}]})
}

async fn server(replies: Vec<(u16, Value, Duration)>) -> (String, Script) {
    let s = Script::default();
    *s.replies.lock().unwrap() = replies.into();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, s)
}

fn ok(message: Value) -> (u16, Value, Duration) {
    (
        200,
        json!({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
               "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}),
        Duration::ZERO,
    )
}

fn err(code: u16, msg: &str) -> (u16, Value, Duration) {
    (
        code,
        json!({"error": {"message": msg, "type": "error", "param": null, "code": null}}),
        Duration::ZERO,
    )
}

fn model(url: &str) -> OpenAiModel {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut c = EndpointConfig::new(url, "qwen2.5-coder");
    c.api_key = Some("sk-test-key".into());
    c.temperature = Some(0.0);
    c.timeout = Duration::from_secs(5);
    c.extra.insert("cache_prompt".into(), json!(false));
    OpenAiModel::new(c).unwrap()
}

/// A streamed reply to `convo()` in native mode, and the text pieces.
async fn streamed(m: &OpenAiModel) -> (Result<ops_agent::llm::Reply, LlmError>, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let r = m
        .chat_streamed(&convo(), &[], ToolCallMode::Native, tx)
        .await;
    let mut pieces = Vec::new();
    while let Some(p) = rx.recv().await {
        pieces.push(p);
    }
    (r, pieces)
}

fn convo() -> Vec<Message> {
    vec![
        Message::text(Role::System, "be brief"),
        Message::text(Role::User, "disk on web-1?"),
        Message {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "host_status".into(),
                arguments: r#"{"host":"web-1"}"#.into(),
            }],
            tool_call_id: None,
        },
        Message {
            role: Role::Tool,
            content: "{\"disks\": []}".into(),
            tool_calls: vec![],
            tool_call_id: Some("c1".into()),
        },
    ]
}

#[tokio::test]
async fn native_tool_calls_both_ways() {
    let (url, s) = server(vec![ok(json!({"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "host_run_shell", "arguments": "{\"hosts\":\"web-1\",\"command\":\"df -h\"}"}}]}))]).await;
    let m = model(&url);
    let specs = ops_tools::builtin::registry().unwrap().specs();
    let r = m
        .chat(&convo(), &specs, ToolCallMode::Lenient)
        .await
        .unwrap();
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(
        (r.tool_calls[0].id.as_str(), r.tool_calls[0].name.as_str()),
        ("call_9", "host_run_shell")
    );
    assert_eq!((r.usage.prompt, r.usage.completion), (11, 7));
    let reqs = s.requests.lock().unwrap();
    let (h, body) = &reqs[0];
    assert_eq!(h.get("authorization").unwrap(), "Bearer sk-test-key");
    assert_eq!(body["model"], "qwen2.5-coder");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["cache_prompt"], false, "extra fields pass through");
    assert_eq!(body["tools"].as_array().unwrap().len(), specs.len());
    assert_eq!(body["tools"][0]["type"], "function");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "host_status");
    assert_eq!(msgs[3]["role"], "tool");
    assert_eq!(msgs[3]["tool_call_id"], "c1");
}

#[tokio::test]
async fn json_action_mode_asks_for_a_schema_and_replays_actions_as_text() {
    let (url, s) = server(vec![ok(json!({"role": "assistant", "content": "{\"action\": \"final_answer\", \"answer\": \"fine\"}"}))]).await;
    let m = model(&url);
    let specs = ops_tools::builtin::registry().unwrap().specs();
    let r = m
        .chat(&convo(), &specs, ToolCallMode::JsonAction)
        .await
        .unwrap();
    assert!(r.content.contains("final_answer"));
    let body = s.requests.lock().unwrap()[0].1.clone();
    assert!(body.get("tools").is_none());
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        specs.len() + 1
    );
    let msgs = body["messages"].as_array().unwrap();
    let replayed: Value = serde_json::from_str(msgs[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(replayed, json!({"action": "host_status", "host": "web-1"}));
    assert_eq!(msgs[3]["role"], "user");
}

#[tokio::test]
async fn retries_on_429_and_5xx_then_succeeds() {
    let (url, s) = server(vec![
        err(500, "overloaded"),
        err(429, "slow down"),
        ok(json!({"role": "assistant", "content": "hi"})),
    ])
    .await;
    let r = model(&url)
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap();
    assert_eq!(r.content, "hi");
    assert_eq!(s.requests.lock().unwrap().len(), 3);
    let (url, s) = server(vec![err(503, "down"); 5]).await;
    let e = model(&url)
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    assert_eq!(s.requests.lock().unwrap().len(), 4, "1 try + 3 retries");
}

#[tokio::test]
async fn clear_errors_for_keys_context_timeouts_and_unreachable_endpoints() {
    let (url, s) = server(vec![err(401, "Incorrect API key provided")]).await;
    let e = model(&url)
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Api { .. }));
    assert!(
        e.to_string().contains("bad or missing API key (HTTP 401)"),
        "{e}"
    );
    assert_eq!(s.requests.lock().unwrap().len(), 1, "no retry on a bad key");

    let (url, _) = server(vec![err(
        400,
        "This model's maximum context length is 4096 tokens",
    )])
    .await;
    let e = model(&url)
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("too long for the model's context"),
        "{e}"
    );

    let (url, _) = server(vec![(200, json!({}), Duration::from_secs(30)); 3]).await;
    let mut c = EndpointConfig::new(&url, "m");
    c.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = OpenAiModel::new(c)
        .unwrap()
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Transport { .. }));
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = EndpointConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    let e = OpenAiModel::new(c)
        .unwrap()
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");

    let (url2, _) = server(vec![(200, json!({"unexpected": true}), Duration::ZERO)]).await;
    let e = model(&url2)
        .chat(&convo(), &[], ToolCallMode::Native)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no choices"), "{e}");
}

#[tokio::test]
async fn streamed_replies_come_back_together() {
    let (url, s) = server(vec![sse(vec![
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "Disk "})),
        delta(json!({"content": "is full."})),
        delta(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "host_status", "arguments": "{\"ho"}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "st\":\"web-1\"}"}}]})),
        delta(json!({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "host_list", "arguments": ""}}]})),
        json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [],
               "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}}),
    ])])
    .await;
    let (r, pieces) = streamed(&model(&url)).await;
    let r = r.unwrap();
    assert_eq!(pieces, ["Disk ", "is full."]);
    assert_eq!(r.content, "Disk is full.");
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].id, "call_1");
    assert_eq!(r.tool_calls[0].name, "host_status");
    assert_eq!(r.tool_calls[0].arguments, r#"{"host":"web-1"}"#);
    assert_eq!(r.tool_calls[1].arguments, "{}");
    assert_eq!((r.usage.prompt, r.usage.completion), (21, 9));
    let body = s.requests.lock().unwrap()[0].1.clone();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);

    // A failure reported inside the stream is an error, not an answer.
    let (url, _) = server(vec![sse(vec![
        delta(json!({"content": "par"})),
        json!({"error": {"message": "the model crashed", "type": "server_error"}}),
    ])])
    .await;
    let e = streamed(&model(&url)).await.0.unwrap_err();
    assert!(e.to_string().contains("the model crashed"), "{e}");

    // Retries apply before the stream starts.
    let (url, s) = server(vec![
        err(503, "loading model"),
        sse(vec![delta(json!({"content": "ok"}))]),
    ])
    .await;
    let r = streamed(&model(&url)).await.0.unwrap();
    assert_eq!(r.content, "ok");
    assert_eq!(s.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_endpoint_that_rejects_tools_gets_json_actions() {
    let action = json!({"role": "assistant", "content": "{\"action\": \"host_list\"}"});
    let (url, s) = server(vec![
        err(
            400,
            "registry.ollama.ai/library/gemma:2b does not support tools",
        ),
        ok(action.clone()),
        ok(action),
    ])
    .await;
    let m = model(&url);
    let specs = ops_tools::builtin::registry().unwrap().specs();
    let r = m
        .chat(&convo(), &specs, ToolCallMode::Lenient)
        .await
        .unwrap();
    assert_eq!(r.mode, Some(ToolCallMode::JsonAction));
    assert!(r.content.contains("host_list"));
    // The next call goes straight to JSON actions.
    let r = m
        .chat(&convo(), &specs, ToolCallMode::Lenient)
        .await
        .unwrap();
    assert_eq!(r.mode, Some(ToolCallMode::JsonAction));
    let reqs = s.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].1.get("tools").is_some());
    for (_, body) in &reqs[1..] {
        assert!(body.get("tools").is_none());
        assert_eq!(body["response_format"]["type"], "json_schema");
    }
    // Other 400s are errors as before.
    let (url, _) = server(vec![err(400, "temperature must be at most 2")]).await;
    let e = model(&url)
        .chat(&convo(), &specs, ToolCallMode::Lenient)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("temperature"), "{e}");
}

#[tokio::test]
async fn tool_call_modes_are_detected() {
    use ops_agent::llm::openai::detect_mode;
    let (mode, why) =
        detect_mode(&EndpointConfig::new("https://api.openai.com/v1", "gpt-4o")).await;
    assert_eq!(mode, ToolCallMode::Native, "{why}");
    // A llama.cpp server answers /props.
    let app = axum::Router::new().route(
        "/props",
        axum::routing::get(|| async {
            axum::Json(
                json!({"default_generation_settings": {"n_ctx": 4096}, "chat_template": "..."}),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let (mode, why) = detect_mode(&EndpointConfig::new(&url, "local")).await;
    assert_eq!(mode, ToolCallMode::JsonAction, "{why}");
    // Anything else: lenient.
    let (url, _) = server(vec![]).await;
    let (mode, _) = detect_mode(&EndpointConfig::new(&url, "m")).await;
    assert_eq!(mode, ToolCallMode::Lenient);
}

#[tokio::test]
async fn a_reply_still_streaming_at_the_time_limit_says_so() {
    use futures::StreamExt;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let first = format!("data: {}\n\n", delta(json!({"content": "The node is"})));
            // One chunk, then nothing: a model that keeps going.
            let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, std::io::Error>(String::new())
                }),
            );
            (
                [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                axum::body::Body::from_stream(body),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut c = EndpointConfig::new(&url, "m");
    c.timeout = Duration::from_secs(2);
    let (r, pieces) = streamed(&OpenAiModel::new(c).unwrap()).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("still streaming after 2s"), "{e}");
    assert_eq!(pieces, ["The node is"]);
}
