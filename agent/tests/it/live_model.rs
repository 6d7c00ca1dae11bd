//! Live smoke test against the built-in local model (llama-server with
//! Qwen2.5-Coder-1.5B, set up by `scripts/local-model.sh`; CI runs it).
//! Skipped, saying why, only when the model files are absent. Looks in
//! `$OPS_LOCAL_MODEL_HOME`, else `~/.ops`.

use std::time::Duration;

use ops_agent::llm::local::{LocalModel, LocalServer};
use ops_agent::llm::openai::{EndpointConfig, OpenAiModel};
use ops_agent::llm::parse::calls_in_text;
use ops_agent::llm::{ChatModel, Message, Role, ToolCallMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_answers_with_a_valid_action() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let home = std::env::var_os("OPS_LOCAL_MODEL_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".ops")))
        .unwrap();
    let local = LocalModel::under(&home);
    if !local.present() {
        eprintln!(
            "SKIPPED: the local model is not set up ({} / {}); run scripts/local-model.sh",
            local.server.display(),
            local.model.display()
        );
        return;
    }
    let run_dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&local, run_dir.path(), Duration::from_secs(300))
        .await
        .unwrap();
    // The server takes requests only with this start's key.
    let anonymous = reqwest::Client::new()
        .get(format!("{}/models", server.base_url))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status().as_u16(),
        401,
        "a request without the key"
    );
    assert!(server.log.starts_with(run_dir.path()));
    let mut cfg = EndpointConfig::new(server.base_url.clone(), "local");
    cfg.api_key = Some(server.api_key.clone());
    cfg.temperature = Some(0.0);
    cfg.timeout = Duration::from_secs(300);
    // The streamed call below repeats the first one's prompt: with the
    // prompt cache (llama-server's default) it re-reads none of it.
    cfg.extra
        .insert("cache_prompt".into(), serde_json::json!(true));
    cfg.extra
        .insert("max_tokens".into(), serde_json::json!(200));
    let model = OpenAiModel::new(cfg).unwrap();
    let registry = ops_tools::builtin::registry().unwrap();
    let specs = registry.specs();
    let messages = vec![
        Message::text(Role::System, ops_agent::session::DEFAULT_SYSTEM_PROMPT),
        Message::text(Role::User, "Which hosts are in the inventory?"),
    ];
    let reply = model
        .chat(&messages, &specs, ToolCallMode::JsonAction)
        .await
        .unwrap();
    let parsed = calls_in_text(&reply.content, &registry.names());
    assert!(
        !parsed.calls.is_empty() || parsed.final_answer.is_some(),
        "not a valid action: {}",
        reply.content
    );
    if let Some(c) = parsed.calls.first() {
        registry
            .prepare(&c.name, c.arguments.clone())
            .unwrap_or_else(|e| panic!("the grammar let through bad arguments: {e}"));
    }
    eprintln!(
        "local model replied ({} prompt / {} completion tokens): {}",
        reply.usage.prompt, reply.usage.completion, reply.content
    );
    // Streamed, under the grammar: pieces arrive and add up to the reply.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reply = model
        .chat_streamed(&messages, &specs, ToolCallMode::JsonAction, tx)
        .await
        .unwrap();
    let mut pieces = Vec::new();
    while let Some(p) = rx.recv().await {
        pieces.push(p);
    }
    assert!(pieces.len() > 1, "streamed in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), reply.content);
    let parsed = calls_in_text(&reply.content, &registry.names());
    assert!(
        !parsed.calls.is_empty() || parsed.final_answer.is_some(),
        "not a valid action: {}",
        reply.content
    );
    eprintln!(
        "streamed: {} pieces, {} prompt / {} completion tokens",
        pieces.len(),
        reply.usage.prompt,
        reply.usage.completion
    );
    server.stop().await;
}
