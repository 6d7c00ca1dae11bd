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

use anyhow::{Result, bail};
use ops_agent::approvals::Answer;
use ops_agent::policy::Mode;
use ops_agent::session::{Event, Op, SessionConfig};
use tokio::sync::mpsc;

use crate::args::{CopilotArgs, Format};
use crate::config::Config;

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
    let (rules, rules_path) = ops_app::agent::rules(cfg, a.rules.as_deref())?;
    let (model, local_server, tool_calls) = ops_app::model::model(cfg).await?;
    let (engine, pool) = ops_app::services::engine(cfg, false).await?;
    let store = engine.store().clone();
    let json = a.output == Some(Format::Json);
    let (registry, note) = ops_app::agent::registry(cfg, &store).await?;
    if let Some(note) = note.filter(|_| !json) {
        eprintln!("{note}");
    }
    let feed = engine.feed().clone();
    let agent = ops_app::agent::assemble(
        Arc::new(model),
        ops_app::agent::Parts {
            registry,
            engine: Arc::new(engine),
            namespace: cfg.namespace.clone(),
            approval_ttl: cfg.approval_ttl,
            feed: Some(feed),
        },
    );
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
        // An event that arrived while a question was on the screen.
        let mut early: Option<Event> = None;
        loop {
            let next = match early.take() {
                Some(e) => Some(e),
                None => h.events.recv().await,
            };
            let Some(e) = next else {
                bail!("the session ended unexpectedly");
            };
            screen.show(&e);
            match &e {
                Event::ApprovalRequested { id, .. } => {
                    let answer = if a.prompt.is_some() {
                        Some(Answer::Deny(
                            "nobody to approve in one-question mode (-p); run `opscli copilot` interactively to approve changes".into(),
                        ))
                    } else {
                        // Someone may decide in another door first (`opscli
                        // approval` elsewhere): the session moves on, and
                        // its next event ends the question.
                        tokio::select! {
                            a = ask(&mut lines, &e, json) => Some(a),
                            next = h.events.recv() => {
                                if !json {
                                    println!("\n   (decided elsewhere: `opscli audit show --session {session_id}` says by whom)");
                                }
                                early = next;
                                None
                            }
                        }
                    };
                    if let Some(answer) = answer {
                        h.ops
                            .send(Op::Decide {
                                id: id.clone(),
                                answer,
                                by: approver.clone(),
                            })
                            .await?;
                    }
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
