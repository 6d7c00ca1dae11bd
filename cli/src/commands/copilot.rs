//! `opscli copilot`: a chat (lines on standard input) or one question
//! (`-p`), over the agent loop. The answer streams as the model writes
//! it; tool calls are shown as they run; an approval is asked as
//! `[y]es / [n]o / [a]lways for this session / [d]etails` (details: the
//! whole arguments, the resolved targets, a Task's or Pipeline's steps
//! with its variables resolved, the call hash, the expiry), answered on
//! standard input. In one-question mode there is
//! nobody to ask, so every call that needs approval is refused (and the
//! model is told so). Ctrl-C during a turn stops the running step (the
//! model is told it was cancelled); Ctrl-C at the prompt leaves.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ops_agent::approvals::{Answer, Approvals};
use ops_agent::audit::Audit;
use ops_agent::llm::ToolCallMode;
use ops_agent::llm::local::{LocalModel, LocalServer};
use ops_agent::llm::openai::{EndpointConfig, OpenAiModel, detect_mode};
use ops_agent::policy::{Mode, Rules};
use ops_agent::session::{Agent, Event, Op, SessionConfig};
use ops_tools::ToolContext;
use tokio::sync::mpsc;

use crate::args::{CopilotArgs, Format};
use crate::config::Config;

/// The configured endpoint, or the built-in local model started here (and
/// stopped when the returned server is dropped).
pub(crate) async fn model(
    cfg: &Config,
) -> Result<(OpenAiModel, Option<LocalServer>, ToolCallMode)> {
    let (e, server, mode) = endpoint(cfg).await?;
    Ok((OpenAiModel::new(e)?, server, mode))
}

/// What [`model`] talks to: the endpoint's settings, the local server it
/// started (if any) and the tool-call mode.
pub(crate) async fn endpoint(
    cfg: &Config,
) -> Result<(EndpointConfig, Option<LocalServer>, ToolCallMode)> {
    let Some(url) = cfg.model_url.clone() else {
        let model_home = std::env::var_os(crate::config::env::LOCAL_MODEL_HOME)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| cfg.home.clone());
        let local = LocalModel::under(&model_home);
        if !local.present() {
            bail!(
                "no model endpoint is configured and the built-in model is not set up: run `bash scripts/local-model.sh` once (builds llama-server and fetches the model into {}; about 11 minutes), or set {} (and {} if it needs a key) to any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, llama-server)",
                cfg.home.display(),
                crate::config::env::MODEL_URL,
                crate::config::env::MODEL_API_KEY
            );
        }
        eprintln!(
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
            eprintln!("tool calls: {} ({why})", m.as_str());
            m
        }
    };
    Ok((e, None, mode))
}

fn new_session_id() -> String {
    format!(
        "s-{}-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id()
    )
}

/// Prints events; a streamed answer is written as it arrives.
struct Screen {
    json: bool,
    /// A streamed answer is being written (the line is open).
    streaming: bool,
}

impl Screen {
    fn show(&mut self, e: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
            return;
        }
        match e {
            Event::AnswerDelta { text } => {
                if !self.streaming {
                    println!();
                    self.streaming = true;
                }
                print!("{text}");
            }
            Event::Answer { text } => {
                if self.streaming {
                    println!("\n");
                } else {
                    println!("\n{text}\n");
                }
                self.streaming = false;
            }
            other => {
                if self.streaming {
                    println!();
                    self.streaming = false;
                }
                match other {
                    Event::ToolStarted { tool, args } => println!("-> {tool} {args}"),
                    Event::ToolFinished { tool, ok, output } => {
                        let first: String =
                            output.lines().take(12).collect::<Vec<_>>().join("\n   ");
                        println!(
                            "<- {tool} {}\n   {first}",
                            if *ok { "ok" } else { "failed" }
                        );
                    }
                    Event::Refused { tool, reason, .. } => println!("!! {tool} not run: {reason}"),
                    Event::InvalidCall { tool, error } => {
                        println!("!! {tool}: invalid call, sent back to the model: {error}")
                    }
                    Event::Error { message } => eprintln!("error: {message}"),
                    _ => {}
                }
            }
        }
        let _ = std::io::stdout().flush();
    }
}

pub async fn run(cfg: &Config, a: CopilotArgs) -> Result<ExitCode> {
    let mode: Mode = a.mode.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let rules_path = a.rules.clone().or_else(|| {
        let p = cfg.home.join("rules.yaml");
        p.is_file().then_some(p)
    });
    let rules = match &rules_path {
        Some(p) => Rules::load(p)?,
        None => Rules::default(),
    };
    let (model, local_server, tool_calls) = model(cfg).await?;
    let (engine, pool) = crate::commands::execute::engine(cfg, false).await?;
    let store = engine.store().clone();
    let json = a.output == Some(Format::Json);
    let mut registry = ops_tools::builtin::registry().map_err(|e| anyhow::anyhow!(e))?;
    // Runbook search, when there are runbooks to search.
    if !store.list_runbooks().await?.is_empty() {
        let k = crate::commands::runbook::knowledge(cfg, store.clone())?;
        if k.embedder().is_none() && !json {
            eprintln!("runbook search: BM25 only (no embedding model; run scripts/embed-model.sh)");
        }
        registry
            .register(Arc::new(ops_agent::knowledge::tool::RunbookSearch::new(
                Arc::new(k),
            )))
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let feed = engine.feed().clone();
    let agent = Agent {
        model: Arc::new(model),
        registry,
        ctx: ToolContext {
            engine: Arc::new(engine),
            namespace: cfg.namespace.clone(),
            cancel: tokio_util::sync::CancellationToken::new(),
            sandbox: false,
            pinned: None,
        },
        approvals: Approvals::new(store.clone(), Duration::from_secs(15 * 60)),
        audit: Audit::new(store).with_feed(feed, cfg.namespace.clone()),
    };
    let approver = crate::commands::local_principal();
    let mut sc = SessionConfig::new(
        a.session.clone().unwrap_or_else(new_session_id),
        approver.clone(),
    );
    sc.mode = mode;
    sc.rules = rules;
    sc.tool_calls = tool_calls;
    sc.max_steps = a.max_steps.max(1);
    if !json {
        eprintln!(
            "copilot session {} ({} mode{}); audit: opscli audit show --session {}",
            sc.id,
            a.mode,
            rules_path
                .as_ref()
                .map(|p| format!(", rules {}", p.display()))
                .unwrap_or_default(),
            sc.id
        );
    }
    let session_id = sc.id.clone();
    let mut h = agent.spawn(sc);
    let mut screen = Screen {
        json,
        streaming: false,
    };
    // Ctrl-C: stops the running step during a turn; leaves when idle.
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (quit_tx, mut quit) = mpsc::channel::<()>(1);
    {
        let (busy, ops) = (Arc::clone(&busy), h.ops.clone());
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if busy.load(std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("\n(cancelling the running step)");
                    let _ = ops.send(Op::Cancel).await;
                } else {
                    let _ = quit_tx.send(()).await;
                }
            }
        });
    }
    // Standard input, line by line, on a thread (it blocks).
    let (line_tx, mut lines) = mpsc::channel::<String>(16);
    if a.prompt.is_none() {
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    } else {
        drop(line_tx);
    }
    let mut failed = false;
    let inputs: Vec<String> = a.prompt.iter().cloned().collect();
    let mut queued = inputs.into_iter();
    loop {
        let input = match queued.next() {
            Some(p) => p,
            None if a.prompt.is_some() => break,
            None => {
                if !json {
                    print!("ops> ");
                    let _ = std::io::stdout().flush();
                }
                let line = tokio::select! {
                    l = lines.recv() => l,
                    _ = quit.recv() => None,
                };
                match line {
                    Some(l) if l.trim().is_empty() => continue,
                    Some(l) if matches!(l.trim(), "exit" | "quit") => break,
                    Some(l) => l,
                    None => break,
                }
            }
        };
        h.ops.send(Op::UserInput(input)).await?;
        busy.store(true, std::sync::atomic::Ordering::SeqCst);
        loop {
            let Some(e) = h.events.recv().await else {
                bail!("the session ended unexpectedly");
            };
            screen.show(&e);
            match &e {
                Event::ApprovalRequested { id, .. } => {
                    let answer = if a.prompt.is_some() {
                        Answer::Deny(
                            "nobody to approve in one-question mode (-p); run `opscli copilot` interactively to approve changes".into(),
                        )
                    } else {
                        ask(&mut lines, &e, json).await
                    };
                    h.ops
                        .send(Op::Decide {
                            id: id.clone(),
                            answer,
                            by: approver.clone(),
                        })
                        .await?;
                }
                Event::Error { .. } => failed = true,
                Event::TurnComplete { .. } => break,
                _ => {}
            }
        }
        busy.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    drop(h.ops);
    pool.close_all().await;
    if let Some(s) = local_server {
        s.stop().await;
    }
    if !json {
        eprintln!("session {session_id} ended");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The full picture of an approval request, for `[d]etails`.
fn details(e: &Event) -> String {
    let Event::ApprovalRequested {
        tool,
        effect,
        policy,
        args,
        targets,
        call_hash,
        expires_at,
        plan,
        ..
    } = e
    else {
        return String::new();
    };
    let mut out = format!("   tool: {tool} ({effect})\n");
    let args = serde_json::to_string_pretty(args).unwrap_or_default();
    out.push_str(&format!(
        "   arguments:\n      {}\n",
        args.replace('\n', "\n      ")
    ));
    out.push_str(&format!(
        "   targets: {}\n",
        if targets.is_empty() {
            "(none: runs here or on the cluster's API)".to_owned()
        } else {
            targets.join(", ")
        }
    ));
    if let Some(plan) = plan {
        out.push_str("   will run:\n");
        for line in plan.lines() {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out.push_str(&format!("   policy: {}\n", policy.join("; ")));
    out.push_str(&format!(
        "   bound to call {call_hash}; any change asks again\n"
    ));
    if let Some(t) = expires_at {
        out.push_str(&format!("   expires unanswered at {t}\n"));
    }
    out
}

async fn ask(lines: &mut mpsc::Receiver<String>, e: &Event, json: bool) -> Answer {
    let Event::ApprovalRequested {
        id,
        summary,
        effect,
        reason,
        ..
    } = e
    else {
        return Answer::Deny("not an approval request".into());
    };
    loop {
        if !json {
            println!("\n?? approval {id}: {summary}");
            println!(
                "   effect: {effect}; why: {}",
                if reason.is_empty() {
                    "(no reason given)"
                } else {
                    reason
                }
            );
            print!("   [y]es / [n]o / [a]lways for this session / [d]etails: ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.recv().await else {
            return Answer::Deny("the operator left without answering".into());
        };
        match line.trim() {
            "y" | "yes" => return Answer::Once,
            "a" | "always" => return Answer::Session,
            "d" | "details" if !json => {
                print!("{}", details(e));
            }
            n if n == "n" || n == "no" || n.starts_with("n ") => {
                let why = n.strip_prefix("n ").unwrap_or("").trim();
                return Answer::Deny(if why.is_empty() {
                    "denied by the operator".into()
                } else {
                    why.to_owned()
                });
            }
            _ => {
                if !json {
                    println!("   answer y, n (optionally `n REASON`), a or d");
                }
            }
        }
    }
}
